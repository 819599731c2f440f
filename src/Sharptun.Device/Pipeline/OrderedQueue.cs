namespace Sharptun.Device.Pipeline;

/// <summary>A bounded FIFO of a peer's elements in packet order; the head leaves only when it is no longer pending.</summary>
/// <remarks>
/// One producer at a time (the peer's send lock outbound, the receive thread inbound) and one drainer at a time
/// (<see cref="TryBeginDrain"/>): whichever worker finishes an element tries to become the drainer and moves every
/// finished element at the head out, so order is kept without a thread per peer (wireguard-go's per-peer
/// sequential sender/receiver, done cooperatively).
/// </remarks>
internal sealed class OrderedQueue(int capacity)
{
    private readonly object _lock = new();
    private readonly PacketElement?[] _ring = new PacketElement[capacity];
    private int _head;
    private int _count;
    private int _draining;
    private int _waiters;

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

    /// <summary>Threads waiting in <see cref="WaitForRoom"/> (tests and diagnostics).</summary>
    internal int Waiters
    {
        get
        {
            lock (_lock)
            {
                return _waiters;
            }
        }
    }

    /// <summary>True when an element can be appended (only the single producer, under its lock, may rely on it staying so).</summary>
    public bool HasRoom
    {
        get
        {
            lock (_lock)
            {
                return _count < _ring.Length;
            }
        }
    }

    /// <summary>Appends <paramref name="element"/>. Never waits: false when full.</summary>
    public bool TryEnqueue(PacketElement element)
    {
        lock (_lock)
        {
            if (_count == _ring.Length)
            {
                return false;
            }

            _ring[(_head + _count) % _ring.Length] = element;
            _count++;
            return true;
        }
    }

    /// <summary>
    /// Waits up to <paramref name="timeoutMs"/> for the drainer to make room (backpressure). Call with no other lock held:
    /// only this queue's own monitor is used, and it is released while waiting. True when there is room.
    /// </summary>
    public bool WaitForRoom(int timeoutMs)
    {
        lock (_lock)
        {
            if (_count < _ring.Length)
            {
                return true;
            }

            _waiters++;
            try
            {
                var deadline = Environment.TickCount64 + timeoutMs;
                while (_count == _ring.Length)
                {
                    var left = deadline - Environment.TickCount64;
                    if (left <= 0)
                    {
                        return false;
                    }

                    Monitor.Wait(_lock, (int)left);
                }

                return true;
            }
            finally
            {
                _waiters--;
            }
        }
    }

    /// <summary>Moves finished elements from the head into <paramref name="destination"/>; stops at the first pending one.</summary>
    public int TakeFinished(Span<PacketElement> destination)
    {
        lock (_lock)
        {
            var n = 0;
            while (n < destination.Length && _count > 0)
            {
                var e = _ring[_head]!;
                if (e.State == PacketElement.Pending)
                {
                    break;
                }

                _ring[_head] = null;
                _head = (_head + 1) % _ring.Length;
                _count--;
                destination[n++] = e;
            }

            if (n > 0 && _waiters > 0)
            {
                Monitor.PulseAll(_lock);
            }

            return n;
        }
    }

    /// <summary>True when the head element is finished (a drain would make progress).</summary>
    public bool HeadFinished
    {
        get
        {
            lock (_lock)
            {
                return _count > 0 && _ring[_head]!.State != PacketElement.Pending;
            }
        }
    }

    public bool TryBeginDrain() => Interlocked.CompareExchange(ref _draining, 1, 0) == 0;

    public void EndDrain() => Interlocked.Exchange(ref _draining, 0);
}
