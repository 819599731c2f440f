using Sharptun.Protocol;

namespace Sharptun.Device.Pipeline;

// Timer service (whitepaper §6; the protocol core keeps the timer state, the device only calls it when due):
//
//   One thread (TimerLoop) sleeps until the earliest Peer.NextDeadline over all peers — no fixed tick. Whenever the
//   data path or the handshake worker touches a peer it calls CheckDeadline, which wakes the thread early if that
//   peer's deadline moved before the scheduled wake-up. For each due peer the thread calls Peer.UpdateTimers until
//   it returns Done, sending each initiation/keepalive to the peer's endpoint; HandshakeTimedOut drops the peer's
//   staged packets (§6.4). Without a private key nothing is sent and peers are not scanned.
//
// Locking: _timerLock only guards the wake-up handshake (_scheduledWakeTicks, _timerSignaled).
public sealed partial class WireGuardDevice
{
    private readonly object _timerLock = new();
    private long _scheduledWakeTicks = long.MaxValue;
    private bool _timerSignaled;

    private void WakeTimers()
    {
        lock (_timerLock)
        {
            _timerSignaled = true;
            Monitor.Pulse(_timerLock);
        }
    }

    /// <summary>Wakes the timer service when <paramref name="peer"/>'s deadline is now earlier than its scheduled wake-up.</summary>
    private void CheckDeadline(DevicePeer peer)
    {
        if (peer.Protocol.NextDeadline.Ticks < Volatile.Read(ref _scheduledWakeTicks))
        {
            WakeTimers();
        }
    }

    private void TimerLoop()
    {
        var output = new byte[256];
        var holder = new[] { output };
        var sizeHolder = new int[1];
        var allocated = GC.GetAllocatedBytesForCurrentThread();
        while (!IsDisposed)
        {
            TrackThreadAllocations(ref allocated);
            var now = _clock.Now;
            var earliest = TimeSpan.MaxValue;
            if (_hasPrivateKey)
            {
                foreach (var peer in _peerList)
                {
                    if (peer.IsRemoved)
                    {
                        continue;
                    }

                    var deadline = peer.Protocol.NextDeadline;
                    if (deadline <= now)
                    {
                        RunTimers(now, peer, holder, sizeHolder);
                        deadline = peer.Protocol.NextDeadline;
                    }

                    if (deadline < earliest)
                    {
                        earliest = deadline;
                    }
                }
            }

            lock (_timerLock)
            {
                if (_timerSignaled || IsDisposed)
                {
                    _timerSignaled = false;
                    continue;
                }

                Volatile.Write(ref _scheduledWakeTicks, earliest.Ticks);
                if (earliest == TimeSpan.MaxValue)
                {
                    Monitor.Wait(_timerLock);
                }
                else
                {
                    var wait = _clock.ToRealTime(earliest - _clock.Now);
                    if (wait > TimeSpan.Zero)
                    {
                        Monitor.Wait(_timerLock, wait > TimeSpan.FromDays(1) ? TimeSpan.FromDays(1) : wait + TimeSpan.FromMilliseconds(1));
                    }
                }

                Volatile.Write(ref _scheduledWakeTicks, long.MaxValue); // awake: every deadline change signals, so none is missed during the scan
                _timerSignaled = false;
            }
        }
    }

    private void RunTimers(TimeSpan now, DevicePeer peer, byte[][] holder, int[] sizeHolder)
    {
        for (var i = 0; i < 16; i++)
        {
            var result = peer.Protocol.UpdateTimers(now, holder[0]);
            switch (result.Action)
            {
                case ProtocolAction.WriteToNetwork:
                    if (peer.TryGetEndpoint(out var endpoint))
                    {
                        if (result.Offset != 0)
                        {
                            holder[0].AsSpan(result.Offset, result.Length).CopyTo(holder[0]);
                        }

                        SendOne(holder, sizeHolder, result.Length, endpoint, peer);
                    }
                    else
                    {
                        Counters.Drop(DropReason.NoEndpoint);
                    }

                    continue;
                case ProtocolAction.Error when result.Error == ProtocolError.HandshakeTimedOut:
                    DropStaged(peer);
                    continue;
                default:
                    return;
            }
        }
    }
}
