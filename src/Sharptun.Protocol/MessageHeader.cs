using System.Buffers.Binary;

namespace Sharptun.Protocol;

// WireGuard message formats (whitepaper §5.4.2–§5.4.7). All integers are little-endian.
// Every message starts with a 4-byte header: the type in the first byte, then three reserved bytes that must be zero.
//
//  0      1      2      3      4
// +------+------+------+------+
// | type |   reserved (zero)  |
// +------+------+------+------+

/// <summary>Message classification shared by every message type.</summary>
public static class MessageHeader
{
    /// <summary>Length of the type + reserved header.</summary>
    public const int Length = 4;

    /// <summary>
    /// Reads the type of an untrusted datagram and checks its length against that type: handshake messages must have
    /// their exact size, transport data at least the header and tag. Never throws.
    /// </summary>
    public static ProtocolError TryGetType(ReadOnlySpan<byte> datagram, out MessageType type)
    {
        type = MessageType.None;
        if (datagram.Length < Length)
        {
            return ProtocolError.Truncated;
        }

        if (datagram[1] != 0 || datagram[2] != 0 || datagram[3] != 0)
        {
            return ProtocolError.ReservedBytesNonZero;
        }

        int expected;
        switch ((MessageType)datagram[0])
        {
            case MessageType.HandshakeInitiation:
                expected = HandshakeInitiationView.Size;
                break;
            case MessageType.HandshakeResponse:
                expected = HandshakeResponseView.Size;
                break;
            case MessageType.CookieReply:
                expected = CookieReplyView.Size;
                break;
            case MessageType.TransportData:
                if (datagram.Length < TransportDataView.MinSize)
                {
                    return ProtocolError.Truncated;
                }

                if (datagram.Length > ProtocolLimits.MaxDatagramLength)
                {
                    return ProtocolError.Oversized;
                }

                type = MessageType.TransportData;
                return ProtocolError.None;
            default:
                return ProtocolError.UnknownMessageType;
        }

        if (datagram.Length < expected)
        {
            return ProtocolError.Truncated;
        }

        if (datagram.Length > expected)
        {
            return ProtocolError.Oversized;
        }

        type = (MessageType)datagram[0];
        return ProtocolError.None;
    }

    internal static void Write(Span<byte> destination, MessageType type)
    {
        BinaryPrimitives.WriteUInt32LittleEndian(destination, (uint)type);
    }
}
