using System.Net;
using System.Net.Sockets;
using System.Runtime.Versioning;
using Microsoft.Extensions.Logging;
using Sharptun.Device.Config;
using Sharptun.Device.Pipeline;
using Sharptun.Device.Uapi;
using Sharptun.NetStack;
using Sharptun.NetStack.Tcp;
using Sharptun.Transport;
using Sharptun.Transport.Linux;

namespace Sharptun;

/// <summary>
/// A WireGuard tunnel inside this process: a <see cref="WireGuardDevice"/> whose packet device is a userspace TCP/IP
/// stack (<see cref="NetworkStack"/>), so TCP streams, UDP datagrams and <see cref="HttpClient"/> requests go through
/// WireGuard with no TUN device, no root and no capabilities.
/// </summary>
/// <remarks>
/// <para>Start it from a wg-quick config text (<see cref="StartAsync(string, CancellationToken)"/>) or with a
/// <see cref="WireGuardTunnelBuilder"/>. <c>Address</c> lines become the stack's addresses, <c>MTU</c> its MTU (default
/// 1420), <c>DNS</c> the servers host names are resolved through (see <see cref="ConnectAsync(string, int, CancellationToken)"/>)
/// and, for its entries that are not addresses, the search domains single-label names are tried in first;
/// the keys, listen port and peers configure the device through its config path (<c>wg setconf</c> semantics).</para>
/// <para>Backpressure, not drops, between the two halves: the device reads the stack's outbound queue only when it has
/// buffers and room in the peer's queue, and a full outbound queue makes the stack's sockets wait; the device hands
/// inbound packets to the stack synchronously, so a busy stack slows the device's receive path (and TCP's window slows
/// the remote sender).</para>
/// <para>Disposing stops the device and the stack: open streams, listeners and sockets fail with an
/// <see cref="IOException"/> saying the tunnel was closed.</para>
/// </remarks>
public sealed partial class WireGuardTunnel : IAsyncDisposable
{

    private readonly NetworkStack? _stack;
    private readonly IPacketDevice _packetDevice;
    private readonly IReadOnlyList<IPAddress> _addresses;
    private readonly WireGuardDevice _device;
    private readonly INameResolver _resolver;
    private readonly Timer _statusTimer;
    private readonly Lock _statusLock = new();
    private Dictionary<string, TunnelPeer> _lastPeers = new(StringComparer.Ordinal);
    private volatile IPNetwork[] _routes = [];
    private int _closed;
    private UapiServer? _uapi;
    private EndpointReresolver? _reresolver;

    private WireGuardTunnel(IPacketDevice packetDevice, IReadOnlyList<IPAddress> addresses, WireGuardDevice device, INameResolver resolver, TimeSpan pollInterval)
    {
        _packetDevice = packetDevice;
        _stack = packetDevice as NetworkStack;
        _addresses = addresses;
        _device = device;
        _resolver = resolver;
        foreach (var p in Peers)
        {
            _lastPeers[p.PublicKey] = p;
        }

        _routes = RoutesOf(_lastPeers.Values);

        _statusTimer = new Timer(_ => PollStatus(), null, pollInterval, pollInterval);
    }

    /// <summary>A peer was added (seen by the status poll; peers of the initial config are not reported).</summary>
    public event EventHandler<TunnelPeerEventArgs>? PeerAdded;

    /// <summary>A peer was removed.</summary>
    public event EventHandler<TunnelPeerEventArgs>? PeerRemoved;

    /// <summary>A handshake with a peer completed (seen by the status poll, so at most one event per poll interval and peer).</summary>
    public event EventHandler<TunnelPeerEventArgs>? HandshakeCompleted;

    /// <summary>Our public key (base64).</summary>
    public string PublicKey => _device.PublicKey?.ToString() ?? string.Empty;

    /// <summary>The UDP port WireGuard listens on.</summary>
    public int ListenPort => _device.ListenPort;

    /// <summary>The tunnel's own addresses (the config's <c>Address</c>).</summary>
    public IReadOnlyList<IPAddress> Addresses => _addresses;

    /// <summary>The tunnel MTU.</summary>
    public int Mtu => _packetDevice.Mtu;

    /// <summary>
    /// True when the tunnel runs over a TUN device (<see cref="StartOnTunAsync"/>): the operating system's stack carries
    /// its traffic, and <see cref="ConnectAsync(string, int, CancellationToken)"/>, <see cref="ListenTcp"/>,
    /// <see cref="BindUdp"/> and <see cref="CreateHttpHandler"/> throw <see cref="InvalidOperationException"/>.
    /// </summary>
    public bool IsOnTun => _stack is null;

