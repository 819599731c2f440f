namespace Sharptun.Proxy;

/// <summary>How a <see cref="ProxyHost"/> runs: limits and timeouts not in the config file (the command line's flags).</summary>
public sealed class ProxyHostOptions
{
    /// <summary>The default <see cref="MaxConnections"/>.</summary>
    public const int DefaultMaxConnections = 1024;

    /// <summary>The cap on connections open at once across all front-ends (default 1024).</summary>
    public int MaxConnections { get; init; } = DefaultMaxConnections;

    /// <summary>The tunnel's memory budget for packet and stack buffers (<see cref="WireGuardTunnelOptions.MemoryBudgetBytes"/>).</summary>
    public long MemoryBudgetBytes { get; init; } = WireGuardTunnelOptions.DefaultMemoryBudgetBytes;

    /// <summary>How long a connect through the tunnel may take, and how long a SOCKS5 BIND waits for its incoming connection (default 30 s).</summary>
    public TimeSpan ConnectTimeout { get; init; } = TimeSpan.FromSeconds(30);

    /// <summary>How long a relayed connection may stay silent both ways before it is closed (default 10 min).</summary>
    public TimeSpan IdleTimeout { get; init; } = TimeSpan.FromMinutes(10);

    /// <summary>
    /// The address of the health and metrics endpoint (wireproxy's <c>-i ADDR</c>: <c>/metrics</c>, <c>/readyz</c>),
    /// or <see langword="null"/> for none.
    /// </summary>
    public string? InfoAddress { get; init; }

    /// <summary>
    /// Where to serve the wireguard-go UAPI for this instance (<see cref="WireGuardTunnelOptions.UapiSocketPath"/>), so
    /// <c>wg show</c> and <c>wg set</c> work on it; <see langword="null"/> for none.
    /// </summary>
    public string? UapiSocketPath { get; init; }

    /// <summary>Logging (also handed to the tunnel and every front-end).</summary>
    public Microsoft.Extensions.Logging.ILoggerFactory? LoggerFactory { get; init; }
}
