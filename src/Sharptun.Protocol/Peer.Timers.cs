namespace Sharptun.Protocol;

// Timer rules (whitepaper §6; event names follow wireguard-go's timers.go). Deadlines are absolute monotonic times;
// TimeSpan.MaxValue = not armed. Everything here runs under _lock.
//
//   retransmitHandshake  armed when an initiation is sent (RekeyTimeout + jitter); on expiry resend, up to
//                        MaxTimerHandshakes attempts (≈ RekeyAttemptTime), then give up.
//   sendKeepalive        armed when data is received (KeepaliveTimeout); on expiry send a keepalive (§6.5).
//   newHandshake         armed when data is sent (KeepaliveTimeout + RekeyTimeout + jitter), cancelled by any
//                        authenticated receive; on expiry start a handshake (§6.5, passive keepalive failure).
//   zeroKeyMaterial      armed when a session is derived (3 × RejectAfterTime); on expiry wipe all keys (§6.3).
//   persistentKeepalive  re-armed by any authenticated packet in either direction; on expiry send a keepalive (§6.5).
public sealed partial class Peer
{
    private TimeSpan _persistentKeepalive;
    private TimeSpan _retransmitHandshakeAt;
    private TimeSpan _sendKeepaliveAt;
    private TimeSpan _newHandshakeAt;
    private TimeSpan _zeroKeyMaterialAt;
    private TimeSpan _persistentKeepaliveAt;
    private TimeSpan _lastSentHandshake = TimeSpan.MinValue;
    private bool _needAnotherKeepalive;
    private bool _sentLastMinuteHandshake;
    private bool _wantHandshake;
    private int _handshakeAttempts;
    private DateTime? _lastHandshakeWall;

    /// <summary>Persistent keepalive interval (whitepaper §6.5); <see cref="TimeSpan.Zero"/> = off.</summary>
    public TimeSpan PersistentKeepalive
    {
        get
        {
            lock (_lock)
            {
                return _persistentKeepalive;
            }
        }
    }

    /// <summary>Handshake initiations sent since the last non-retry one (diagnostics).</summary>
    public int HandshakeAttempts
    {
        get
        {
            lock (_lock)
            {
                return _handshakeAttempts;
            }
        }
    }

    /// <summary>
    /// The earliest time <see cref="UpdateTimers"/> has something to do; <see cref="TimeSpan.Zero"/> when it is due at
    /// once (a handshake was requested), <see cref="TimeSpan.MaxValue"/> when nothing is armed.
    /// </summary>
    public TimeSpan NextDeadline
    {
        get
        {
            lock (_lock)
            {
                if (_wantHandshake)
                {
                    return TimeSpan.Zero;
                }

                var d = _retransmitHandshakeAt;
                d = Min(d, _sendKeepaliveAt);
                d = Min(d, _newHandshakeAt);
                d = Min(d, _zeroKeyMaterialAt);
                d = Min(d, _persistentKeepaliveAt);
                return d;
            }
        }
    }

    /// <summary>
    /// Sets the persistent keepalive interval (0 = off). When turning it on, a keepalive (or, without a session, a
    /// handshake) is due at <paramref name="now"/>, as wireguard-go does when the setting changes.
    /// </summary>
    public void SetPersistentKeepalive(TimeSpan interval, TimeSpan now)
    {
        lock (_lock)
        {
            _persistentKeepalive = interval < TimeSpan.Zero ? TimeSpan.Zero : interval;
            _persistentKeepaliveAt = _persistentKeepalive > TimeSpan.Zero ? now : TimeSpan.MaxValue;
        }
    }

    /// <summary>Requests a handshake initiation at the next <see cref="UpdateTimers"/> (e.g. the device has staged packets).</summary>
    public void RequestHandshake()
    {
        lock (_lock)
        {
            _wantHandshake = true;
        }
    }

