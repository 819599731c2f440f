using System.Buffers.Binary;
using Sharptun.Crypto;

namespace Sharptun.Protocol;

// Noise_IKpsk2 handshake (whitepaper §5.4.2–§5.4.5), per peer. All methods here run under _lock.
//
//            Zeroed ──CreateInitiation──▶ InitiationCreated ──ConsumeResponse──▶ ResponseConsumed ─┐
//              ▲  └──ConsumeInitiation──▶ InitiationConsumed ──CreateResponse──▶ ResponseCreated ──┤
//              └──────────────────────────── BeginSymmetricSession (keys derived) ◀───────────────┘
public sealed partial class Peer
{
    private readonly byte[] _hash = new byte[Noise.HashSize];
    private readonly byte[] _chainKey = new byte[Noise.HashSize];
    private readonly byte[] _localEphemeral = new byte[32];
    private readonly byte[] _remoteEphemeral = new byte[32];
    private readonly byte[] _lastTimestamp = new byte[Tai64n.Size];
    private HandshakeState _state;
    private uint _localIndex;
    private uint _remoteIndex;
    private ProtocolDevice.IndexEntry? _handshakeEntry;
    private TimeSpan _lastInitiationConsumption = TimeSpan.MinValue;

    private enum HandshakeState : byte
    {
        Zeroed,
        InitiationCreated,
        InitiationConsumed,
        ResponseCreated,
        ResponseConsumed,
    }

    /// <summary>Builds a handshake initiation into <paramref name="destination"/> (148 bytes) (whitepaper §5.4.2).</summary>
    private ProtocolError CreateInitiation(TimeSpan now, Span<byte> destination)
    {
        if (_removed)
        {
            return ProtocolError.UnknownPeer; // a removed peer never takes an index again
        }

        if (!_device.Keys.HasPrivateKey)
        {
            return ProtocolError.NoPrivateKey;
        }

        if (!_staticStaticValid)
        {
            return ProtocolError.InvalidPeerKey;
        }

        if (destination.Length < HandshakeInitiationView.Size)
        {
            return ProtocolError.BufferTooSmall;
        }

        var keys = _device.Keys;
        var message = destination[..HandshakeInitiationView.Size];
        Span<byte> key = stackalloc byte[32];
        Span<byte> sharedSecret = stackalloc byte[32];
        Span<byte> timestamp = stackalloc byte[Tai64n.Size];
        try
        {
            ClearHandshake();
            Noise.InitialHash.CopyTo(_hash);
            Noise.InitialChainKey.CopyTo(_chainKey);
            Noise.MixHash(_hash, PublicKey.AsSpan());

            // e
            X25519.GeneratePrivateKey(_localEphemeral);
            var ephemeral = message.Slice(HandshakeInitiationView.EphemeralOffset, 32);
            X25519.PublicKey(_localEphemeral, ephemeral);
            Noise.MixKey(_chainKey, ephemeral);
            Noise.MixHash(_hash, ephemeral);

            // es
            if (!X25519.TrySharedSecret(_localEphemeral, PublicKey.AsSpan(), sharedSecret))
            {
                ClearHandshake();
                return ProtocolError.InvalidPeerKey;
            }

            Noise.MixKeyAndGetKey(_chainKey, sharedSecret, key);

            // s
            var encryptedStatic = message.Slice(HandshakeInitiationView.StaticOffset, HandshakeInitiationView.StaticLength);
            Noise.Seal(key, keys.Public, _hash, encryptedStatic);
            Noise.MixHash(_hash, encryptedStatic);

            // ss
            Noise.MixKeyAndGetKey(_chainKey, _staticStatic, key);

            // {t}
            WriteTimestamp(timestamp);
            var encryptedTimestamp = message.Slice(HandshakeInitiationView.TimestampOffset, HandshakeInitiationView.TimestampLength);
            Noise.Seal(key, timestamp, _hash, encryptedTimestamp);
            Noise.MixHash(_hash, encryptedTimestamp);

            _handshakeEntry = new ProtocolDevice.IndexEntry(this);
            _localIndex = _device.AllocateIndex(_handshakeEntry);
            MessageHeader.Write(message, MessageType.HandshakeInitiation);
            BinaryPrimitives.WriteUInt32LittleEndian(message[HandshakeInitiationView.SenderOffset..], _localIndex);
            _state = HandshakeState.InitiationCreated;
            _cookies.AddMacs(message, HandshakeInitiationView.Mac1Offset, now);
            return ProtocolError.None;
        }
        finally
        {
            Wipe(key);
            Wipe(sharedSecret);
        }
    }

