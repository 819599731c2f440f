using System.Buffers.Binary;

namespace Sharptun.Protocol;

/// <summary>A cookie reply as plain values (whitepaper §5.4.7).</summary>
public readonly record struct CookieReply(uint ReceiverIndex, Bytes24 Nonce, Bytes32 EncryptedCookie)
{
    /// <summary>Length in bytes of the encoded message.</summary>
    public const int Length = CookieReplyView.Size;

    /// <summary>Parses <paramref name="bytes"/> (checked like the view's <c>TryCreate</c>); false when it is not this message.</summary>
    public static bool TryParse(ReadOnlySpan<byte> bytes, out CookieReply message)
    {
        message = default;
        if (!CookieReplyView.TryCreate(bytes, out var v))
        {
            return false;
        }

        message = new CookieReply(v.ReceiverIndex, new(v.Nonce), new(v.EncryptedCookie));
        return true;
    }

    /// <summary>Writes the encoded message to <paramref name="destination"/>, which must hold <see cref="Length"/> bytes.</summary>
    public void Emit(Span<byte> destination)
    {
        MessageHeader.Write(destination, MessageType.CookieReply);
        BinaryPrimitives.WriteUInt32LittleEndian(destination[CookieReplyView.ReceiverOffset..], ReceiverIndex);
        Nonce.CopyTo(destination[CookieReplyView.NonceOffset..]);
        EncryptedCookie.CopyTo(destination[CookieReplyView.CookieOffset..]);
    }
}
