using Sharptun.Hosting.Metrics;

namespace Sharptun.Gateway;

/// <summary>
/// The gateway's flow counters for <see cref="MetricsServer"/>'s <c>/metrics</c>, one sample per peer (label
/// <c>peer</c> = public key; <c>(unknown)</c> for flows whose source no peer owns): open TCP connections and UDP
/// flows, relayed/denied/capped/failed totals, DNS queries and bytes each way.
/// </summary>
/// <param name="counters">The gateway's counters (<see cref="GatewayHost.Counters"/>).</param>
public sealed class GatewayMetricsSource(GatewayCounters counters) : IMetricsSource
{
    private readonly GatewayCounters _counters = counters ?? throw new ArgumentNullException(nameof(counters));

    /// <inheritdoc/>
    public void WriteMetrics(MetricsWriter writer)
    {
        ArgumentNullException.ThrowIfNull(writer);
        var peers = _counters.Peers.OrderBy(p => p.Key, StringComparer.Ordinal).ToArray();
        void Family(string name, MetricType type, string help, Func<PeerCounters, long> value)
        {
            writer.BeginFamily(name, type, help);
            foreach (var (key, c) in peers)
            {
                writer.Sample(value(c), "peer", key);
            }
        }

        Family("sharptun_gateway_open_tcp_connections", MetricType.Gauge, "TCP connections relayed now, by peer.", c => c.OpenTcp);
        Family("sharptun_gateway_open_udp_flows", MetricType.Gauge, "UDP flows open now, by peer.", c => c.OpenUdpFlows);
        Family("sharptun_gateway_tcp_relayed_total", MetricType.Counter, "TCP connections relayed to a destination, by peer.", c => c.TcpRelayed);
        Family("sharptun_gateway_tcp_denied_total", MetricType.Counter, "TCP connections the policy denied (RST), by peer.", c => c.TcpDenied);
        Family("sharptun_gateway_tcp_capped_total", MetricType.Counter, "TCP connections refused by a connection cap, by peer.", c => c.TcpRefusedByCap);
        Family("sharptun_gateway_tcp_host_failures_total", MetricType.Counter, "TCP connections the destination refused or never answered, by peer.", c => c.TcpHostFailures);
        Family("sharptun_gateway_udp_flows_total", MetricType.Counter, "UDP flows opened, by peer.", c => c.UdpFlows);
        Family("sharptun_gateway_udp_denied_total", MetricType.Counter, "UDP flows the policy denied (ICMP unreachable), by peer.", c => c.UdpDenied);
        Family("sharptun_gateway_udp_capped_total", MetricType.Counter, "UDP flows refused by a connection cap, by peer.", c => c.UdpRefusedByCap);
        Family("sharptun_gateway_udp_dropped_total", MetricType.Counter, "UDP datagrams dropped, by peer.", c => c.UdpDropped);
        Family("sharptun_gateway_dns_queries_total", MetricType.Counter, "DNS queries answered for the peer.", c => c.DnsQueries);
        Family("sharptun_gateway_to_destinations_bytes_total", MetricType.Counter, "Payload bytes relayed to destinations, by peer.", c => c.BytesToDestinations);
        Family("sharptun_gateway_from_destinations_bytes_total", MetricType.Counter, "Payload bytes relayed from destinations, by peer.", c => c.BytesFromDestinations);
        writer.BeginFamily("sharptun_gateway_dns_forwarded_total", MetricType.Counter, "DNS queries answered by a host nameserver.");
        writer.Sample(_counters.DnsForwarded);
        writer.BeginFamily("sharptun_gateway_dns_upstream_failures_total", MetricType.Counter, "DNS queries no host nameserver answered (host resolver or SERVFAIL instead).");
        writer.Sample(_counters.DnsUpstreamFailures);
    }
}
