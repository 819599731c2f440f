using Sharptun.Protocol;
using Sharptun.Transport;

namespace Sharptun.Device.Pipeline;

// Handshake pipeline (whitepaper §5.3, wireguard-go RoutineHandshake):
//
//   ReceiveLoop → EnqueueHandshake: initiations, responses and cookie replies go into one bounded queue (full → drop,
//   counted). One worker (HandshakeLoop) processes them in order. The device is "under load" while the queue holds
//   at least 1/8 of its capacity: then initiations/responses without a valid mac2 are answered with a cookie reply
//   (inside ProtocolDevice.Decapsulate), and each source IP (IPv6: /64) is limited to 20 handshake messages a second
//   with a burst of 5 (HandshakeRateLimiter), checked on the receive thread before queueing so a flood cannot keep the
//   queue full. That budget is keyed by an unauthenticated source address, so a flood spoofing a legitimate peer's
//   address could use it up; therefore a message over that budget is checked for a valid mac2 (ProtocolDevice.HasValidMac2:
//   its sender received a cookie at that address, which a spoofer cannot) and, if valid, still admitted within a second,
//   separate per-address budget into a small priority lane that the worker serves first. wireguard-go rate-limits only
//   after mac2 (on its workers); this keeps its spoofing resistance while dropping unproven floods before the queue.
//   Authenticated messages (not cookie replies, §5.4.7) update the peer's endpoint; a completed handshake flushes the
//   peer's staged packets.
public sealed partial class WireGuardDevice
{
    private readonly HandshakeRateLimiter _rateLimiter = new();
    private readonly HandshakeRateLimiter _provenRateLimiter = new();

    private readonly HandshakeQueue _handshakes;

    /// <summary>wireguard-go's UnderLoadAfterTime: load is remembered this long after the queue drains.</summary>
    private static readonly TimeSpan UnderLoadAfterTime = TimeSpan.FromSeconds(1);

    private long _lastUnderLoadTicks = long.MinValue;

    /// <summary>
    /// True while the handshake queue is at least 1/8 full, and for <c>UnderLoadAfterTime</c> (1 s) after that
    /// (wireguard-go's "under load"), so a flood is throttled steadily instead of refilling the queue whenever it drains.
    /// </summary>
    public bool IsUnderLoad
    {
        get
        {
            var now = _clock.Now.Ticks;
            if (_handshakes.Count >= _handshakes.Capacity / 8)
            {
                Volatile.Write(ref _lastUnderLoadTicks, now);
                return true;
            }

            var last = Volatile.Read(ref _lastUnderLoadTicks);
            return last != long.MinValue && now - last < UnderLoadAfterTime.Ticks;
        }
    }

    private bool EnqueueHandshake(TimeSpan now, byte[] buffer, int length, in UdpEndpoint source)
    {
        var proven = false;
        if (IsUnderLoad && !_rateLimiter.Allow(source, now))
        {
            // Over its address's budget. A spoofed flood can exhaust a legitimate peer's budget, so a message that
            // proves its address with a valid mac2 still gets through, in the priority lane, within its own budget.
            Span<byte> sourceBytes = stackalloc byte[18];
            var n = WriteSourceBytes(source, sourceBytes);
            proven = _protocol.HasValidMac2(now, buffer.AsSpan(0, length), sourceBytes[..n]);
            if (!proven || !_provenRateLimiter.Allow(source, now))
            {
                Counters.Drop(DropReason.HandshakeRateLimited);
                return false;
            }
        }

        if (_handshakes.TryAdd(buffer, length, source, proven))
        {
            return true;
        }

        Counters.Drop(DropReason.HandshakeQueueFull);
        return false;
    }