    /// <summary>
    /// Responder: finishes consuming an initiation whose static key named this peer (the device did the first half),
    /// writes the response to <paramref name="destination"/> and derives the next keypair.
    /// </summary>
    internal ProtocolResult ConsumeInitiation(TimeSpan now, HandshakeInitiationView msg, Span<byte> hash, Span<byte> chainKey, Span<byte> destination)
    {
        Span<byte> key = stackalloc byte[32];
        Span<byte> timestamp = stackalloc byte[Tai64n.Size];
        lock (_lock)
        {
            try
            {
                if (_removed)
                {
                    // Removed after the device looked it up (outside the peer lock): no index, no keypair.
                    return ProtocolResult.Fail(ProtocolError.UnknownPeer);
                }

                if (!_staticStaticValid)
                {
                    return ProtocolResult.Fail(ProtocolError.InvalidPeerKey, this);
                }

                // ss
                Noise.MixKeyAndGetKey(chainKey, _staticStatic, key);

                // {t}
                if (!Noise.Open(key, msg.EncryptedTimestamp, hash, timestamp))
                {
                    return ProtocolResult.Fail(ProtocolError.DecryptionFailed, this);
                }

                Noise.MixHash(hash, msg.EncryptedTimestamp);

                // Whitepaper §5.1: replay protection by a strictly increasing TAI64N timestamp per peer.
                if (Tai64n.Compare(timestamp, _lastTimestamp) <= 0)
                {
                    return ProtocolResult.Fail(ProtocolError.ReplayedTimestamp, this);
                }

                // wireguard-go HandshakeInitationRate: at most one initiation per peer per 1/50 s.
                if (_lastInitiationConsumption != TimeSpan.MinValue && now - _lastInitiationConsumption <= ProtocolConstants.HandshakeInitiationRate)
                {
                    return ProtocolResult.Fail(ProtocolError.InitiationFlood, this);
                }

                // Accept: the message authenticated (the timestamp decrypted under the static-static secret).
                ClearHandshake();
                hash.CopyTo(_hash);
                chainKey.CopyTo(_chainKey);
                msg.Ephemeral.CopyTo(_remoteEphemeral);
                _remoteIndex = msg.SenderIndex;
                timestamp.CopyTo(_lastTimestamp);
                _lastInitiationConsumption = now;
                _state = HandshakeState.InitiationConsumed;

                TimersAnyAuthenticatedPacketTraversal(now);
                TimersAnyAuthenticatedPacketReceived();

                var error = CreateResponse(now, destination);
                if (error != ProtocolError.None)
                {
                    ClearHandshake();
                    return ProtocolResult.Fail(error, this);
                }

                BeginSymmetricSession(now);
                TimersSessionDerived(now);
                TimersAnyAuthenticatedPacketTraversal(now);
                TimersAnyAuthenticatedPacketSent();
                return ProtocolResult.Network(HandshakeResponseView.Size, this);
            }
            finally
            {
                Wipe(key);
            }
        }
    }