    /// <summary>The peers and their state: the data <c>wg show</c> prints.</summary>
    public IReadOnlyList<TunnelPeer> Peers
    {
        get
        {
            var snapshot = _device.GetSnapshot();
            snapshot.ClearSecrets();
            return [.. snapshot.Peers.Select(ToPeer)];
        }
    }

    /// <summary>True once <see cref="DisposeAsync"/> has begun.</summary>
    internal bool IsClosed => Volatile.Read(ref _closed) != 0;

    /// <summary>The device (for the demo's <c>show</c> view and tests).</summary>
    internal WireGuardDevice Device => _device;

    /// <summary>The TCP/IP stack (for tests).</summary>
    internal NetworkStack Stack => RequireStack();

    /// <summary>The name resolver in use (for tests).</summary>
    internal INameResolver Resolver => _resolver;

    /// <summary>The endpoint re-resolution of host-name endpoints (for tests).</summary>
    internal EndpointReresolver? Reresolver => _reresolver;

    /// <summary>The UAPI socket's path (<see cref="WireGuardTunnelOptions.UapiSocketPath"/>), or null when the tunnel serves none.</summary>
    public string? UapiSocketPath => _uapi?.SocketPath;

    /// <summary>Starts a tunnel from a wg-quick config text (see <see cref="StartAsync(string, WireGuardTunnelOptions?, CancellationToken)"/>).</summary>
    /// <exception cref="FormatException">The config text is invalid; the message names each bad line. Nothing was started.</exception>
    public static Task<WireGuardTunnel> StartAsync(string configText, CancellationToken cancellationToken) =>
        StartAsync(configText, null, cancellationToken);

    /// <summary>
    /// Starts a tunnel from a wg-quick config text: <c>[Interface]</c> PrivateKey, Address, DNS, MTU, ListenPort;
    /// <c>[Peer]</c> PublicKey, PresharedKey, Endpoint, AllowedIPs, PersistentKeepalive. wg-quick's host settings
    /// (Table, PreUp, PostUp, PreDown, PostDown, SaveConfig) do not apply to an in-process tunnel and are ignored.
    /// </summary>
    /// <exception cref="FormatException">The config text is invalid; the message names each bad line. Nothing was started.</exception>
    public static Task<WireGuardTunnel> StartAsync(string configText, WireGuardTunnelOptions? options = null, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(configText);
        if (!WgConfigParser.TryParse(configText, "config", out var config, out var errors))
        {
            throw new FormatException("Invalid WireGuard config: " + string.Join("; ", errors));
        }

        return StartAsync(config!, options, cancellationToken);
    }

    /// <summary>Starts a tunnel from a parsed config (the INI text and the builder both end here).</summary>
    internal static Task<WireGuardTunnel> StartAsync(WgConfig config, WireGuardTunnelOptions? options, CancellationToken cancellationToken)
    {
        cancellationToken.ThrowIfCancellationRequested();
        options ??= new WireGuardTunnelOptions();
        ArgumentOutOfRangeException.ThrowIfLessThan(options.MemoryBudgetBytes, WireGuardTunnelOptions.MinimumMemoryBudgetBytes, nameof(options));
        ArgumentOutOfRangeException.ThrowIfLessThanOrEqual(options.StatusPollInterval, TimeSpan.Zero, nameof(options));
        if (config.Interface.PrivateKey is null)
        {
            throw new FormatException("Invalid WireGuard config: [Interface] has no PrivateKey.");
        }

        var (deviceBudget, _, stackBudget) = SplitBudget(options.MemoryBudgetBytes);
        var stackOptions = new NetworkStackOptions
        {
            Mtu = config.Interface.Mtu ?? WgInterfaceConfig.DefaultMtu,
            BufferBudgetBytes = stackBudget,
            Tcp = TcpOptionsFor(deviceBudget),
        };
        ApplyPromiscuous(options, stackOptions);
        foreach (var prefix in config.Interface.Addresses)
        {
            stackOptions.Addresses.Add(prefix.Address.ToIPAddress());
        }

        var dnsServers = new List<IPAddress>();
        var searchDomains = new List<string>();
        foreach (var entry in config.Interface.Dns)
        {
            if (IPAddress.TryParse(entry, out var server))
            {
                dnsServers.Add(server);
            }
            else if (Uri.CheckHostName(entry.TrimEnd('.')) == UriHostNameType.Dns)
            {
                searchDomains.Add(entry); // wg-quick: DNS entries that are not addresses are search domains
            }
            else
            {
                throw new FormatException($"Invalid WireGuard config: DNS entry '{entry}' is neither an IP address nor a search domain.");
            }
        }

        var stack = new NetworkStack(stackOptions);
        INameResolver resolver;
        try
        {
            resolver = CreateResolver(stack, dnsServers, searchDomains);
        }
        catch (ArgumentException e)
        {
            stack.Dispose();
            throw new FormatException($"Invalid WireGuard config: {e.Message}", e);
        }

        return Task.FromResult(Start(config, options, stack, [.. stackOptions.Addresses], resolver, stack.Start));
    }

