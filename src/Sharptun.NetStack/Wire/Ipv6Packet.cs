using System.Buffers.Binary;
using Sharptun.Transport;

namespace Sharptun.NetStack.Wire;

/// <summary>
/// Checked read-only view of an IPv6 packet's fixed header (RFC 8200 §3). <see cref="TryCreate"/> validates the
/// version and Payload Length against the buffer; the view covers exactly 40 + Payload Length bytes.
/// </summary>
/// <remarks>
/// <code>
/// +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
/// |Version| Traffic Class |           Flow Label                  |
/// +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
/// |         Payload Length        |  Next Header  |   Hop Limit   |
/// +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
/// |                    Source Address (128 bits)                  |
/// +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
/// |                 Destination Address (128 bits)                |
/// +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
/// </code>
/// Jumbograms (RFC 2675, Payload Length 0 with a hop-by-hop option) are not supported and are rejected.
/// </remarks>
internal readonly ref struct Ipv6Packet
{
    public const int HeaderLength = 40;
    private const int PayloadLengthOffset = 4;
    private const int NextHeaderOffset = 6;
    private const int HopLimitOffset = 7;
    private const int SourceOffset = 8;
    private const int DestinationOffset = 24;

    private readonly ReadOnlySpan<byte> _buffer;

    private Ipv6Packet(ReadOnlySpan<byte> buffer) => _buffer = buffer;

    public static bool TryCreate(ReadOnlySpan<byte> buffer, out Ipv6Packet packet)
    {
        packet = default;
        if (buffer.Length < HeaderLength || buffer[0] >> 4 != 6)
        {
            return false;
        }

        var total = HeaderLength + BinaryPrimitives.ReadUInt16BigEndian(buffer[PayloadLengthOffset..]);
        if (total > buffer.Length)
        {
            return false;
        }

        packet = new Ipv6Packet(buffer[..total]);
        return true;
    }

    public byte TrafficClass => (byte)(BinaryPrimitives.ReadUInt16BigEndian(_buffer) >> 4);

    public int FlowLabel => (int)(BinaryPrimitives.ReadUInt32BigEndian(_buffer) & 0xFFFFF);

    public int PayloadLength => _buffer.Length - HeaderLength;

    public byte NextHeader => _buffer[NextHeaderOffset];

    public byte HopLimit => _buffer[HopLimitOffset];

    public IpAddr Source => IpAddr.FromV6(
        BinaryPrimitives.ReadUInt64BigEndian(_buffer[SourceOffset..]), BinaryPrimitives.ReadUInt64BigEndian(_buffer[(SourceOffset + 8)..]));

    public IpAddr Destination => IpAddr.FromV6(
        BinaryPrimitives.ReadUInt64BigEndian(_buffer[DestinationOffset..]), BinaryPrimitives.ReadUInt64BigEndian(_buffer[(DestinationOffset + 8)..]));

    public ReadOnlySpan<byte> Payload => _buffer[HeaderLength..];

    public ReadOnlySpan<byte> Bytes => _buffer;
}

/// <summary>High-level IPv6 fixed header.</summary>
internal readonly record struct Ipv6Repr(
    IpAddr Source,
    IpAddr Destination,
    byte NextHeader,
    int PayloadLength,
    byte HopLimit = 64,
    byte TrafficClass = 0,
    int FlowLabel = 0)
{
    public const int HeaderLength = Ipv6Packet.HeaderLength;

    public int Length => HeaderLength + PayloadLength;

    public static Ipv6Repr Parse(in Ipv6Packet packet) => new(
        packet.Source, packet.Destination, packet.NextHeader, packet.PayloadLength, packet.HopLimit, packet.TrafficClass, packet.FlowLabel);

    /// <summary>Writes the 40-byte fixed header to the start of <paramref name="buffer"/>.</summary>
    public void Emit(Span<byte> buffer)
    {
        var header = buffer[..HeaderLength];
        BinaryPrimitives.WriteUInt32BigEndian(header, 0x6000_0000u | ((uint)TrafficClass << 20) | ((uint)FlowLabel & 0xFFFFF));
        BinaryPrimitives.WriteUInt16BigEndian(header[4..], checked((ushort)PayloadLength));
        header[6] = NextHeader;
        header[7] = HopLimit;
        Source.WriteTo(header[8..]);
        Destination.WriteTo(header[24..]);
    }
}

