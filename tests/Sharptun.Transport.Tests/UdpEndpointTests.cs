using System.Net;
using Sharptun.Transport;

namespace Sharptun.Transport.Tests;

public sealed class UdpEndpointTests
{
    [Theory]
    [InlineData("1.2.3.4:51820")]
    [InlineData("0.0.0.0:0")]
    [InlineData("255.255.255.255:65535")]
    [InlineData("[fd00::1]:51820")]
    [InlineData("[::]:1")]
    [InlineData("[2001:db8:1:2:3:4:5:6]:443")]
    public void Parse_CanonicalText_FormatsBackIdentically(string text)
    {
        var endpoint = UdpEndpoint.Parse(text);

        Assert.Equal(text, endpoint.ToString());
    }

    [Theory]
    [InlineData("")]
    [InlineData("1.2.3.4")]
    [InlineData("1.2.3.4:")]
    [InlineData("1.2.3.4:65536")]
    [InlineData("1.2.3.4:-1")]
    [InlineData("1.2.3.4:+5")]
    [InlineData("1.2.3:80")]
    [InlineData("1.2.3.256:80")]
    [InlineData("1.2.3.4.5:80")]
    [InlineData("0x1.2.3.4:80")]
    [InlineData("fd00::1:51820")]
    [InlineData("[fd00::1]")]
    [InlineData("[fd00::1]51820")]
    [InlineData("[1.2.3.4]:80")]
    [InlineData("[fe80::1%eth0]:80")]
    [InlineData("example.com:80")]
    public void TryParse_Malformed_ReturnsFalse(string text)
    {
        Assert.False(UdpEndpoint.TryParse(text, out _));
    }

    [Fact]
    public void Parse_IPv4_IsIPv4WithAddressBytes()
    {
        var endpoint = UdpEndpoint.Parse("10.1.2.3:7");
        Span<byte> bytes = stackalloc byte[16];

        Assert.True(endpoint.IsIPv4);
        Assert.Equal(4, endpoint.WriteAddress(bytes));
        Assert.Equal(new byte[] { 10, 1, 2, 3 }, bytes[..4].ToArray());
        Assert.Equal(0x0A010203u, endpoint.IPv4Value);
        Assert.Equal((ushort)7, endpoint.Port);
    }

    [Fact]
    public void FromIPEndPoint_IPv4Mapped_BecomesIPv4()
    {
        var mapped = new IPEndPoint(IPAddress.Parse("::ffff:192.0.2.9"), 1000);

        var endpoint = UdpEndpoint.FromIPEndPoint(mapped);

        Assert.True(endpoint.IsIPv4);
        Assert.Equal(UdpEndpoint.Parse("192.0.2.9:1000"), endpoint);
    }

    [Fact]
    public void ToIPEndPoint_IPv6_RoundTrips()
    {
        var endpoint = UdpEndpoint.Parse("[2001:db8::7]:9");

        var ip = endpoint.ToIPEndPoint();

        Assert.Equal(IPAddress.Parse("2001:db8::7"), ip.Address);
        Assert.Equal(9, ip.Port);
        Assert.Equal(endpoint, UdpEndpoint.FromIPEndPoint(ip));
    }

    [Fact]
    public void Equality_DifferentPort_NotEqualButSameAddress()
    {
        var a = UdpEndpoint.Parse("1.2.3.4:1");
        var b = UdpEndpoint.Parse("1.2.3.4:2");

        Assert.NotEqual(a, b);
        Assert.True(a != b);
        Assert.True(a.AddressEquals(b));
        Assert.Equal(a, b.WithPort(1));
        Assert.Equal(a.GetHashCode(), b.WithPort(1).GetHashCode());
    }

    [Fact]
    public void Default_IsEmptyIPv6Unspecified()
    {
        UdpEndpoint endpoint = default;

        Assert.True(endpoint.IsEmpty);
        Assert.True(endpoint.IsIPv6);
        Assert.Equal("[::]:0", endpoint.ToString());
    }

