namespace Sharptun;

/// <summary>A snapshot of a tunnel's counters (<see cref="WireGuardTunnel.GetStatistics"/>), for metrics endpoints.</summary>
/// <param name="Peers">Every peer with its byte counters and latest handshake.</param>
/// <param name="Drops">Packets the device dropped, one entry per reason (zeros included), in a fixed order.</param>
/// <param name="TakenAt">When the snapshot was taken (handshake ages are relative to it).</param>
public sealed record TunnelStatistics(IReadOnlyList<TunnelPeer> Peers, IReadOnlyList<TunnelDropCount> Drops, DateTimeOffset TakenAt)
{
    /// <summary>All dropped packets, over every reason.</summary>
    public long TotalDrops => Drops.Sum(d => d.Count);
}

/// <summary>How many packets or datagrams the device dropped for one reason.</summary>
/// <param name="Reason">The reason's name (the device's <c>DropReason</c>: NoRoute, DecryptionFailed, Replayed ...).</param>
/// <param name="Count">Packets dropped for it since the tunnel started.</param>
public readonly record struct TunnelDropCount(string Reason, long Count);
