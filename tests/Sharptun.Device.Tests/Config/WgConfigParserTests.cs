using Sharptun.Device.Config;

namespace Sharptun.Device.Tests.Config;

public sealed class WgConfigParserTests
{
    private const string Priv = "yAnz5TF+lXXJte14tji3zlMNq+hd2rYUIgJBgB3fBmk=";
    private const string Pub1 = "xTIBA5rboUvnH4htodjb6e697QjLERt1NAB4mZqp8Dg=";
    private const string Pub2 = "TrMvSoP4jYQlY6RIzBgbssQqY3vxI2Pi+y71lOWWXX0=";
    private const string Psk = "FpCyhws9cxwWoV4xELtfJvjJN+zQVRPISllRWgeopVE=";

    private static WgConfig Parse(string text)
    {
        Assert.True(WgConfigParser.TryParse(text, "wg0.conf", out var config, out var errors), string.Join("\n", errors));
        return config!;
    }

    private static IReadOnlyList<ConfigError> Errors(string text)
    {
        Assert.False(WgConfigParser.TryParse(text, "wg0.conf", out var config, out var errors));
        Assert.Null(config);
        return errors;
    }

    [Fact]
    public void TryParse_WgManPageExample_ReadsEveryKey()
    {
        var config = Parse($"""
            [Interface]
            PrivateKey = {Priv}
            ListenPort = 51820
            FwMark = 0x1234

            [Peer]
            PublicKey = {Pub1}
            PresharedKey = {Psk}
            Endpoint = 192.95.5.67:1234
            AllowedIPs = 10.192.122.3/32, 10.192.124.1/24
            PersistentKeepalive = 25

            [Peer]
            PublicKey = {Pub2}
            Endpoint = [2607:5300:60:6b0::c05f:543]:2468
            AllowedIPs = 10.192.122.4/32, 192.168.0.0/16
            AllowedIPs = fd00::/64
            """);
        Assert.Equal(Priv, config.Interface.PrivateKey.ToString());
        Assert.Equal((ushort)51820, config.Interface.ListenPort);
        Assert.Equal(0x1234u, config.Interface.FwMark);
        Assert.Equal(2, config.Peers.Count);
        var p1 = config.Peers[0];
        Assert.Equal(Pub1, p1.PublicKey.ToString());
        Assert.Equal(Psk, p1.PresharedKey.ToString());
        Assert.Equal(new WgEndpoint("192.95.5.67", 1234), p1.Endpoint);
        Assert.Equal(["10.192.122.3/32", "10.192.124.1/24"], p1.AllowedIps.Select(p => p.ToString()));
        Assert.Equal((ushort)25, p1.PersistentKeepalive);
        var p2 = config.Peers[1];
        Assert.Equal(new WgEndpoint("2607:5300:60:6b0::c05f:543", 2468), p2.Endpoint);
        Assert.Equal(3, p2.AllowedIps.Count); // repeated AllowedIPs accumulate
        Assert.Null(p2.PresharedKey);
        Assert.Null(p2.PersistentKeepalive);
        Assert.False(config.HasQuickSettings);
    }

    [Fact]
    public void TryParse_KeysAndSectionsCaseInsensitive_CommentsAndWhitespaceIgnored()
    {
        var config = Parse($"""
            # leading comment
              [interface]   # trailing comment
            privatekey={Priv}
            LISTENPORT   =   51820
            [ PEER ]
            publickey = {Pub1} # comment
            allowedips = 10.0.0.0 / 8 ,fd00::/64
            """);
        Assert.Equal((ushort)51820, config.Interface.ListenPort);
        Assert.Equal(["10.0.0.0/8", "fd00::/64"], config.Peers[0].AllowedIps.Select(p => p.ToString()));
    }

    [Fact]
    public void TryParse_WgQuickKeys_AreRead()
    {
        var config = Parse($"""
            [Interface]
            Address = 10.0.0.2/24, fd00::2/64
            Address = 10.0.1.2
            DNS = 1.1.1.1, example.com
            MTU = 1420
            Table = off
            PreUp = echo  "pre up"
            PostUp = iptables -A FORWARD -i %i -j ACCEPT
            PostUp = true
            PreDown = echo pre down
            PostDown = echo post down
            SaveConfig = true
            PrivateKey = {Priv}
            """);
        var i = config.Interface;
        Assert.Equal(["10.0.0.2/24", "fd00::2/64", "10.0.1.2/32"], i.Addresses.Select(p => p.ToString())); // host bits kept
        Assert.Equal(["1.1.1.1", "example.com"], i.Dns);
        Assert.Equal(1420, i.Mtu);
        Assert.Equal("off", i.Table);
        Assert.Equal(["echo  \"pre up\""], i.PreUp); // inner whitespace of commands kept
        Assert.Equal(["iptables -A FORWARD -i %i -j ACCEPT", "true"], i.PostUp);
        Assert.Equal(["echo pre down"], i.PreDown);
        Assert.Equal(["echo post down"], i.PostDown);
        Assert.True(i.SaveConfig);
        Assert.True(config.HasQuickSettings);
        Assert.False(config.Strip().HasQuickSettings);
    }

