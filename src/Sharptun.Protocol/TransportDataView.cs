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
    /// <summary>Length of the header before the encrypted packet: type, reserved bytes, receiver index and counter.</summary>
    public const int HeaderSize = 16;

    /// <summary>Length of the Poly1305 tag after the encrypted packet.</summary>
    public const int TagSize = 16;

    /// <summary>The shortest valid message: a header and a tag around an empty (keepalive) packet.</summary>
    public const int MinSize = HeaderSize + TagSize;

    /// <summary>Offset of the receiver index (little-endian u32).</summary>
    public const int ReceiverOffset = 4;

    /// <summary>Offset of the nonce counter (little-endian u64).</summary>
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

    /// <summary>The index the recipient chose earlier (its sender index), which identifies the session.</summary>
    public uint ReceiverIndex => BinaryPrimitives.ReadUInt32LittleEndian(_bytes[ReceiverOffset..]);

    /// <summary>The nonce counter used to encrypt this packet (the replay window checks it).</summary>
    public ulong Counter => BinaryPrimitives.ReadUInt64LittleEndian(_bytes[CounterOffset..]);

    /// <summary>The encrypted inner packet, padded to a multiple of 16 bytes (empty for a keepalive).</summary>
    public ReadOnlySpan<byte> EncryptedPacket => _bytes[HeaderSize..^TagSize];

    /// <summary>The Poly1305 tag (16 bytes) of the encrypted packet.</summary>
    public ReadOnlySpan<byte> Tag => _bytes[^TagSize..];
}
