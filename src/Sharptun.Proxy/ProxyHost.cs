using Sharptun.Hosting.Metrics;
using System.Net.Sockets;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using Sharptun.Hosting;
using Sharptun.Proxy.Config;

namespace Sharptun.Proxy;

/// <summary>
/// One <c>sharptun proxy</c> instance: the WireGuard tunnel of a <see cref="ProxyConfig"/>, the
/// <see cref="ProxyContext"/> its front-ends share (the tunnel as <see cref="TunnelNetwork"/>, the connection cap,
/// timeouts) and every front-end built through <see cref="ProxyServiceCatalog"/>.
/// </summary>
/// <remarks>
/// <see cref="StartAsync"/> starts the tunnel, builds the services and binds them all (<see cref="IProxyService.Start"/>)
/// before anything serves: a port in use or a bad bind address fails the start with a
/// <see cref="ProxyHostException"/> naming the section, and what had started is stopped again.
/// <see cref="RunAsync"/> serves until cancelled; a front-end failing while running stops the others and the run
/// ends with a <see cref="ProxyHostException"/>. <see cref="DisposeAsync"/> stops the services, disposes those that are
/// <see cref="IAsyncDisposable"/> or <see cref="IDisposable"/>, then the tunnel.
/// </remarks>
public sealed partial class ProxyHost : IAsyncDisposable
{
    private readonly CancellationTokenSource _stop = new();
    private readonly ILogger _log;
    private readonly OperationsEndpoint _operations;
    private Task? _run;
    private int _runStarted;
    private int _disposed;

    private ProxyHost(ProxyConfig config, ProxyHostOptions options, WireGuardTunnel tunnel, ProxyContext context, IReadOnlyList<IProxyService> services, ILogger log, OperationsEndpoint operations, IReadOnlyList<WireGuardTunnel> viaTunnels)
    {
        ViaTunnels = viaTunnels;
        _operations = operations;
        Config = config;
        Options = options;
        Tunnel = tunnel;
        Context = context;
        Services = services;
        _log = log;
    }

    /// <summary>The config the host runs.</summary>
    public ProxyConfig Config { get; }

    /// <summary>The options the host runs with.</summary>
    public ProxyHostOptions Options { get; }

    /// <summary>The tunnel (peers, handshakes, transfer counters: what <c>/metrics</c> reports).</summary>
    public WireGuardTunnel Tunnel { get; }

    /// <summary>
    /// The tunnels of the config's <see cref="ProxyConfig.Via"/> chain, the one <see cref="Tunnel"/>'s UDP goes through
    /// first (empty without <c>Via</c>). Disposed with the host, after <see cref="Tunnel"/>.
    /// </summary>
    public IReadOnlyList<WireGuardTunnel> ViaTunnels { get; }

    /// <summary>What the front-ends share (the network, the connection gate and its counters).</summary>
    public ProxyContext Context { get; }

    /// <summary>The front-ends in config order.</summary>
    public IReadOnlyList<IProxyService> Services { get; }

    /// <summary>
    /// Checks <paramref name="config"/> the way <c>sharptun proxy -n</c> does: builds every front-end from its section
    /// over a network that refuses all use, so each section's keys and values are validated; nothing is started.
    /// </summary>
    /// <exception cref="ProxyConfigException">A front-end section is wrong; the message names file and line.</exception>
    public static void Validate(ProxyConfig config)
    {
        ArgumentNullException.ThrowIfNull(config);
        var context = new ProxyContext(OfflineNetwork.Instance);
        foreach (var section in config.Services)
        {
            DisposeServiceAsync(ProxyServiceCatalog.Create(section, context)).AsTask().GetAwaiter().GetResult();
        }
    }

