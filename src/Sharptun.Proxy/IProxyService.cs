namespace Sharptun.Proxy;

/// <summary>
/// One front-end of <c>sharptun proxy</c>, built from one config section (<c>[Socks5]</c>, <c>[http]</c>,
/// <c>[TCPClientTunnel]</c>, ...): it listens (or, for <c>[STDIOTunnel]</c>, reads stdin) until cancelled and
/// relays what it accepts through the <see cref="ProxyContext.Network"/>.
/// </summary>
public interface IProxyService
{
    /// <summary>The front-end kind, lower case, as in metrics labels: "socks5", "http", "tcp-client", "tcp-server", "udp", "stdio", "sni".</summary>
    string Kind { get; }

    /// <summary>Where it serves, for logs and metrics ("127.0.0.1:1080", "tunnel port 8080", "stdin").</summary>
    string Endpoint { get; }

    /// <summary>Its counters.</summary>
    ProxyServiceCounters Counters { get; }

    /// <summary>
    /// Binds its listener, so that a bad bind address or a port in use fails at start, before the proxy reports
    /// ready. Called once, before <see cref="RunAsync"/>.
    /// </summary>
    /// <exception cref="System.Net.Sockets.SocketException">The bind failed.</exception>
    void Start();

    /// <summary>Serves until <paramref name="cancellationToken"/> is cancelled, then closes its listener and connections.</summary>
    Task RunAsync(CancellationToken cancellationToken);
}
