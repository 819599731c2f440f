namespace Sharptun.Transport;

/// <summary>
/// One end of an in-memory TUN-like pair (see <see cref="CreatePair"/>): what one end writes, the other reads,
/// in order, through a bounded queue of preallocated slots. For tests and benchmarks of whole devices.
/// </summary>
/// <remarks>
/// Backpressure: <see cref="Write"/> blocks while the peer's queue is full (or drops, when created with
/// <c>blockWhenFull: false</c>). Disposing one end makes its own <see cref="Read"/> return 0 and its
/// <see cref="Write"/> throw <see cref="ObjectDisposedException"/>; the other end still reads what was already
/// queued, then its Read returns 0, and its writes are dropped. No allocation per packet.
/// </remarks>
public sealed class InMemoryPacketDevice : IPacketDevice
{
    /// <summary>Default queue capacity in packets, per direction.</summary>
    public const int DefaultCapacity = 1024;

    private readonly PacketQueue _inbound;
    private readonly PacketQueue _outbound;
    private long _dropped;
    private int _disposed;

    private InMemoryPacketDevice(string name, int mtu, int batchSize, PacketQueue inbound, PacketQueue outbound)
    {
        Name = name;
        Mtu = mtu;
        BatchSize = batchSize;
        _inbound = inbound;
        _outbound = outbound;
    }

    /// <summary>
    /// Creates two connected devices. Each direction queues up to <paramref name="capacity"/> packets of at most
    /// <paramref name="mtu"/> bytes; larger packets are dropped and counted.
    /// </summary>
    public static (InMemoryPacketDevice A, InMemoryPacketDevice B) CreatePair(int mtu, int capacity = DefaultCapacity, int batchSize = 128, bool blockWhenFull = true, string name = "mem")
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(mtu, 1);
        ArgumentOutOfRangeException.ThrowIfLessThan(capacity, 1);
        ArgumentOutOfRangeException.ThrowIfLessThan(batchSize, 1);
        var aToB = new PacketQueue(capacity, mtu, blockWhenFull);
        var bToA = new PacketQueue(capacity, mtu, blockWhenFull);
        return (new InMemoryPacketDevice(name + "-a", mtu, batchSize, bToA, aToB), new InMemoryPacketDevice(name + "-b", mtu, batchSize, aToB, bToA));
    }

    /// <inheritdoc/>
    public string Name { get; }

    /// <inheritdoc/>
    public int Mtu { get; }

    /// <inheritdoc/>
    public int BatchSize { get; }

    /// <summary>Packets this end wrote that were dropped (too large, queue full in non-blocking mode, peer closed), plus packets it could not read into a too-small buffer.</summary>
    public long Dropped => Interlocked.Read(ref _dropped) + _outbound.Dropped + _inbound.ReaderDropped;

    /// <summary>Packets waiting to be read by this end.</summary>
    public int Pending => _inbound.Count;

    /// <inheritdoc/>
    public int Read(byte[][] buffers, Span<int> sizes, int offset)
    {
        var max = Math.Min(Math.Min(buffers.Length, sizes.Length), BatchSize);
        return max == 0 ? 0 : _inbound.Dequeue(buffers, sizes, offset, max);
    }

    /// <inheritdoc/>
    public int Write(byte[][] buffers, ReadOnlySpan<int> sizes, int offset, int count)
    {
        ObjectDisposedException.ThrowIf(Volatile.Read(ref _disposed) != 0, this);
        var accepted = 0;
        for (var start = 0; start < count; start += BatchSize)
        {
            var n = Math.Min(BatchSize, count - start);
            var ok = _outbound.Enqueue(buffers.AsSpan(start, n), sizes.Slice(start, n), offset);
            accepted += ok;
            if (ok < n && _outbound.IsClosed)
            {
                Interlocked.Add(ref _dropped, count - start - n);
                break;
            }
        }

        return accepted;
    }

    /// <summary>Closes this end (see the class remarks).</summary>
    public void Dispose()
    {
        if (Interlocked.Exchange(ref _disposed, 1) == 0)
        {
            _inbound.Close();
            _outbound.CloseWriter();
        }
    }

    /// <summary>A bounded FIFO of packets in preallocated slots; one reader, writers serialized by the lock.</summary>
    private sealed class PacketQueue
    {
        private readonly object _lock = new();
        private readonly byte[][] _slots;
        private readonly int[] _lengths;
        private readonly bool _blockWhenFull;
        private int _head;
        private int _count;
        private bool _closed;        // reader gone: nothing more is read or accepted
        private bool _writerClosed;  // writer gone: reader drains, then sees the end
        private long _dropped;
        private long _readerDropped;

        public PacketQueue(int capacity, int mtu, bool blockWhenFull)
        {
            _slots = new byte[capacity][];
            for (var i = 0; i < capacity; i++)
            {
                _slots[i] = new byte[mtu];
            }

            _lengths = new int[capacity];
            _blockWhenFull = blockWhenFull;
        }

        public long Dropped => Interlocked.Read(ref _dropped);

        public long ReaderDropped => Interlocked.Read(ref _readerDropped);

        public bool IsClosed
        {
            get
            {
                lock (_lock)
                {
                    return _closed || _writerClosed;
                }
            }
        }

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

        public int Enqueue(ReadOnlySpan<byte[]> buffers, ReadOnlySpan<int> sizes, int offset)
        {
            var accepted = 0;
            lock (_lock)
            {
                for (var i = 0; i < buffers.Length; i++)
                {
                    var size = sizes[i];
                    if (size > _slots[0].Length || size < 0)
                    {
                        _dropped++;
                        continue;
                    }

                    while (_count == _slots.Length && !_closed && !_writerClosed && _blockWhenFull)
                    {
                        Monitor.Wait(_lock);
                    }

                    if (_closed || _writerClosed)
                    {
                        _dropped += buffers.Length - i;
                        break;
                    }

                    if (_count == _slots.Length)
                    {
                        _dropped++;
                        continue;
                    }

                    var tail = (_head + _count) % _slots.Length;
                    buffers[i].AsSpan(offset, size).CopyTo(_slots[tail]);
                    _lengths[tail] = size;
                    _count++;
                    accepted++;
                }

                if (accepted > 0)
                {
                    Monitor.PulseAll(_lock);
                }
            }

            return accepted;
        }

        public int Dequeue(byte[][] buffers, Span<int> sizes, int offset, int max)
        {
            lock (_lock)
            {
                while (true)
                {
                    while (_count == 0 && !_closed && !_writerClosed)
                    {
                        Monitor.Wait(_lock);
                    }

                    if (_closed || _count == 0)
                    {
                        return 0;
                    }

                    var n = 0;
                    while (n < max && _count > 0)
                    {
                        var length = _lengths[_head];
                        if (buffers[n].Length - offset >= length)
                        {
                            _slots[_head].AsSpan(0, length).CopyTo(buffers[n].AsSpan(offset));
                            sizes[n] = length;
                            n++;
                        }
                        else
                        {
                            _readerDropped++;
                        }

                        _head = (_head + 1) % _slots.Length;
                        _count--;
                    }

                    Monitor.PulseAll(_lock);
                    if (n > 0)
                    {
                        return n;
                    }
                }
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

        public void CloseWriter()
        {
            lock (_lock)
            {
                _writerClosed = true;
                Monitor.PulseAll(_lock);
            }
        }
    }
}