    /// <summary>Starts the tunnel and binds every front-end; see the remarks on <see cref="ProxyHost"/>.</summary>
    /// <exception cref="ProxyConfigException">A front-end section is wrong (checked before the tunnel starts).</exception>
    /// <exception cref="ProxyHostException">The tunnel or a front-end could not start; nothing is left running.</exception>
    public static async Task<ProxyHost> StartAsync(ProxyConfig config, ProxyHostOptions? options = null, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(config);
        options ??= new ProxyHostOptions();
        ArgumentOutOfRangeException.ThrowIfLessThan(options.MaxConnections, 1, nameof(options));
        ArgumentOutOfRangeException.ThrowIfLessThanOrEqual(options.ConnectTimeout, TimeSpan.Zero, nameof(options));
        ArgumentOutOfRangeException.ThrowIfLessThanOrEqual(options.IdleTimeout, TimeSpan.Zero, nameof(options));
        var loggers = options.LoggerFactory ?? NullLoggerFactory.Instance;
        var log = loggers.CreateLogger<ProxyHost>();
        for (var c = config; c is not null; c = c.Via)
        {
            foreach (var ignored in c.IgnoredKeys)
            {
                LogIgnoredKey(log, c.WireGuardPath, ignored.Line, ignored.Key);
            }
        }

        Validate(config); // config errors before anything starts

        var viaTunnels = new List<WireGuardTunnel>();
        WireGuardTunnel tunnel;
        try
        {
            tunnel = await StartTunnelAsync(config, options, viaTunnels, log, main: true, cancellationToken).ConfigureAwait(false);
        }
        catch
        {
            await ViaRules.DisposeChainAsync(viaTunnels).ConfigureAwait(false);
            throw;
        }

        var context = new ProxyContext(new TunnelNetwork(tunnel, config.ResolveStrategy, options.ConnectTimeout))
        {
            Gate = new ConnectionGate(options.MaxConnections),
            Relay = new RelayOptions { IdleTimeout = options.IdleTimeout },
            AcceptTimeout = options.ConnectTimeout,
            LoggerFactory = loggers,
        };

        var services = new List<IProxyService>();
        var started = new List<IProxyService>();
        OperationsEndpoint operations;
        try
        {
            foreach (var section in config.Services)
            {
                services.Add(ProxyServiceCatalog.Create(section, context));
            }

            for (var i = 0; i < services.Count; i++)
            {
                var section = config.Services[i];
                try
                {
                    services[i].Start();
                }
                catch (Exception e) when (e is SocketException or IOException or UnauthorizedAccessException or InvalidOperationException or ArgumentException)
                {
                    throw new ProxyHostException($"{section.File}:{section.Line}: [{section.Name}] cannot start on {services[i].Endpoint}: {e.Message}", e);
                }

                started.Add(services[i]);
                LogServiceStarted(log, services[i].Kind, services[i].Endpoint);
            }

            // -i ADDR (/metrics, /readyz) and CheckAlive pings, once every front-end is bound.
            try
            {
                operations = OperationsEndpoint.Start(
                    options.InfoAddress, tunnel, config.Interface.CheckAlive, config.Interface.CheckAliveInterval, [new ProxyMetricsSource(services)], loggers);
            }
            catch (Exception e) when (e is SocketException or ArgumentException)
            {
                throw new ProxyHostException($"-i {options.InfoAddress}: the metrics endpoint cannot start: {e.Message}", e);
            }
        }
        catch
        {
            await StopAsync(started).ConfigureAwait(false);
            foreach (var service in services)
            {
                await DisposeServiceAsync(service).ConfigureAwait(false);
            }

            await tunnel.DisposeAsync().ConfigureAwait(false);
            await ViaRules.DisposeChainAsync(viaTunnels).ConfigureAwait(false);
            throw;
        }

        LogStarted(log, string.Join(", ", tunnel.Addresses), tunnel.PublicKey, tunnel.ListenPort, services.Count);
        return new ProxyHost(config, options, tunnel, context, services, log, operations, viaTunnels);
    }