    /// <summary>
    /// Starts a tunnel over an open TUN device (issue 9 item 4: a descriptor inherited from a parent process or handed
    /// over by a VPN service): the device reads and writes that interface, and the operating system's own TCP/IP stack
    /// carries the traffic, so <see cref="ConnectAsync(string, int, CancellationToken)"/>, <see cref="ListenTcp"/>,
    /// <see cref="BindUdp"/> and <see cref="CreateHttpHandler"/> are not available (they throw
    /// <see cref="InvalidOperationException"/>); use ordinary sockets to and from the tunnel's addresses. Peers, the
    /// events and <see cref="DisposeAsync"/> work as usual.
    /// </summary>
    /// <remarks>
    /// Like <c>wg setconf</c>, this configures WireGuard only: the caller (or whoever made the interface) assigns the
    /// <c>Address</c>es, MTU and routes to the interface; <see cref="Addresses"/> reports the config's, <c>MTU</c> (default
    /// 1420) is the packet size the device assumes, and <c>DNS</c> is ignored. The caller keeps owning
    /// <paramref name="tunFileDescriptor"/>: close it after disposing the tunnel.
    /// </remarks>
    /// <param name="configText">A wg-quick config text, as for <see cref="StartAsync(string, WireGuardTunnelOptions?, CancellationToken)"/>.</param>
    /// <param name="tunFileDescriptor">An open <c>/dev/net/tun</c> descriptor attached to a TUN interface with IFF_NO_PI.</param>
    /// <param name="options">Bind, logging, memory budget (the stack's quarter is not used) and poll interval.</param>
    /// <param name="cancellationToken">Cancels the start.</param>
    /// <exception cref="FormatException">The config text is invalid. Nothing was started.</exception>
    /// <exception cref="IOException">The descriptor is not an open TUN device with IFF_NO_PI; the message says which.</exception>
    [SupportedOSPlatform("linux")]
    public static Task<WireGuardTunnel> StartOnTunAsync(string configText, int tunFileDescriptor, WireGuardTunnelOptions? options = null, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(configText);
        ArgumentOutOfRangeException.ThrowIfNegative(tunFileDescriptor);
        cancellationToken.ThrowIfCancellationRequested();
        if (!WgConfigParser.TryParse(configText, "config", out var config, out var errors))
        {
            throw new FormatException("Invalid WireGuard config: " + string.Join("; ", errors));
        }

        options ??= new WireGuardTunnelOptions();
        ArgumentOutOfRangeException.ThrowIfLessThan(options.MemoryBudgetBytes, WireGuardTunnelOptions.MinimumMemoryBudgetBytes, nameof(options));
        ArgumentOutOfRangeException.ThrowIfLessThanOrEqual(options.StatusPollInterval, TimeSpan.Zero, nameof(options));
        if (config!.Interface.PrivateKey is null)
        {
            throw new FormatException("Invalid WireGuard config: [Interface] has no PrivateKey.");
        }

        var tun = LinuxTun.FromFileDescriptor(tunFileDescriptor, string.Empty, config.Interface.Mtu ?? WgInterfaceConfig.DefaultMtu, ownsDescriptor: false);
        IPAddress[] addresses = [.. config.Interface.Addresses.Select(p => p.Address.ToIPAddress())];
        return Task.FromResult(Start(config, options, tun, addresses, HostNameResolver.Instance, start: null));
    }

