using System.Diagnostics;
using System.Runtime.CompilerServices;
using Sharptun.Transport;

namespace Sharptun.Testing;

/// <summary>A bind on an <see cref="InMemoryNetwork"/>. Contract as <see cref="IDatagramBind"/>.</summary>
public sealed class InMemoryBind : IDatagramBind
{
    private readonly InMemoryNetwork _network;
    private readonly Random _random;
    private readonly object _receiveLock = new();
    private readonly object _sendLock = new();
    private readonly PriorityQueue<Queued, (long DeliverAt, long Sequence)> _queue = new();
    private long _sequence;
    private StrongBox<UdpEndpoint> _local; // swapped whole, so a reader never sees a torn endpoint
    private bool _closed;
    private long _dropped;

    internal InMemoryBind(InMemoryNetwork network, UdpEndpoint local, Random random)
    {
        _network = network;
        _local = new StrongBox<UdpEndpoint>(local);
        _random = random;
    }

    /// <summary>The endpoint this bind receives on and sends from.</summary>
    public UdpEndpoint LocalEndpoint => Volatile.Read(ref _local).Value;

    /// <inheritdoc/>
    public ushort LocalPort => LocalEndpoint.Port;

    /// <inheritdoc/>
    public int BatchSize => 128;

    /// <summary>The mark last set with <see cref="SetMark"/> (recorded only).</summary>
    public uint Mark { get; private set; }

    /// <summary>Datagrams received that did not fit the caller's buffer.</summary>
    public long Dropped => Interlocked.Read(ref _dropped);

    /// <summary>
    /// Moves this bind to another local endpoint (port 0 = pick one), as when a roaming client's address changes:
    /// datagrams sent to the old endpoint are unroutable from now on, and later sends carry the new source.
    /// </summary>
    public void ChangeLocalEndpoint(UdpEndpoint newLocal)
    {
        lock (_sendLock)
        {
            ObjectDisposedException.ThrowIf(_closed, this);
            _network.Move(this, LocalEndpoint, newLocal);
        }
    }

    internal void SetLocal(UdpEndpoint local) => Volatile.Write(ref _local, new StrongBox<UdpEndpoint>(local));

    /// <inheritdoc/>
    public int Receive(byte[][] buffers, Span<int> sizes, Span<UdpEndpoint> endpoints)
    {
        var max = Math.Min(Math.Min(buffers.Length, sizes.Length), Math.Min(endpoints.Length, BatchSize));
        if (max == 0)
        {
            return 0;
        }

        lock (_receiveLock)
        {
            while (true)
            {
                if (_closed)
                {
                    return 0;
                }

                var now = Stopwatch.GetTimestamp();
                var n = 0;
                while (n < max && _queue.TryPeek(out var head, out var priority) && priority.DeliverAt <= now)
                {
                    _queue.Dequeue();
                    if (head.Length <= buffers[n].Length)
                    {
                        head.Data.AsSpan(0, head.Length).CopyTo(buffers[n]);
                        sizes[n] = head.Length;
                        endpoints[n] = head.Source;
                        n++;
                    }
                    else
                    {
                        _dropped++;
                    }

                    InMemoryNetwork.Pool.Return(head.Data);
                }

                if (n > 0)
                {
                    return n;
                }

                if (_queue.TryPeek(out _, out var next))
                {
                    var waitMs = (int)Math.Clamp((next.DeliverAt - now) * 1000 / Stopwatch.Frequency + 1, 1, int.MaxValue);
                    Monitor.Wait(_receiveLock, waitMs);
                }
                else
                {
                    Monitor.Wait(_receiveLock);
                }
            }
        }
    }

    /// <inheritdoc/>
    public int Send(byte[][] buffers, ReadOnlySpan<int> sizes, int offset, int count, in UdpEndpoint destination)
    {
        lock (_sendLock)
        {
            ObjectDisposedException.ThrowIf(_closed, this);
            var source = LocalEndpoint;
            for (var i = 0; i < count; i++)
            {
                _network.Transmit(source, buffers[i].AsSpan(offset, sizes[i]), destination, _random);
            }
        }

        return count;
    }

    /// <inheritdoc/>
    public void SetMark(uint fwmark) => Mark = fwmark;

    /// <summary>Closes the bind: a blocked <see cref="Receive"/> returns 0, the endpoint becomes free.</summary>
    public void Dispose()
    {
        lock (_sendLock)
        {
            lock (_receiveLock)
            {
                if (_closed)
                {
                    return;
                }

                _closed = true;
                while (_queue.TryDequeue(out var q, out _))
                {
                    InMemoryNetwork.Pool.Return(q.Data);
                }

                Monitor.PulseAll(_receiveLock);
            }

            _network.Remove(LocalEndpoint, this);
        }
    }

    internal bool Enqueue(ReadOnlySpan<byte> datagram, UdpEndpoint source, long deliverAt, int capacity)
    {
        lock (_receiveLock)
        {
            if (_closed || _queue.Count >= capacity)
            {
                return false;
            }

            var data = InMemoryNetwork.Pool.Rent(Math.Max(datagram.Length, 1));
            datagram.CopyTo(data);
            _queue.Enqueue(new Queued(data, datagram.Length, source), (deliverAt, _sequence++));
            Monitor.Pulse(_receiveLock);
            return true;
        }
    }

    private readonly record struct Queued(byte[] Data, int Length, UdpEndpoint Source);
}
