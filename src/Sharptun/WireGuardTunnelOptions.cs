using Sharptun.Transport;

namespace Sharptun;

/// <summary>Options for <see cref="WireGuardTunnel.StartAsync(string, WireGuardTunnelOptions?, CancellationToken)"/>.</summary>
public sealed class WireGuardTunnelOptions
{
    /// <summary>The default <see cref="MemoryBudgetBytes"/>: 16 MiB.</summary>
    public const long DefaultMemoryBudgetBytes = 16L << 20;

    /// <summary>The smallest accepted <see cref="MemoryBudgetBytes"/>: 512 KiB.</summary>
    public const long MinimumMemoryBudgetBytes = 512L << 10;

    /// <summary>
    /// Opens the UDP socket WireGuard speaks over. Null picks the platform's default (the batched Linux bind on Linux).
    /// Any unprivileged bind works: the tunnel needs no TUN device, no root and no capabilities.
    /// </summary>
    public IDatagramBindFactory? BindFactory { get; set; }

    /// <summary>
    /// One budget for the packet buffers of the whole tunnel (default 16 MiB). It is split: half for the WireGuard
    /// device's packet buffers (<c>WireGuardDeviceOptions.BufferBudgetBytes</c>), a quarter for its large (jumbo)
    /// buffers (<c>LargeBufferBudgetBytes</c>) and a quarter for the TCP/IP stack's reassembly and UDP receive queues
    /// (<c>NetworkStackOptions.BufferBudgetBytes</c>). A spent budget slows senders down; it never grows.
    /// </summary>
    public long MemoryBudgetBytes { get; set; } = DefaultMemoryBudgetBytes;

    /// <summary>How often <see cref="WireGuardTunnel.Peers"/> is polled to raise the tunnel's events (default 1 s).</summary>
    public TimeSpan StatusPollInterval { get; set; } = TimeSpan.FromSeconds(1);
}
