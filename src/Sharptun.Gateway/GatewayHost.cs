using System.Buffers.Binary;
using System.Collections.Concurrent;
using System.Net;
using System.Net.Sockets;
using Sharptun.Hosting;

namespace Sharptun.Gateway;

/// <summary>
/// <c>sharptun gateway</c>: a WireGuard server with no root and no TUN. Its tunnel runs in gateway mode
/// (<see cref="WireGuardTunnelOptions.Promiscuous"/>): the netstack terminates the peers' TCP connections and UDP flows
/// to any destination, and this host relays each to an ordinary host socket to the real destination, under a
/// <see cref="GatewayPolicy"/> and connection caps, counting per peer (<see cref="Counters"/>).
/// </summary>
/// <remarks>
/// <para>TCP: the policy is asked at SYN time, so a denied destination gets RST instead of SYN-ACK ("connection
/// refused"). An admitted connection is completed by the netstack first; the host then connects to the destination
/// (<see cref="GatewayOptions.ConnectTimeout"/>) and, when that fails or a cap is reached, resets the peer's
/// connection. Bytes are relayed by <see cref="StreamRelay"/>: FIN becomes a half-close on the other side, RST an
/// abort, and <see cref="GatewayOptions.TcpIdleTimeout"/> of silence resets both.</para>
/// <para>UDP: each (peer address and port, destination) pair gets a connected host UDP socket, closed after
/// <see cref="GatewayOptions.UdpIdleTimeout"/> of silence; replies go back from the destination's address. A denied or
/// capped flow gets ICMP "administratively prohibited", a destination's port unreachable is passed on as ICMP port
/// unreachable.</para>
/// <para>ICMP echo: answered by the gateway itself for destinations the policy lets peers reach on some port (the
/// gateway does not probe the destination: unprivileged processes cannot send ICMP everywhere).</para>
/// <para>DNS: queries to the gateway's tunnel addresses on port 53 (UDP and TCP), of any type, are forwarded to the
/// host's nameservers from <c>/etc/resolv.conf</c>; A and AAAA fall back to the host's resolver when none is
/// configured or none answers (<see cref="GatewayOptions.Dns"/>); other traffic to the tunnel addresses is refused.</para>
/// </remarks>
public sealed partial class GatewayHost : IAsyncDisposable
{
    private const int DnsPort = 53;
    private const int MaxConcurrentDnsQueries = 64;

    private readonly WireGuardTunnel _tunnel;
    private readonly GatewayOptions _options;
    private readonly RelayOptions _relay; // one for every relayed connection: they share its large buffers
    private readonly GatewayPolicy _policy;
    private readonly PeerDirectory _peers;
    private readonly DnsResponder _dns;
    private readonly TunnelTcpListener _listener;
    private readonly TunnelUdpCatchAll _udp;
    private readonly Func<IPEndPoint, IPEndPoint> _hostEndPoint;
    private readonly CancellationTokenSource _stop = new();
    private readonly ConcurrentDictionary<Task, byte> _handlers = new();
    private readonly SemaphoreSlim _dnsSlots = new(MaxConcurrentDnsQueries, MaxConcurrentDnsQueries);
    private readonly Task _acceptLoop;
    private readonly Task _udpLoop;
    private readonly Timer _udpExpiry;
    private int _disposed;

    private GatewayHost(WireGuardTunnel tunnel, IReadOnlyList<WireGuardTunnel> viaTunnels, GatewayOptions options, GatewayPolicy policy, Func<IPEndPoint, IPEndPoint>? hostEndPoint)
    {
        _tunnel = tunnel;
        ViaTunnels = viaTunnels;
        _options = options;
        _relay = new RelayOptions { IdleTimeout = options.TcpIdleTimeout };
        _policy = policy;
        _hostEndPoint = hostEndPoint ?? (e => e);
        _peers = new PeerDirectory(tunnel);
        Counters = new GatewayCounters(options.MaxConnections, options.MaxConnectionsPerPeer);
        var forwarder = options.Dns
            ? new DnsForwarder(DnsForwarder.ReadResolvConf(options.ResolvConfPath ?? (options.DnsResolve is null ? "/etc/resolv.conf" : string.Empty), options.DnsUpstreamPort), options.DnsServerTimeout, options.MaxConcurrentDnsForwards, Counters.CountDnsForward)
            : null;
        _dns = new DnsResponder(TimeSpan.FromSeconds(5))
        {
            Forwarder = forwarder,
            Resolve = options.DnsResolve ?? System.Net.Dns.GetHostAddressesAsync,
        };
        _listener = tunnel.ListenTcpAnyDestination(AdmitSyn);
        _udp = tunnel.BindUdpAnyDestination(receiveQueueLength: 1024);
        var period = TimeSpan.FromTicks(Math.Clamp(options.UdpIdleTimeout.Ticks / 4, TimeSpan.TicksPerMillisecond * 100, TimeSpan.TicksPerSecond * 5));
        _udpExpiry = new Timer(_ => ExpireUdpFlows(), null, period, period);
        _acceptLoop = Task.Run(AcceptLoopAsync);
        _udpLoop = Task.Run(UdpLoopAsync);
    }

