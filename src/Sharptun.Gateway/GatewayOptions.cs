namespace Sharptun.Gateway;

/// <summary>What a gateway relays and how much (the <c>[Gateway]</c> section of its config, <see cref="GatewayConfig"/>).</summary>
public sealed class GatewayOptions
{
    /// <summary>Destinations peers may reach (see <see cref="GatewayPolicy"/>); they also open reserved ranges they lie inside.</summary>
    public IList<DestinationRule> Allow { get; } = [];

    /// <summary>Destinations peers may not reach; a deny rule wins over any allow rule.</summary>
    public IList<DestinationRule> Deny { get; } = [];

    /// <summary>
    /// Whether destinations that no rule names and that are not reserved (public addresses) are allowed. Default true:
    /// an exit to the internet; false makes <see cref="Allow"/> the complete list.
    /// </summary>
    public bool AllowUnlisted { get; set; } = true;

    /// <summary>Most TCP connections and UDP flows open at once, over all peers (default 4096).</summary>
    public int MaxConnections { get; set; } = 4096;

    /// <summary>Most TCP connections and UDP flows open at once per peer (default 1024).</summary>
    public int MaxConnectionsPerPeer { get; set; } = 1024;

    /// <summary>A relayed TCP connection with no byte either way for this long is reset both ways (default 10 minutes).</summary>
    public TimeSpan TcpIdleTimeout { get; set; } = TimeSpan.FromMinutes(10);

    /// <summary>A UDP flow (peer address and port, destination) with no datagram either way for this long is closed (default 60 s).</summary>
    public TimeSpan UdpIdleTimeout { get; set; } = TimeSpan.FromSeconds(60);

    /// <summary>How long the host's connect to a TCP destination may take before the peer's connection is reset (default 10 s).</summary>
    public TimeSpan ConnectTimeout { get; set; } = TimeSpan.FromSeconds(10);

    /// <summary>
    /// Answer DNS queries (UDP and TCP port 53) sent to the gateway's tunnel addresses (default true): every query type is
    /// forwarded to the host's nameservers (<c>/etc/resolv.conf</c>); when none is configured or none answers, A and AAAA
    /// are answered through the host's resolver.
    /// </summary>
    public bool Dns { get; set; } = true;

    /// <summary>
    /// Test seam: the resolv.conf whose nameservers DNS queries are forwarded to, read at start. Null (the default):
    /// /etc/resolv.conf, unless <see cref="DnsResolve"/> is set (a test of the host-resolver path: nothing is forwarded).
    /// </summary>
    internal string? ResolvConfPath { get; set; }

    /// <summary>Test seam: the port of those nameservers (resolv.conf has none: 53).</summary>
    internal int DnsUpstreamPort { get; set; } = 53;

    /// <summary>How long one nameserver may take to answer a forwarded query (UDP, and TCP after a truncated answer; default 2 s).</summary>
    internal TimeSpan DnsServerTimeout { get; set; } = TimeSpan.FromSeconds(2);

    /// <summary>Most DNS queries forwarded at once (default 32); more fall back to the host resolver or SERVFAIL at once.</summary>
    internal int MaxConcurrentDnsForwards { get; set; } = 32;

    /// <summary>A DNS-over-TCP connection with no complete query for this long is closed (RFC 7766 §6.2.3; default 10 s).</summary>
    internal TimeSpan DnsTcpIdleTimeout { get; set; } = TimeSpan.FromSeconds(10);

    /// <summary>Test seam: the host resolver behind the DNS responder (default <see cref="System.Net.Dns.GetHostAddressesAsync(string, System.Net.Sockets.AddressFamily, CancellationToken)"/>).</summary>
    internal Func<string, System.Net.Sockets.AddressFamily, CancellationToken, Task<System.Net.IPAddress[]>>? DnsResolve { get; set; }
}
