using Sharptun.Gateway;

namespace Sharptun.Gateway.Tests;

public sealed class GatewayConfigTests
{
    private const string WireGuardPart = """
        [Interface]
        PrivateKey = yAnz5TF+lXXJte14tji3zlMNq+hd2rYUIgJBgB3fBmk=
        ListenPort = 51820
        Address = 10.66.0.1/32

        [Peer]
        PublicKey = xTIBA5rboUvnH4htodjb6e697QjLERt1NAB4mZqp8Dg=
        AllowedIPs = 10.66.0.2/32
        """;

    [Fact]
    public void GatewaySection_IsParsed_AndBlankedOutForTheWireGuardParser_KeepingLineNumbers()
    {
        var text = WireGuardPart + """

            [Gateway]
            Allow = 192.168.50.0/24, 10.1.0.0/16:443   # two rules
            Allow = [fd00::]/8:53
            Deny = 203.0.113.0/24
            Default = deny
            MaxConnections = 100
            MaxConnectionsPerPeer = 10
            IdleTimeout = 30
            UdpIdleTimeout = 5
            ConnectTimeout = 3
            DNS = off

            [Peer]
            PublicKey = HIgo9xNzJMWLKASShiTqIybxZ0U3wGLiUeJ1PKf8ykw=
            AllowedIPs = 10.66.0.3/32
            """;
        var config = GatewayConfig.Parse(text, "gw.conf");
        var o = config.Options;
        Assert.Equal(["192.168.50.0/24", "10.1.0.0/16:443", "[fd00::]/8:53"], o.Allow.Select(r => r.ToString()));
        Assert.Equal(["203.0.113.0/24"], o.Deny.Select(r => r.ToString()));
        Assert.False(o.AllowUnlisted);
        Assert.Equal(100, o.MaxConnections);
        Assert.Equal(10, o.MaxConnectionsPerPeer);
        Assert.Equal(TimeSpan.FromSeconds(30), o.TcpIdleTimeout);
        Assert.Equal(TimeSpan.FromSeconds(5), o.UdpIdleTimeout);
        Assert.Equal(TimeSpan.FromSeconds(3), o.ConnectTimeout);
        Assert.False(o.Dns);

        var lines = text.Split('\n');
        var rest = config.WireGuardText.Split('\n');
        Assert.Equal(lines.Length, rest.Length);
        Assert.DoesNotContain("Gateway", config.WireGuardText, StringComparison.Ordinal);
        Assert.DoesNotContain("Allow =", config.WireGuardText, StringComparison.Ordinal);
        var peer = Array.FindLastIndex(lines, l => l.StartsWith("[Peer]", StringComparison.Ordinal));
        Assert.Equal("[Peer]", rest[peer]);
        Assert.Equal(lines[peer + 1], rest[peer + 1]);
    }

    [Fact]
    public void NoGatewaySection_GivesDefaults_AndTheTextUnchanged()
    {
        var config = GatewayConfig.Parse(WireGuardPart);
        Assert.Equal(WireGuardPart, config.WireGuardText);
        Assert.Empty(config.Options.Allow);
        Assert.True(config.Options.AllowUnlisted);
        Assert.True(config.Options.Dns);
    }

    [Fact]
    public void Errors_NameFileAndLine_AndListEveryBadLine()
    {
        var text = WireGuardPart + """

            [gateway]
            Allow = 10.0.0.0/8, nonsense
            Colour = blue
            MaxConnections = 0
            IdleTimeout = soon
            Default = maybe
            justtext
            [Gateway]
            """;
        var e = Assert.Throws<FormatException>(() => GatewayConfig.Parse(text, "gw.conf"));
        var first = WireGuardPart.Split('\n').Length + 1; // the [gateway] line
        Assert.Contains($"gw.conf:{first + 1}: 'nonsense'", e.Message, StringComparison.Ordinal);
        Assert.Contains($"gw.conf:{first + 2}: unknown key 'Colour'", e.Message, StringComparison.Ordinal);
        Assert.Contains($"gw.conf:{first + 3}: MaxConnections", e.Message, StringComparison.Ordinal);
        Assert.Contains($"gw.conf:{first + 4}: IdleTimeout", e.Message, StringComparison.Ordinal);
        Assert.Contains($"gw.conf:{first + 5}: Default", e.Message, StringComparison.Ordinal);
        Assert.Contains($"gw.conf:{first + 6}: expected 'Key = Value'", e.Message, StringComparison.Ordinal);
        Assert.Contains($"gw.conf:{first + 7}: a second [Gateway]", e.Message, StringComparison.Ordinal);
    }
}