    /// <summary>The gateway's WireGuard tunnel (peers, listen port, <c>wg show</c> data).</summary>
    public WireGuardTunnel Tunnel => _tunnel;

    /// <summary>
    /// The tunnels of the config's <see cref="GatewayConfig.Via"/> chain, the one whose netstack carries
    /// <see cref="Tunnel"/>'s UDP first (empty without <c>Via</c>). Disposed with the gateway, after <see cref="Tunnel"/>.
    /// </summary>
    public IReadOnlyList<WireGuardTunnel> ViaTunnels { get; }

    /// <summary>Counters per peer and in total.</summary>
    public GatewayCounters Counters { get; }

    /// <summary>The policy in force.</summary>
    public GatewayPolicy Policy => _policy;

    /// <summary>
    /// Starts a gateway from a parsed config: the WireGuard tunnel in gateway mode (this sets
    /// <see cref="WireGuardTunnelOptions.Promiscuous"/> and <see cref="WireGuardTunnelOptions.AnswerEchoFor"/> on
    /// <paramref name="tunnelOptions"/>) and the relays.
    /// </summary>
    /// <exception cref="FormatException">The WireGuard part of the config is invalid.</exception>
    public static Task<GatewayHost> StartAsync(GatewayConfig config, WireGuardTunnelOptions? tunnelOptions = null, CancellationToken cancellationToken = default) =>
        StartAsync(config, tunnelOptions, hostEndPoint: null, cancellationToken);

    /// <summary>As the public overload; <paramref name="hostEndPoint"/> maps a destination to the host endpoint actually used (tests).</summary>
    internal static async Task<GatewayHost> StartAsync(GatewayConfig config, WireGuardTunnelOptions? tunnelOptions, Func<IPEndPoint, IPEndPoint>? hostEndPoint, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(config);
        ValidateOptions(config.Options);
        var policy = new GatewayPolicy(config.Options);
        tunnelOptions ??= new WireGuardTunnelOptions();
        tunnelOptions.Promiscuous = true;
        tunnelOptions.AnswerEchoFor = policy.AllowsAnyPort;
        var viaTunnels = new List<WireGuardTunnel>();
        WireGuardTunnel? tunnel = null;
        try
        {
            if (config.Via is { } via)
            {
                // The gateway's ListenPort is a UDP socket of the nearest Via tunnel's netstack.
                var outer = await StartViaAsync(via, tunnelOptions, viaTunnels, cancellationToken).ConfigureAwait(false);
                tunnelOptions.BindFactory = outer.CreateDatagramBindFactory();
            }

            tunnel = await WireGuardTunnel.StartAsync(config.WireGuardText, tunnelOptions, cancellationToken).ConfigureAwait(false);
            return new GatewayHost(tunnel, viaTunnels, config.Options, policy, hostEndPoint);
        }
        catch
        {
            if (tunnel is not null)
            {
                await tunnel.DisposeAsync().ConfigureAwait(false);
            }

            await ViaRules.DisposeChainAsync(viaTunnels).ConfigureAwait(false);
            throw;
        }
    }

    /// <summary>Starts <paramref name="via"/>'s chain, the farthest first (each added to <paramref name="started"/>), each carrying the next one's UDP.</summary>
    private static async Task<WireGuardTunnel> StartViaAsync(ViaTunnelConfig via, WireGuardTunnelOptions gatewayOptions, List<WireGuardTunnel> started, CancellationToken cancellationToken)
    {
        var options = new WireGuardTunnelOptions
        {
            LoggerFactory = gatewayOptions.LoggerFactory,
            MemoryBudgetBytes = gatewayOptions.MemoryBudgetBytes,
            UdpBind = gatewayOptions.UdpBind,
        };
        if (via.Via is { } next)
        {
            options.BindFactory = (await StartViaAsync(next, gatewayOptions, started, cancellationToken).ConfigureAwait(false)).CreateDatagramBindFactory();
        }
        else
        {
            options.BindFactory = gatewayOptions.BindFactory; // the farthest tunnel uses the host socket the gateway would have
        }

        try
        {
            var tunnel = await WireGuardTunnel.StartAsync(via.WireGuardText, options, cancellationToken).ConfigureAwait(false);
            started.Add(tunnel);
            return tunnel;
        }
        catch (FormatException e)
        {
            throw new FormatException($"{via.Path}: {e.Message}", e);
        }
    }

