namespace Sharptun.Device.Pipeline;

/// <summary>
/// The crypto workers' shared bounded queue (wireguard-go's encryption/decryption queues, one for both directions).
/// Producers never block: capacity is at least the number of elements that can exist, so a full queue means a bug
/// and the caller processes the element itself.
/// </summary>
/// <remarks>
/// Elements move in batches both ways (issue 12 point 3, as wireguard-go moved from single packets to batches): a reader
/// adds everything one read produced under one lock acquisition and wakes only as many sleeping workers as it has work
/// for; a worker takes its share of what is queued (<see cref="TakeBatch"/>) and drains each peer it touched once, so
/// the drainer hands the socket or TUN bigger batches and the threads meet far less often than once per packet.
/// </remarks>
internal sealed class WorkQueue(int capacity)
{
    private readonly object _lock = new();
    private readonly PacketElement?[] _ring = new PacketElement[capacity];
    private int _head;
    private int _count;
    private int _waiting;
    private bool _closed;

    /// <summary>Elements queued now (tests and diagnostics).</summary>
    public int Count
    {
        get
        {
            lock (_lock)
            {
                return _count;
            }
        }
    }

    public bool TryAdd(PacketElement element) => TryAddRange(new ReadOnlySpan<PacketElement>(in element)) == 1;

    /// <summary>Appends as many of <paramref name="elements"/> as fit (all, unless closed or a bug overfilled it) and wakes sleeping workers for them. Returns how many were taken.</summary>
    public int TryAddRange(ReadOnlySpan<PacketElement> elements)
    {
        lock (_lock)
        {
            if (_closed)
            {
                return 0;
            }

            var n = Math.Min(elements.Length, _ring.Length - _count);
            for (var i = 0; i < n; i++)
            {
                _ring[(_head + _count + i) % _ring.Length] = elements[i];
            }

            _count += n;
            if (_waiting > 0 && n > 0)
            {
                if (n >= _waiting)
                {
                    Monitor.PulseAll(_lock);
                }
                else
                {
                    for (var i = 0; i < n; i++)
                    {
                        Monitor.Pulse(_lock);
                    }
                }
            }

            return n;
        }
    }

    /// <summary>
    /// Blocks until work is queued, then takes up to <paramref name="destination"/>'s length of it, but no more than an
    /// even share among <paramref name="workers"/> (so one worker does not take a whole read while the others sleep).
    /// Returns 0 once closed and empty.
    /// </summary>
    public int TakeBatch(Span<PacketElement> destination, int workers)
    {
        lock (_lock)
        {
            while (_count == 0)
            {
                if (_closed)
                {
                    return 0;
                }

                _waiting++;
                try
                {
                    Monitor.Wait(_lock);
                }
                finally
                {
                    _waiting--;
                }
            }

            var share = (_count + Math.Max(1, workers) - 1) / Math.Max(1, workers);
            var n = Math.Min(destination.Length, share);
            for (var i = 0; i < n; i++)
            {
                destination[i] = _ring[_head]!;
                _ring[_head] = null;
                _head = (_head + 1) % _ring.Length;
            }

            _count -= n;
            return n;
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
