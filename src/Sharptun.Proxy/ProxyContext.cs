using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using Sharptun.Hosting;

namespace Sharptun.Proxy;

/// <summary>What every front-end of one proxy instance shares.</summary>
public sealed class ProxyContext
{
    /// <summary>A context over <paramref name="network"/> with the defaults below.</summary>
    public ProxyContext(ITunnelNetwork network)
    {
        ArgumentNullException.ThrowIfNull(network);
        Network = network;
    }

    /// <summary>Where targets are reached (the tunnel).</summary>
    public ITunnelNetwork Network { get; }

    /// <summary>The cap on connections open at once across all front-ends (default 1024); past it a front-end refuses clearly (SOCKS5 reply 0x01, HTTP 503).</summary>
    public ConnectionGate Gate { get; init; } = new(1024);

    /// <summary>How relayed connections are copied (buffer size, idle timeout).</summary>
    public RelayOptions Relay { get; init; } = new() { IdleTimeout = TimeSpan.FromMinutes(10) };

    /// <summary>How long a client may take to send its request (SOCKS5 greeting and request, HTTP request head) before it is dropped (default 30 s).</summary>
    public TimeSpan HandshakeTimeout { get; init; } = TimeSpan.FromSeconds(30);

    /// <summary>
    /// How long a front-end waits for a connection it asked the tunnel for: a SOCKS5 BIND's incoming connection
    /// (RFC 1928 §4) must arrive within it (default 30 s; <see cref="ProxyHost"/> sets it to
    /// <see cref="ProxyHostOptions.ConnectTimeout"/>).
    /// </summary>
    public TimeSpan AcceptTimeout { get; init; } = TimeSpan.FromSeconds(30);

    /// <summary>Logging.</summary>
    public ILoggerFactory LoggerFactory { get; init; } = NullLoggerFactory.Instance;
}