    /// <summary>Stops relaying: resets open relays, closes UDP flows and the tunnel.</summary>
    public async ValueTask DisposeAsync()
    {
        if (Interlocked.Exchange(ref _disposed, 1) != 0)
        {
            return;
        }

        await _stop.CancelAsync().ConfigureAwait(false);
        await _udpExpiry.DisposeAsync().ConfigureAwait(false);
        _listener.Dispose();
        _udp.Dispose();
        foreach (var flow in _flows.Values)
        {
            flow.Close();
        }

        await Task.WhenAll([_acceptLoop, _udpLoop, .. _handlers.Keys]).WaitAsync(TimeSpan.FromSeconds(10)).ConfigureAwait(ConfigureAwaitOptions.SuppressThrowing);
        await _tunnel.DisposeAsync().ConfigureAwait(false);
        await ViaRules.DisposeChainAsync(ViaTunnels).ConfigureAwait(false);
        _stop.Dispose();
    }

    private static void ValidateOptions(GatewayOptions options)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(options.MaxConnections, 1, nameof(options));
        ArgumentOutOfRangeException.ThrowIfLessThan(options.MaxConnectionsPerPeer, 1, nameof(options));
        ArgumentOutOfRangeException.ThrowIfLessThanOrEqual(options.TcpIdleTimeout, TimeSpan.Zero, nameof(options));
        ArgumentOutOfRangeException.ThrowIfLessThanOrEqual(options.UdpIdleTimeout, TimeSpan.Zero, nameof(options));
        ArgumentOutOfRangeException.ThrowIfLessThanOrEqual(options.ConnectTimeout, TimeSpan.Zero, nameof(options));
    }

    private bool IsOwnAddress(IPAddress address)
    {
        foreach (var a in _tunnel.Addresses)
        {
            if (a.Equals(address))
            {
                return true;
            }
        }

        return false;
    }

    /// <summary>Runs <paramref name="work"/> as a tracked handler (DisposeAsync waits for it).</summary>
    private void Track(Func<Task> work)
    {
        var task = Task.Run(work);
        _handlers.TryAdd(task, 0);
        _ = task.ContinueWith(t => _handlers.TryRemove(t, out _), CancellationToken.None, TaskContinuationOptions.ExecuteSynchronously, TaskScheduler.Default);
    }

    // ---- TCP ----

    /// <summary>Under the stack's lock, for each SYN: the policy (no I/O, cached peer lookup only).</summary>
    private bool AdmitSyn(IPEndPoint source, IPEndPoint destination)
    {
        var address = DestinationRule.Normalize(destination.Address);
        if (IsOwnAddress(address))
        {
            return _options.Dns && destination.Port == DnsPort;
        }

        if (_policy.Decide(destination) == GatewayVerdict.Allowed)
        {
            return true;
        }

        Counters.For(_peers.Find(source.Address, cachedOnly: true)).CountTcpDenied();
        return false;
    }

    private async Task AcceptLoopAsync()
    {
        while (!_stop.IsCancellationRequested)
        {
            TunnelStream stream;
            try
            {
                stream = (TunnelStream)await _listener.AcceptAsync(_stop.Token).ConfigureAwait(false);
            }
            catch (Exception e) when (e is OperationCanceledException or ObjectDisposedException or IOException)
            {
                return;
            }

            Track(() => HandleTcpAsync(stream));
        }
    }

    private async Task HandleTcpAsync(TunnelStream client)
    {
        var destination = Normalize(client.LocalEndPoint);
        if (IsOwnAddress(destination.Address))
        {
            await ServeDnsOverTcpAsync(client).ConfigureAwait(false);
            return;
        }

        var peer = _peers.Find(client.RemoteEndPoint.Address);
        var counters = Counters.For(peer);
        using var lease = Counters.TryAdmit(peer);
        if (lease is null)
        {
            counters.CountTcpRefusedByCap();
            client.Abort();
            return;
        }

        var target = _hostEndPoint(destination);
        var socket = new Socket(target.AddressFamily, SocketType.Stream, ProtocolType.Tcp) { NoDelay = true };
        try
        {
            using var connectTimeout = CancellationTokenSource.CreateLinkedTokenSource(_stop.Token);
            connectTimeout.CancelAfter(_options.ConnectTimeout);
            await socket.ConnectAsync(target, connectTimeout.Token).ConfigureAwait(false);
        }
        catch (Exception e) when (e is SocketException or OperationCanceledException)
        {
            // The host could not reach it (refused, unreachable, timed out): the peer sees a reset.
            counters.CountTcpHostFailure();
            socket.Dispose();
            client.Abort();
            return;
        }

        counters.CountTcpRelayed();
        counters.AddOpenTcp(1);
        var server = new NetworkStream(socket, ownsSocket: true);
        try
        {
            var result = await StreamRelay.RunAsync(client, server, _relay, _stop.Token).ConfigureAwait(false);
            counters.AddBytes(result.ClientToServerBytes, result.ServerToClientBytes);
        }
        catch (OperationCanceledException)
        {
            StreamRelay.Abort(client);
            StreamRelay.Abort(server);
        }
        finally
        {
            counters.AddOpenTcp(-1);
            await client.DisposeAsync().ConfigureAwait(false);
            await server.DisposeAsync().ConfigureAwait(false);
        }
    }

    /// <summary>
    /// DNS over TCP (RFC 1035 §4.2.2, RFC 7766 §8: each message after a 2-byte length) to the gateway's own address, for
    /// clients whose UDP answer came back truncated (RFC 7766 §5): queries are answered one after another on the same
    /// connection (§6.2.1) until the client closes, sends a response instead of a query, or stays silent for
    /// <see cref="GatewayOptions.DnsTcpIdleTimeout"/> (§6.2.3). Answers carry no size limit beyond the framing.
    /// </summary>
    private async Task ServeDnsOverTcpAsync(TunnelStream client)
    {
        var counters = Counters.For(_peers.Find(client.RemoteEndPoint.Address));
        var length = new byte[2];
        var betweenQueries = true;
        try
        {
            while (true)
            {
                using var idle = CancellationTokenSource.CreateLinkedTokenSource(_stop.Token);
                idle.CancelAfter(_options.DnsTcpIdleTimeout);
                betweenQueries = true;
                if (!await ReadExactlyOrEndAsync(client, length, idle.Token).ConfigureAwait(false))
                {
                    break;
                }

                betweenQueries = false;

                var query = new byte[BinaryPrimitives.ReadUInt16BigEndian(length)];
                if (!await ReadExactlyOrEndAsync(client, query, idle.Token).ConfigureAwait(false))
                {
                    break;
                }

                var response = await _dns.AnswerAsync(query, udp: false, idle.Token).ConfigureAwait(false);
                if (response is null)
                {
                    break;
                }

                counters.CountDnsQuery();
                var framed = new byte[2 + response.Length];
                BinaryPrimitives.WriteUInt16BigEndian(framed, (ushort)response.Length);
                response.CopyTo(framed, 2);
                await client.WriteAsync(framed, idle.Token).ConfigureAwait(false);
            }

            await CloseAsync(client).ConfigureAwait(false);
        }
        catch (OperationCanceledException) when (betweenQueries && !_stop.IsCancellationRequested)
        {
            await CloseAsync(client).ConfigureAwait(false); // idle between queries: a clean close (RFC 7766 §6.2.3)
        }
        catch (Exception e) when (e is IOException or ObjectDisposedException or OperationCanceledException)
        {
            client.Abort(); // cut short mid-message, reset by the client, or the gateway stops
        }

        static async Task CloseAsync(TunnelStream client)
        {
            try
            {
                client.ShutdownWrite();
                await client.DisposeAsync().ConfigureAwait(false);
            }
            catch (Exception e) when (e is IOException or ObjectDisposedException)
            {
                client.Abort();
            }
        }
    }

    private static async Task<bool> ReadExactlyOrEndAsync(Stream stream, byte[] buffer, CancellationToken cancellationToken)
    {
        var read = await stream.ReadAtLeastAsync(buffer, buffer.Length, throwOnEndOfStream: false, cancellationToken).ConfigureAwait(false);
        return read == buffer.Length;
    }

    private static IPEndPoint Normalize(IPEndPoint endPoint) =>
        endPoint.Address.IsIPv4MappedToIPv6 ? new IPEndPoint(endPoint.Address.MapToIPv4(), endPoint.Port) : endPoint;
}