/// <summary>
/// IPv6 Fragment header (RFC 8200 §4.5).
/// <code>
/// +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
/// |  Next Header  |   Reserved    |      Fragment Offset    |Res|M|
/// +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
/// |                         Identification                        |
/// +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
/// </code>
/// </summary>
internal readonly record struct Ipv6FragmentRepr(byte NextHeader, int FragmentOffset, bool MoreFragments, uint Identification)
{
    public const int Length = 8;

    public static bool TryParse(ReadOnlySpan<byte> buffer, out Ipv6FragmentRepr repr)
    {
        repr = default;
        if (buffer.Length < Length)
        {
            return false;
        }

        var offsetFlags = BinaryPrimitives.ReadUInt16BigEndian(buffer[2..]);
        repr = new Ipv6FragmentRepr(buffer[0], offsetFlags & 0xFFF8, (offsetFlags & 1) != 0, BinaryPrimitives.ReadUInt32BigEndian(buffer[4..]));
        return true;
    }

    public void Emit(Span<byte> buffer)
    {
        buffer[0] = NextHeader;
        buffer[1] = 0;
        BinaryPrimitives.WriteUInt16BigEndian(buffer[2..], (ushort)((FragmentOffset & 0xFFF8) | (MoreFragments ? 1 : 0)));
        BinaryPrimitives.WriteUInt32BigEndian(buffer[4..], Identification);
    }
}

/// <summary>Result of walking an IPv6 extension-header chain.</summary>
/// <param name="Protocol">The upper-layer protocol (or <see cref="IpProtocol.NoNextHeader"/>).</param>
/// <param name="Offset">Offset of the upper-layer header within the IPv6 payload.</param>
/// <param name="FragmentHeaderOffset">Offset of the Fragment header within the payload, or -1 when there is none.</param>
/// <param name="NextHeaderField">Offset within the payload of the Next Header byte naming <paramref name="Protocol"/>, or -1 for the fixed header's field.</param>
internal readonly record struct Ipv6UpperLayer(byte Protocol, int Offset, int FragmentHeaderOffset, int NextHeaderField);

/// <summary>Skips IPv6 extension headers (RFC 8200 §4): hop-by-hop, routing, destination options, fragment.</summary>
internal static class Ipv6ExtensionHeaders
{
    /// <summary>Upper bound on headers walked, so a crafted chain cannot make us loop long.</summary>
    public const int MaxHeaders = 16;

    /// <summary>
    /// Walks from <paramref name="nextHeader"/> over <paramref name="payload"/> until an upper-layer protocol.
    /// Stops at a Fragment header with a non-zero offset (the rest belongs to reassembly).
    /// Returns false on a truncated or malformed chain, or hop-by-hop anywhere but first (RFC 8200 §4.3).
    /// </summary>
    public static bool TryWalk(ReadOnlySpan<byte> payload, byte nextHeader, out Ipv6UpperLayer result)
    {
        result = default;
        var offset = 0;
        var fragmentOffset = -1;
        var field = -1;
        for (var count = 0; count < MaxHeaders; count++)
        {
            switch (nextHeader)
            {
                case IpProtocol.HopByHop when count != 0:
                    return false;
                case IpProtocol.HopByHop:
                case IpProtocol.Ipv6Routing:
                case IpProtocol.Ipv6DestinationOptions:
                {
                    // Hdr Ext Len counts 8-octet units, not including the first 8 octets (RFC 8200 §4.3-4.6).
                    if (payload.Length - offset < 8)
                    {
                        return false;
                    }

                    var length = (payload[offset + 1] + 1) * 8;
                    if (payload.Length - offset < length)
                    {
                        return false;
                    }

                    nextHeader = payload[offset];
                    field = offset;
                    offset += length;
                    break;
                }

                case IpProtocol.Ipv6Fragment:
                {
                    if (fragmentOffset >= 0 || !Ipv6FragmentRepr.TryParse(payload[offset..], out var fragment))
                    {
                        return false;
                    }

                    fragmentOffset = offset;
                    field = offset;
                    offset += Ipv6FragmentRepr.Length;
                    nextHeader = fragment.NextHeader;
                    if (fragment.FragmentOffset != 0 || fragment.MoreFragments)
                    {
                        // A real fragment: what follows is fragmentable data, walked after reassembly.
                        result = new Ipv6UpperLayer(nextHeader, offset, fragmentOffset, field);
                        return true;
                    }

                    // An "atomic fragment" (offset 0, M = 0; RFC 6946): process as if unfragmented.
                    break;
                }

                default:
                    result = new Ipv6UpperLayer(nextHeader, offset, fragmentOffset, field);
                    return true;
            }
        }

        return false;
    }
}