    /// <summary>Builds the handshake response (whitepaper §5.4.3) after <see cref="ConsumeInitiation"/>.</summary>
    private ProtocolError CreateResponse(TimeSpan now, Span<byte> destination)
    {
        var message = destination[..HandshakeResponseView.Size];
        Span<byte> key = stackalloc byte[32];
        Span<byte> tau = stackalloc byte[32];
        Span<byte> sharedSecret = stackalloc byte[32];
        try
        {
            // e
            X25519.GeneratePrivateKey(_localEphemeral);
            var ephemeral = message.Slice(HandshakeResponseView.EphemeralOffset, 32);
            X25519.PublicKey(_localEphemeral, ephemeral);
            Noise.MixHash(_hash, ephemeral);
            Noise.MixKey(_chainKey, ephemeral);

            // ee
            if (!X25519.TrySharedSecret(_localEphemeral, _remoteEphemeral, sharedSecret))
            {
                return ProtocolError.LowOrderPoint;
            }

            Noise.MixKey(_chainKey, sharedSecret);

            // se
            if (!X25519.TrySharedSecret(_localEphemeral, PublicKey.AsSpan(), sharedSecret))
            {
                return ProtocolError.LowOrderPoint;
            }

            Noise.MixKey(_chainKey, sharedSecret);

            // psk
            Noise.MixPsk(_chainKey, _presharedKey, tau, key);
            Noise.MixHash(_hash, tau);

            // {}
            var empty = message.Slice(HandshakeResponseView.EmptyOffset, HandshakeResponseView.EmptyLength);
            Noise.Seal(key, [], _hash, empty);
            Noise.MixHash(_hash, empty);

            _handshakeEntry = new ProtocolDevice.IndexEntry(this);
            _localIndex = _device.AllocateIndex(_handshakeEntry);
            MessageHeader.Write(message, MessageType.HandshakeResponse);
            BinaryPrimitives.WriteUInt32LittleEndian(message[HandshakeResponseView.SenderOffset..], _localIndex);
            BinaryPrimitives.WriteUInt32LittleEndian(message[HandshakeResponseView.ReceiverOffset..], _remoteIndex);
            _state = HandshakeState.ResponseCreated;
            _cookies.AddMacs(message, HandshakeResponseView.Mac1Offset, now);
            return ProtocolError.None;
        }
        finally
        {
            Wipe(key);
            Wipe(tau);
            Wipe(sharedSecret);
        }
    }

    /// <summary>
    /// Initiator: consumes the response to our initiation (whitepaper §5.4.3), derives the keypair and writes a keepalive
    /// to <paramref name="destination"/> to confirm it (whitepaper §5.4.5/§6.5: the initiator must send first).
    /// </summary>
    internal ProtocolResult ConsumeResponse(TimeSpan now, HandshakeResponseView msg, Span<byte> destination)
    {
        var keys = _device.Keys;
        Span<byte> hash = stackalloc byte[32];
        Span<byte> chainKey = stackalloc byte[32];
        Span<byte> key = stackalloc byte[32];
        Span<byte> tau = stackalloc byte[32];
        Span<byte> sharedSecret = stackalloc byte[32];
        lock (_lock)
        {
            try
            {
                if (_removed || _state != HandshakeState.InitiationCreated || msg.ReceiverIndex != _localIndex)
                {
                    return ProtocolResult.Fail(ProtocolError.UnexpectedMessage, this);
                }

                _hash.CopyTo(hash);
                _chainKey.CopyTo(chainKey);

                // e
                Noise.MixHash(hash, msg.Ephemeral);
                Noise.MixKey(chainKey, msg.Ephemeral);

                // ee
                if (!X25519.TrySharedSecret(_localEphemeral, msg.Ephemeral, sharedSecret))
                {
                    return ProtocolResult.Fail(ProtocolError.LowOrderPoint, this);
                }

                Noise.MixKey(chainKey, sharedSecret);

                // se
                if (!X25519.TrySharedSecret(keys.Private, msg.Ephemeral, sharedSecret))
                {
                    return ProtocolResult.Fail(ProtocolError.LowOrderPoint, this);
                }

                Noise.MixKey(chainKey, sharedSecret);

                // psk
                Noise.MixPsk(chainKey, _presharedKey, tau, key);
                Noise.MixHash(hash, tau);

                // {}
                if (!Noise.Open(key, msg.EncryptedEmpty, hash, []))
                {
                    return ProtocolResult.Fail(ProtocolError.DecryptionFailed, this);
                }

                Noise.MixHash(hash, msg.EncryptedEmpty);

                hash.CopyTo(_hash);
                chainKey.CopyTo(_chainKey);
                _remoteIndex = msg.SenderIndex;
                _state = HandshakeState.ResponseConsumed;

                TimersAnyAuthenticatedPacketTraversal(now);
                TimersAnyAuthenticatedPacketReceived();
                BeginSymmetricSession(now);
                TimersSessionDerived(now);
                TimersHandshakeComplete(now);
            }
            finally
            {
                Wipe(hash);
                Wipe(chainKey);
                Wipe(key);
                Wipe(tau);
                Wipe(sharedSecret);
            }
        }

        // Confirm the new session with a keepalive (wireguard-go sends one after every response).
        if (TryReserveSend(now, isKeepalive: true, out var keypair, out var counter) == ProtocolError.None
            && keypair!.TryEncrypt(counter, destination, 0, out var length, Mtu) == ProtocolError.None)
        {
            return ProtocolResult.Network(length, this);
        }

        return ProtocolResult.Done(this);
    }

