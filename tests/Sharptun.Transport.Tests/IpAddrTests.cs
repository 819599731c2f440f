using System.Net;

namespace Sharptun.Transport.Tests;

public sealed class IpAddrTests
{
    [Theory]
    [InlineData("10.1.2.3")]
    [InlineData("0.0.0.0")]
    [InlineData("255.255.255.255")]
    [InlineData("2001:db8::1")]
    [InlineData("::ffff:10.0.0.1")]
    [InlineData("::")]
    public void FromIPAddress_RoundTrip_PreservesAddress(string text)
    {
        var ip = IPAddress.Parse(text);
        var addr = IpAddr.FromIPAddress(ip);
        Assert.Equal(ip, addr.ToIPAddress());
        Assert.Equal(ip.ToString(), addr.ToString());
        Assert.Equal(ip.AddressFamily == System.Net.Sockets.AddressFamily.InterNetwork, addr.IsV4);
    }

    [Fact]
    public void Equals_V4AndMappedV6_AreDifferent()
    {
        Assert.NotEqual(IpAddr.Parse("10.0.0.1"), IpAddr.Parse("::ffff:10.0.0.1"));
        Assert.NotEqual(IpAddr.AnyV4, IpAddr.AnyV6);
        Assert.Equal(IpAddr.Parse("10.0.0.1"), IpAddr.FromV4([10, 0, 0, 1]));
        Assert.Equal(IpAddr.Parse("10.0.0.1").GetHashCode(), IpAddr.FromV4(0x0A000001).GetHashCode());
    }

    [Fact]
    public void WriteTo_V6_WritesSixteenBytes()
    {
        Span<byte> buffer = stackalloc byte[16];
        Assert.Equal(16, IpAddr.Parse("2001:db8::ff").WriteTo(buffer));
        Assert.Equal(0x20, buffer[0]);
        Assert.Equal(0xff, buffer[15]);
        Assert.Equal(4, IpAddr.Parse("1.2.3.4").WriteTo(buffer));
        Assert.Equal(4, buffer[3]);
    }

    [Fact]
    public void FromV4_WrongLength_Throws()
    {
        Assert.Throws<ArgumentException>(() => IpAddr.FromV4(new byte[5]));
        Assert.Throws<ArgumentException>(() => IpAddr.FromV6(new byte[4]));
    }
}