    /// <summary>The device over <paramref name="packetDevice"/> (disposed here when anything fails).</summary>
    private static WireGuardTunnel Start(WgConfig config, WireGuardTunnelOptions options, IPacketDevice packetDevice, IReadOnlyList<IPAddress> addresses, INameResolver resolver, Action? start)
    {
        var (deviceBudget, largeBudget, _) = SplitBudget(options.MemoryBudgetBytes);
        WireGuardDevice? device = null;
        UapiServer? uapi = null;
        var log = options.LoggerFactory?.CreateLogger(TunnelLog.Category);
        // Endpoint names: the test seam; else, under another tunnel (multihop), that tunnel's DNS when it has one; else the host's.
        var resolveEndpoint = options.EndpointResolver
            ?? (options.BindFactory as TunnelDatagramBindFactory)?.EndpointResolver
            ?? EndpointReresolver.ResolveWithHost;
        try
        {
            var bindFactory = BindFactoryFor(options);
            device = new WireGuardDevice(packetDevice, bindFactory, new WireGuardDeviceOptions
            {
                BufferBudgetBytes = deviceBudget,
                LargeBufferBudgetBytes = largeBudget,
                InitialListenPort = config.Interface.ListenPort ?? 0,
                ResolveHostname = host => ResolveAtStart(resolveEndpoint, host),
            }, options.LoggerFactory?.CreateLogger<WireGuardDevice>());
            if (device.ApplyConfig(config, replace: true) is { } error)
            {
                throw new FormatException("Invalid WireGuard config: " + error.Message);
            }

            if (options.UapiSocketPath is { } socketPath)
            {
                uapi = StartUapi(socketPath, device, options.LoggerFactory);
                if (log is not null)
                {
                    TunnelLog.UapiListening(log, uapi.SocketPath);
                }
            }

            start?.Invoke();
            var tunnel = new WireGuardTunnel(packetDevice, addresses, device, resolver, options.StatusPollInterval) { _uapi = uapi };
            tunnel._reresolver = new EndpointReresolver(
                device,
                EndpointReresolver.NamesOf(config),
                resolveEndpoint,
                options.EndpointReresolveInterval,
                options.EndpointStaleAfter ?? EndpointReresolver.DefaultStaleAfter,
                log);
            return tunnel;
        }
        catch
        {
            uapi?.Dispose();
            packetDevice.Dispose();
            device?.Dispose();
            throw;
        }
    }

    /// <summary>The device's start-time resolution of endpoint names, through the same resolver re-resolution uses.</summary>
    private static IPAddress? ResolveAtStart(Func<string, CancellationToken, Task<IPAddress[]>> resolve, string host)
    {
        try
        {
            return EndpointReresolver.Pick(resolve(host, CancellationToken.None).GetAwaiter().GetResult());
        }
        catch (Exception e) when (e is SocketException or ArgumentException)
        {
            return null; // the config is refused: "cannot resolve endpoint"
        }
    }

    /// <summary>
    /// The UAPI socket on <paramref name="socketPath"/> (as the daemon's, see DaemonHost): 0600 in a 0700 directory,
    /// a stale socket replaced. A missing directory is created 0700; an existing one must already be 0700 (never
    /// chmod-ed here: a wider one is someone's shared directory, such as /tmp or a home), except wg's own
    /// /var/run/wireguard, which is forced to 0700 as wireguard-go does.
    /// </summary>
    private static UapiServer StartUapi(string socketPath, WireGuardDevice device, ILoggerFactory? loggers)
    {
        const UnixFileMode Private = UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute;
        var full = Path.GetFullPath(socketPath);
        var directory = Path.GetDirectoryName(full);
        if (string.IsNullOrEmpty(directory) || Path.GetFileName(full).Length == 0)
        {
            throw new UapiSocketException($"UAPI socket {full}: not a file path.");
        }

        if (!OperatingSystem.IsWindows() && Directory.Exists(directory)
            && directory.TrimEnd('/') is not (UapiServer.DefaultSocketDirectory or "/run/wireguard")
            && File.GetUnixFileMode(directory) is var mode && mode != Private)
        {
            throw new UapiSocketException(
                $"UAPI socket {full}: its directory {directory} must be private to the tunnel's user (mode 0700, it is " +
                $"{Convert.ToString((int)mode, 8)}): the socket configures keys. Use a directory of its own (created when missing).");
        }

        var listener = UapiServer.CreateListener(full);
        return UapiServer.FromListeningSocket(listener, full, device, loggers?.CreateLogger<UapiServer>());
    }

