using System.Net;
using Sharptun.NetStack.Tcp;
using Sharptun.NetStack.Wire;
using Sharptun.Transport;

namespace Sharptun.NetStack.Tests.Tcp;

/// <summary>
/// Two (or more) TCP layers joined by a simulated link on a virtual clock, with a seeded fault model:
/// loss, duplication, delay jitter (which reorders) and an optional per-packet filter for targeted drops.
/// Single-threaded: tests call <see cref="Step"/> / <see cref="RunUntil"/>; nothing reads the real clock.
/// </summary>
internal sealed class SimNetwork
{
    private readonly PriorityQueue<SimPacket, (TimeSpan, long)> _inflight = new();
    private readonly List<SimHost> _hosts = new();
    private long _order;

    public SimNetwork(int seed = 1)
    {
        Seed = seed;
        Random = new Random(seed);
    }

    public int Seed { get; }
    public Random Random { get; }
    public Lock Gate { get; } = new();
    public TimeSpan Now { get; set; } = TimeSpan.FromSeconds(1000);
    public double LossRate { get; set; }
    public double DuplicateRate { get; set; }
    public TimeSpan BaseDelay { get; set; } = TimeSpan.FromMilliseconds(10);
    public TimeSpan Jitter { get; set; }
    public int Mtu { get; set; } = 1500;

    /// <summary>Returns true to drop a packet (applied before the random fault model).</summary>
    public Func<SimPacket, bool>? Filter { get; set; }

    /// <summary>Called for every packet handed to the link (after the filter decided to keep it or not).</summary>
    public Action<SimPacket>? Tap { get; set; }

    public long PacketsSent { get; private set; }
    public long PacketsDropped { get; private set; }

    public SimHost AddHost(string address, TcpOptions? options = null)
    {
        var h = new SimHost(this, IpAddr.Parse(address), options ?? new TcpOptions(), (Seed * 31) + _hosts.Count);
        _hosts.Add(h);
        return h;
    }

    internal void Send(SimHost from, in IpAddr src, in IpAddr dst, ReadOnlySpan<byte> segment)
    {
        PacketsSent++;
        var p = new SimPacket(from, src, dst, segment.ToArray());
        Tap?.Invoke(p);
        if (Filter is not null && Filter(p))
        {
            PacketsDropped++;
            return;
        }

        if (LossRate > 0 && Random.NextDouble() < LossRate)
        {
            PacketsDropped++;
            return;
        }

        Enqueue(p);
        if (DuplicateRate > 0 && Random.NextDouble() < DuplicateRate)
        {
            Enqueue(p);
        }
    }

    private void Enqueue(SimPacket p)
    {
        var delay = BaseDelay;
        if (Jitter > TimeSpan.Zero)
        {
            delay += TimeSpan.FromTicks((long)(Random.NextDouble() * Jitter.Ticks));
        }

        _inflight.Enqueue(p, (Now + delay, _order++));
    }

    /// <summary>Advances to the next event (packet arrival or timer), processes it. False when nothing is pending.</summary>
    public bool Step()
    {
        lock (Gate)
        {
            var next = TimeSpan.MaxValue;
            if (_inflight.TryPeek(out _, out var pri))
            {
                next = pri.Item1;
            }

            foreach (var h in _hosts)
            {
                var d = h.Tcp.NextDeadline;
                if (d < next)
                {
                    next = d;
                }
            }

            if (next == TimeSpan.MaxValue)
            {
                return false;
            }

            if (next > Now)
            {
                Now = next;
            }

            while (_inflight.TryPeek(out var p, out pri) && pri.Item1 <= Now)
            {
                _inflight.Dequeue();
                foreach (var h in _hosts)
                {
                    if (h.Address == p.Destination)
                    {
                        h.Tcp.OnSegment(p.Source, p.Destination, p.Segment);
                    }
                }
            }

            foreach (var h in _hosts)
            {
                h.Tcp.Poll(Now);
            }

            return true;
        }
    }

    /// <summary>Steps until <paramref name="condition"/> holds; fails when virtual time passes <paramref name="limit"/>.</summary>
    /// <summary>Closes <paramref name="client"/> first and runs until it sits in TIME-WAIT and <paramref name="server"/> is closed.</summary>
    public void CloseClientFirst(TcpConnection client, TcpConnection server, TimeSpan limit)
    {
        client.ShutdownWrite(Now);
        RunUntil(() => server.State == TcpState.CloseWait, limit);
        server.ShutdownWrite(Now);
        RunUntil(() => client.State == TcpState.TimeWait && server.State == TcpState.Closed, limit);
    }

    public void RunUntil(Func<bool> condition, TimeSpan limit, Action? eachStep = null)
    {
        var end = Now + limit;
        while (true)
        {
            eachStep?.Invoke();
            if (condition())
            {
                return;
            }

            if (Now > end)
            {
                throw new TimeoutException($"Condition not reached within {limit} of virtual time (seed {Seed}).");
            }

            if (!Step())
            {
                if (condition())
                {
                    return;
                }

                throw new TimeoutException($"Network went idle before the condition held (seed {Seed}).");
            }
        }
    }

    /// <summary>Runs all events up to <paramref name="duration"/> from now.</summary>
    public void RunFor(TimeSpan duration, Action? eachStep = null)
    {
        var end = Now + duration;
        while (true)
        {
            eachStep?.Invoke();
            TimeSpan next = TimeSpan.MaxValue;
            lock (Gate)
            {
                if (_inflight.TryPeek(out _, out var pri))
                {
                    next = pri.Item1;
                }

                foreach (var h in _hosts)
                {
                    var d = h.Tcp.NextDeadline;
                    if (d < next)
                    {
                        next = d;
                    }
                }
            }

            if (next > end)
            {
                Now = end;
                return;
            }

            Step();
        }
    }
}

internal sealed record SimPacket(SimHost From, IpAddr Source, IpAddr Destination, byte[] Segment)
{
    public TcpRepr Repr
    {
        get
        {
            TcpRepr.TryParse(Segment, Source, Destination, false, out var r, out _);
            return r;
        }
    }

    public int PayloadLength
    {
        get
        {
            TcpRepr.TryParse(Segment, Source, Destination, false, out _, out int off);
            return Segment.Length - off;
        }
    }
}

/// <summary>One simulated host: an IStackContext with a single address and a TCP layer.</summary>
internal sealed class SimHost : IStackContext
{
    private readonly SimNetwork _net;

    public SimHost(SimNetwork net, IpAddr address, TcpOptions options, int seed)
    {
        _net = net;
        Address = address;
        Tcp = new TcpLayer(this, options, seed);
        Tcp.SelectSource = SelectSource;
    }

    private bool SelectSource(in IpAddr destination, out IpAddr source)
    {
        source = Address;
        return true;
    }

    public IpAddr Address { get; }
    public TcpLayer Tcp { get; }
    public bool Blocked { get; set; }
    public Lock Gate => _net.Gate;
    public TimeSpan Now => _net.Now;
    public int Mtu => _net.Mtu;
    public int Wakes { get; private set; }

    public void Wake() => Wakes++;

    public bool TrySendIp(in IpAddr source, in IpAddr destination, byte protocol, ReadOnlySpan<byte> transportSegment)
    {
        if (Blocked)
        {
            return false;
        }

        _net.Send(this, source, destination, transportSegment);
        return true;
    }

    public bool IsLocalAddress(in IpAddr address) => address == Address;

    public IPEndPoint EndPoint(int port) => new(Address.ToIPAddress(), port);
}
