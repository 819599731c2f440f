using Sharptun.Device.Config;

namespace Sharptun.Device.Tests.Config;

public sealed class WgEndpointTests
{
    [Theory]
    [InlineData("1.2.3.4:51820", "1.2.3.4", 51820)]
    [InlineData("[fd00::1]:51820", "fd00::1", 51820)]
    [InlineData("vpn.example.com:443", "vpn.example.com", 443)]
    [InlineData("localhost:0", "localhost", 0)]
    [InlineData("host:65535", "host", 65535)]
    public void TryParse_Valid_KeepsHostAndPort(string text, string host, int port)
    {
        Assert.True(WgEndpoint.TryParse(text, out var endpoint));
        Assert.Equal(host, endpoint.Host);
        Assert.Equal(port, endpoint.Port);
        Assert.Equal(text, endpoint.ToString());
    }

    [Theory]
    [InlineData("1.2.3.4")]
    [InlineData("1.2.3.4:")]
    [InlineData("1.2.3.4:65536")]
    [InlineData("1.2.3.4:-1")]
    [InlineData("1.2.3.4:51820x")]
    [InlineData("fd00::1:51820")] // unbracketed IPv6
    [InlineData("[fd00::1]51820")]
    [InlineData("[fd00::1]")]
    [InlineData("[1.2.3.4]:1")]
    [InlineData(":51820")]
    [InlineData("bad host:1")]
    [InlineData("1.2.3.400:1")]
    public void TryParse_Invalid_IsRejected(string text) => Assert.False(WgEndpoint.TryParse(text, out _));

    [Fact]
    public void TryParse_Hostname_IsNotResolved()
    {
        Assert.True(WgEndpoint.TryParse("does-not-exist.invalid:1", out var endpoint));
        Assert.Null(endpoint.Address);
        Assert.False(endpoint.TryGetIPEndPoint(out _));
    }

    [Fact]
    public void TryParseIPEndPoint_Hostname_IsRejected() => Assert.False(WgEndpoint.TryParseIPEndPoint("example.com:1", out _));

    [Fact]
    public void TryParseIPEndPoint_V6_FormatsWithBrackets()
    {
        Assert.True(WgEndpoint.TryParseIPEndPoint("[fd00::1]:51820", out var ep));
        Assert.Equal("[fd00::1]:51820", WgEndpoint.Format(ep));
    }
}
