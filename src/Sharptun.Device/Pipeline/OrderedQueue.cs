namespace Sharptun.Device.Pipeline;

/// <summary>A bounded FIFO of a peer's elements in packet order; the head leaves only when it is no longer pending.</summary>
/// <remarks>
/// One producer at a time (the peer's send lock outbound, the receive thread inbound) and one drainer at a time
/// (<see cref="Drain{TSink}"/>): whichever worker finishes an element tries to become the drainer and moves every
/// finished element at the head out, so order is kept without a thread per peer (wireguard-go's per-peer
/// sequential sender/receiver, done cooperatively).
/// </remarks>
internal sealed class OrderedQueue(int capacity, QueueDelayController? delay = null)
{
    private readonly object _lock = new();
    private readonly PacketElement?[] _ring = new PacketElement[capacity];
    private int _head;
    private int _count;
    private int _draining;
    private int _waiters;

    /// <summary>Bounds the time packets stand in this queue (null = no limit but the capacity); used by the drainer only.</summary>
    public QueueDelayController? Delay { get; } = delay;

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
    private int TakeFinished(Span<PacketElement> destination)
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
    private bool HeadFinished
    {
        get
        {
            lock (_lock)
            {
                return _count > 0 && _ring[_head]!.State != PacketElement.Pending;
            }
        }
    }

    /// <summary>
    /// Drains the queue on this thread when no other thread does: takes the finished elements at the head, in order, a
    /// batch at a time into <paramref name="batch"/> and hands each batch to <paramref name="sink"/>, then lets it release
    /// the batch's elements (also when delivering threw). The drain flag is released in a finally - a flag left set would stop this queue for good -
    /// and taken again when an element finished at the head meanwhile (its worker found the flag set and left). Both
    /// directions drain this way; a struct sink keeps it allocation-free. True when any element was taken.
    /// </summary>
    public bool Drain<TSink>(PacketElement[] batch, ref TSink sink)
        where TSink : struct, IDrainSink
    {
        var took = false;
        while (TryBeginDrain())
        {
            try
            {
                while (true)
                {
                    var n = TakeFinished(batch);
                    if (n == 0)
                    {
                        break;
                    }

                    took = true;
                    try
                    {
                        sink.Deliver(n);
                    }
                    finally
                    {
                        sink.Release(n);
                    }
                }
            }
            finally
            {
                EndDrain();
            }

            if (!HeadFinished)
            {
                break;
            }
        }

        return took;
    }

    /// <summary>Takes one drained batch: the first <c>n</c> elements of the batch array given to <see cref="Drain{TSink}"/>.</summary>
    public interface IDrainSink
    {
        /// <summary>Sends or writes the batch's finished elements, in order.</summary>
        void Deliver(int n);

        /// <summary>Gives the batch's elements back and clears the batch; runs after every <see cref="Deliver"/>, even one that threw.</summary>
        void Release(int n);
    }

    private bool TryBeginDrain() => Interlocked.CompareExchange(ref _draining, 1, 0) == 0;

    private void EndDrain() => Interlocked.Exchange(ref _draining, 0);
}
