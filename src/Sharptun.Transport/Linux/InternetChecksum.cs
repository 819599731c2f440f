using System.Buffers.Binary;

namespace Sharptun.Transport.Linux;

/// <summary>
/// The Internet checksum (RFC 1071): the 16-bit ones' complement of the ones' complement sum of the data taken as
/// big-endian 16-bit words, an odd last byte padded with a zero byte. Sums are kept unfolded in a 64-bit accumulator
/// (adding 32-bit words is the same sum modulo 0xFFFF) and folded once at the end.
/// </summary>
internal static class InternetChecksum
{
    /// <summary>Adds <paramref name="data"/> (starting at a word boundary of the checksummed region) to <paramref name="sum"/>.</summary>
    public static ulong Add(ReadOnlySpan<byte> data, ulong sum)
    {
        var i = 0;
        var n = data.Length;
        while (n - i >= 16)
        {
            var a = BinaryPrimitives.ReadUInt64BigEndian(data[i..]);
            var b = BinaryPrimitives.ReadUInt64BigEndian(data[(i + 8)..]);
            sum += (a >> 32) + (uint)a + (b >> 32) + (uint)b;
            i += 16;
        }

        while (n - i >= 4)
        {
            sum += BinaryPrimitives.ReadUInt32BigEndian(data[i..]);
            i += 4;
        }

        if (n - i >= 2)
        {
            sum += BinaryPrimitives.ReadUInt16BigEndian(data[i..]);
            i += 2;
        }

        if (i < n)
        {
            sum += (ulong)data[i] << 8;
        }

        return sum;
    }

    /// <summary>Folds an unfolded sum to 16 bits (not complemented).</summary>
    public static ushort Fold(ulong sum)
    {
        while (sum >> 16 != 0)
        {
            sum = (sum & 0xFFFF) + (sum >> 16);
        }

        return (ushort)sum;
    }

    /// <summary>
    /// The pseudo-header sum of a TCP or UDP packet in <paramref name="ipPacket"/>: for IPv4 (RFC 9293 section 3.1,
    /// RFC 768) source, destination, zero, protocol and the transport length; for IPv6 (RFC 8200 section 8.1) source,
    /// destination, the 32-bit upper-layer length and the next header.
    /// </summary>
    public static ulong PseudoHeader(ReadOnlySpan<byte> ipPacket, bool ipv6, byte protocol, int transportLength) =>
        ipv6
            ? Add(ipPacket.Slice(8, 32), (ulong)protocol + (uint)transportLength)
            : Add(ipPacket.Slice(12, 8), (ulong)protocol + (uint)transportLength);
}
