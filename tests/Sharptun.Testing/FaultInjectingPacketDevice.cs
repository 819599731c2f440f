using System.Buffers;
using System.Diagnostics;
using Sharptun.Transport;

namespace Sharptun.Testing;

/// <summary>
/// An <see cref="IPacketDevice"/> decorator that injects seeded loss, duplication, reordering and delay in both
/// directions — the project's own fault injector (used with 2% loss in the kernel TCP tests).
/// </summary>
/// <remarks>
/// Packets written to this device pass the fault model and are written to the inner device by a pump thread; packets
/// the inner device reads pass the fault model (another pump thread) and are returned by <see cref="Read"/>. Each
/// direction holds at most <see cref="QueueCapacity"/> packets; beyond that packets are dropped and counted.
/// Owns the inner device: <see cref="Dispose"/> disposes it. Thread-safe for one reader and one writer.
/// </remarks>
public sealed class FaultInjectingPacketDevice : IPacketDevice
{
    /// <summary>Most packets held per direction.</summary>
    public const int QueueCapacity = 4096;

    private readonly IPacketDevice _inner;
    private readonly DelayLine _toInner;
    private readonly DelayLine _fromInner;
    private readonly Thread _writer;
    private readonly Thread _reader;
    private volatile bool _disposed;

    public FaultInjectingPacketDevice(IPacketDevice inner, FaultOptions options)
    {
        ArgumentNullException.ThrowIfNull(inner);
        ArgumentNullException.ThrowIfNull(options);
        _inner = inner;
        _toInner = new DelayLine(options, options.Seed * 2 + 1);
        _fromInner = new DelayLine(options, options.Seed * 2 + 2);
        _writer = new Thread(PumpToInner) { IsBackground = true, Name = "fault-inject-out" };
        _reader = new Thread(PumpFromInner) { IsBackground = true, Name = "fault-inject-in" };
        _writer.Start();
        _reader.Start();
    }

    public string Name => _inner.Name + "+faults";

    public int Mtu => _inner.Mtu;

    public int BatchSize => _inner.BatchSize;

    /// <summary>Packets dropped by the loss model (both directions).</summary>
    public long Dropped => _toInner.Dropped + _fromInner.Dropped;

    /// <summary>Packets duplicated (both directions).</summary>
    public long Duplicated => _toInner.Duplicated + _fromInner.Duplicated;

    /// <summary>Packets held back by the reorder model (both directions).</summary>
    public long Reordered => _toInner.Reordered + _fromInner.Reordered;

    /// <summary>Packets dropped because a direction's queue was full.</summary>
    public long Overflowed => _toInner.Overflowed + _fromInner.Overflowed;

    public int Read(byte[][] buffers, Span<int> sizes, int offset)
    {
        var max = Math.Min(Math.Min(buffers.Length, sizes.Length), BatchSize);
        var n = 0;
        while (n < max)
        {
            if (!_fromInner.TryTake(n == 0, out var packet, out var length))
            {
                break;
            }

            packet.AsSpan(0, length).CopyTo(buffers[n].AsSpan(offset));
            sizes[n++] = length;
            ArrayPool<byte>.Shared.Return(packet);
        }

        return n;
    }

    public int Write(byte[][] buffers, ReadOnlySpan<int> sizes, int offset, int count)
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        for (var i = 0; i < count; i++)
        {
            _toInner.Offer(buffers[i].AsSpan(offset, sizes[i]));
        }

        return count;
    }

    public void Dispose()
    {
        if (_disposed)
        {
            return;
        }

        _disposed = true;
        _toInner.Close();
        _fromInner.Close();
        _inner.Dispose();
        _writer.Join(TimeSpan.FromSeconds(5));
        _reader.Join(TimeSpan.FromSeconds(5));
    }

    private void PumpToInner()
    {
        var one = new byte[1][];
        Span<int> size = stackalloc int[1];
        try
        {
            while (_toInner.TryTake(true, out var packet, out var length))
            {
                one[0] = packet;
                size[0] = length;
                _inner.Write(one, size, 0, 1);
                ArrayPool<byte>.Shared.Return(packet);
            }
        }
        catch (ObjectDisposedException)
        {
        }
    }

    private void PumpFromInner()
    {
        var batch = Math.Max(1, _inner.BatchSize);
        var buffers = new byte[batch][];
        for (var i = 0; i < batch; i++)
        {
            buffers[i] = new byte[_inner.Mtu + 64];
        }

        var sizes = new int[batch];
        try
        {
            while (!_disposed)
            {
                var n = _inner.Read(buffers, sizes, 0);
                if (n == 0)
                {
                    break;
                }

                for (var i = 0; i < n; i++)
                {
                    _fromInner.Offer(buffers[i].AsSpan(0, sizes[i]));
                }
            }
        }
        catch (ObjectDisposedException)
        {
        }

        _fromInner.Close();
    }

    /// <summary>One direction: decides each packet's fate and releases it at its due time.</summary>
    private sealed class DelayLine(FaultOptions options, int seed)
    {
        private readonly Random _random = new(seed);
        private readonly PriorityQueue<(byte[] Packet, int Length), (long Due, long Order)> _queue = new();
        private readonly object _lock = new();
        private long _order;
        private bool _closed;

        public long Dropped;
        public long Duplicated;
        public long Reordered;
        public long Overflowed;

        public void Offer(ReadOnlySpan<byte> packet)
        {
            lock (_lock)
            {
                if (_closed)
                {
                    return;
                }

                if (_random.NextDouble() < options.LossRate)
                {
                    Dropped++;
                    return;
                }

                var copies = _random.NextDouble() < options.DuplicateRate ? 2 : 1;
                Duplicated += copies - 1;
                for (var c = 0; c < copies; c++)
                {
                    var buffer = ArrayPool<byte>.Shared.Rent(packet.Length);
                    packet.CopyTo(buffer);
                    var reorder = c == 0 && _random.NextDouble() < options.ReorderRate;
                    Reordered += reorder ? 1 : 0;
                    Enqueue(buffer, packet.Length, reorder ? options.ReorderHold : TimeSpan.Zero);
                }

                Monitor.PulseAll(_lock);
            }
        }

        private void Enqueue(byte[] buffer, int length, TimeSpan extra)
        {
            if (_queue.Count >= QueueCapacity)
            {
                Overflowed++;
                ArrayPool<byte>.Shared.Return(buffer);
                return;
            }

            var delay = options.Delay + options.Jitter * _random.NextDouble() + extra;
            var due = Stopwatch.GetTimestamp() + (long)(delay.TotalSeconds * Stopwatch.Frequency);
            _queue.Enqueue((buffer, length), (due, _order++));
        }

        /// <summary>Takes the next due packet; when <paramref name="wait"/>, blocks until one is due or the line closes.</summary>
        public bool TryTake(bool wait, out byte[] packet, out int length)
        {
            lock (_lock)
            {
                while (true)
                {
                    if (_queue.TryPeek(out var item, out var key))
                    {
                        var remaining = key.Due - Stopwatch.GetTimestamp();
                        if (remaining <= 0)
                        {
                            _queue.Dequeue();
                            (packet, length) = item;
                            return true;
                        }

                        if (!wait || _closed)
                        {
                            break;
                        }

                        Monitor.Wait(_lock, TimeSpan.FromSeconds((double)remaining / Stopwatch.Frequency) + TimeSpan.FromMilliseconds(1));
                        continue;
                    }

                    if (!wait || _closed)
                    {
                        break;
                    }

                    Monitor.Wait(_lock);
                }

                packet = [];
                length = 0;
                return false;
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