    [Fact]
    public void TryParse_FwMarkOffAndKeepaliveOff_AreZero()
    {
        var config = Parse($"[Interface]\nFwMark = off\n[Peer]\nPublicKey = {Pub1}\nPersistentKeepalive = off\n");
        Assert.Equal(0u, config.Interface.FwMark);
        Assert.Equal((ushort)0, config.Peers[0].PersistentKeepalive);
    }

    [Fact]
    public void TryParse_HostnameEndpoint_KeptUnresolved()
    {
        var config = Parse($"[Peer]\nPublicKey = {Pub1}\nEndpoint = vpn.example.invalid:51820\n");
        Assert.Equal(new WgEndpoint("vpn.example.invalid", 51820), config.Peers[0].Endpoint);
    }

    [Fact]
    public void TryParse_BadPublicKey_ErrorNamesFileLineAndKey()
    {
        var errors = Errors($"[Interface]\nPrivateKey = {Priv}\n\n[Peer]\n# c\n\nPublicKey = nope\n");
        Assert.Contains("wg0.conf:7: PublicKey: invalid key (must be 32 bytes of base64)", errors.Select(e => e.ToString()));
    }

    [Fact]
    public void TryParse_SeveralErrors_AllReportedAndNoConfig()
    {
        var errors = Errors($"[Interface]\nListenPort = 70000\nFwMark = 0xfffffffff\nBogus = 1\n[Peer]\nPublicKey = {Pub1}\nAllowedIPs = 10.0.0.0/33\nEndpoint = nope\nPersistentKeepalive = 65536\n");
        Assert.Equal([2, 3, 4, 7, 8, 9], errors.Select(e => e.Line));
        Assert.Equal(["ListenPort", "FwMark", "Bogus", "AllowedIPs", "Endpoint", "PersistentKeepalive"], errors.Select(e => e.Key));
    }

    [Fact]
    public void TryParse_PeerWithoutPublicKey_IsError()
    {
        var errors = Errors("[Interface]\nListenPort = 1\n[Peer]\nAllowedIPs = 10.0.0.0/8\n");
        var e = Assert.Single(errors);
        Assert.Equal(3, e.Line);
        Assert.Equal("PublicKey", e.Key);
    }

    [Fact]
    public void TryParse_KeyBeforeSection_IsError() => Assert.Equal(1, Assert.Single(Errors("ListenPort = 1\n")).Line);

    [Fact]
    public void TryParse_LineWithoutEquals_IsError() => Assert.Equal(2, Assert.Single(Errors("[Interface]\nListenPort\n")).Line);

    [Fact]
    public void TryParse_UnknownSection_IsErrorUnlessIgnored()
    {
        const string text = "[Interface]\nListenPort = 1\n[Socks5]\nBindAddress = 127.0.0.1:1080\n";
        Assert.Single(Errors(text));
        Assert.True(WgConfigParser.TryParse(text, "x.conf", out var config, out _, ignoreUnknownSections: true));
        Assert.Equal((ushort)1, config!.Interface.ListenPort);
    }

    [Fact]
    public void TryParse_RepeatedSingleValuedKey_LastWins()
    {
        var config = Parse("[Interface]\nListenPort = 1\nListenPort = 2\n");
        Assert.Equal((ushort)2, config.Interface.ListenPort);
    }

    [Fact]
    public void TryParse_CrLfLineEndings_Accepted() => Assert.Equal((ushort)7, Parse("[Interface]\r\nListenPort = 7\r\n").Interface.ListenPort);

    [Fact]
    public void EquatableArray_CollectionExpression_ComparesByValue()
    {
        EquatableArray<string> a = ["x", "y"];
        EquatableArray<string> b = ["x", "y"];
        EquatableArray<string> c = ["y", "x"];
        Assert.Equal(a, b);
        Assert.NotEqual(a, c);
        Assert.Equal(default(EquatableArray<string>), []);
    }

    [Fact]
    public void Equals_SameText_ParsesEqualConfigs()
    {
        var text = $"[Interface]\nPrivateKey = {Priv}\nAddress = 10.0.0.1/24\n[Peer]\nPublicKey = {Pub1}\nAllowedIPs = 0.0.0.0/0\n";
        Assert.Equal(Parse(text), Parse(text));
        Assert.NotEqual(Parse(text), Parse(text.Replace("0.0.0.0/0", "0.0.0.0/1")));
    }
}
