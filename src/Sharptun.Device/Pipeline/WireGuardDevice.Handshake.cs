using Sharptun.Protocol;
using Sharptun.Transport;

namespace Sharptun.Device;

// Handshake pipeline (whitepaper §5.3, wireguard-go RoutineHandshake):
//
//   ReceiveLoop → EnqueueHandshake (receive thread, cheap checks only):
//     - initiation/response: mac1 must be valid (one keyed BLAKE2s, ProtocolDevice.HasValidMac1), else a counted drop.
//       Under load, mac2 is checked too: a valid mac2 proves the source address (its sender received a cookie there),
//       so only then is the address charged to the rate limiter (20/s, burst 5 per IPv4 address / IPv6 /64); over
//       budget → counted drop, else the message goes to the priority lane. No valid mac2 → the main lane, marked for
//       a cookie reply. Nothing is charged to an unauthenticated address, so spoofing a peer's address neither spends
//       its budget nor fills the limiter's table.
//     - cookie replies: the main lane.
//   The main lane is bounded and fair between source addresses (HandshakeQueue): one FIFO per hash bucket of the
//   address key, served round-robin; when full, the longest bucket loses its oldest message. A flood from a few
//   addresses therefore cannot crowd out a message from anyone else; a flood spoofing many addresses gets each address
//   no more than its share. The device is "under load" while the main lane holds at least 1/8 of its capacity
//   (remembered for 1 s, wireguard-go's UnderLoadAfterTime).
//   HandshakeLoop (one worker, so handshake work never takes more than one core): priority lane first. Under load, a
//   message without a valid mac2 gets a cookie reply (ProtocolDevice.WriteCookieReply) and nothing else; one that
//   arrived before the load began is checked for mac2 and charged to the rate limiter here, as wireguard-go does.
//   Everything else is processed (ProtocolDevice.Decapsulate). Authenticated messages (not cookie replies, §5.4.7)
//   update the peer's endpoint; a completed handshake flushes the peer's staged packets.
public sealed partial class WireGuardDevice
{
    private readonly HandshakeRateLimiter _rateLimiter = new();

    private readonly HandshakeQueue _handshakes;

    /// <summary>
    /// Cookie replies the worker makes per second at most (each costs a MAC, an XChaCha20-Poly1305 seal and a send), so
    /// a flood of valid-mac1 messages takes a bounded share of the CPU and leaves the rest to the receive thread. A
    /// legitimate sender needs one cookie per two minutes; the fair main lane decides whose message is answered next.
    /// </summary>
    internal const int CookieRepliesPerSecond = 4096;

    private const int CookieReplyBurst = 256;

    /// <summary>wireguard-go's UnderLoadAfterTime: load is remembered this long after the queue drains.</summary>
    private static readonly TimeSpan UnderLoadAfterTime = TimeSpan.FromSeconds(1);

    private long _lastUnderLoadTicks = long.MinValue;

    /// <summary>Tests only: the number of source addresses the handshake rate limiter tracks (only proven ones).</summary>
    internal int RateLimitedSources => _rateLimiter.Count;

    /// <summary>What the receive thread learned about a queued handshake message.</summary>
    internal enum Admission : byte
    {
        /// <summary>Not under load when it arrived: mac2 not checked yet.</summary>
        Unchecked,

        /// <summary>Under load and no valid mac2: earns a cookie reply while the load lasts.</summary>
        NoMac2,

        /// <summary>Valid mac2, and the rate limiter (now that the address is proven) let it through.</summary>
        Proven,
    }

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

