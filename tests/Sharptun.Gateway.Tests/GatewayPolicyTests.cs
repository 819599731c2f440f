using System.Net;
using Sharptun.Gateway;

namespace Sharptun.Gateway.Tests;

public sealed class GatewayPolicyTests
{
    [Theory]
    [InlineData("10.1.0.0/16", "10.1.0.0/16", 0, 65535)]
    [InlineData("10.1.2.3/16", "10.1.0.0/16", 0, 65535)]
    [InlineData("10.1.0.0/16:443", "10.1.0.0/16", 443, 443)]
    [InlineData("192.0.2.7:8000-8100", "192.0.2.7/32", 8000, 8100)]
    [InlineData("2001:db8::/32", "2001:db8::/32", 0, 65535)]
    [InlineData("[2001:db8::]/32:443", "2001:db8::/32", 443, 443)]
    [InlineData("[2001:db8::/32]:53", "2001:db8::/32", 53, 53)]
    [InlineData("[::1]:22", "::1/128", 22, 22)]
    [InlineData(" 0.0.0.0/0 ", "0.0.0.0/0", 0, 65535)]
    public void Rule_Parses(string text, string prefix, int first, int last)
    {
        Assert.True(DestinationRule.TryParse(text, out var rule, out var error), error);
        Assert.Equal(IPNetwork.Parse(prefix), rule.Prefix);
        Assert.Equal(first, rule.FirstPort);
        Assert.Equal(last, rule.LastPort);
        Assert.True(DestinationRule.TryParse(rule.ToString(), out var again, out _));
        Assert.Equal(rule, again);
    }

    [Theory]
    [InlineData("")]
    [InlineData("10.1.0.0/33")]
    [InlineData("10.1.0.0/16:0")]
    [InlineData("10.1.0.0/16:65536")]
    [InlineData("10.1.0.0/16:443-80")]
    [InlineData("10.1.0.0/16:http")]
    [InlineData("example.com")]
    [InlineData("[2001:db8::/32")]
    [InlineData("[2001:db8::]x")]
    [InlineData("fe80::1%eth0")]
    [InlineData("10.1.0.0/-1")]
    public void Rule_RejectsMalformed_WithAReason(string text)
    {
        Assert.False(DestinationRule.TryParse(text, out _, out var error));
        Assert.False(string.IsNullOrEmpty(error));
    }

    [Theory]
    [InlineData("127.0.0.1")]
    [InlineData("10.2.3.4")]
    [InlineData("172.16.0.1")]
    [InlineData("192.168.1.1")]
    [InlineData("100.64.0.1")]
    [InlineData("169.254.169.254")]
    [InlineData("0.0.0.0")]
    [InlineData("224.0.0.1")]
    [InlineData("255.255.255.255")]
    [InlineData("::1")]
    [InlineData("fe80::1")]
    [InlineData("fd12:3456::1")]
    [InlineData("::ffff:10.0.0.1")]
    [InlineData("::ffff:127.0.0.1")]
    public void Defaults_DenyReservedRanges(string address)
    {
        var policy = new GatewayPolicy(new GatewayOptions());
        Assert.Equal(GatewayVerdict.DeniedReserved, policy.Decide(new IPEndPoint(IPAddress.Parse(address), 80)));
        Assert.False(policy.AllowsAnyPort(IPAddress.Parse(address)));
    }

    [Theory]
    [InlineData("1.1.1.1")]
    [InlineData("11.0.0.1")]
    [InlineData("2606:4700::1111")]
    [InlineData("::ffff:8.8.8.8")]
    public void Defaults_AllowPublicDestinations(string address)
    {
        var policy = new GatewayPolicy(new GatewayOptions());
        Assert.Equal(GatewayVerdict.Allowed, policy.Decide(new IPEndPoint(IPAddress.Parse(address), 443)));
        Assert.True(policy.AllowsAnyPort(IPAddress.Parse(address)));
    }

    [Fact]
    public void AllowInsideReservedRange_OpensOnlyThatPart_AndOnlyItsPorts()
    {
        var policy = Policy(allow: ["192.168.50.0/24", "10.1.0.0/16:443"]);
        Assert.Equal(GatewayVerdict.Allowed, policy.Decide(Ep("192.168.50.9", 22)));
        Assert.Equal(GatewayVerdict.DeniedReserved, policy.Decide(Ep("192.168.51.9", 22)));
        Assert.Equal(GatewayVerdict.Allowed, policy.Decide(Ep("10.1.7.7", 443)));
        Assert.Equal(GatewayVerdict.DeniedReserved, policy.Decide(Ep("10.1.7.7", 80)));
        Assert.Equal(GatewayVerdict.DeniedReserved, policy.Decide(Ep("10.2.0.1", 443)));
        Assert.True(policy.AllowsAnyPort(IPAddress.Parse("10.1.7.7")));
        Assert.False(policy.AllowsAnyPort(IPAddress.Parse("10.2.0.1")));
    }

