using System.Buffers.Binary;

namespace Sharptun.Protocol;

/// <summary>
/// A checked view of a cookie reply (whitepaper §5.4.7).
/// <code>
/// | 3 |res| receiver (4) | nonce (24) | cookie: XAEAD(16) + tag(16) = 32 |
///  0       4              8            32                                 64
/// </code>
/// </summary>
public readonly ref struct CookieReplyView
{
    /// <summary>The message's fixed length in bytes.</summary>
    public const int Size = 64;

    /// <summary>Offset of the receiver index (little-endian u32).</summary>
    public const int ReceiverOffset = 4;

    /// <summary>Offset of the random XChaCha20-Poly1305 nonce.</summary>
    public const int NonceOffset = 8;

    /// <summary>Length of the nonce.</summary>
    public const int NonceLength = 24;

    /// <summary>Offset of the encrypted cookie.</summary>
    public const int CookieOffset = 32;

    /// <summary>Length of the encrypted cookie: 16 bytes of ciphertext and a 16-byte tag.</summary>
    public const int CookieLength = 16 + 16;

    private readonly ReadOnlySpan<byte> _bytes;

    private CookieReplyView(ReadOnlySpan<byte> bytes) => _bytes = bytes;

    /// <summary>Wraps <paramref name="bytes"/> when it has exactly the cookie reply size and type 3 with zero reserved bytes.</summary>
    public static bool TryCreate(ReadOnlySpan<byte> bytes, out CookieReplyView view)
    {
        view = default;
        if (MessageHeader.TryGetType(bytes, out var type) != ProtocolError.None || type != MessageType.CookieReply)
        {
            return false;
        }

        view = new CookieReplyView(bytes);
        return true;
    }

    /// <summary>The index the recipient chose earlier (its sender index), which identifies the session.</summary>
    public uint ReceiverIndex => BinaryPrimitives.ReadUInt32LittleEndian(_bytes[ReceiverOffset..]);

    /// <summary>The random 24-byte XChaCha20-Poly1305 nonce.</summary>
    public ReadOnlySpan<byte> Nonce => _bytes.Slice(NonceOffset, NonceLength);

    /// <summary>The cookie, encrypted (32 bytes with the tag).</summary>
    public ReadOnlySpan<byte> EncryptedCookie => _bytes.Slice(CookieOffset, CookieLength);
}
