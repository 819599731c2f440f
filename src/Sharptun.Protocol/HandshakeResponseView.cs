using System.Buffers.Binary;

namespace Sharptun.Protocol;

/// <summary>
/// A checked view of a handshake response (whitepaper §5.4.3).
/// <code>
/// | 2 |res| sender (4) | receiver (4) | ephemeral (32) | empty: AEAD(0)+tag (16) | mac1 (16) | mac2 (16) |
///  0       4            8              12               44                        60          76         92
/// </code>
/// </summary>
public readonly ref struct HandshakeResponseView
{
    /// <summary>The message's fixed length in bytes.</summary>
    public const int Size = 92;

    /// <summary>Offset of the sender index (little-endian u32).</summary>
    public const int SenderOffset = 4;

    /// <summary>Offset of the receiver index (little-endian u32).</summary>
    public const int ReceiverOffset = 8;

    /// <summary>Offset of the sender's unencrypted ephemeral public key (32 bytes).</summary>
    public const int EphemeralOffset = 12;

    /// <summary>Offset of the encrypted empty payload (its 16-byte tag only).</summary>
    public const int EmptyOffset = 44;

    /// <summary>Length of the encrypted empty payload: the 16-byte tag alone.</summary>
    public const int EmptyLength = 16;

    /// <summary>Offset of mac1 (16 bytes).</summary>
    public const int Mac1Offset = 60;

    /// <summary>Offset of mac2 (16 bytes; all zero when the sender has no cookie).</summary>
    public const int Mac2Offset = 76;

    private readonly ReadOnlySpan<byte> _bytes;

    private HandshakeResponseView(ReadOnlySpan<byte> bytes) => _bytes = bytes;

    /// <summary>Wraps <paramref name="bytes"/> when it has exactly the response size and type 2 with zero reserved bytes.</summary>
    public static bool TryCreate(ReadOnlySpan<byte> bytes, out HandshakeResponseView view)
    {
        view = default;
        if (MessageHeader.TryGetType(bytes, out var type) != ProtocolError.None || type != MessageType.HandshakeResponse)
        {
            return false;
        }

        view = new HandshakeResponseView(bytes);
        return true;
    }

    /// <summary>The index the sender chose for this session; replies address it as their receiver index.</summary>
    public uint SenderIndex => BinaryPrimitives.ReadUInt32LittleEndian(_bytes[SenderOffset..]);

    /// <summary>The index the recipient chose earlier (its sender index), which identifies the session.</summary>
    public uint ReceiverIndex => BinaryPrimitives.ReadUInt32LittleEndian(_bytes[ReceiverOffset..]);

    /// <summary>The sender's unencrypted ephemeral public key (32 bytes).</summary>
    public ReadOnlySpan<byte> Ephemeral => _bytes.Slice(EphemeralOffset, 32);

    /// <summary>The encrypted empty payload (its 16-byte tag), which proves the responder derived the keys.</summary>
    public ReadOnlySpan<byte> EncryptedEmpty => _bytes.Slice(EmptyOffset, EmptyLength);

    /// <summary>mac1 (16 bytes): keyed with the hash of the recipient's public key, over the bytes before it.</summary>
    public ReadOnlySpan<byte> Mac1 => _bytes.Slice(Mac1Offset, 16);

    /// <summary>mac2 (16 bytes): keyed with the cookie, over the bytes before it; all zero without a cookie.</summary>
    public ReadOnlySpan<byte> Mac2 => _bytes.Slice(Mac2Offset, 16);

    /// <summary>The bytes covered by mac1 (everything before it).</summary>
    public ReadOnlySpan<byte> Mac1Input => _bytes[..Mac1Offset];

    /// <summary>The bytes covered by mac2 (everything before it).</summary>
    public ReadOnlySpan<byte> Mac2Input => _bytes[..Mac2Offset];
}
