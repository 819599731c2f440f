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
    public const int Size = 64;
    public const int ReceiverOffset = 4;
    public const int NonceOffset = 8;
    public const int NonceLength = 24;
    public const int CookieOffset = 32;
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

    public uint ReceiverIndex => BinaryPrimitives.ReadUInt32LittleEndian(_bytes[ReceiverOffset..]);
    public ReadOnlySpan<byte> Nonce => _bytes.Slice(NonceOffset, NonceLength);
    public ReadOnlySpan<byte> EncryptedCookie => _bytes.Slice(CookieOffset, CookieLength);
}
