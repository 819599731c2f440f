using System.Buffers;
using System.Diagnostics;
using System.Runtime.CompilerServices;

namespace Sharptun.Transport;

/// <summary>
/// An in-memory UDP "network" for tests: binds created on it exchange datagrams by endpoint, with optional
/// loss, delay, reordering and duplication decided by seeded random generators so a failing test replays.
/// </summary>
/// <remarks>
/// <para>Each bind draws its fault decisions from its own <see cref="Random"/>, seeded from the network seed and the
/// order in which the bind was created, so the fate of a bind's n-th datagram depends only on the seed, never on
/// thread timing. Delay and reordering use real monotonic time (reordering is an extra <see cref="ReorderDelay"/>
/// that lets later datagrams overtake).</para>
/// <para>Fault settings may be changed at any time (e.g. cut the link mid-test with <c>DropRate = 1</c>).
/// Binds can change their local endpoint (<see cref="InMemoryBind.ChangeLocalEndpoint"/>) to test roaming.
/// Thread-safe. Datagram copies come from the network's own <see cref="ArrayPool{T}"/> (one pool shared by all threads,
/// not <see cref="ArrayPool{T}.Shared"/>, whose per-thread caches refill by allocating when datagrams are rented on one
/// thread and returned on another): no allocation per datagram in steady state.</para>
/// </remarks>
public sealed class InMemoryNetwork
{
    /// <summary>Where datagram copies come from and go back to (see the remarks).</summary>
    internal static readonly ArrayPool<byte> Pool = ArrayPool<byte>.Create(maxArrayLength: 128 * 1024, maxArraysPerBucket: 4096);

    private readonly object _lock = new();
    private readonly Dictionary<UdpEndpoint, InMemoryBind> _binds = [];
    private readonly int _seed;
    private int _bindsCreated;
    private ushort _nextPort = 49152;
    private long _sent, _delivered, _lost, _duplicated, _reordered, _unroutable, _overflowed;

    /// <summary>Creates a network whose fault decisions derive from <paramref name="seed"/>.</summary>
    public InMemoryNetwork(int seed = 0) => _seed = seed;

    /// <summary>The seed given at creation (print it in failure messages).</summary>
    public int Seed => _seed;

    /// <summary>Probability (0..1) that a datagram is lost.</summary>
    public double DropRate { get; set; }

    /// <summary>Probability (0..1) that a datagram is delivered twice.</summary>
    public double DuplicateRate { get; set; }

    /// <summary>Probability (0..1) that a datagram is held back by <see cref="ReorderDelay"/> so later ones overtake it.</summary>
    public double ReorderRate { get; set; }

    /// <summary>Extra delay of a reordered datagram. Default 5 ms.</summary>
    public TimeSpan ReorderDelay { get; set; } = TimeSpan.FromMilliseconds(5);

    /// <summary>One-way delay added to every datagram. Default zero.</summary>
    public TimeSpan Delay { get; set; }

    /// <summary>Datagrams each bind queues for receiving; more are dropped (as a full socket buffer would). Default 4096.</summary>
    public int ReceiveQueueCapacity { get; set; } = 4096;

    /// <summary>Datagrams senders handed to the network.</summary>
    public long Sent => Interlocked.Read(ref _sent);

    /// <summary>Datagrams queued at a receiving bind (duplicates included).</summary>
    public long Delivered => Interlocked.Read(ref _delivered);

    /// <summary>Datagrams lost by <see cref="DropRate"/>.</summary>
    public long Lost => Interlocked.Read(ref _lost);

    /// <summary>Extra copies made by <see cref="DuplicateRate"/>.</summary>
    public long Duplicated => Interlocked.Read(ref _duplicated);

    /// <summary>Datagrams held back by <see cref="ReorderRate"/>.</summary>
    public long Reordered => Interlocked.Read(ref _reordered);

    /// <summary>Datagrams sent to an endpoint no bind holds.</summary>
    public long Unroutable => Interlocked.Read(ref _unroutable);

    /// <summary>Datagrams dropped because the receiver's queue was full.</summary>
    public long Overflowed => Interlocked.Read(ref _overflowed);