    /// <summary>Stores the cookie from a reply to our last handshake message (whitepaper §5.4.7).</summary>
    internal ProtocolResult ConsumeCookieReply(TimeSpan now, CookieReplyView msg)
    {
        lock (_lock)
        {
            return _cookies.ConsumeReply(msg, now)
                ? ProtocolResult.Done(this)
                : ProtocolResult.Fail(ProtocolError.DecryptionFailed, this);
        }
    }

    /// <summary>True when a cookie from this peer is held and fresh (mac2 will be sent).</summary>
    public bool HasCookie(TimeSpan now)
    {
        lock (_lock)
        {
            return _cookies.HasValidCookie(now);
        }
    }

    /// <summary>Derives the transport keys and rotates keypairs (whitepaper §5.4.5; wireguard-go BeginSymmetricSession).</summary>
    private void BeginSymmetricSession(TimeSpan now)
    {
        Span<byte> first = stackalloc byte[32];
        Span<byte> second = stackalloc byte[32];
        bool isInitiator;
        try
        {
            NoiseKdf.Kdf2(_chainKey, [], first, second);
            isInitiator = _state == HandshakeState.ResponseConsumed;

            // Initiator: (Tsend, Trecv) = KDF2(C, ε); responder: (Trecv, Tsend).
            var keypair = isInitiator
                ? new Keypair(this, first, second, true, _localIndex, _remoteIndex, now)
                : new Keypair(this, second, first, false, _localIndex, _remoteIndex, now);

            // The handshake's index now names the keypair (wireguard-go SwapIndexForKeypair).
            keypair.IndexEntry = _handshakeEntry;
            _handshakeEntry!.Keypair = keypair;
            _handshakeEntry = null;
            _localIndex = 0;
            ClearHandshake();

            if (isInitiator)
            {
                if (_next is not null)
                {
                    RetireKeypair(ref _previous);
                    _previous = _next;
                    _next = null;
                    RetireKeypair(ref _current);
                }
                else
                {
                    RetireKeypair(ref _previous);
                    _previous = _current;
                }

                _current = keypair;
            }
            else
            {
                RetireKeypair(ref _next);
                _next = keypair;
                RetireKeypair(ref _previous);
            }
        }
        finally
        {
            Wipe(first);
            Wipe(second);
        }
    }

    /// <summary>Back to Zeroed, wiping ephemeral secrets and freeing an unused handshake index. Keeps the last timestamp.</summary>
    private void ClearHandshake()
    {
        if (_handshakeEntry is not null)
        {
            _device.FreeIndex(_localIndex, _handshakeEntry);
            _handshakeEntry = null;
        }

        Wipe(_hash);
        Wipe(_chainKey);
        Wipe(_localEphemeral);
        Wipe(_remoteEphemeral);
        _localIndex = 0;
        _remoteIndex = 0;
        _state = HandshakeState.Zeroed;
    }

    private void WriteTimestamp(Span<byte> timestamp)
    {
        var utc = _device.WallClock.UtcNow;
        var ticks = utc.Ticks - DateTime.UnixEpoch.Ticks;
        var seconds = ticks / TimeSpan.TicksPerSecond;
        var nanoseconds = (int)(ticks % TimeSpan.TicksPerSecond * 100);

        // wireguard-go whitens the nanoseconds (rounds down to 2^24 ns) so the timestamp does not leak a precise clock.
        nanoseconds = Tai64n.Whiten(nanoseconds);
        Tai64n.Write(timestamp, seconds, nanoseconds);
    }
}