    /// <summary>
    /// Runs every timer that is due at <paramref name="now"/> and returns the first message to send: a handshake
    /// initiation (148 bytes) or a keepalive (32 bytes) at offset 0 of <paramref name="destination"/> (at least 148 bytes).
    /// Call repeatedly until it returns <see cref="ProtocolAction.Done"/>. An <see cref="ProtocolAction.Error"/> with
    /// <see cref="ProtocolError.HandshakeTimedOut"/> means the handshake was abandoned after RekeyAttemptTime: drop
    /// staged packets (and keep calling).
    /// </summary>
    public ProtocolResult UpdateTimers(TimeSpan now, Span<byte> destination)
    {
        lock (_lock)
        {
            if (_zeroKeyMaterialAt <= now)
            {
                // Whitepaper §6.3: after 3 × RejectAfterTime without a new session, wipe everything.
                _zeroKeyMaterialAt = TimeSpan.MaxValue;
                RetireKeypair(ref _previous);
                RetireKeypair(ref _current);
                RetireKeypair(ref _next);
                ClearHandshake();
            }

            if (_retransmitHandshakeAt <= now)
            {
                _retransmitHandshakeAt = TimeSpan.MaxValue;
                if (_handshakeAttempts > ProtocolConstants.MaxTimerHandshakes)
                {
                    // Whitepaper §6.4: stop retrying after RekeyAttemptTime.
                    _sendKeepaliveAt = TimeSpan.MaxValue;
                    _wantHandshake = false;
                    if (_zeroKeyMaterialAt == TimeSpan.MaxValue)
                    {
                        _zeroKeyMaterialAt = now + (3 * ProtocolConstants.RejectAfterTime);
                    }

                    ClearHandshake();
                    return ProtocolResult.Fail(ProtocolError.HandshakeTimedOut, this);
                }

                _handshakeAttempts++;
                var retry = SendHandshakeInitiation(now, destination, isRetry: true);
                if (retry.Action != ProtocolAction.Done)
                {
                    return retry;
                }
            }

            if (_newHandshakeAt <= now)
            {
                // We sent data but heard nothing back for KeepaliveTimeout + RekeyTimeout (whitepaper §6.5).
                _newHandshakeAt = TimeSpan.MaxValue;
                _wantHandshake = true;
            }

            if (_wantHandshake)
            {
                _wantHandshake = false;
                var initiation = SendHandshakeInitiation(now, destination, isRetry: false);
                if (initiation.Action != ProtocolAction.Done)
                {
                    return initiation;
                }
            }

            if (_sendKeepaliveAt <= now)
            {
                _sendKeepaliveAt = TimeSpan.MaxValue;
                var keepalive = SendKeepaliveLocked(now, destination);
                if (_needAnotherKeepalive)
                {
                    _needAnotherKeepalive = false;
                    _sendKeepaliveAt = now + ProtocolConstants.KeepaliveTimeout;
                }

                if (keepalive.Action != ProtocolAction.Done)
                {
                    return keepalive;
                }
            }

            if (_persistentKeepaliveAt <= now)
            {
                _persistentKeepaliveAt = TimeSpan.MaxValue;
                if (_persistentKeepalive > TimeSpan.Zero)
                {
                    var keepalive = SendKeepaliveLocked(now, destination);
                    if (keepalive.Action != ProtocolAction.Done)
                    {
                        return keepalive;
                    }
                }
            }

            return ProtocolResult.Done(this);
        }
    }

    /// <summary>A keepalive on the current session, or a handshake initiation when there is none (wireguard-go SendKeepalive → SendStagedPackets).</summary>
    private ProtocolResult SendKeepaliveLocked(TimeSpan now, Span<byte> destination)
    {
        if (!IsUsableForSending(_current, now) || !_current!.TryAllocateCounter(out var counter))
        {
            return SendHandshakeInitiation(now, destination, isRetry: false);
        }

        OnTransportSent(now, isKeepalive: true);
        KeepKeyFreshSending(now, _current, counter);
        var error = _current.TryEncrypt(counter, destination, 0, out var length, Mtu);
        return error != ProtocolError.None ? ProtocolResult.Fail(error, this) : ProtocolResult.Network(length, this);
    }