    /// <summary>Creates a bind at <paramref name="local"/>; port 0 picks a free port (deterministically, from 49152 up).</summary>
    /// <exception cref="InvalidOperationException">The endpoint is taken.</exception>
    public InMemoryBind CreateBind(UdpEndpoint local)
    {
        lock (_lock)
        {
            local = Allocate(local);
            var bind = new InMemoryBind(this, local, new Random(unchecked((_seed * 397) ^ ++_bindsCreated)));
            _binds.Add(local, bind);
            return bind;
        }
    }

    /// <summary>Creates a bind at an endpoint given as text, e.g. "10.0.0.1:0" or "[fd00::1]:51820".</summary>
    public InMemoryBind CreateBind(string local) => CreateBind(UdpEndpoint.Parse(local));

    /// <summary>A factory opening binds on <paramref name="address"/> (its port is ignored), as a device reopens its bind when the listen port changes.</summary>
    public IDatagramBindFactory CreateFactory(UdpEndpoint address) => new Factory(this, address);

    internal void Move(InMemoryBind bind, UdpEndpoint from, UdpEndpoint to)
    {
        lock (_lock)
        {
            if (from == to)
            {
                return;
            }

            to = Allocate(to);
            _binds.Remove(from);
            _binds.Add(to, bind);
            bind.SetLocal(to);
        }
    }

    internal void Remove(UdpEndpoint local, InMemoryBind bind)
    {
        lock (_lock)
        {
            if (_binds.TryGetValue(local, out var current) && current == bind)
            {
                _binds.Remove(local);
            }
        }
    }

    /// <summary>
    /// Sends <paramref name="datagram"/> to <paramref name="destination"/> with any claimed <paramref name="source"/>,
    /// no bind needed: an attacker spoofing source addresses, as raw sockets allow on a real network. Fault decisions
    /// (loss, duplication, reordering) come from <see cref="Random.Shared"/>, so they do not replay by seed.
    /// </summary>
    public void SendSpoofed(UdpEndpoint source, ReadOnlySpan<byte> datagram, UdpEndpoint destination) =>
        Transmit(source, datagram, destination, Random.Shared);

    internal void Transmit(UdpEndpoint source, ReadOnlySpan<byte> datagram, UdpEndpoint destination, Random random)
    {
        Interlocked.Increment(ref _sent);

        // Decisions are drawn in a fixed order, whatever the settings, so a seed's sequence does not shift.
        var lose = random.NextDouble() < DropRate;
        var duplicate = random.NextDouble() < DuplicateRate;
        var reorder = random.NextDouble() < ReorderRate;
        if (lose)
        {
            Interlocked.Increment(ref _lost);
            return;
        }

        InMemoryBind? target;
        lock (_lock)
        {
            _binds.TryGetValue(destination, out target);
        }

        if (target is null)
        {
            Interlocked.Increment(ref _unroutable);
            return;
        }

        var delay = Delay;
        if (reorder)
        {
            delay += ReorderDelay;
            Interlocked.Increment(ref _reordered);
        }

        var deliverAt = Stopwatch.GetTimestamp() + (long)(delay.TotalSeconds * Stopwatch.Frequency);
        for (var copy = 0; copy < (duplicate ? 2 : 1); copy++)
        {
            if (target.Enqueue(datagram, source, deliverAt, ReceiveQueueCapacity))
            {
                Interlocked.Increment(ref _delivered);
            }
            else
            {
                Interlocked.Increment(ref _overflowed);
            }
        }

        if (duplicate)
        {
            Interlocked.Increment(ref _duplicated);
        }
    }

    private UdpEndpoint Allocate(UdpEndpoint local)
    {
        if (local.Port == 0)
        {
            for (var i = 0; i < 16384; i++)
            {
                var candidate = local.WithPort(_nextPort);
                _nextPort = _nextPort == ushort.MaxValue ? (ushort)49152 : (ushort)(_nextPort + 1);
                if (!_binds.ContainsKey(candidate))
                {
                    return candidate;
                }
            }

            throw new InvalidOperationException("no free port");
        }

        if (_binds.ContainsKey(local))
        {
            throw new InvalidOperationException($"{local} is already bound");
        }

        return local;
    }

    private sealed class Factory(InMemoryNetwork network, UdpEndpoint address) : IDatagramBindFactory
    {
        public IDatagramBind Open(ushort port) => network.CreateBind(address.WithPort(port));
    }
}

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
