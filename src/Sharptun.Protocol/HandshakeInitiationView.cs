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
    /// <summary>The message's fixed length in bytes.</summary>
    public const int Size = 148;

    /// <summary>Offset of the sender index (little-endian u32).</summary>
    public const int SenderOffset = 4;

    /// <summary>Offset of the sender's unencrypted ephemeral public key (32 bytes).</summary>
    public const int EphemeralOffset = 8;

    /// <summary>Offset of the initiator's encrypted static public key.</summary>
    public const int StaticOffset = 40;

    /// <summary>Length of the encrypted static public key: 32 bytes of ciphertext and a 16-byte tag.</summary>
    public const int StaticLength = 32 + 16;

    /// <summary>Offset of the encrypted TAI64N timestamp.</summary>
    public const int TimestampOffset = 88;

    /// <summary>Length of the encrypted timestamp: 12 bytes of ciphertext and a 16-byte tag.</summary>
    public const int TimestampLength = 12 + 16;

    /// <summary>Offset of mac1 (16 bytes).</summary>
    public const int Mac1Offset = 116;

    /// <summary>Offset of mac2 (16 bytes; all zero when the sender has no cookie).</summary>
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

    /// <summary>The index the sender chose for this session; replies address it as their receiver index.</summary>
    public uint SenderIndex => BinaryPrimitives.ReadUInt32LittleEndian(_bytes[SenderOffset..]);

    /// <summary>The sender's unencrypted ephemeral public key (32 bytes).</summary>
    public ReadOnlySpan<byte> Ephemeral => _bytes.Slice(EphemeralOffset, 32);

    /// <summary>The initiator's static public key, encrypted (48 bytes with the tag).</summary>
    public ReadOnlySpan<byte> EncryptedStatic => _bytes.Slice(StaticOffset, StaticLength);

    /// <summary>The TAI64N timestamp, encrypted (28 bytes with the tag).</summary>
    public ReadOnlySpan<byte> EncryptedTimestamp => _bytes.Slice(TimestampOffset, TimestampLength);

    /// <summary>mac1 (16 bytes): keyed with the hash of the recipient's public key, over the bytes before it.</summary>
    public ReadOnlySpan<byte> Mac1 => _bytes.Slice(Mac1Offset, 16);

    /// <summary>mac2 (16 bytes): keyed with the cookie, over the bytes before it; all zero without a cookie.</summary>
    public ReadOnlySpan<byte> Mac2 => _bytes.Slice(Mac2Offset, 16);

    /// <summary>The bytes covered by mac1 (everything before it).</summary>
    public ReadOnlySpan<byte> Mac1Input => _bytes[..Mac1Offset];

    /// <summary>The bytes covered by mac2 (everything before it).</summary>
    public ReadOnlySpan<byte> Mac2Input => _bytes[..Mac2Offset];
}