    private void HandshakeLoop()
    {
        var output = new byte[256];
        var holder = new[] { output };
        var sizeHolder = new int[1];
        Span<byte> sourceBytes = stackalloc byte[18];
        while (_handshakes.Take(out var buffer, out var length, out var source))
        {
            try
            {
                var now = _clock.Now;
                var underLoad = IsUnderLoad;

                var type = (MessageType)buffer[0];
                var n = WriteSourceBytes(source, sourceBytes);
                var result = _protocol.Decapsulate(now, buffer.AsSpan(0, length), output, sourceBytes[..n], underLoad);
                var peer = result.Peer?.Tag as DevicePeer;
                if (result.Action == ProtocolAction.Error)
                {
                    Counters.Drop(DropReason.HandshakeRejected);
                    if (peer is not null)
                    {
                        CheckDeadline(peer);
                    }

                    continue;
                }

                if (peer is not null && type != MessageType.CookieReply)
                {
                    peer.UpdateEndpoint(source); // whitepaper §5.4.7: never from a cookie reply
                    peer.AddRx(length);
                }

                if (result.Action == ProtocolAction.WriteToNetwork)
                {
                    holder[0] = output;
                    if (result.Offset != 0)
                    {
                        output.AsSpan(result.Offset, result.Length).CopyTo(output);
                    }

                    SendOne(holder, sizeHolder, result.Length, source, peer);
                }

                if (peer is not null)
                {
                    if (type == MessageType.HandshakeResponse)
                    {
                        FlushStaged(now, peer);
                    }

                    CheckDeadline(peer);
                }
            }
            finally
            {
                _pool.Return(buffer);
            }
        }
    }

    /// <summary>The bytes cookies are bound to (whitepaper §5.4.7): the address, then the port big-endian. Returns 6 or 18.</summary>
    private static int WriteSourceBytes(in UdpEndpoint source, Span<byte> destination)
    {
        var n = source.WriteAddress(destination);
        System.Buffers.Binary.BinaryPrimitives.WriteUInt16BigEndian(destination[n..], source.Port);
        return n + 2;
    }

    /// <summary>
    /// The bounded handshake queue: the receive thread adds, the handshake worker takes. Two lanes: the main lane
    /// (capacity) and a priority lane (capacity / 8, at least 8) for messages with a valid mac2, served first.
    /// </summary>
    private sealed class HandshakeQueue(int capacity)
    {
        private readonly object _lock = new();
        private readonly Lane _main = new(capacity);
        private readonly Lane _proven = new(Math.Max(8, capacity / 8));
        private bool _closed;

        public int Capacity => capacity;

        /// <summary>Messages waiting in the main lane (the load signal: proven messages do not count).</summary>
        public int Count => Volatile.Read(ref _main.Count);

        public bool TryAdd(byte[] buffer, int length, in UdpEndpoint source, bool proven)
        {
            lock (_lock)
            {
                if (_closed || !(proven ? _proven : _main).TryPush(buffer, length, source))
                {
                    return false;
                }

                Monitor.Pulse(_lock);
                return true;
            }
        }

        public bool Take(out byte[] buffer, out int length, out UdpEndpoint source)
        {
            lock (_lock)
            {
                while (_main.Count == 0 && _proven.Count == 0)
                {
                    if (_closed)
                    {
                        buffer = null!;
                        length = 0;
                        source = default;
                        return false;
                    }

                    Monitor.Wait(_lock);
                }

                (_proven.Count > 0 ? _proven : _main).Pop(out buffer, out length, out source);
                return true;
            }
        }

        public void Close()
        {
            lock (_lock)
            {
                _closed = true;
                Monitor.PulseAll(_lock);
            }
        }

        /// <summary>A ring of queued messages; guarded by the queue's lock.</summary>
        private sealed class Lane(int capacity)
        {
            private readonly byte[]?[] _buffers = new byte[capacity][];
            private readonly int[] _lengths = new int[capacity];
            private readonly UdpEndpoint[] _sources = new UdpEndpoint[capacity];
            private int _head;
            public int Count;

            public bool TryPush(byte[] buffer, int length, in UdpEndpoint source)
            {
                if (Count == capacity)
                {
                    return false;
                }

                var tail = (_head + Count) % capacity;
                _buffers[tail] = buffer;
                _lengths[tail] = length;
                _sources[tail] = source;
                Volatile.Write(ref Count, Count + 1);
                return true;
            }

            public void Pop(out byte[] buffer, out int length, out UdpEndpoint source)
            {
                buffer = _buffers[_head]!;
                length = _lengths[_head];
                source = _sources[_head];
                _buffers[_head] = null;
                _head = (_head + 1) % capacity;
                Volatile.Write(ref Count, Count - 1);
            }
        }
    }
}
