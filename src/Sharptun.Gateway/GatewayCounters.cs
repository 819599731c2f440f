using System.Collections.Concurrent;
using System.Net;
using Sharptun.Hosting;

namespace Sharptun.Gateway;

/// <summary>
/// Counters of one peer (or, in <see cref="GatewayCounters.Total"/>, of all peers). Thread-safe: relays update them
/// from any thread; reads are individually atomic, not a consistent snapshot across counters.
/// </summary>
public sealed class PeerCounters
{
    private readonly PeerCounters? _total;
    private long _openTcp;
    private long _openUdpFlows;
    private long _tcpRelayed;
    private long _tcpDenied;
    private long _tcpRefusedByCap;
    private long _tcpHostFailures;
    private long _udpFlows;
    private long _udpDenied;
    private long _udpRefusedByCap;
    private long _udpDropped;
    private long _bytesToDestinations;
    private long _bytesFromDestinations;
    private long _dnsQueries;

    internal PeerCounters(PeerCounters? total = null) => _total = total;

    /// <summary>Relayed TCP connections open now.</summary>
    public long OpenTcp => Interlocked.Read(ref _openTcp);

    /// <summary>UDP flows open now.</summary>
    public long OpenUdpFlows => Interlocked.Read(ref _openUdpFlows);

    /// <summary>TCP connections relayed to a destination since start.</summary>
    public long TcpRelayed => Interlocked.Read(ref _tcpRelayed);

    /// <summary>TCP connections the policy refused (answered with RST).</summary>
    public long TcpDenied => Interlocked.Read(ref _tcpDenied);

    /// <summary>TCP connections refused because a connection cap was reached (reset).</summary>
    public long TcpRefusedByCap => Interlocked.Read(ref _tcpRefusedByCap);

    /// <summary>TCP connections the destination refused or did not answer in time (reset).</summary>
    public long TcpHostFailures => Interlocked.Read(ref _tcpHostFailures);

    /// <summary>UDP flows opened since start.</summary>
    public long UdpFlows => Interlocked.Read(ref _udpFlows);

    /// <summary>UDP datagrams the policy refused (answered with ICMP administratively prohibited).</summary>
    public long UdpDenied => Interlocked.Read(ref _udpDenied);

    /// <summary>UDP datagrams refused because a connection cap was reached (answered with ICMP administratively prohibited).</summary>
    public long UdpRefusedByCap => Interlocked.Read(ref _udpRefusedByCap);

    /// <summary>UDP datagrams dropped on the way (too large for the tunnel, a send error).</summary>
    public long UdpDropped => Interlocked.Read(ref _udpDropped);

    /// <summary>Payload bytes relayed from the peer to destinations (TCP and UDP).</summary>
    public long BytesToDestinations => Interlocked.Read(ref _bytesToDestinations);

    /// <summary>Payload bytes relayed from destinations to the peer (TCP and UDP).</summary>
    public long BytesFromDestinations => Interlocked.Read(ref _bytesFromDestinations);

    /// <summary>DNS queries answered for the peer.</summary>
    public long DnsQueries => Interlocked.Read(ref _dnsQueries);

    internal void AddOpenTcp(long delta)
    {
        Interlocked.Add(ref _openTcp, delta);
        _total?.AddOpenTcp(delta);
    }

    internal void AddOpenUdpFlows(long delta)
    {
        Interlocked.Add(ref _openUdpFlows, delta);
        _total?.AddOpenUdpFlows(delta);
    }

    internal void CountTcpRelayed()
    {
        Interlocked.Increment(ref _tcpRelayed);
        _total?.CountTcpRelayed();
    }

    internal void CountTcpDenied()
    {
        Interlocked.Increment(ref _tcpDenied);
        _total?.CountTcpDenied();
    }

    internal void CountTcpRefusedByCap()
    {
        Interlocked.Increment(ref _tcpRefusedByCap);
        _total?.CountTcpRefusedByCap();
    }

    internal void CountTcpHostFailure()
    {
        Interlocked.Increment(ref _tcpHostFailures);
        _total?.CountTcpHostFailure();
    }

    internal void CountUdpFlow()
    {
        Interlocked.Increment(ref _udpFlows);
        _total?.CountUdpFlow();
    }

    internal void CountUdpDenied()
    {
        Interlocked.Increment(ref _udpDenied);
        _total?.CountUdpDenied();
    }

    internal void CountUdpRefusedByCap()
    {
        Interlocked.Increment(ref _udpRefusedByCap);
        _total?.CountUdpRefusedByCap();
    }

    internal void CountUdpDropped()
    {
        Interlocked.Increment(ref _udpDropped);
        _total?.CountUdpDropped();
    }

    internal void AddBytes(long toDestinations, long fromDestinations)
    {
        Interlocked.Add(ref _bytesToDestinations, toDestinations);
        Interlocked.Add(ref _bytesFromDestinations, fromDestinations);
        _total?.AddBytes(toDestinations, fromDestinations);
    }

    internal void CountDnsQuery()
    {
        Interlocked.Increment(ref _dnsQueries);
        _total?.CountDnsQuery();
    }
}

