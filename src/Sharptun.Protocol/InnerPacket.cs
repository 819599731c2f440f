using System.Buffers.Binary;

namespace Sharptun.Protocol;

/// <summary>Minimal checks of a decrypted inner IP packet (whitepaper §5.4.6: the length field strips the padding).</summary>
public static class InnerPacket
{
    /// <summary>
    /// Returns the IP packet's real length (from its header, so padding is dropped), or false when the bytes are not a
    /// plausible IPv4/IPv6 packet (bad version, header longer than the data, length field past the data).
    /// </summary>
    public static bool TryGetLength(ReadOnlySpan<byte> packet, out int length)
    {
        length = 0;
        if (packet.IsEmpty)
        {
            return false;
        }

        switch (packet[0] >> 4)
        {
            case 4:
                if (packet.Length < 20)
                {
                    return false;
                }

                length = BinaryPrimitives.ReadUInt16BigEndian(packet[2..]);
                if (length < 20 || length > packet.Length || (packet[0] & 0x0F) * 4 > length || (packet[0] & 0x0F) < 5)
                {
                    return false;
                }

                return true;
            case 6:
                if (packet.Length < 40)
                {
                    return false;
                }

                length = 40 + BinaryPrimitives.ReadUInt16BigEndian(packet[4..]);
                return length <= packet.Length;
            default:
                return false;
        }
    }

    /// <summary>
    /// The destination address bytes of an outbound IPv4 (4 bytes) or IPv6 (16 bytes) packet, for routing. False when
    /// the version is neither 4 nor 6 or the packet is shorter than that version's fixed header; nothing else in the
    /// header is checked (wireguard-go routes on the same two fields).
    /// </summary>
    public static bool TryGetDestinationAddress(ReadOnlySpan<byte> packet, out ReadOnlySpan<byte> address)
    {
        address = default;
        if (packet.IsEmpty)
        {
            return false;
        }

        switch (packet[0] >> 4)
        {
            case 4 when packet.Length >= 20:
                address = packet.Slice(16, 4);
                return true;
            case 6 when packet.Length >= 40:
                address = packet.Slice(24, 16);
                return true;
            default:
                return false;
        }
    }

    /// <summary>The source address bytes of an IPv4 (4 bytes) or IPv6 (16 bytes) packet that passed <see cref="TryGetLength"/>.</summary>
    public static ReadOnlySpan<byte> SourceAddress(ReadOnlySpan<byte> packet) =>
        (packet[0] >> 4) == 4 ? packet.Slice(12, 4) : packet.Slice(8, 16);
}
