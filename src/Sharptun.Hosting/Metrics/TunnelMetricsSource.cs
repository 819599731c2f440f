namespace Sharptun.Hosting.Metrics;

/// <summary>
/// The tunnel's own metrics (<see cref="WireGuardTunnel.GetStatistics"/>), which <see cref="MetricsServer"/> always
/// serves: <c>sharptun_peers</c>, per peer (label <c>public_key</c>) <c>sharptun_peer_receive_bytes_total</c>,
/// <c>sharptun_peer_transmit_bytes_total</c>, <c>sharptun_peer_last_handshake_timestamp_seconds</c> (0: never) and
/// <c>sharptun_peer_last_handshake_age_seconds</c> (only peers that had one), and
/// <c>sharptun_dropped_packets_total</c> by <c>reason</c>.
/// </summary>
public sealed class TunnelMetricsSource : IMetricsSource
{
    private readonly Func<TunnelStatistics> _statistics;

    /// <summary>The metrics of <paramref name="tunnel"/>.</summary>
    public TunnelMetricsSource(WireGuardTunnel tunnel)
    {
        ArgumentNullException.ThrowIfNull(tunnel);
        _statistics = tunnel.GetStatistics;
    }

    internal TunnelMetricsSource(Func<TunnelStatistics> statistics) => _statistics = statistics;

    /// <inheritdoc/>
    public void WriteMetrics(MetricsWriter writer)
    {
        ArgumentNullException.ThrowIfNull(writer);
        var stats = _statistics();
        writer.BeginFamily("sharptun_peers", MetricType.Gauge, "WireGuard peers configured.");
        writer.Sample(stats.Peers.Count);

        writer.BeginFamily("sharptun_peer_receive_bytes_total", MetricType.Counter, "Bytes of WireGuard datagrams received from the peer.");
        foreach (var p in stats.Peers)
        {
            writer.Sample(p.ReceivedBytes, "public_key", p.PublicKey);
        }

        writer.BeginFamily("sharptun_peer_transmit_bytes_total", MetricType.Counter, "Bytes of WireGuard datagrams sent to the peer.");
        foreach (var p in stats.Peers)
        {
            writer.Sample(p.SentBytes, "public_key", p.PublicKey);
        }

        writer.BeginFamily("sharptun_peer_last_handshake_timestamp_seconds", MetricType.Gauge, "Unix time of the peer's latest completed handshake (0: none yet).");
        foreach (var p in stats.Peers)
        {
            writer.Sample(p.LastHandshake is { } t ? t.ToUnixTimeMilliseconds() / 1000.0 : 0, "public_key", p.PublicKey);
        }

        writer.BeginFamily("sharptun_peer_last_handshake_age_seconds", MetricType.Gauge, "Seconds since the peer's latest completed handshake (absent: none yet).");
        foreach (var p in stats.Peers)
        {
            if (p.LastHandshake is { } t)
            {
                writer.Sample(Math.Max(0, (stats.TakenAt - t).TotalSeconds), "public_key", p.PublicKey);
            }
        }

        writer.BeginFamily("sharptun_dropped_packets_total", MetricType.Counter, "Packets or datagrams the WireGuard device dropped, by reason.");
        foreach (var d in stats.Drops)
        {
            writer.Sample(d.Count, "reason", d.Reason);
        }
    }
}
