using System.Security.Cryptography;
using Sharptun.Crypto;

namespace Sharptun.Protocol;

/// <summary>
/// One remote peer of a <see cref="ProtocolDevice"/>: its handshake state, its keypairs (previous/current/next), its cookie
/// state and its timers (whitepaper §5 and §6). The per-peer half of boringtun's <c>Tunn</c>, with time passed in.
/// </summary>
/// <remarks>
/// <para>Threading: every public member is thread-safe; the peer serializes itself with one small lock that is never
/// held during transport encryption or decryption. Multi-threaded send: call <see cref="TryReserveSend"/> (in the order
/// packets must leave: counters are assigned in call order), then <see cref="Keypair.TryEncrypt"/> on any thread.
/// Multi-threaded receive: <see cref="ProtocolDevice.TryGetKeypair"/>, <see cref="Keypair.TryDecrypt"/> on any thread,
/// then <see cref="ReceiveTransport"/>.</para>
/// <para>Timers: after any call, <see cref="NextDeadline"/> may have moved; when it is due call
/// <see cref="UpdateTimers"/> repeatedly until it returns <see cref="ProtocolAction.Done"/>.</para>
/// </remarks>
public sealed partial class Peer
{
    private readonly Lock _lock = new();
    private readonly ProtocolDevice _device;
    private readonly Random _jitter;
    private readonly CookieGenerator _cookies = new();
    private readonly byte[] _presharedKey = new byte[32];
    private readonly byte[] _staticStatic = new byte[32];
    private bool _staticStaticValid;
    private bool _removed; // set under _lock by Remove; no index entry or keypair is created afterwards
    private Keypair? _current;
    private Keypair? _previous;
    private Keypair? _next;

    internal Peer(ProtocolDevice device, Key publicKey, Key presharedKey, TimeSpan persistentKeepalive, Random jitter)
    {
        _device = device;
        _jitter = jitter;
        PublicKey = publicKey.Copy(); // our own array: a caller clearing its key cannot wipe the peer's identity
        CopyPresharedKey(presharedKey);
        _persistentKeepalive = persistentKeepalive;
        _cookies.Init(publicKey.AsSpan());
        ComputeStaticStatic();
        ResetTimers();
    }

    /// <summary>The peer's static public key (its identity).</summary>
    public Key PublicKey { get; }

    /// <summary>The device this peer belongs to.</summary>
    public ProtocolDevice Device => _device;

    /// <summary>Free for the caller's own per-peer state (endpoint, queues, counters). Not used by the core.</summary>
    public object? Tag { get; set; }

    /// <summary>When nonzero, padding of transport packets is capped at this size (wireguard-go's calculatePaddingSize). 0 = pad to 16 always.</summary>
    public int Mtu { get; set; }

    /// <summary>Wall-clock time of the last completed handshake (null when none) — for UAPI's last_handshake_time.</summary>
    public DateTime? LastHandshakeTime
    {
        get
        {
            lock (_lock)
            {
                return _lastHandshakeWall;
            }
        }
    }

    /// <summary>True when the peer's static key gives a nonzero shared secret with ours (else no handshake can succeed).</summary>
    public bool HasValidStaticKey
    {
        get
        {
            lock (_lock)
            {
                return _staticStaticValid;
            }
        }
    }

    /// <summary>The keypair used for sending, if any (may be expired).</summary>
    public Keypair? CurrentKeypair
    {
        get
        {
            lock (_lock)
            {
                return _current;
            }
        }
    }

    /// <summary>The keypair before the current one (kept to receive in-flight packets), if any.</summary>
    public Keypair? PreviousKeypair
    {
        get
        {
            lock (_lock)
            {
                return _previous;
            }
        }
    }

    /// <summary>A responder's keypair not yet confirmed by a received transport packet (whitepaper §5.4.5), if any.</summary>
    public Keypair? NextKeypair
    {
        get
        {
            lock (_lock)
            {
                return _next;
            }
        }
    }

