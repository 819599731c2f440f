using System.Net;
using System.Net.Sockets;
using Microsoft.Extensions.Logging;
using Sharptun.Proxy.Config;

namespace Sharptun.Proxy.Forwards;

/// <summary>Settings of a <see cref="SniProxy"/>.</summary>
public sealed class SniProxyOptions
{
    /// <summary>The host address and port to listen on (port 0: an ephemeral port, see <see cref="SniProxy.LocalEndPoint"/>).</summary>
    public required IPEndPoint BindAddress { get; init; }

    /// <summary>The port connected to at the server name (default 443, as wireproxy does whatever port it listens on).</summary>
    public int TargetPort { get; init; } = 443;
}

/// <summary>
/// <c>[SNI]</c>: a transparent TLS forward. It reads the client's ClientHello (never decrypting anything), takes
/// the host name of its server_name extension (RFC 6066 §3), connects through the tunnel to that name (resolved by
/// the tunnel's DNS) on <see cref="SniProxyOptions.TargetPort"/>, replays the bytes it read and relays the rest
/// both ways with half-close. A client that sends no ClientHello within <see cref="ProxyContext.HandshakeTimeout"/>,
/// a malformed one, or one without a host name is closed and counted in <see cref="ProxyServiceCounters.Refused"/>;
/// an unreachable name counts in <see cref="ProxyServiceCounters.Failed"/>.
/// </summary>
/// <remarks>
/// Like wireproxy's, it connects to port 443 whatever port it listens on (clients are pointed at it by DNS or
/// <c>/etc/hosts</c> for HTTPS); <see cref="SniProxyOptions.TargetPort"/>, the section's <c>TargetPort</c> key (Sharptun's own;
/// wireproxy has none), changes that.
/// At most <see cref="TlsClientHello.MaxRecordBytes"/> bytes are read before the decision.
/// </remarks>
public sealed class SniProxy : IProxyService
{
    /// <summary>The config section name.</summary>
    public const string SectionName = "SNI";

    private readonly SniProxyOptions _options;
    private readonly ProxyContext _context;
    private readonly ILogger _logger;
    private HostListener? _listener;

    /// <summary>An SNI forward on <see cref="SniProxyOptions.BindAddress"/>; <see cref="Start"/> binds it.</summary>
    /// <exception cref="ArgumentException">The target port is out of range.</exception>
    public SniProxy(SniProxyOptions options, ProxyContext context)
    {
        ArgumentNullException.ThrowIfNull(options);
        ArgumentNullException.ThrowIfNull(context);
        ArgumentNullException.ThrowIfNull(options.BindAddress);
        ArgumentOutOfRangeException.ThrowIfLessThan(options.TargetPort, 1);
        ArgumentOutOfRangeException.ThrowIfGreaterThan(options.TargetPort, 65535);
        _options = options;
        _context = context;
        _logger = context.LoggerFactory.CreateLogger<SniProxy>();
    }

    /// <inheritdoc/>
    public string Kind => "sni";

    /// <inheritdoc/>
    public string Endpoint => (LocalEndPoint ?? _options.BindAddress).ToString();

    /// <summary>The bound address and port once <see cref="Start"/> has run, else <see langword="null"/>.</summary>
    public IPEndPoint? LocalEndPoint => _listener?.LocalEndPoint;

    /// <inheritdoc/>
    public ProxyServiceCounters Counters { get; } = new();

    /// <summary>Reads an <c>[SNI]</c> section: <c>BindAddress = ip:port</c> (required).</summary>
    /// <exception cref="ProxyConfigException">The key is missing, malformed or unknown (the message names the line).</exception>
    public static SniProxy FromSection(ConfigSection section, ProxyContext context)
    {
        ArgumentNullException.ThrowIfNull(section);
        section.RejectUnknownKeys("BindAddress", "TargetPort");
        var bind = ForwardAddress.RequireBind(section);
        // TargetPort is Sharptun's own key (wireproxy always connects to 443): a TLS service on another port
        var port = section.GetInt("TargetPort", 443, 1, 65535);
        return new SniProxy(new SniProxyOptions { BindAddress = bind, TargetPort = port }, context);
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
        ForwardLog.Serving(_logger, Kind, Endpoint, $"the ClientHello's server name, port {_options.TargetPort}");
        await relay.ServeAsync(listener, (client, from, ct) => HandleAsync(relay, client, from, ct), cancellationToken).ConfigureAwait(false);
    }

    private async Task HandleAsync(ForwardRelay relay, Stream client, string? from, CancellationToken cancellationToken)
    {
        var (name, hello, error) = await ReadServerNameAsync(client, cancellationToken).ConfigureAwait(false);
        if (name is null)
        {
            Counters.OnRefused();
            ForwardLog.Refused(_logger, Kind, Endpoint, from, error!);
            await client.DisposeAsync().ConfigureAwait(false);
            return;
        }

        var port = _options.TargetPort;
        await relay.RunAsync(
            client,
            from,
            ForwardAddress.Format(name, port),
            ct => _context.Network.ConnectAsync(name, port, ct),
            hello,
            cancellationToken).ConfigureAwait(false);
    }

    /// <summary>Reads until the ClientHello's server name is known; the bytes read are returned to be replayed.</summary>
    private async Task<(string? Name, ReadOnlyMemory<byte> Hello, string? Error)> ReadServerNameAsync(Stream client, CancellationToken cancellationToken)
    {
        var buffer = new byte[TlsClientHello.MaxRecordBytes];
        var filled = 0;
        using var timeout = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        timeout.CancelAfter(_context.HandshakeTimeout);
        try
        {
            while (true)
            {
                var n = await client.ReadAsync(buffer.AsMemory(filled), timeout.Token).ConfigureAwait(false);
                if (n == 0)
                {
                    return (null, default, filled == 0 ? "closed without a ClientHello" : "closed in the middle of its ClientHello");
                }

                filled += n;
                switch (TlsClientHello.TryReadServerName(buffer.AsSpan(0, filled), out var name))
                {
                    case ClientHelloStatus.Found:
                        return (name, buffer.AsMemory(0, filled), null);
                    case ClientHelloStatus.Malformed:
                        return (null, default, "not a TLS ClientHello (or a malformed one)");
                    case ClientHelloStatus.NoServerName:
                        return (null, default, "the ClientHello names no server (server_name host_name)");
                    case ClientHelloStatus.Incomplete when filled == buffer.Length:
                        return (null, default, $"no complete ClientHello in {buffer.Length} bytes");
                }
            }
        }
        catch (OperationCanceledException) when (!cancellationToken.IsCancellationRequested)
        {
            return (null, default, $"no ClientHello within {_context.HandshakeTimeout.TotalSeconds:0.#} s");
        }
        catch (Exception e) when (e is IOException or SocketException or ObjectDisposedException)
        {
            return (null, default, $"read failed: {e.Message}");
        }
    }
}