    /// <summary>
    /// Serves until <paramref name="cancellationToken"/> is cancelled (or the host is disposed), then stops every
    /// front-end and returns. Call once.
    /// </summary>
    /// <exception cref="ProxyHostException">A front-end failed while running; the others were stopped.</exception>
    public Task RunAsync(CancellationToken cancellationToken)
    {
        ObjectDisposedException.ThrowIf(Volatile.Read(ref _disposed) != 0, this);
        if (Interlocked.Exchange(ref _runStarted, 1) != 0)
        {
            throw new InvalidOperationException("RunAsync was already called.");
        }

        _run = RunCoreAsync(cancellationToken);
        return _run;
    }

    /// <summary>Stops the front-ends (if running) and the tunnel.</summary>
    public async ValueTask DisposeAsync()
    {
        if (Interlocked.Exchange(ref _disposed, 1) != 0)
        {
            return;
        }

        await _stop.CancelAsync().ConfigureAwait(false);
        if (Interlocked.Exchange(ref _runStarted, 1) == 0)
        {
            await StopAsync(Services).ConfigureAwait(false); // started but never run: close their listeners
        }
        else if (_run is { } run)
        {
            try
            {
                await run.ConfigureAwait(false);
            }
            catch (ProxyHostException)
            {
                // reported by RunAsync
            }
        }

        foreach (var service in Services)
        {
            await DisposeServiceAsync(service).ConfigureAwait(false);
        }

        await _operations.DisposeAsync().ConfigureAwait(false);
        await Tunnel.DisposeAsync().ConfigureAwait(false);
        await ViaRules.DisposeChainAsync(ViaTunnels).ConfigureAwait(false);
        _stop.Dispose();
        LogStopped(_log);
    }

    /// <summary>
    /// Starts <paramref name="config"/>'s tunnel; with <c>Via</c>, the <c>Via</c> chain's tunnels first (each added to
    /// <paramref name="viaTunnels"/> as it starts, the one farthest down first), each carrying the next one's UDP.
    /// </summary>
    private static async Task<WireGuardTunnel> StartTunnelAsync(ProxyConfig config, ProxyHostOptions options, List<WireGuardTunnel> viaTunnels, ILogger log, bool main, CancellationToken cancellationToken)
    {
        var tunnelOptions = new WireGuardTunnelOptions
        {
            LoggerFactory = options.LoggerFactory,
            MemoryBudgetBytes = options.MemoryBudgetBytes,
            UapiSocketPath = main ? options.UapiSocketPath : null, // wg show/set: the tunnel the front-ends use
        };
        if (config.Via is { } via)
        {
            var outer = await StartTunnelAsync(via, options, viaTunnels, log, main: false, cancellationToken).ConfigureAwait(false);
            viaTunnels.Add(outer);
            tunnelOptions.BindFactory = outer.CreateDatagramBindFactory();
            if (config.MtuFromVia)
            {
                LogViaMtu(log, config.WireGuardPath, config.Interface.Mtu, via.WireGuardPath, via.Interface.Mtu);
            }

            LogVia(log, config.WireGuardPath, via.WireGuardPath, config.Interface.Mtu);
        }

        try
        {
            return await WireGuardTunnel.StartAsync(config.ToWgQuickText(), tunnelOptions, cancellationToken).ConfigureAwait(false);
        }
        catch (Exception e) when (e is FormatException or SocketException or IOException or ArgumentException or UnauthorizedAccessException)
        {
            throw new ProxyHostException($"{config.WireGuardPath}: the WireGuard tunnel did not start: {e.Message}", e);
        }
    }