    /// <summary>
    /// The budget split (<see cref="WireGuardTunnelOptions.MemoryBudgetBytes"/>): half for the device's packet buffers,
    /// a quarter for its large buffers, a quarter for the stack.
    /// </summary>
    internal static (long Device, long Large, long Stack) SplitBudget(long total) => (total / 2, total / 4, total / 4);

    /// <summary>
    /// The TCP budgets that fit the device's share of the memory budget: what all connections may have in flight
    /// towards the stack (<see cref="TcpOptions.ReceiveWindowBudget"/>) and from it (<see cref="TcpOptions.SendBufferBudget"/>)
    /// each take at most an eighth of the device's packet-buffer bytes. Packets carry up to an MTU in a larger buffer,
    /// and the device's readers rent whole batches of buffers before they read, so both directions' data must fit well
    /// inside the pool for a full pool to slow the senders rather than stall the readers. At most 1 MiB each (the
    /// stack's defaults), reached at the default <see cref="WireGuardTunnelOptions.MemoryBudgetBytes"/> of 16 MiB; 32 KiB
    /// each at the smallest budget.
    /// </summary>
    internal static TcpOptions TcpOptionsFor(long deviceBudget)
    {
        var tcp = new TcpOptions();
        var share = Math.Max(16 * 1024, deviceBudget / 8);
        tcp.ReceiveWindowBudget = Math.Min(tcp.ReceiveWindowBudget, share);
        tcp.SendBufferBudget = Math.Min(tcp.SendBufferBudget, share);
        return tcp;
    }

    /// <summary>
    /// Opens a TCP connection through the tunnel. <paramref name="host"/> is an IP address or a host name: names are
    /// resolved through the config's DNS servers over the tunnel when it has any (never leaking to the host's resolver),
    /// else through the host's resolver.
    /// </summary>
    /// <exception cref="SocketException">The name does not resolve, or the connection is refused or times out.</exception>
    /// <exception cref="IOException">The tunnel was closed.</exception>
    /// <exception cref="InvalidOperationException">The tunnel runs over a TUN device (<see cref="IsOnTun"/>).</exception>
    public async ValueTask<Stream> ConnectAsync(string host, int port, CancellationToken cancellationToken = default)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(host);
        ArgumentOutOfRangeException.ThrowIfLessThan(port, 1);
        ArgumentOutOfRangeException.ThrowIfGreaterThan(port, 65535);
        RequireStack();
        if (IPAddress.TryParse(host.AsSpan().Trim('[').TrimEnd(']'), out var literal))
        {
            return await ConnectAsync(new IPEndPoint(literal, port), cancellationToken).ConfigureAwait(false);
        }

        var usable = await ResolveAsync(host, AddressFamily.Unspecified, cancellationToken).ConfigureAwait(false);
        if (usable.Length == 0)
        {
            throw new SocketException((int)SocketError.HostNotFound, $"'{host}' has no address of a family the tunnel has an address of.");
        }

        SocketException? last = null;
        foreach (var address in usable)
        {
            try
            {
                return await ConnectAsync(new IPEndPoint(address, port), cancellationToken).ConfigureAwait(false);
            }
            catch (SocketException e)
            {
                last = e;
            }
        }

