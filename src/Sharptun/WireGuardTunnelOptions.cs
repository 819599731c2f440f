using Microsoft.Extensions.Logging;
using Sharptun.Transport;

namespace Sharptun;

/// <summary>Options for <see cref="WireGuardTunnel.StartAsync(string, WireGuardTunnelOptions?, CancellationToken)"/>.</summary>
public sealed partial class WireGuardTunnelOptions
{
    /// <summary>The default <see cref="MemoryBudgetBytes"/>: 16 MiB.</summary>
    public const long DefaultMemoryBudgetBytes = 16L << 20;

    /// <summary>The smallest accepted <see cref="MemoryBudgetBytes"/>: 512 KiB.</summary>
    public const long MinimumMemoryBudgetBytes = 512L << 10;

    /// <summary>
    /// Opens the UDP socket WireGuard speaks over; when set it wins over <see cref="UdpBind"/>. Null picks the bind by
    /// <see cref="UdpBind"/> (<see cref="DatagramBinds.For(UdpBindKind)"/>). Any unprivileged bind works: the tunnel
    /// needs no TUN device, no root and no capabilities.
    /// </summary>
    public IDatagramBindFactory? BindFactory { get; set; }

    /// <summary>
    /// Which built-in UDP bind to use when <see cref="BindFactory"/> is null. <see cref="UdpBindKind.Auto"/> (the
    /// default, <see cref="DatagramBinds.Default"/>): the batched Linux bind on Linux, the portable
    /// <see cref="System.Net.Sockets.Socket"/> bind elsewhere. <see cref="UdpBindKind.Portable"/> picks the portable
    /// bind on Linux too; <see cref="UdpBindKind.Linux"/> fails to start off Linux with a
    /// <see cref="PlatformNotSupportedException"/>.
    /// </summary>
    public UdpBindKind UdpBind { get; set; } = UdpBindKind.Auto;

    /// <summary>
    /// Where the WireGuard device logs (handshakes, bind changes, dropped packets; category
    /// <c>Sharptun.Device.Pipeline.WireGuardDevice</c>). Null (the default): no logging.
    /// </summary>
    public ILoggerFactory? LoggerFactory { get; set; }

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