/// <summary>A gateway's counters: the totals and one <see cref="PeerCounters"/> per peer public key.</summary>
public sealed class GatewayCounters
{
    /// <summary>The key flows from a source address no peer's AllowedIPs covers (a peer removed meanwhile) are counted under.</summary>
    public const string UnknownPeer = "(unknown)";

    private readonly ConcurrentDictionary<string, PeerState> _peers = new(StringComparer.Ordinal);
    private readonly ConnectionGate _global;
    private readonly int _perPeer;

    internal GatewayCounters(int maxConnections, int maxConnectionsPerPeer)
    {
        _global = new ConnectionGate(maxConnections);
        _perPeer = maxConnectionsPerPeer;
    }

    private long _dnsForwarded;
    private long _dnsUpstreamFailures;

    /// <summary>All peers together.</summary>
    public PeerCounters Total { get; } = new();

    /// <summary>DNS queries a host nameserver answered (forwarded from peers).</summary>
    public long DnsForwarded => Interlocked.Read(ref _dnsForwarded);

    /// <summary>
    /// DNS queries no host nameserver answered in time (silence, garbage, refusal, or too many forwards under way): the
    /// host resolver (A, AAAA) or SERVFAIL answered them.
    /// </summary>
    public long DnsUpstreamFailures => Interlocked.Read(ref _dnsUpstreamFailures);

    /// <summary>Counts one forwarded query's outcome (true: answered upstream).</summary>
    internal void CountDnsForward(bool answered)
    {
        if (answered)
        {
            Interlocked.Increment(ref _dnsForwarded);
        }
        else
        {
            Interlocked.Increment(ref _dnsUpstreamFailures);
        }
    }

    /// <summary>TCP connections and UDP flows open now, all peers (what the global cap counts).</summary>
    public int Open => _global.Open;

    /// <summary>The counters of each peer seen so far, by public key (base64).</summary>
    public IReadOnlyDictionary<string, PeerCounters> Peers => _peers.ToDictionary(p => p.Key, p => p.Value.Counters, StringComparer.Ordinal);

    /// <summary>The counters of <paramref name="publicKey"/> (created on first use).</summary>
    internal PeerCounters For(string publicKey) => State(publicKey).Counters;

    /// <summary>
    /// Admits one flow of <paramref name="publicKey"/> under the global and the per-peer cap; null when either is full.
    /// The lease frees both slots once, however often it is disposed.
    /// </summary>
    internal IDisposable? TryAdmit(string publicKey)
    {
        var global = _global.TryEnter();
        if (global is null)
        {
            return null;
        }

        var peer = State(publicKey).Gate.TryEnter();
        if (peer is null)
        {
            global.Dispose();
            return null;
        }

        return new Lease(global, peer);
    }

    private PeerState State(string publicKey) => _peers.GetOrAdd(publicKey, static (_, self) => new PeerState(new ConnectionGate(self._perPeer), new PeerCounters(self.Total)), this);

    private sealed record PeerState(ConnectionGate Gate, PeerCounters Counters);

    private sealed class Lease(IDisposable global, IDisposable peer) : IDisposable
    {
        public void Dispose()
        {
            peer.Dispose();
            global.Dispose();
        }
    }
}

/// <summary>Which peer a flow belongs to: the peer whose AllowedIPs cover the flow's source (WireGuard's cryptokey routing guarantees it sent it).</summary>
internal sealed class PeerDirectory
{
    private readonly WireGuardTunnel _tunnel;
    private volatile (IPNetwork Prefix, string Key)[] _routes;

    public PeerDirectory(WireGuardTunnel tunnel)
    {
        _tunnel = tunnel;
        _routes = Snapshot(tunnel);
    }

    /// <summary>The peer of <paramref name="source"/>; a miss refreshes the table once unless <paramref name="cachedOnly"/>.</summary>
    public string Find(IPAddress source, bool cachedOnly = false)
    {
        source = DestinationRule.Normalize(source);
        if (Lookup(_routes, source) is { } key)
        {
            return key;
        }

        if (cachedOnly)
        {
            return GatewayCounters.UnknownPeer;
        }

        var fresh = Snapshot(_tunnel);
        _routes = fresh;
        return Lookup(fresh, source) ?? GatewayCounters.UnknownPeer;
    }

    private static string? Lookup((IPNetwork Prefix, string Key)[] routes, IPAddress source)
    {
        string? best = null;
        var bestLength = -1;
        foreach (var (prefix, key) in routes)
        {
            if (prefix.PrefixLength > bestLength && prefix.Contains(source))
            {
                best = key;
                bestLength = prefix.PrefixLength;
            }
        }

        return best;
    }

    private static (IPNetwork, string)[] Snapshot(WireGuardTunnel tunnel)
    {
        try
        {
            return [.. tunnel.Peers.SelectMany(p => p.AllowedIps.Select(a => (a, p.PublicKey)))];
        }
        catch (ObjectDisposedException)
        {
            return [];
        }
    }
}