    private bool EnqueueHandshake(TimeSpan now, MessageType type, byte[] buffer, int length, in UdpEndpoint source)
    {
        var admission = Admission.Unchecked;
        var priority = false;
        if (type != MessageType.CookieReply)
        {
            var message = buffer.AsSpan(0, length);

            // A message that cannot carry a cookie (mac2 is its last 16 bytes, all zero without one, §5.4.4) and that
            // the main lane would refuse anyway is dropped before any MAC: a flood from a few addresses costs the
            // receive thread little more than the receive itself.
            var mayHaveMac2 = length >= 16 && message[^16..].ContainsAnyExcept((byte)0);
            if (!mayHaveMac2 && !_handshakes.HasRoomFor(source))
            {
                Counters.Drop(DropReason.HandshakeQueueFull);
                return false;
            }

            if (!_protocol.HasValidMac1(message))
            {
                Counters.Drop(DropReason.HandshakeRejected); // whitepaper §5.4.4: not meant for us (or truncated)
                return false;
            }

            if (IsUnderLoad)
            {
                Span<byte> sourceBytes = stackalloc byte[18];
                var n = WriteSourceBytes(source, sourceBytes);
                if (!_protocol.HasValidMac2(now, message, sourceBytes[..n]))
                {
                    admission = Admission.NoMac2;
                }
                else if (!_rateLimiter.Allow(source, now, out var tracked))
                {
                    Counters.Drop(DropReason.HandshakeRateLimited);
                    return false;
                }
                else
                {
                    // A proven source the full limiter table could not track goes to the fair lane, not ahead of it.
                    admission = Admission.Proven;
                    priority = tracked;
                }
            }
        }

        var added = _handshakes.TryAdd(buffer, length, source, admission, priority, out var evicted);
        if (evicted is not null)
        {
            _pool.Return(evicted);
            Counters.Drop(DropReason.HandshakeQueueFull);
        }

        if (!added)
        {
            Counters.Drop(DropReason.HandshakeQueueFull);
        }

        return added;
    }

