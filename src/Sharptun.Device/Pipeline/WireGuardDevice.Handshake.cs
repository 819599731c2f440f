using Sharptun.Protocol;
using Sharptun.Transport;

namespace Sharptun.Device;

// Handshake pipeline (whitepaper §5.3, wireguard-go RoutineHandshake):
//
//   ReceiveLoop → EnqueueHandshake: initiations, responses and cookie replies go into one bounded queue (full → drop,
//   counted). One worker (HandshakeLoop) processes them in order. The device is "under load" while the queue holds
//   at least 1/8 of its capacity: then initiations/responses without a valid mac2 are answered with a cookie reply
//   (inside ProtocolDevice.Decapsulate), and each source IP (IPv6: /64) is limited to 20 handshake messages a second
//   with a burst of 5 (HandshakeRateLimiter). Unlike wireguard-go, the rate limit is checked on the receive thread
//   before the message is queued (so a flood cannot keep the queue full) and before mac2 (so a flooding source is also
//   denied cookie replies past its budget).
//   Authenticated messages (not cookie replies, §5.4.7) update the peer's endpoint; a completed handshake flushes the
//   peer's staged packets.
public sealed partial class WireGuardDevice
{
    private readonly HandshakeRateLimiter _rateLimiter = new();
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
        // Rate-limit before queueing, so a flood from a few sources cannot keep the queue full and crowd out
        // legitimate handshakes (wireguard-go checks after dequeueing; the queue then fills regardless).
        if (IsUnderLoad && !_rateLimiter.Allow(source, now))
        {
            Counters.Drop(DropReason.HandshakeRateLimited);
            return false;
        }

        if (_handshakes.TryAdd(buffer, length, source))
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
                var n = source.WriteAddress(sourceBytes);
                System.Buffers.Binary.BinaryPrimitives.WriteUInt16BigEndian(sourceBytes[n..], source.Port);
                var result = _protocol.Decapsulate(now, buffer.AsSpan(0, length), output, sourceBytes[..(n + 2)], underLoad);
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

    /// <summary>The bounded handshake queue: the receive thread adds, the handshake worker takes.</summary>
    private sealed class HandshakeQueue(int capacity)
    {
        private readonly object _lock = new();
        private readonly byte[]?[] _buffers = new byte[capacity][];
        private readonly int[] _lengths = new int[capacity];
        private readonly UdpEndpoint[] _sources = new UdpEndpoint[capacity];
        private int _head;
        private int _count;
        private bool _closed;

        public int Capacity => capacity;

        public int Count => Volatile.Read(ref _count);

        public bool TryAdd(byte[] buffer, int length, in UdpEndpoint source)
        {
            lock (_lock)
            {
                if (_count == capacity || _closed)
                {
                    return false;
                }

                var tail = (_head + _count) % capacity;
                _buffers[tail] = buffer;
                _lengths[tail] = length;
                _sources[tail] = source;
                _count++;
                Monitor.Pulse(_lock);
                return true;
            }
        }

        public bool Take(out byte[] buffer, out int length, out UdpEndpoint source)
        {
            lock (_lock)
            {
                while (_count == 0)
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

                buffer = _buffers[_head]!;
                length = _lengths[_head];
                source = _sources[_head];
                _buffers[_head] = null;
                _head = (_head + 1) % capacity;
                _count--;
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
    }
}
