using System.Security.Cryptography;
using Sharptun.Crypto;

namespace Sharptun.Protocol;

/// <summary>
/// Initiator side of the cookie mechanism (whitepaper §5.4.4, §5.4.7): computes mac1/mac2 for our handshake messages to
/// one peer and accepts that peer's cookie replies. Guarded by the owning <see cref="Peer"/>'s lock.
/// </summary>
internal sealed class CookieGenerator
{
    private readonly byte[] _mac1Key = new byte[32];
    private readonly byte[] _cookieKey = new byte[32];
    private readonly byte[] _cookie = new byte[Noise.MacSize];
    private readonly byte[] _lastMac1 = new byte[Noise.MacSize];
    private TimeSpan _cookieSet = TimeSpan.MinValue;
    private bool _hasLastMac1;

    public void Init(ReadOnlySpan<byte> remotePublicKey)
    {
        Noise.LabelKey(ProtocolConstants.LabelMac1, remotePublicKey, _mac1Key);
        Noise.LabelKey(ProtocolConstants.LabelCookie, remotePublicKey, _cookieKey);
        _cookieSet = TimeSpan.MinValue;
        _hasLastMac1 = false;
    }

    public bool HasValidCookie(TimeSpan now) => _cookieSet != TimeSpan.MinValue && now - _cookieSet <= ProtocolConstants.CookieRefreshTime;

    /// <summary>Fills mac1 and mac2 of a handshake message whose mac1 starts at <paramref name="mac1Offset"/>.</summary>
    public void AddMacs(Span<byte> message, int mac1Offset, TimeSpan now)
    {
        var mac1 = message.Slice(mac1Offset, Noise.MacSize);
        var mac2 = message.Slice(mac1Offset + Noise.MacSize, Noise.MacSize);
        Noise.Mac(_mac1Key, message[..mac1Offset], mac1);
        mac1.CopyTo(_lastMac1);
        _hasLastMac1 = true;

        if (HasValidCookie(now))
        {
            Noise.Mac(_cookie, message[..(mac1Offset + Noise.MacSize)], mac2);
        }
        else
        {
            mac2.Clear();
        }
    }

    /// <summary>Decrypts a cookie reply to the last message we sent; stores the cookie when it authenticates.</summary>
    public bool ConsumeReply(CookieReplyView reply, TimeSpan now)
    {
        if (!_hasLastMac1)
        {
            return false;
        }

        Span<byte> cookie = stackalloc byte[Noise.MacSize];
        var sealedCookie = reply.EncryptedCookie;
        if (!XChaChaPoly.Decrypt(_cookieKey, reply.Nonce, sealedCookie[..Noise.MacSize], sealedCookie[Noise.MacSize..], cookie, _lastMac1))
        {
            return false;
        }

        cookie.CopyTo(_cookie);
        _cookieSet = now;
        _hasLastMac1 = false;
        return true;
    }

    public void Clear()
    {
        CryptographicOperations.ZeroMemory(_cookie);
        _cookieSet = TimeSpan.MinValue;
        _hasLastMac1 = false;
    }
}
