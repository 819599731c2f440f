using System.Buffers.Binary;

namespace Sharptun.Protocol;

/// <summary>
/// A checked view of a transport data message (whitepaper §5.4.6).
/// <code>
/// | 4 |res| receiver (4) | counter (8) | encrypted packet (16·n) | tag (16) |
///  0       4              8             16
/// </code>
/// </summary>
public readonly ref struct TransportDataView
{
    public const int HeaderSize = 16;
    public const int TagSize = 16;
    public const int MinSize = HeaderSize + TagSize;
    public const int ReceiverOffset = 4;
    public const int CounterOffset = 8;

    private readonly ReadOnlySpan<byte> _bytes;

    private TransportDataView(ReadOnlySpan<byte> bytes) => _bytes = bytes;

    /// <summary>Wraps <paramref name="bytes"/> when it is at least 32 bytes of type 4 with zero reserved bytes.</summary>
    public static bool TryCreate(ReadOnlySpan<byte> bytes, out TransportDataView view)
    {
        view = default;
        if (MessageHeader.TryGetType(bytes, out var type) != ProtocolError.None || type != MessageType.TransportData)
        {
            return false;
        }

        view = new TransportDataView(bytes);
        return true;
    }

    public uint ReceiverIndex => BinaryPrimitives.ReadUInt32LittleEndian(_bytes[ReceiverOffset..]);
    public ulong Counter => BinaryPrimitives.ReadUInt64LittleEndian(_bytes[CounterOffset..]);
    public ReadOnlySpan<byte> EncryptedPacket => _bytes[HeaderSize..^TagSize];
    public ReadOnlySpan<byte> Tag => _bytes[^TagSize..];
}
