using Sharptun.Device.Routing;
using System.Net;

namespace Sharptun.Device.Tests.Config;

public sealed class IpPrefixTests
{
    [Theory]
    [InlineData("10.0.0.0/24", "10.0.0.0/24")]
    [InlineData("10.0.0.1", "10.0.0.1/32")]
    [InlineData("0.0.0.0/0", "0.0.0.0/0")]
    [InlineData("fd00::/64", "fd00::/64")]
    [InlineData("FD00:0:0::1", "fd00::1/128")]
    [InlineData("::/0", "::/0")]
    [InlineData("10.0.0.0/024", "10.0.0.0/24")] // wg's strtoul accepts leading zeros
    [InlineData("::ffff:1.2.3.4/128", "::ffff:1.2.3.4/128")]
    public void TryParse_Valid_CanonicalToString(string text, string expected)
    {
        Assert.True(IpPrefix.TryParse(text, out var prefix));
        Assert.Equal(expected, prefix.ToString());
    }

    [Theory]
    [InlineData("")]
    [InlineData("10.0.0.0/33")]
    [InlineData("fd00::/129")]
    [InlineData("10.0.0.0/")]
    [InlineData("10.0.0.0/-1")]
    [InlineData("10.0.0.0/+8")]
    [InlineData("1")] // IPAddress.Parse would accept this
    [InlineData("10.1")]
    [InlineData("0x7f.0.0.1")]
    [InlineData("010.0.0.1")]
    [InlineData("256.0.0.1")]
    [InlineData("1.2.3.4.5")]
    [InlineData("[fd00::1]")]
    [InlineData("fe80::1%eth0")]
    [InlineData("10.0.0.0 /24")]
    [InlineData("hostname/24")]
    public void TryParse_Invalid_IsRejected(string text) => Assert.False(IpPrefix.TryParse(text, out _));

    [Theory]
    [InlineData("10.0.0.1")]
    [InlineData("10.0.0.0/08")]
    public void TryParseStrict_BareOrLeadingZero_IsRejected(string text) => Assert.False(IpPrefix.TryParseStrict(text, out _));

    [Theory]
    [InlineData("10.0.0.1/24", "10.0.0.0/24")]
    [InlineData("10.255.255.255/9", "10.128.0.0/9")]
    [InlineData("1.2.3.4/0", "0.0.0.0/0")]
    [InlineData("1.2.3.4/32", "1.2.3.4/32")]
    [InlineData("fd00::1:2:3/64", "fd00::/64")]
    [InlineData("ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff/127", "ffff:ffff:ffff:ffff:ffff:ffff:ffff:fffe/127")]
    public void Masked_ClearsHostBits(string text, string expected)
    {
        Assert.True(IpPrefix.TryParse(text, out var prefix));
        Assert.Equal(expected, prefix.Masked().ToString());
    }

    [Fact]
    public void Contains_ChecksOnlyPrefixBits()
    {
        Assert.True(IpPrefix.TryParse("10.0.0.0/23", out var prefix));
        Assert.True(prefix.Contains(IPAddress.Parse("10.0.1.255").GetAddressBytes()));
        Assert.False(prefix.Contains(IPAddress.Parse("10.0.2.0").GetAddressBytes()));
        Assert.False(prefix.Contains(IPAddress.Parse("::").GetAddressBytes()));
    }

    [Fact]
    public void MaskedAndContains_OnIpAddr_MatchByteWiseReference()
    {
        // The bit arithmetic on IpAddr's halves against the byte-by-byte mask it replaced, every length
        // (including out-of-range ones, which clamp) and both families.
        var rng = new Random(8);
        Span<byte> probe = stackalloc byte[16];
        for (var i = 0; i < 2000; i++)
        {
            var bytes = new byte[i % 2 == 0 ? 4 : 16];
            rng.NextBytes(bytes);
            var length = rng.Next(-2, (bytes.Length * 8) + 3);
            var prefix = new IpPrefix(new IPAddress(bytes), length);
            Assert.Equal(new IpPrefix(Sharptun.Transport.IpAddr.FromIPAddress(new IPAddress(bytes)), length), prefix);

            var expected = (byte[])bytes.Clone();
            for (var b = 0; b < expected.Length; b++)
            {
                expected[b] &= (byte)(0xFF00 >> Math.Clamp(length - (b * 8), 0, 8));
            }

            Assert.Equal(expected, prefix.Masked().Address.ToIPAddress().GetAddressBytes());

            var other = probe[..bytes.Length];
            rng.NextBytes(other);
            if (rng.Next(2) == 0)
            {
                expected.AsSpan(0, Math.Clamp(length, 0, bytes.Length * 8) / 8).CopyTo(other);
            }

            var inside = true;
            for (var b = 0; b < bytes.Length; b++)
            {
                var mask = (byte)(0xFF00 >> Math.Clamp(length - (b * 8), 0, 8));
                inside &= ((bytes[b] ^ other[b]) & mask) == 0;
            }

            Assert.Equal(inside, prefix.Contains(other));
            Assert.False(prefix.Contains(new byte[bytes.Length == 4 ? 16 : 4])); // the other family never matches
        }
    }
}
