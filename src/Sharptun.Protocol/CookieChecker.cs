using System.Security.Cryptography;
using Sharptun.Crypto;

namespace Sharptun.Protocol;

/// <summary>
/// Responder side of the cookie mechanism (whitepaper §5.4.4, §5.4.7): checks mac1 against our public key, checks mac2
/// against a cookie bound to the sender's address, and writes cookie replies. The secret Rm rotates every
/// <see cref="ProtocolConstants.CookieRefreshTime"/>. Thread-safe (one small lock).
/// </summary>
internal sealed class CookieChecker
{
    private readonly Lock _lock = new();
    private readonly byte[] _mac1Key = new byte[32];
    private readonly byte[] _cookieKey = new byte[32];
    private readonly byte[] _secret = new byte[32];
    private TimeSpan _secretSet = TimeSpan.MinValue;

    public void Init(ReadOnlySpan<byte> localPublicKey)
    {
        lock (_lock)
        {
            Noise.LabelKey(ProtocolConstants.LabelMac1, localPublicKey, _mac1Key);
            Noise.LabelKey(ProtocolConstants.LabelCookie, localPublicKey, _cookieKey);
            _secretSet = TimeSpan.MinValue;
        }
    }

    /// <summary>mac1 = MAC(HASH(LABEL-MAC1 || Spub_m), msg_α) (whitepaper §5.4.4).</summary>
    public bool CheckMac1(ReadOnlySpan<byte> mac1Input, ReadOnlySpan<byte> mac1)
    {
        Span<byte> expected = stackalloc byte[Noise.MacSize];
        lock (_lock)
        {
            Noise.Mac(_mac1Key, mac1Input, expected);
        }

        return CryptographicOperations.FixedTimeEquals(expected, mac1);
    }

    /// <summary>mac2 = MAC(τ, msg_β) with τ = MAC(Rm, source) (whitepaper §5.4.4). False when Rm is stale.</summary>
    public bool CheckMac2(ReadOnlySpan<byte> mac2Input, ReadOnlySpan<byte> mac2, ReadOnlySpan<byte> source, TimeSpan now)
    {
        Span<byte> cookie = stackalloc byte[Noise.MacSize];
        Span<byte> expected = stackalloc byte[Noise.MacSize];
        lock (_lock)
        {
            if (_secretSet == TimeSpan.MinValue || now - _secretSet > ProtocolConstants.CookieRefreshTime)
            {
                return false;
            }

            Noise.Mac(_secret, source, cookie);
        }

        Noise.Mac(cookie, mac2Input, expected);
        return CryptographicOperations.FixedTimeEquals(expected, mac2);
    }

    /// <summary>
    /// Writes a cookie reply to <paramref name="destination"/> (64 bytes) for a message whose sender index is
    /// <paramref name="receiverIndex"/> and whose mac1 is <paramref name="mac1"/> (whitepaper §5.4.7).
    /// </summary>
    public void CreateReply(uint receiverIndex, ReadOnlySpan<byte> mac1, ReadOnlySpan<byte> source, TimeSpan now, Span<byte> destination)
    {
        Span<byte> aad = stackalloc byte[Noise.MacSize];
        mac1.CopyTo(aad); // destination may alias the message mac1 came from
        Span<byte> cookie = stackalloc byte[Noise.MacSize];
        lock (_lock)
        {
            if (_secretSet == TimeSpan.MinValue || now - _secretSet > ProtocolConstants.CookieRefreshTime)
            {
                RandomNumberGenerator.Fill(_secret);
                _secretSet = now;
            }

            Noise.Mac(_secret, source, cookie);
        }

        MessageHeader.Write(destination, MessageType.CookieReply);
        System.Buffers.Binary.BinaryPrimitives.WriteUInt32LittleEndian(destination[CookieReplyView.ReceiverOffset..], receiverIndex);
        var nonce = destination.Slice(CookieReplyView.NonceOffset, CookieReplyView.NonceLength);
        RandomNumberGenerator.Fill(nonce);
        var sealedCookie = destination.Slice(CookieReplyView.CookieOffset, CookieReplyView.CookieLength);
        XChaChaPoly.Encrypt(_cookieKey, nonce, cookie, sealedCookie[..Noise.MacSize], sealedCookie[Noise.MacSize..], aad);
    }
}
