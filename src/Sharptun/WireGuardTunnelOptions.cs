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

    /// <summary>
    /// When set, the tunnel serves wireguard-go's UAPI (the cross-platform userspace interface <c>wg</c> speaks) on a
    /// unix socket at this path, so <c>wg show</c> and <c>wg set</c> (adding and removing peers at run time) work on
    /// the tunnel. The socket is mode 0600 in a directory of mode 0700: a missing directory is created so, an existing
    /// one must already be 0700 (a wider one, such as /tmp or a home, is refused, never changed; wg's own
    /// /var/run/wireguard is set to 0700 as wireguard-go does). A socket file left by a
    /// process that died is replaced; one a live process answers on is an error. <c>wg</c> looks only in
    /// /var/run/wireguard (<c>NAME.sock</c> there names interface NAME): put the socket there or link it there.
    /// Null (the default): no socket.
    /// </summary>
    public string? UapiSocketPath { get; set; }

    /// <summary>
    /// How often peers whose config <c>Endpoint</c> is a host name are checked for re-resolution (default 30 s, as
    /// wireguard-tools' reresolve-dns.sh timer; <see cref="Timeout.InfiniteTimeSpan"/> or zero: never). A peer with
    /// no handshake for 135 s (REKEY_AFTER_TIME + 3 × REKEY_TIMEOUT, the script's rule) has its name resolved again
    /// through the host's resolver, and its endpoint is replaced when the address changed.
    /// </summary>
    public TimeSpan EndpointReresolveInterval { get; set; } = TimeSpan.FromSeconds(30);

    /// <summary>Tests only: resolves endpoint host names (at start and when re-resolving); null: the host's resolver.</summary>
    internal Func<string, CancellationToken, Task<System.Net.IPAddress[]>>? EndpointResolver { get; set; }

    /// <summary>Tests only: the handshake age past which a named endpoint is re-resolved (default 135 s).</summary>
    internal TimeSpan? EndpointStaleAfter { get; set; }
}
