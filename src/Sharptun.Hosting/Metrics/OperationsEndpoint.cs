using System.Net;
using Microsoft.Extensions.Logging;

namespace Sharptun.Hosting.Metrics;

/// <summary>
/// The one call a front-end makes for <c>-i ADDR</c> and <c>CheckAlive</c>: starts the <see cref="AlivePinger"/> when
/// there are CheckAlive targets and the <see cref="MetricsServer"/> when there is an address, and stops both on
/// dispose. Either may be absent: CheckAlive without <c>-i</c> still pings (and logs state changes), as wireproxy does.
/// </summary>
public sealed class OperationsEndpoint : IAsyncDisposable
{
    private OperationsEndpoint(AlivePinger? pinger, MetricsServer? server)
    {
        Pinger = pinger;
        Server = server;
    }

    /// <summary>The CheckAlive pinger, or null without targets.</summary>
    public AlivePinger? Pinger { get; }

    /// <summary>The metrics and health server, or null without an address.</summary>
    public MetricsServer? Server { get; }

    /// <summary>Starts what is configured.</summary>
    /// <param name="infoAddress"><c>-i</c>'s text (<see cref="MetricsServer.TryParseEndpoint"/>), or null for no server.</param>
    /// <param name="tunnel">The tunnel exported and pinged through.</param>
    /// <param name="checkAlive">CheckAlive's addresses (may be empty).</param>
    /// <param name="checkAliveInterval">CheckAliveInterval.</param>
    /// <param name="sources">The caller's metrics (front-end counters, flows).</param>
    /// <param name="loggers">Logging (categories <see cref="AlivePinger"/>, <see cref="MetricsServer"/>), or null.</param>
    /// <exception cref="ArgumentException"><paramref name="infoAddress"/> is not an address; the message says why.</exception>
    /// <exception cref="System.Net.Sockets.SocketException">The address is in use or not local.</exception>
    public static OperationsEndpoint Start(
        string? infoAddress,
        WireGuardTunnel tunnel,
        IReadOnlyList<IPAddress> checkAlive,
        TimeSpan checkAliveInterval,
        IEnumerable<IMetricsSource>? sources = null,
        ILoggerFactory? loggers = null)
    {
        ArgumentNullException.ThrowIfNull(tunnel);
        ArgumentNullException.ThrowIfNull(checkAlive);
        IPEndPoint? endpoint = null;
        if (infoAddress is not null && !MetricsServer.TryParseEndpoint(infoAddress, out endpoint, out var error))
        {
            throw new ArgumentException(error, nameof(infoAddress));
        }

        var pinger = checkAlive.Count > 0 ? AlivePinger.Start(tunnel, checkAlive, checkAliveInterval, loggers?.CreateLogger<AlivePinger>()) : null;
        try
        {
            var server = endpoint is null ? null : MetricsServer.Start(endpoint, tunnel, pinger, sources, loggers?.CreateLogger<MetricsServer>());
            return new OperationsEndpoint(pinger, server);
        }
        catch
        {
            // Stopped without waiting for its loop (Start is synchronous: blocking a thread-pool thread on the loop's
            // end would be sync-over-async); the loop ends at its next await.
            pinger?.Stop();
            throw;
        }
    }

    /// <summary>Stops the server, then the pinger.</summary>
    public async ValueTask DisposeAsync()
    {
        if (Server is not null)
        {
            await Server.DisposeAsync().ConfigureAwait(false);
        }

        if (Pinger is not null)
        {
            await Pinger.DisposeAsync().ConfigureAwait(false);
        }
    }
}