    /// <summary>wireguard-go SendHandshakeInitiation: rate-limited to one per RekeyTimeout.</summary>
    private ProtocolResult SendHandshakeInitiation(TimeSpan now, Span<byte> destination, bool isRetry)
    {
        if (!isRetry)
        {
            _handshakeAttempts = 0;
        }

        if (_lastSentHandshake != TimeSpan.MinValue && now - _lastSentHandshake < ProtocolConstants.RekeyTimeout)
        {
            return ProtocolResult.Done(this);
        }

        var error = CreateInitiation(now, destination);
        if (error != ProtocolError.None)
        {
            return ProtocolResult.Fail(error, this);
        }

        _lastSentHandshake = now;
        TimersAnyAuthenticatedPacketTraversal(now);
        TimersAnyAuthenticatedPacketSent();
        _retransmitHandshakeAt = now + ProtocolConstants.RekeyTimeout + Jitter(); // TimersHandshakeInitiated
        return ProtocolResult.Network(HandshakeInitiationView.Size, this);
    }

    private void OnTransportSent(TimeSpan now, bool isKeepalive)
    {
        TimersAnyAuthenticatedPacketTraversal(now);
        TimersAnyAuthenticatedPacketSent();
        if (!isKeepalive && _newHandshakeAt == TimeSpan.MaxValue)
        {
            // TimersDataSent
            _newHandshakeAt = now + ProtocolConstants.KeepaliveTimeout + ProtocolConstants.RekeyTimeout + Jitter();
        }
    }

    /// <summary>Whitepaper §6.2: the sender rekeys after RekeyAfterMessages, and the initiator also after RekeyAfterTime.</summary>
    private void KeepKeyFreshSending(TimeSpan now, Keypair keypair, ulong counter)
    {
        if (counter > ProtocolConstants.RekeyAfterMessages || (keypair.IsInitiator && now - keypair.Created > ProtocolConstants.RekeyAfterTime))
        {
            _wantHandshake = true;
        }
    }

    /// <summary>
    /// Whitepaper §6.2: an initiator that receives on a keypair older than RejectAfterTime − KeepaliveTimeout − RekeyTimeout
    /// starts a handshake once, so the session does not expire while the other side is the only one sending.
    /// </summary>
    private void KeepKeyFreshReceiving(TimeSpan now)
    {
        if (_sentLastMinuteHandshake)
        {
            return;
        }

        var keypair = _current;
        if (keypair is not null && keypair.IsInitiator &&
            now - keypair.Created > ProtocolConstants.RejectAfterTime - ProtocolConstants.KeepaliveTimeout - ProtocolConstants.RekeyTimeout)
        {
            _sentLastMinuteHandshake = true;
            _wantHandshake = true;
        }
    }

    private void TimersAnyAuthenticatedPacketTraversal(TimeSpan now)
    {
        if (_persistentKeepalive > TimeSpan.Zero)
        {
            _persistentKeepaliveAt = now + _persistentKeepalive;
        }
    }

    private void TimersAnyAuthenticatedPacketSent() => _sendKeepaliveAt = TimeSpan.MaxValue;

    private void TimersAnyAuthenticatedPacketReceived() => _newHandshakeAt = TimeSpan.MaxValue;

    private void TimersDataReceived(TimeSpan now)
    {
        if (_sendKeepaliveAt == TimeSpan.MaxValue)
        {
            _sendKeepaliveAt = now + ProtocolConstants.KeepaliveTimeout;
        }
        else
        {
            _needAnotherKeepalive = true;
        }
    }

    private void TimersHandshakeComplete(TimeSpan now)
    {
        _ = now;
        _retransmitHandshakeAt = TimeSpan.MaxValue;
        _handshakeAttempts = 0;
        _sentLastMinuteHandshake = false;
        _lastHandshakeWall = _device.WallClock.UtcNow;
    }

    private void TimersSessionDerived(TimeSpan now) => _zeroKeyMaterialAt = now + (3 * ProtocolConstants.RejectAfterTime);

    private void ResetTimers()
    {
        _retransmitHandshakeAt = TimeSpan.MaxValue;
        _sendKeepaliveAt = TimeSpan.MaxValue;
        _newHandshakeAt = TimeSpan.MaxValue;
        _zeroKeyMaterialAt = TimeSpan.MaxValue;
        _persistentKeepaliveAt = TimeSpan.MaxValue;
    }

    private TimeSpan Jitter() => TimeSpan.FromTicks(_jitter.NextInt64(ProtocolConstants.RekeyTimeoutJitterMax.Ticks));

    private static TimeSpan Min(TimeSpan a, TimeSpan b) => a < b ? a : b;
}