    private async Task RunCoreAsync(CancellationToken cancellationToken)
    {
        using var stop = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken, _stop.Token);
        Exception? failure = null;
        IProxyService? failed = null;
        var failureLock = new Lock();
        var tasks = Services.Select(async service =>
        {
            try
            {
                await Task.Yield();
                await service.RunAsync(stop.Token).ConfigureAwait(false);
                if (service is Forwards.StdioTunnel && !stop.IsCancellationRequested)
                {
                    // [STDIOTunnel] returns when its target closed: the ProxyCommand's session is over, so is the proxy.
                    await stop.CancelAsync().ConfigureAwait(false);
                }
            }
            catch (OperationCanceledException) when (stop.IsCancellationRequested)
            {
                // stopping
            }
            catch (Exception e)
            {
                lock (failureLock)
                {
                    if (failure is null)
                    {
                        failure = e;
                        failed = service;
                    }
                }

                LogServiceFailed(_log, service.Kind, service.Endpoint, e.Message);
                await stop.CancelAsync().ConfigureAwait(false);
            }
        }).ToList();
        tasks.Add(WaitAsync(stop.Token));
        await Task.WhenAll(tasks).ConfigureAwait(false);
        if (failure is not null)
        {
            var index = Services.ToList().IndexOf(failed!);
            var section = Config.Services[index];
            throw new ProxyHostException($"{section.File}:{section.Line}: [{section.Name}] on {failed!.Endpoint} failed: {failure.Message}", failure);
        }
    }

    private static async Task WaitAsync(CancellationToken cancellationToken)
    {
        try
        {
            await Task.Delay(Timeout.Infinite, cancellationToken).ConfigureAwait(false);
        }
        catch (OperationCanceledException)
        {
            // stopping
        }
    }

    // IProxyService's contract: RunAsync on a cancelled token closes the listener Start opened.
    private static async Task StopAsync(IEnumerable<IProxyService> services)
    {
        foreach (var service in services)
        {
            try
            {
                await service.RunAsync(new CancellationToken(canceled: true)).ConfigureAwait(false);
            }
            catch (Exception e) when (e is OperationCanceledException or SocketException or IOException or ObjectDisposedException)
            {
                // it is stopped either way
            }
        }
    }

    // A front-end may hold resources beyond its listener (certificates, buffers): disposable ones are disposed last.
    private static async ValueTask DisposeServiceAsync(IProxyService service)
    {
        if (service is IAsyncDisposable asyncDisposable)
        {
            await asyncDisposable.DisposeAsync().ConfigureAwait(false);
        }
        else if (service is IDisposable disposable)
        {
            disposable.Dispose();
        }
    }

    [LoggerMessage(EventId = 1000, Level = LogLevel.Information, Message = "Proxy started: tunnel address {Addresses}, public key {PublicKey}, UDP port {Port}, {Count} front-end(s)")]
    private static partial void LogStarted(ILogger logger, string addresses, string publicKey, int port, int count);

    [LoggerMessage(EventId = 1001, Level = LogLevel.Information, Message = "{Kind} serving on {Endpoint}")]
    private static partial void LogServiceStarted(ILogger logger, string kind, string endpoint);

    [LoggerMessage(EventId = 1002, Level = LogLevel.Error, Message = "{Kind} on {Endpoint} failed, stopping the proxy: {Error}")]
    private static partial void LogServiceFailed(ILogger logger, string kind, string endpoint, string error);

    [LoggerMessage(EventId = 1003, Level = LogLevel.Warning, Message = "{File}:{Line}: {Key} is a wg-quick host setting; sharptun proxy has no interface and ignores it")]
    private static partial void LogIgnoredKey(ILogger logger, string file, int line, string key);

    [LoggerMessage(EventId = 1005, Level = LogLevel.Information, Message = "{File}: WireGuard UDP goes through the tunnel of Via {Via} (MTU {Mtu})")]
    private static partial void LogVia(ILogger logger, string file, string via, int mtu);

    [LoggerMessage(EventId = 1006, Level = LogLevel.Information, Message = "{File}: no MTU given; MTU {Mtu} picked to fit through Via {Via} (MTU {ViaMtu}, less 80 bytes of outer headers)")]
    private static partial void LogViaMtu(ILogger logger, string file, int mtu, string via, int viaMtu);

    [LoggerMessage(EventId = 1004, Level = LogLevel.Information, Message = "Proxy stopped")]
    private static partial void LogStopped(ILogger logger);
}
