using Sharptun.Hosting.Metrics;

namespace Sharptun.Proxy;

/// <summary>
/// The proxy's front-end counters for <see cref="MetricsServer"/>'s <c>/metrics</c>, one sample per front-end
/// (labels <c>frontend</c> = <see cref="IProxyService.Kind"/>, <c>endpoint</c> = <see cref="IProxyService.Endpoint"/>):
/// <c>sharptun_proxy_open_connections</c>, <c>sharptun_proxy_accepted_connections_total</c>,
/// <c>sharptun_proxy_refused_connections_total</c>, <c>sharptun_proxy_failed_connections_total</c>,
/// <c>sharptun_proxy_to_tunnel_bytes_total</c> and <c>sharptun_proxy_from_tunnel_bytes_total</c>.
/// </summary>
/// <remarks>Wiring: <c>MetricsServer.Start(endpoint, host.Tunnel, pinger, [new ProxyMetricsSource(host.Services)])</c>.</remarks>
/// <param name="services">The front-ends (<see cref="ProxyHost.Services"/>).</param>
public sealed class ProxyMetricsSource(IReadOnlyList<IProxyService> services) : IMetricsSource
{
    private readonly IReadOnlyList<IProxyService> _services = services ?? throw new ArgumentNullException(nameof(services));

    /// <inheritdoc/>
    public void WriteMetrics(MetricsWriter writer)
    {
        ArgumentNullException.ThrowIfNull(writer);
        Family(writer, "sharptun_proxy_open_connections", MetricType.Gauge, "Connections (or UDP associations) open now, by front-end.", c => c.Open);
        Family(writer, "sharptun_proxy_accepted_connections_total", MetricType.Counter, "Connections accepted, by front-end.", c => c.Accepted);
        Family(writer, "sharptun_proxy_refused_connections_total", MetricType.Counter, "Connections refused (over the cap, failed authentication, malformed or denied requests), by front-end.", c => c.Refused);
        Family(writer, "sharptun_proxy_failed_connections_total", MetricType.Counter, "Accepted connections whose target could not be reached (or whose handling failed unexpectedly), by front-end.", c => c.Failed);
        Family(writer, "sharptun_proxy_to_tunnel_bytes_total", MetricType.Counter, "Payload bytes relayed into the tunnel, by front-end.", c => c.BytesToTunnel);
        Family(writer, "sharptun_proxy_from_tunnel_bytes_total", MetricType.Counter, "Payload bytes relayed out of the tunnel, by front-end.", c => c.BytesFromTunnel);
    }

    private void Family(MetricsWriter writer, string name, MetricType type, string help, Func<ProxyServiceCounters, long> value)
    {
        writer.BeginFamily(name, type, help);
        foreach (var s in _services)
        {
            writer.Sample(value(s.Counters), [new("frontend", s.Kind), new("endpoint", s.Endpoint)]);
        }
    }
}
