using Sharptun.Transport;
using Admission = Sharptun.Device.Pipeline.WireGuardDevice.Admission;

namespace Sharptun.Device.Pipeline;

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