    /// <summary>True when a keypair usable for sending exists at <paramref name="now"/> (staged packets can be flushed).</summary>
    public bool HasSession(TimeSpan now)
    {
        lock (_lock)
        {
            return IsUsableForSending(_current, now);
        }
    }

    /// <summary>The preshared key (all zero = none); for UAPI <c>get=1</c>, never log it.</summary>
    public Key PresharedKey
    {
        get
        {
            lock (_lock)
            {
                return new Key(_presharedKey);
            }
        }
    }

    /// <summary>Sets the preshared key (all zero = none). Takes effect at the next handshake.</summary>
    public void SetPresharedKey(Key presharedKey)
    {
        lock (_lock)
        {
            if (_removed)
            {
                return; // a removed peer keeps no secrets
            }

            CopyPresharedKey(presharedKey);
        }
    }

    /// <summary>Stores a preshared key; <c>default</c> or all-zero means none.</summary>
    private void CopyPresharedKey(Key presharedKey)
    {
        if (presharedKey.AsSpan().Length == Key.Size)
        {
            presharedKey.AsSpan().CopyTo(_presharedKey);
        }
        else
        {
            Wipe(_presharedKey);
        }
    }

    /// <summary>
    /// Reserves the next send counter on the current keypair and runs the send-side timer rules (the packet is assumed
    /// sent now). Returns <see cref="ProtocolError.NoSession"/> (and requests a handshake) when no keypair is usable.
    /// Counters are assigned in call order, so call this in the order packets must go out; then encrypt with
    /// <see cref="Keypair.TryEncrypt"/> outside any lock (it fails with <see cref="ProtocolError.KeypairRetired"/> if the
    /// keypair is retired in between).
    /// </summary>
    public ProtocolError TryReserveSend(TimeSpan now, bool isKeepalive, out Keypair? keypair, out ulong counter)
    {
        lock (_lock)
        {
            keypair = _current;
            counter = 0;
            if (!IsUsableForSending(keypair, now) || !keypair!.TryAllocateCounter(out counter))
            {
                keypair = null;
                _wantHandshake = true; // whitepaper §6.2: no usable session → handshake
                return ProtocolError.NoSession;
            }

            OnTransportSent(now, isKeepalive);
            KeepKeyFreshSending(now, keypair, counter);
            return ProtocolError.None;
        }
    }

    /// <summary>
    /// Completes the receive of an authenticated transport packet decrypted with <paramref name="keypair"/>: replay check
    /// and update, keypair confirmation (a responder's next keypair becomes current), and receive-side timers. Call in
    /// receive order after <see cref="Keypair.TryDecrypt"/> succeeded. <paramref name="plaintextLength"/> 0 = keepalive.
    /// </summary>
    public ProtocolError ReceiveTransport(TimeSpan now, Keypair keypair, ulong counter, int plaintextLength)
    {
        if (keypair.Peer != this)
        {
            return ProtocolError.UnknownReceiverIndex;
        }

        if (keypair.IsExpired(now))
        {
            return ProtocolError.KeypairExpired;
        }

        if (!keypair.TryAcceptCounter(counter))
        {
            return ProtocolError.ReplayedCounter;
        }

        lock (_lock)
        {
            // Whitepaper §5.4.5 / wireguard-go ReceivedWithKeypair: the responder's next keypair is confirmed by the first packet.
            if (ReferenceEquals(keypair, _next))
            {
                RetireKeypair(ref _previous);
                _previous = _current;
                _current = _next;
                _next = null;
                TimersHandshakeComplete(now);
            }

            KeepKeyFreshReceiving(now);
            TimersAnyAuthenticatedPacketTraversal(now);
            TimersAnyAuthenticatedPacketReceived();
            if (plaintextLength > 0)
            {
                TimersDataReceived(now);
            }
        }

        return ProtocolError.None;
    }

