using System.Net;
using System.Net.Sockets;
using Microsoft.Extensions.Logging;
using Sharptun.Proxy.Config;

namespace Sharptun.Proxy.Forwards;

/// <summary>Settings of a <see cref="TcpServerTunnel"/>.</summary>
public sealed class TcpServerTunnelOptions
{
    /// <summary>The TCP port to listen on at the tunnel's own addresses.</summary>
    public required int ListenPort { get; init; }

    /// <summary>The target's name or IP address on the host's network (a name resolves through the host's resolver).</summary>
    public required string TargetHost { get; init; }

    /// <summary>The target's TCP port.</summary>
    public required int TargetPort { get; init; }

    /// <summary>How long connecting to the target may take (default 10 s).</summary>
    public TimeSpan ConnectTimeout { get; init; } = TimeSpan.FromSeconds(10);
}

/// <summary>
/// <c>[TCPServerTunnel]</c>: a port of the tunnel forwarded to a host-side service, the reverse of
/// <see cref="TcpClientTunnel"/>. Peers connect to <see cref="TcpServerTunnelOptions.ListenPort"/> at the proxy's
/// tunnel address; each connection gets an ordinary host socket to the target, and bytes are relayed both ways with
/// half-close. An unreachable target closes the tunnel connection and counts in
/// <see cref="ProxyServiceCounters.Failed"/>; past the proxy's connection cap a connection is reset and counted in
/// <see cref="ProxyServiceCounters.Refused"/>.
/// </summary>
public sealed class TcpServerTunnel : IProxyService
{
    /// <summary>The config section name.</summary>
    public const string SectionName = "TCPServerTunnel";

    private readonly TcpServerTunnelOptions _options;
    private readonly ProxyContext _context;
    private readonly ILogger _logger;
    private readonly string _target;
    private TunnelListener? _listener;

    /// <summary>A forward from tunnel port <see cref="TcpServerTunnelOptions.ListenPort"/> to the host-side target; <see cref="Start"/> listens.</summary>
    /// <exception cref="ArgumentException">A port is out of range, the host empty or the timeout not positive.</exception>
    public TcpServerTunnel(TcpServerTunnelOptions options, ProxyContext context)
    {
        ArgumentNullException.ThrowIfNull(options);
        ArgumentNullException.ThrowIfNull(context);
        ArgumentOutOfRangeException.ThrowIfLessThan(options.ListenPort, 1);
        ArgumentOutOfRangeException.ThrowIfGreaterThan(options.ListenPort, 65535);
        ArgumentException.ThrowIfNullOrWhiteSpace(options.TargetHost);
        ArgumentOutOfRangeException.ThrowIfLessThan(options.TargetPort, 1);
        ArgumentOutOfRangeException.ThrowIfGreaterThan(options.TargetPort, 65535);
        ArgumentOutOfRangeException.ThrowIfLessThanOrEqual(options.ConnectTimeout, TimeSpan.Zero);
        _options = options;
        _context = context;
        _logger = context.LoggerFactory.CreateLogger<TcpServerTunnel>();
        _target = ForwardAddress.Format(options.TargetHost, options.TargetPort);
    }

    /// <inheritdoc/>
    public string Kind => "tcp-server";

    /// <inheritdoc/>
    public string Endpoint => $"tunnel port {_options.ListenPort}";

    /// <inheritdoc/>
    public ProxyServiceCounters Counters { get; } = new();

    /// <summary>
    /// Reads a <c>[TCPServerTunnel]</c> section: <c>ListenPort</c> (required, 1-65535), <c>Target = host:port</c>
    /// (required; on the host's network).
    /// </summary>
    /// <exception cref="ProxyConfigException">A key is missing, malformed or unknown (the message names the line).</exception>
    public static TcpServerTunnel FromSection(ConfigSection section, ProxyContext context)
    {
        ArgumentNullException.ThrowIfNull(section);
        section.RejectUnknownKeys("ListenPort", "Target");
        section.Require("ListenPort");
        var listenPort = section.GetInt("ListenPort", 0, 1, 65535);
        var (host, port) = ForwardAddress.RequireTarget(section);
        return new TcpServerTunnel(new TcpServerTunnelOptions { ListenPort = listenPort, TargetHost = host, TargetPort = port }, context);
    }

    /// <inheritdoc/>
    public void Start()
    {
        if (_listener is not null)
        {
            throw new InvalidOperationException("The forward is already started.");
        }

        _listener = new TunnelListener(_context.Network.ListenTcp(_options.ListenPort));
    }

    /// <inheritdoc/>
    public async Task RunAsync(CancellationToken cancellationToken)
    {
        var listener = _listener ?? throw new InvalidOperationException("Call Start before RunAsync.");
        var relay = new ForwardRelay(_context, Counters, _logger, Kind, Endpoint);
        ForwardLog.Serving(_logger, Kind, Endpoint, _target);
        await relay.ServeAsync(
            listener,
            (client, from, ct) => relay.RunAsync(client, from, _target, ConnectHostAsync, ReadOnlyMemory<byte>.Empty, ct),
            cancellationToken).ConfigureAwait(false);
    }

    private async ValueTask<Stream> ConnectHostAsync(CancellationToken cancellationToken)
    {
        // A dual-mode socket reaches IPv4 and IPv6 targets alike; ConnectAsync(host, port) tries each resolved address.
        var socket = new Socket(SocketType.Stream, ProtocolType.Tcp) { NoDelay = true };
        using var timeout = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        timeout.CancelAfter(_options.ConnectTimeout);
        try
        {
            if (IPAddress.TryParse(_options.TargetHost, out var address))
            {
                await socket.ConnectAsync(new IPEndPoint(address, _options.TargetPort), timeout.Token).ConfigureAwait(false);
            }
            else
            {
                await socket.ConnectAsync(_options.TargetHost, _options.TargetPort, timeout.Token).ConfigureAwait(false);
            }

            return new NetworkStream(socket, ownsSocket: true);
        }
        catch (OperationCanceledException) when (!cancellationToken.IsCancellationRequested)
        {
            socket.Dispose();
            throw new SocketException((int)SocketError.TimedOut, $"Connecting to {_target} timed out after {_options.ConnectTimeout.TotalSeconds:0.#} s.");
        }
        catch
        {
            socket.Dispose();
            throw;
        }
    }
}
