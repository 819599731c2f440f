using System.Net;
using System.Net.Sockets;
using Microsoft.Extensions.Logging;
using Sharptun.Proxy.Config;

namespace Sharptun.Proxy.Forwards;

/// <summary>Settings of a <see cref="TcpClientTunnel"/>.</summary>
public sealed class TcpClientTunnelOptions
{
    /// <summary>The host address and port to listen on (port 0: an ephemeral port, see <see cref="TcpClientTunnel.LocalEndPoint"/>).</summary>
    public required IPEndPoint BindAddress { get; init; }

    /// <summary>The target's name or IP address inside the tunnel (a name resolves through the tunnel's DNS).</summary>
    public required string TargetHost { get; init; }

    /// <summary>The target's TCP port.</summary>
    public required int TargetPort { get; init; }
}

/// <summary>
/// <c>[TCPClientTunnel]</c>: a local TCP port forwarded into the tunnel. Each connection accepted on
/// <see cref="TcpClientTunnelOptions.BindAddress"/> gets its own connection to the target through
/// <see cref="ProxyContext.Network"/>, and bytes are relayed both ways with half-close (a client's FIN reaches the
/// target, which may still answer). An unreachable target closes the client's connection and counts in
/// <see cref="ProxyServiceCounters.Failed"/>; past the proxy's connection cap a connection is reset and counted in
/// <see cref="ProxyServiceCounters.Refused"/>.
/// </summary>
public sealed class TcpClientTunnel : IProxyService
{
    /// <summary>The config section name.</summary>
    public const string SectionName = "TCPClientTunnel";

    private readonly TcpClientTunnelOptions _options;
    private readonly ProxyContext _context;
    private readonly ILogger _logger;
    private readonly string _target;
    private HostListener? _listener;

    /// <summary>A forward from <see cref="TcpClientTunnelOptions.BindAddress"/> to the target; <see cref="Start"/> binds it.</summary>
    /// <exception cref="ArgumentException">The target host is empty or the port is out of range.</exception>
    public TcpClientTunnel(TcpClientTunnelOptions options, ProxyContext context)
    {
        ArgumentNullException.ThrowIfNull(options);
        ArgumentNullException.ThrowIfNull(context);
        ArgumentNullException.ThrowIfNull(options.BindAddress);
        ArgumentException.ThrowIfNullOrWhiteSpace(options.TargetHost);
        ArgumentOutOfRangeException.ThrowIfLessThan(options.TargetPort, 1);
        ArgumentOutOfRangeException.ThrowIfGreaterThan(options.TargetPort, 65535);
        _options = options;
        _context = context;
        _logger = context.LoggerFactory.CreateLogger<TcpClientTunnel>();
        _target = ForwardAddress.Format(options.TargetHost, options.TargetPort);
    }

    /// <inheritdoc/>
    public string Kind => "tcp-client";

    /// <inheritdoc/>
    public string Endpoint => (LocalEndPoint ?? _options.BindAddress).ToString();

    /// <summary>The bound address and port once <see cref="Start"/> has run, else <see langword="null"/>.</summary>
    public IPEndPoint? LocalEndPoint => _listener?.LocalEndPoint;

    /// <inheritdoc/>
    public ProxyServiceCounters Counters { get; } = new();

    /// <summary>
    /// Reads a <c>[TCPClientTunnel]</c> section: <c>BindAddress = ip:port</c> (required), <c>Target = host:port</c>
    /// (required).
    /// </summary>
    /// <exception cref="ProxyConfigException">A key is missing, malformed or unknown (the message names the line).</exception>
    public static TcpClientTunnel FromSection(ConfigSection section, ProxyContext context)
    {
        ArgumentNullException.ThrowIfNull(section);
        section.RejectUnknownKeys("BindAddress", "Target");
        var bind = ForwardAddress.RequireBind(section);
        var (host, port) = ForwardAddress.RequireTarget(section);
        return new TcpClientTunnel(new TcpClientTunnelOptions { BindAddress = bind, TargetHost = host, TargetPort = port }, context);
    }

    /// <inheritdoc/>
    public void Start()
    {
        if (_listener is not null)
        {
            throw new InvalidOperationException("The forward is already started.");
        }

        _listener = HostListener.Bind(_options.BindAddress);
    }

    /// <inheritdoc/>
    public async Task RunAsync(CancellationToken cancellationToken)
    {
        var listener = _listener ?? throw new InvalidOperationException("Call Start before RunAsync.");
        var relay = new ForwardRelay(_context, Counters, _logger, Kind, Endpoint);
        ForwardLog.Serving(_logger, Kind, Endpoint, _target);
        await relay.ServeAsync(
            listener,
            (client, from, ct) => relay.RunAsync(client, from, _target, ConnectTunnelAsync, ReadOnlyMemory<byte>.Empty, ct),
            cancellationToken).ConfigureAwait(false);
    }

    private ValueTask<Stream> ConnectTunnelAsync(CancellationToken cancellationToken) =>
        _context.Network.ConnectAsync(_options.TargetHost, _options.TargetPort, cancellationToken);
}