        throw last!;
    }

    /// <summary>
    /// Resolves <paramref name="host"/> as <see cref="ConnectAsync(string, int, CancellationToken)"/> does: through the
    /// config's DNS servers over the tunnel when it has any (never the host's resolver), else through the host's
    /// resolver. Only addresses of a family the tunnel has an address of are returned; <paramref name="family"/>
    /// narrows them further (<see cref="AddressFamily.Unspecified"/>: both).
    /// </summary>
    /// <returns>The usable addresses, in the resolver's order; empty when there are none.</returns>
    /// <exception cref="SocketException">The name does not exist or the DNS servers do not answer.</exception>
    public async ValueTask<IPAddress[]> ResolveAsync(string host, AddressFamily family = AddressFamily.Unspecified, CancellationToken cancellationToken = default)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(host);
        ThrowIfClosed();
        if (IPAddress.TryParse(host.AsSpan().Trim('[').TrimEnd(']'), out var literal))
        {
            return family == AddressFamily.Unspecified || literal.AddressFamily == family ? [literal] : [];
        }

        var addresses = await _resolver.ResolveAsync(host, family, cancellationToken).ConfigureAwait(false);
        return addresses
            .Where(a => (family == AddressFamily.Unspecified || a.AddressFamily == family) && _addresses.Any(own => own.AddressFamily == a.AddressFamily))
            .ToArray();
    }

    /// <summary>Opens a TCP connection through the tunnel to <paramref name="remote"/>.</summary>
    /// <remarks>
    /// A destination no peer's <c>AllowedIPs</c> covers (a loopback address among them: RFC 1122 §3.2.1.3 keeps
    /// 127.0.0.0/8 inside the host) fails at once with <see cref="SocketError.NetworkUnreachable"/>, as the kernel's
    /// WireGuard answers such a packet with ICMP unreachable, instead of sending SYNs that no peer would ever carry.
    /// </remarks>
    /// <exception cref="SocketException">
    /// <see cref="SocketError.NetworkUnreachable"/>: no peer routes <paramref name="remote"/>; else the connection is
    /// refused or times out.
    /// </exception>
    /// <exception cref="IOException">The tunnel was closed.</exception>
    /// <exception cref="InvalidOperationException">The tunnel runs over a TUN device (<see cref="IsOnTun"/>).</exception>
    public async ValueTask<Stream> ConnectAsync(IPEndPoint remote, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(remote);
        ThrowIfClosed();
        var stack = RequireStack();
        if (!IsRouted(remote.Address))
        {
            throw new SocketException(
                (int)SocketError.NetworkUnreachable,
                $"No peer of the WireGuard tunnel routes {remote.Address}: it is not inside any peer's AllowedIPs.");
        }

        try
        {
            var stream = await stack.ConnectTcpAsync(remote, null, cancellationToken).ConfigureAwait(false);
            return new TunnelStream(stream, this);
        }
        catch (Exception e) when (IsClosed && e is IOException or ObjectDisposedException or SocketException)
        {
            throw ClosedError(e);
        }
    }

    /// <summary>Accepts TCP connections arriving through the tunnel on <paramref name="port"/> of every tunnel address.</summary>
    /// <exception cref="SocketException">The port is in use.</exception>
    /// <exception cref="IOException">The tunnel was closed.</exception>
    /// <exception cref="InvalidOperationException">The tunnel runs over a TUN device (<see cref="IsOnTun"/>).</exception>
    public TunnelTcpListener ListenTcp(int port)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(port, 1);
        ArgumentOutOfRangeException.ThrowIfGreaterThan(port, 65535);
        ThrowIfClosed();

        // The stack's IPv6 "any" listener is dual-stack: with an IPv6 tunnel address, IPv4 and IPv6 peers both reach it.
        var any = _addresses.Any(a => a.AddressFamily == AddressFamily.InterNetworkV6) ? IPAddress.IPv6Any : IPAddress.Any;
        return new TunnelTcpListener(RequireStack().ListenTcp(new IPEndPoint(any, port)), this);
    }

    /// <summary>Opens a UDP socket inside the tunnel on <paramref name="port"/> (0 = an ephemeral port) of every tunnel address.</summary>
    /// <exception cref="SocketException">The port is in use.</exception>
    /// <exception cref="IOException">The tunnel was closed.</exception>
    /// <exception cref="InvalidOperationException">The tunnel runs over a TUN device (<see cref="IsOnTun"/>).</exception>
    public TunnelUdpSocket BindUdp(int port = 0)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(port);
        ArgumentOutOfRangeException.ThrowIfGreaterThan(port, 65535);
        ThrowIfClosed();
        var stack = RequireStack();
        var any = _addresses.Any(a => a.AddressFamily == AddressFamily.InterNetworkV6) ? IPAddress.IPv6Any : IPAddress.Any;
        return new TunnelUdpSocket(stack.BindUdp(new IPEndPoint(any, port)), this);
    }

    /// <summary>
    /// An <see cref="HttpClient"/> handler whose connections go through the tunnel (a <see cref="SocketsHttpHandler"/>
    /// with its <see cref="SocketsHttpHandler.ConnectCallback"/> on <see cref="ConnectAsync(string, int, CancellationToken)"/>;
    /// no proxy). HTTP/1.1 and HTTP/2 only: HTTP/3 runs over the host's QUIC sockets, which would bypass the tunnel, so
    /// a request for HTTP/3 is sent as HTTP/2 or lower. TLS works as usual on top of the tunnel's TCP stream.
    /// </summary>
    /// <exception cref="InvalidOperationException">The tunnel runs over a TUN device (<see cref="IsOnTun"/>).</exception>
    public HttpMessageHandler CreateHttpHandler()
    {
        ThrowIfClosed();
        RequireStack();
        var sockets = new SocketsHttpHandler
        {
            UseProxy = false,
            ConnectCallback = async (context, ct) =>
                await ConnectAsync(context.DnsEndPoint.Host, context.DnsEndPoint.Port, ct).ConfigureAwait(false),
        };
        return new HttpVersionCapHandler(sockets);
    }

    /// <summary>Stops the device and the stack. Open streams and sockets fail with an <see cref="IOException"/>; nothing waits for peers.</summary>
    public async ValueTask DisposeAsync()
    {
        if (Interlocked.Exchange(ref _closed, 1) != 0)
        {
            return;
        }

        _uapi?.Dispose();
        if (_reresolver is not null)
        {
            await _reresolver.DisposeAsync().ConfigureAwait(false);
        }

        await _statusTimer.DisposeAsync().ConfigureAwait(false);
        _packetDevice.Dispose(); // the stack aborts TCP and fails sockets; the device's reader sees the packet device close
        _device.Dispose();
        await _device.Completion.WaitAsync(TimeSpan.FromSeconds(5)).ConfigureAwait(ConfigureAwaitOptions.SuppressThrowing);
    }

    /// <summary>
    /// Sends an ICMP (IPv4) or ICMPv6 echo request through the tunnel to <paramref name="destination"/> and waits for
    /// the reply (RFC 792, RFC 4443 §4.1), as wireproxy's <c>CheckAlive</c> does.
    /// </summary>
    /// <returns>The round-trip time, or null when no reply arrived within <paramref name="timeout"/>.</returns>
    /// <exception cref="SocketException">
    /// <see cref="SocketError.NetworkUnreachable"/>: no peer routes <paramref name="destination"/>; or the tunnel has no
    /// address of its family.
    /// </exception>
    /// <exception cref="IOException">The tunnel was closed.</exception>
    /// <exception cref="InvalidOperationException">The tunnel runs over a TUN device (<see cref="IsOnTun"/>).</exception>
    public async ValueTask<TimeSpan?> PingAsync(IPAddress destination, TimeSpan timeout, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(destination);
        ArgumentOutOfRangeException.ThrowIfLessThanOrEqual(timeout, TimeSpan.Zero);
        ThrowIfClosed();
        var stack = RequireStack();
        if (!IsRouted(destination))
        {
            throw new SocketException(
                (int)SocketError.NetworkUnreachable,
                $"No peer of the WireGuard tunnel routes {destination}: it is not inside any peer's AllowedIPs.");
        }

        try
        {
            var reply = await stack.PingAsync(destination, 16, timeout, cancellationToken).ConfigureAwait(false);
            return reply.Success ? reply.RoundTripTime : null;
        }
        catch (Exception e) when (IsClosed && e is IOException or ObjectDisposedException or SocketException)
        {
            throw ClosedError(e);
        }
    }

    /// <summary>
    /// The counters a metrics endpoint exports: every peer (bytes, latest handshake) and the device's dropped packets by
    /// reason (every reason, zeros included, so rates start from zero). A consistent snapshot; cheap enough to take per scrape.
    /// </summary>
    /// <exception cref="IOException">The tunnel was closed.</exception>
    public TunnelStatistics GetStatistics()
    {
        ThrowIfClosed();
        var snapshot = _device.GetSnapshot();
        snapshot.ClearSecrets();
        var drops = new List<TunnelDropCount>();
        foreach (var reason in Enum.GetValues<DropReason>())
        {
            var name = reason.ToString();
            var count = 0L;
            foreach (var d in snapshot.Drops)
            {
                if (d.Reason == name)
                {
                    count = d.Count;
                }
            }

            drops.Add(new TunnelDropCount(name, count));
        }

        return new TunnelStatistics([.. snapshot.Peers.Select(ToPeer)], drops, DateTimeOffset.UtcNow);
    }

    internal static IOException ClosedError(Exception inner) => new("The WireGuard tunnel was closed.", inner);

    /// <summary>The bind: <see cref="WireGuardTunnelOptions.BindFactory"/>, else the built-in one <see cref="WireGuardTunnelOptions.UdpBind"/> names.</summary>
    internal static IDatagramBindFactory BindFactoryFor(WireGuardTunnelOptions options) =>
        options.BindFactory ?? DatagramBinds.For(options.UdpBind);

    /// <summary>
    /// The name resolver: through the tunnel when the config names DNS servers (with its search domains), else the
    /// host's resolver (which has its own search list).
    /// </summary>
    private static INameResolver CreateResolver(NetworkStack stack, IReadOnlyList<IPAddress> dnsServers, IReadOnlyList<string> searchDomains) =>
        dnsServers.Count > 0 ? new TunnelNameResolver(stack, dnsServers, searchDomains) : HostNameResolver.Instance;

    private static TunnelPeer ToPeer(PeerSnapshot p) => new(
        p.PublicKey.ToString(),
        p.Endpoint,
        p.LastHandshakeUnixNanoseconds == 0 ? null : DateTimeOffset.FromUnixTimeMilliseconds(p.LastHandshakeUnixNanoseconds / 1_000_000),
        (long)p.RxBytes,
        (long)p.TxBytes,
        [.. p.AllowedIps.Select(a => new IPNetwork(a.Address.ToIPAddress(), a.Length))],
        p.PersistentKeepaliveInterval == 0 ? null : TimeSpan.FromSeconds(p.PersistentKeepaliveInterval));

    /// <summary>
    /// True when <paramref name="destination"/> is one of our addresses or inside a peer's AllowedIPs. Looks at the
    /// AllowedIPs of the last status poll first (no device lock on the connect path); only a miss takes a fresh
    /// snapshot, so a peer added since the poll is seen at once.
    /// </summary>
    internal bool IsRouted(IPAddress destination)
    {
        if (destination.IsIPv4MappedToIPv6)
        {
            destination = destination.MapToIPv4();
        }

        if (_addresses.Contains(destination))
        {
            return true;
        }

        if (IPAddress.IsLoopback(destination))
        {
            return false; // RFC 1122 §3.2.1.3: loopback never leaves the host
        }

        if (Covers(_routes, destination))
        {
            return true;
        }

        var fresh = RoutesOf(Peers);
        _routes = fresh;
        return Covers(fresh, destination);
    }

    private static IPNetwork[] RoutesOf(IEnumerable<TunnelPeer> peers) => [.. peers.SelectMany(p => p.AllowedIps)];

    private static bool Covers(IPNetwork[] routes, IPAddress destination)
    {
        foreach (var route in routes)
        {
            if (route.Contains(destination))
            {
                return true;
            }
        }

        return false;
    }

    private NetworkStack RequireStack() => _stack ?? throw new InvalidOperationException(
        "This WireGuard tunnel runs over a TUN device (StartOnTunAsync): the operating system's network stack carries its traffic. " +
        "Use ordinary sockets to and from the tunnel's addresses; ConnectAsync, ListenTcp, BindUdp and CreateHttpHandler need a tunnel started with StartAsync.");

    private void ThrowIfClosed()
    {
        if (IsClosed)
        {
            throw ClosedError(new ObjectDisposedException(nameof(WireGuardTunnel)));
        }
    }

    /// <summary>Timer callback: compares the peers with the last poll and raises the events (never concurrently).</summary>
    private void PollStatus()
    {
        if (IsClosed || !_statusLock.TryEnter())
        {
            return;
        }

        try
        {
            var current = new Dictionary<string, TunnelPeer>(StringComparer.Ordinal);
            foreach (var p in Peers)
            {
                current[p.PublicKey] = p;
                if (!_lastPeers.TryGetValue(p.PublicKey, out var before))
                {
                    PeerAdded?.Invoke(this, new TunnelPeerEventArgs(p));
                    if (p.LastHandshake is not null)
                    {
                        HandshakeCompleted?.Invoke(this, new TunnelPeerEventArgs(p));
                    }
                }
                else if (p.LastHandshake is { } t && (before.LastHandshake is not { } b || t > b))
                {
                    HandshakeCompleted?.Invoke(this, new TunnelPeerEventArgs(p));
                }
            }

            foreach (var (key, before) in _lastPeers)
            {
                if (!current.ContainsKey(key))
                {
                    PeerRemoved?.Invoke(this, new TunnelPeerEventArgs(before));
                }
            }

            _lastPeers = current;
            _routes = RoutesOf(current.Values);
        }
        catch (ObjectDisposedException)
        {
            // disposed during the poll
        }
        finally
        {
            _statusLock.Exit();
        }
    }
}