    [Fact]
    public void AllowWiderThanAReservedRange_DoesNotOpenIt()
    {
        var policy = Policy(allow: ["0.0.0.0/0", "::/0", "10.0.0.0/7"]);
        Assert.Equal(GatewayVerdict.DeniedReserved, policy.Decide(Ep("10.0.0.1", 80)));
        Assert.Equal(GatewayVerdict.DeniedReserved, policy.Decide(Ep("127.0.0.1", 80)));
        Assert.Equal(GatewayVerdict.DeniedReserved, policy.Decide(Ep("fd00::1", 80)));
        Assert.Equal(GatewayVerdict.Allowed, policy.Decide(Ep("9.9.9.9", 80)));
    }

    [Fact]
    public void LoopbackOpensOnlyWhenAllowedExplicitly()
    {
        var policy = Policy(allow: ["127.0.0.1/32:8080"]);
        Assert.Equal(GatewayVerdict.Allowed, policy.Decide(Ep("127.0.0.1", 8080)));
        Assert.Equal(GatewayVerdict.DeniedReserved, policy.Decide(Ep("127.0.0.1", 8081)));
        Assert.Equal(GatewayVerdict.DeniedReserved, policy.Decide(Ep("127.0.0.2", 8080)));
    }

    [Fact]
    public void DenyWins_OverAllowAndDefault()
    {
        var policy = Policy(allow: ["192.168.50.0/24"], deny: ["192.168.50.7/32", "0.0.0.0/0:25", "2001:4860::/32"]);
        Assert.Equal(GatewayVerdict.DeniedByRule, policy.Decide(Ep("192.168.50.7", 80)));
        Assert.Equal(GatewayVerdict.Allowed, policy.Decide(Ep("192.168.50.8", 80)));
        Assert.Equal(GatewayVerdict.DeniedByRule, policy.Decide(Ep("1.2.3.4", 25)));
        Assert.Equal(GatewayVerdict.Allowed, policy.Decide(Ep("1.2.3.4", 26)));
        Assert.Equal(GatewayVerdict.DeniedByRule, policy.Decide(Ep("2001:4860::8888", 53)));
        Assert.Equal(GatewayVerdict.DeniedByRule, policy.Decide(Ep("::ffff:1.2.3.4", 25)));
        // echo: a port-specific deny does not make the whole address unreachable; a port-less one does
        Assert.True(policy.AllowsAnyPort(IPAddress.Parse("1.2.3.4")));
        Assert.False(policy.AllowsAnyPort(IPAddress.Parse("192.168.50.7")));
    }

    [Fact]
    public void DefaultDeny_MakesAllowTheWholeList()
    {
        var options = new GatewayOptions { AllowUnlisted = false };
        options.Allow.Add(Rule("9.9.9.0/24:53"));
        var policy = new GatewayPolicy(options);
        Assert.Equal(GatewayVerdict.Allowed, policy.Decide(Ep("9.9.9.9", 53)));
        Assert.Equal(GatewayVerdict.DeniedUnlisted, policy.Decide(Ep("9.9.9.9", 80)));
        Assert.Equal(GatewayVerdict.DeniedUnlisted, policy.Decide(Ep("1.1.1.1", 53)));
        Assert.Equal(GatewayVerdict.DeniedReserved, policy.Decide(Ep("10.0.0.1", 53)));
    }

    internal static DestinationRule Rule(string text) =>
        DestinationRule.TryParse(text, out var rule, out var error) ? rule : throw new FormatException(error);

    private static GatewayPolicy Policy(string[]? allow = null, string[]? deny = null)
    {
        var options = new GatewayOptions();
        foreach (var a in allow ?? [])
        {
            options.Allow.Add(Rule(a));
        }

        foreach (var d in deny ?? [])
        {
            options.Deny.Add(Rule(d));
        }

        return new GatewayPolicy(options);
    }

    private static IPEndPoint Ep(string address, int port) => new(IPAddress.Parse(address), port);
}
