using System.Buffers.Binary;

namespace Sharptun.Protocol;

/// <summary>
/// A checked view of a handshake initiation (whitepaper §5.4.2).
/// <code>
///  0                   1                   2                   3
/// +-------+-----------+---------------+
/// | 1 |res|  sender (4)  |  ephemeral (32)          ...   offset 8
/// | static: AEAD(32) + tag(16) = 48                ...   offset 40
/// | timestamp: AEAD(TAI64N 12) + tag(16) = 28      ...   offset 88
/// | mac1 (16)                                      ...   offset 116
/// | mac2 (16)                                      ...   offset 132, end 148
/// </code>
/// </summary>
public readonly ref struct HandshakeInitiationView
{
    public const int Size = 148;
    public const int SenderOffset = 4;
    public const int EphemeralOffset = 8;
    public const int StaticOffset = 40;
    public const int StaticLength = 32 + 16;
    public const int TimestampOffset = 88;
    public const int TimestampLength = 12 + 16;
    public const int Mac1Offset = 116;
    public const int Mac2Offset = 132;

    private readonly ReadOnlySpan<byte> _bytes;

    private HandshakeInitiationView(ReadOnlySpan<byte> bytes) => _bytes = bytes;

    /// <summary>Wraps <paramref name="bytes"/> when it has exactly the initiation size and type 1 with zero reserved bytes.</summary>
    public static bool TryCreate(ReadOnlySpan<byte> bytes, out HandshakeInitiationView view)
    {
        view = default;
        if (MessageHeader.TryGetType(bytes, out var type) != ProtocolError.None || type != MessageType.HandshakeInitiation)
        {
            return false;
        }

        view = new HandshakeInitiationView(bytes);
        return true;
    }

    public uint SenderIndex => BinaryPrimitives.ReadUInt32LittleEndian(_bytes[SenderOffset..]);
    public ReadOnlySpan<byte> Ephemeral => _bytes.Slice(EphemeralOffset, 32);
    public ReadOnlySpan<byte> EncryptedStatic => _bytes.Slice(StaticOffset, StaticLength);
    public ReadOnlySpan<byte> EncryptedTimestamp => _bytes.Slice(TimestampOffset, TimestampLength);
    public ReadOnlySpan<byte> Mac1 => _bytes.Slice(Mac1Offset, 16);
    public ReadOnlySpan<byte> Mac2 => _bytes.Slice(Mac2Offset, 16);

    /// <summary>The bytes covered by mac1 (everything before it).</summary>
    public ReadOnlySpan<byte> Mac1Input => _bytes[..Mac1Offset];

    /// <summary>The bytes covered by mac2 (everything before it).</summary>
    public ReadOnlySpan<byte> Mac2Input => _bytes[..Mac2Offset];
}