    [Fact]
    public void Ip_IPv4MappedSpellings_AreOneEndpointOverOneIpAddr()
    {
        var mapped = new UdpEndpoint(IpAddr.Parse("::ffff:10.0.0.1"), 51820);
        var plain = new UdpEndpoint(IpAddr.Parse("10.0.0.1"), 51820);
        Assert.Equal(plain, mapped);
        Assert.Equal(plain.GetHashCode(), mapped.GetHashCode());
        Assert.Equal(IpAddr.FromV4(0x0A000001), mapped.Ip);
        Assert.True(mapped.IsIPv4);
        Assert.Equal(UdpEndpoint.Parse("10.0.0.1:51820"), mapped);
        Span<byte> bytes = stackalloc byte[16];
        mapped.WriteAddress16(bytes);
        Assert.Equal(IPAddress.Parse("::ffff:10.0.0.1").GetAddressBytes(), bytes.ToArray());
        Assert.Equal(IpAddr.Parse("fd00::1"), UdpEndpoint.Parse("[fd00::1]:1").Ip);
    }

    [Fact]
    public void Default_AndUnspecifiedIPv4_DifferInIsEmpty()
    {
        Assert.True(new UdpEndpoint(IpAddr.AnyV6, 0).IsEmpty);
        Assert.False(new UdpEndpoint(IpAddr.AnyV4, 0).IsEmpty);
        Assert.False(UdpEndpoint.Parse("0.0.0.0:0").IsEmpty);
    }

    [Fact]
    public void Size_IsNoLargerThanTheFormerHandRolledLayout()
    {
        // Two ulongs + a ushort padded to 8 was 24 bytes; IpAddr + port must not grow the hot-path value.
        Assert.Equal(20, System.Runtime.CompilerServices.Unsafe.SizeOf<IpAddr>());
        Assert.Equal(24, System.Runtime.CompilerServices.Unsafe.SizeOf<UdpEndpoint>());
    }

    [Fact]
    public void TryFormat_DestinationTooSmall_ReturnsFalse()
    {
        var endpoint = UdpEndpoint.Parse("[2001:db8::7]:51820");

        Assert.False(endpoint.TryFormat(new char[10], out _));
    }

    [Fact]
    public void ParseFormat_RandomAddresses_RoundTripLikeIPAddress()
    {
        const int seed = 20261122;
        var random = new Random(seed);
        var bytes = new byte[16];
        for (var i = 0; i < 2000; i++)
        {
            var v4 = random.Next(2) == 0;
            random.NextBytes(bytes);
            var port = (ushort)random.Next(65536);
            var address = new IPAddress(v4 ? bytes.AsSpan(0, 4) : bytes);
            if (!v4 && address.IsIPv4MappedToIPv6)
            {
                continue;
            }

            var endpoint = UdpEndpoint.FromIPAddress(address, port);
            var text = endpoint.ToString();

            Assert.True(UdpEndpoint.TryParse(text, out var parsed), $"seed {seed}: {text}");
            Assert.Equal(endpoint, parsed);
            Assert.Equal(new IPEndPoint(address, port).ToString(), text);
        }
    }

    [Fact]
    public void TryParse_RandomText_NeverThrowsAndAcceptedTextRoundTrips()
    {
        const int seed = 51820;
        const string alphabet = "0123456789abcdefABCDEF.:[]%x -+";
        var random = new Random(seed);
        var chars = new char[48];
        for (var i = 0; i < 20000; i++)
        {
            var length = random.Next(chars.Length);
            for (var j = 0; j < length; j++)
            {
                chars[j] = alphabet[random.Next(alphabet.Length)];
            }

            var text = new string(chars, 0, length);
            if (UdpEndpoint.TryParse(text, out var endpoint))
            {
                Assert.True(UdpEndpoint.TryParse(endpoint.ToString(), out var again), $"seed {seed}: '{text}'");
                Assert.Equal(endpoint, again);
            }
        }
    }
}