    /// <summary>Drops all keypairs and handshake state, wiping the keys (whitepaper §6.3 after 3 × RejectAfterTime, or on removal).</summary>
    public void ZeroAllKeys()
    {
        lock (_lock)
        {
            ZeroAllKeysLocked();
        }
    }

    /// <summary>Our private key changed: drop every session and recompute the static-static secret.</summary>
    internal void OnLocalKeyChanged()
    {
        lock (_lock)
        {
            ZeroAllKeysLocked();
            if (!_removed)
            {
                ComputeStaticStatic();
            }
        }
    }

    /// <summary>Our private key was cleared: drop every session and wipe the static-static secret derived from it.</summary>
    internal void OnLocalKeyCleared()
    {
        lock (_lock)
        {
            ZeroAllKeysLocked();
            Wipe(_staticStatic);
            _staticStaticValid = false;
        }
    }

    /// <summary>
    /// The peer was removed from its device: wipe every secret it holds (keypairs, handshake state, cookie, preshared key,
    /// static-static secret) and refuse, from now on, anything that would create an index entry or a keypair. Runs under
    /// the peer's lock, as do all index and keypair creations, so none can slip in after it (issue 7 item 9).
    /// </summary>
    internal void Remove()
    {
        lock (_lock)
        {
            _removed = true;
            ZeroAllKeysLocked();
            Wipe(_presharedKey);
            Wipe(_staticStatic);
            Wipe(_lastTimestamp);
            _staticStaticValid = false;
            _wantHandshake = false;
            ResetTimers();
        }
    }

    /// <summary>True once <see cref="Remove"/> ran (the device dropped this peer).</summary>
    internal bool IsRemoved
    {
        get
        {
            lock (_lock)
            {
                return _removed;
            }
        }
    }

    /// <summary>Test hook: true when every secret the peer holds is zero and it has no keypair or handshake.</summary>
    internal bool SecretsAreZero
    {
        get
        {
            lock (_lock)
            {
                return IsZero(_presharedKey) && IsZero(_staticStatic) && !_staticStaticValid && IsZero(_hash) && IsZero(_chainKey) &&
                    IsZero(_localEphemeral) && IsZero(_remoteEphemeral) && _current is null && _previous is null && _next is null &&
                    _handshakeEntry is null;
            }
        }
    }

    /// <summary>Test hook: true when the precomputed static-static secret is wiped (and marked unusable).</summary>
    internal bool StaticStaticIsZero
    {
        get
        {
            lock (_lock)
            {
                return IsZero(_staticStatic) && !_staticStaticValid;
            }
        }
    }

    private static bool IsZero(ReadOnlySpan<byte> secret) => secret.IndexOfAnyExcept((byte)0) < 0;

    private void ZeroAllKeysLocked()
    {
        RetireKeypair(ref _previous);
        RetireKeypair(ref _current);
        RetireKeypair(ref _next);
        ClearHandshake();
        _cookies.Clear();
    }

    private void ComputeStaticStatic()
    {
        // Whitepaper §5.4.2: DH(Spriv_i, Spub_r) is the same for every handshake, so compute it once.
        _staticStaticValid = X25519.TrySharedSecret(_device.Keys.Private, PublicKey.AsSpan(), _staticStatic);
    }

    private static bool IsUsableForSending(Keypair? keypair, TimeSpan now) =>
        keypair is not null && !keypair.IsExpired(now) && keypair.NextSendCounter < ProtocolConstants.RejectAfterMessages;

    private void RetireKeypair(ref Keypair? keypair)
    {
        if (keypair is null)
        {
            return;
        }

        keypair.Retire();
        if (keypair.IndexEntry is { } entry)
        {
            _device.FreeIndex(keypair.LocalIndex, entry);
        }

        keypair = null;
    }

    /// <summary>Wipes <paramref name="secret"/>.</summary>
    private static void Wipe(Span<byte> secret) => CryptographicOperations.ZeroMemory(secret);
}