    private void HandshakeLoop()
    {
        var output = new byte[256];
        var holder = new[] { output };
        var sizeHolder = new int[1];
        Span<byte> sourceBytes = stackalloc byte[18];
        var cookieTokens = (double)CookieReplyBurst;
        var cookieRefilled = System.Diagnostics.Stopwatch.GetTimestamp();
        while (_handshakes.Take(out var buffer, out var length, out var source, out var admission))
        {
            try
            {
                var now = _clock.Now;
                var type = (MessageType)buffer[0];
                var message = buffer.AsSpan(0, length);
                var n = WriteSourceBytes(source, sourceBytes);
                var sourceKey = sourceBytes[..n];

                // Whitepaper §5.3: under load, only a message whose mac2 proves its source address is processed.
                if (type != MessageType.CookieReply && admission != Admission.Proven && IsUnderLoad)
                {
                    if (admission == Admission.NoMac2 || !_protocol.HasValidMac2(now, message, sourceKey))
                    {
                        WaitForCookieBudget(ref cookieTokens, ref cookieRefilled);
                        var reply = _protocol.WriteCookieReply(now, message, sourceKey, output);
                        if (reply == 0)
                        {
                            Counters.Drop(DropReason.HandshakeRejected);
                            continue;
                        }

                        holder[0] = output;
                        SendOne(holder, sizeHolder, reply, source, null);
                        continue;
                    }

                    if (!_rateLimiter.Allow(source, now, out _))
                    {
                        Counters.Drop(DropReason.HandshakeRateLimited);
                        continue;
                    }
                }

                var result = _protocol.Decapsulate(now, message, output, sourceKey, underLoad: false);
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

    /// <summary>
    /// Waits (on the handshake worker) until the cookie-reply budget (<see cref="CookieRepliesPerSecond"/>, burst
    /// <see cref="CookieReplyBurst"/>, real time) has a token, and takes it. Waiting rather than dropping keeps the
    /// main lane's fairness: while the worker waits, the lane fills and evicts from the flood's buckets, not from the
    /// message it is about to answer.
    /// </summary>
    private void WaitForCookieBudget(ref double tokens, ref long refilled)
    {
        while (true)
        {
            var now = System.Diagnostics.Stopwatch.GetTimestamp();
            tokens = Math.Min(CookieReplyBurst, tokens + ((now - refilled) * (double)CookieRepliesPerSecond / System.Diagnostics.Stopwatch.Frequency));
            refilled = now;
            if (tokens >= 1 || IsDisposed)
            {
                tokens--;
                return;
            }

            Thread.Sleep(1);
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
    /// The bounded handshake queue: the receive thread adds, the handshake worker takes. Two lanes:
    /// <list type="bullet">
    /// <item>the priority lane (capacity / 8, at least 8; FIFO) for messages whose mac2 proved their address and that
    /// the rate limiter admitted, served first;</item>
    /// <item>the main lane (capacity), fair between source addresses (stochastic fair queueing, as Linux sfq): each
    /// message joins the FIFO of its address key's hash bucket (<see cref="HandshakeRateLimiter.AddressKey"/>: IPv4
    /// address / IPv6 /64, any port), non-empty buckets are served round-robin, and when the lane is full the longest
    /// bucket loses its oldest message (an arrival in the longest bucket itself is refused). So a flood from a few
    /// addresses fills only its own buckets, and a message from anyone else waits at most one round.</item>
    /// </list>
    /// All storage is preallocated; no allocation per message.
    /// </summary>
    internal sealed class HandshakeQueue
    {
        /// <summary>Buckets of the main lane: many, so a source shares its bucket with a given flooding address only rarely (1/1024).</summary>
        internal const int BucketCount = 1024;

        private readonly object _lock = new(); // Monitor: Wait/Pulse
        private readonly int _capacity;
        private readonly Entry[] _priority;
        private int _priorityHead;
        private int _priorityCount;

        // Main lane: a slot pool with a free list, one linked FIFO per bucket, and a ring of the buckets to serve.
        private readonly Entry[] _slots;
        private readonly int[] _next;
        private readonly int[] _bucketHead = new int[BucketCount];
        private readonly int[] _bucketTail = new int[BucketCount];
        private readonly int[] _bucketCount = new int[BucketCount];
        private readonly bool[] _bucketActive = new bool[BucketCount];
        private readonly int[] _active = new int[BucketCount];
        private int _activeHead;
        private int _activeCount;
        private int _free;
        private int _count;
        private bool _closed;

        public HandshakeQueue(int capacity)
        {
            _capacity = capacity;
            _priority = new Entry[Math.Max(8, capacity / 8)];
            _slots = new Entry[capacity];
            _next = new int[capacity];
            for (var i = 0; i < capacity; i++)
            {
                _next[i] = i + 1 < capacity ? i + 1 : -1;
            }
        }

        public int Capacity => _capacity;

        /// <summary>Messages waiting in the main lane (the load signal: proven messages do not count).</summary>
        public int Count => Volatile.Read(ref _count);

        /// <summary>
        /// Adds a message (to the priority lane when <paramref name="priority"/> and it has room, else the main lane).
        /// False when refused (closed, or the main lane is full and this message's bucket is the longest).
        /// <paramref name="evicted"/> is the buffer of a message pushed out to make room (the caller returns it).
        /// </summary>
        public bool TryAdd(byte[] buffer, int length, in UdpEndpoint source, Admission admission, bool priority, out byte[]? evicted)
        {
            evicted = null;
            var entry = new Entry(buffer, length, source, admission);
            var bucket = Bucket(source);
            lock (_lock)
            {
                if (_closed)
                {
                    return false;
                }

                if (priority && _priorityCount < _priority.Length)
                {
                    _priority[(_priorityHead + _priorityCount) % _priority.Length] = entry;
                    _priorityCount++;
                }
                else
                {
                    if (_free < 0)
                    {
                        var longest = Longest();
                        if (_bucketCount[bucket] >= _bucketCount[longest])
                        {
                            return false;
                        }

                        evicted = PopBucket(longest).Buffer;
                    }

                    PushBucket(bucket, entry);
                }

                Monitor.Pulse(_lock);
                return true;
            }
        }

        /// <summary>False when the main lane would refuse a message from <paramref name="source"/> now (full, and its bucket is the longest).</summary>
        public bool HasRoomFor(in UdpEndpoint source)
        {
            var bucket = Bucket(source);
            lock (_lock)
            {
                return !_closed && (_free >= 0 || _bucketCount[bucket] < _bucketCount[Longest()]);
            }
        }

        public bool Take(out byte[] buffer, out int length, out UdpEndpoint source, out Admission admission)
        {
            lock (_lock)
            {
                while (_priorityCount == 0 && _count == 0)
                {
                    if (_closed)
                    {
                        (buffer, length, source, admission) = (null!, 0, default, default);
                        return false;
                    }

                    Monitor.Wait(_lock);
                }

                Entry entry;
                if (_priorityCount > 0)
                {
                    entry = _priority[_priorityHead];
                    _priority[_priorityHead] = default;
                    _priorityHead = (_priorityHead + 1) % _priority.Length;
                    _priorityCount--;
                }
                else
                {
                    // Round-robin over the buckets; a bucket emptied by an eviction is skipped (and leaves the ring).
                    while (true)
                    {
                        var bucket = _active[_activeHead];
                        _activeHead = (_activeHead + 1) % BucketCount;
                        _activeCount--;
                        if (_bucketCount[bucket] == 0)
                        {
                            _bucketActive[bucket] = false;
                            continue;
                        }

                        entry = PopBucket(bucket);
                        if (_bucketCount[bucket] > 0)
                        {
                            _active[(_activeHead + _activeCount) % BucketCount] = bucket;
                            _activeCount++;
                        }
                        else
                        {
                            _bucketActive[bucket] = false;
                        }

                        break;
                    }
                }

                (buffer, length, source, admission) = (entry.Buffer, entry.Length, entry.Source, entry.Admission);
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

        /// <summary>The bucket of a source address: a hash with a per-process random seed (HashCode), so buckets cannot be aimed at.</summary>
        internal static int Bucket(in UdpEndpoint source)
        {
            var key = HandshakeRateLimiter.AddressKey(source);
            return (int)((uint)HashCode.Combine((ulong)(key >> 64), (ulong)key) % BucketCount);
        }

        /// <summary>The bucket with the most messages (two vectorized scans; the receive thread asks once per datagram while full).</summary>
        private int Longest() => Array.IndexOf(_bucketCount, System.Linq.Enumerable.Max(_bucketCount));

        private void PushBucket(int bucket, in Entry entry)
        {
            var slot = _free;
            _free = _next[slot];
            _slots[slot] = entry;
            _next[slot] = -1;
            if (_bucketCount[bucket] == 0)
            {
                _bucketHead[bucket] = slot;
            }
            else
            {
                _next[_bucketTail[bucket]] = slot;
            }

            _bucketTail[bucket] = slot;
            _bucketCount[bucket]++;
            if (!_bucketActive[bucket])
            {
                _bucketActive[bucket] = true;
                _active[(_activeHead + _activeCount) % BucketCount] = bucket;
                _activeCount++;
            }

            Volatile.Write(ref _count, _count + 1);
        }

        /// <summary>Removes the oldest message of a non-empty bucket (the bucket stays in the ring; Take skips it if empty).</summary>
        private Entry PopBucket(int bucket)
        {
            var slot = _bucketHead[bucket];
            var entry = _slots[slot];
            _slots[slot] = default;
            _bucketHead[bucket] = _next[slot];
            _bucketCount[bucket]--;
            _next[slot] = _free;
            _free = slot;
            Volatile.Write(ref _count, _count - 1);
            return entry;
        }

        private readonly record struct Entry(byte[] Buffer, int Length, UdpEndpoint Source, Admission Admission);
    }
}
