using System.Collections.Concurrent;
using System.Net.Sockets;
using Microsoft.Extensions.Logging;
using Sharptun.Hosting;

namespace Sharptun.Proxy;

/// <summary>
/// The accept loop every stream service shares (the SOCKS5 and HTTP front-ends, the TCP and SNI forwards): accepts
/// until cancelled, admits each connection through the proxy's <see cref="ConnectionGate"/> (past the cap it is
/// counted in <see cref="ProxyServiceCounters.Refused"/> and still handed to the handler, which refuses it its own
/// way: a reset, a 503, a SOCKS reply), and runs each on its own task without waiting for it.
/// </summary>
/// <remarks>
/// Per connection, whatever the handler does: its gate slot is held until the handler ends, its stream is disposed
/// after it, and an exception the handler did not expect is logged as an error and counted in
/// <see cref="ProxyServiceCounters.Failed"/> without ending the loop. A failed accept (out of descriptors, a
/// connection reset before it was taken) is logged and retried after a short pause, never in a spin. On cancellation
/// the listener is disposed first (new clients are refused by the kernel) and then every handler is awaited (each
/// sees the same token and closes its streams), so <see cref="ServeAsync"/> returns only when no connection of the
/// service is left open.
/// </remarks>
internal static class AcceptLoop
{
    /// <summary>The pause after a failed accept.</summary>
    internal static readonly TimeSpan AcceptRetryDelay = TimeSpan.FromMilliseconds(50);

    /// <summary>
    /// Serves <paramref name="listener"/> until <paramref name="cancellationToken"/> is cancelled (or the listener is
    /// disposed), then disposes it and waits for every connection's handler. <paramref name="handle"/> gets the
    /// connection, whether the gate admitted it, and the token; it must not wait for anything but its connection.
    /// </summary>
    public static async Task ServeAsync(
        IConnectionListener listener,
        Func<AcceptedConnection, bool, CancellationToken, Task> handle,
        ConnectionGate gate,
        ProxyServiceCounters counters,
        ILogger logger,
        string kind,
        string endpoint,
        CancellationToken cancellationToken)
    {
        var service = new Service(handle, gate, counters, logger, kind, endpoint);
        var running = new ConcurrentDictionary<Task, byte>();
        try
        {
            while (!cancellationToken.IsCancellationRequested)
            {
                AcceptedConnection connection;
                try
                {
                    connection = await listener.AcceptAsync(cancellationToken).ConfigureAwait(false);
                }
                catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
                {
                    break;
                }
                catch (ObjectDisposedException)
                {
                    break;
                }
                catch (SocketException e)
                {
                    AcceptLoopLog.AcceptFailed(logger, kind, endpoint, $"{e.SocketErrorCode}: {e.Message}");
                    await Task.Delay(AcceptRetryDelay, cancellationToken).ConfigureAwait(ConfigureAwaitOptions.SuppressThrowing);
                    continue;
                }

                // Task.Run: a handler's synchronous start (a TLS handshake's first steps, say) never delays the next accept.
                var task = Task.Run(() => service.RunOneAsync(connection, cancellationToken), CancellationToken.None);
                running.TryAdd(task, 0);
                _ = task.ContinueWith(static (t, state) => ((ConcurrentDictionary<Task, byte>)state!).TryRemove(t, out _), running, CancellationToken.None, TaskContinuationOptions.ExecuteSynchronously, TaskScheduler.Default);
            }
        }
        finally
        {
            await listener.DisposeAsync().ConfigureAwait(false);
            await Task.WhenAll(running.Keys).ConfigureAwait(ConfigureAwaitOptions.SuppressThrowing);
        }
    }

    /// <summary>What every connection of one loop shares.</summary>
    private sealed class Service(
        Func<AcceptedConnection, bool, CancellationToken, Task> handle,
        ConnectionGate gate,
        ProxyServiceCounters counters,
        ILogger logger,
        string kind,
        string endpoint)
    {
        public async Task RunOneAsync(AcceptedConnection connection, CancellationToken cancellationToken)
        {
            var lease = gate.TryEnter();
            if (lease is null)
            {
                counters.OnRefused();
            }

            try
            {
                await handle(connection, lease is not null, cancellationToken).ConfigureAwait(false);
            }
            catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
            {
                // The service is stopping: the stream is closed below.
            }
#pragma warning disable CA1031 // One connection's unforeseen failure must not end the service or fault its RunAsync.
            catch (Exception e)
#pragma warning restore CA1031
            {
                counters.OnFailed();
                AcceptLoopLog.HandlerFailed(logger, kind, endpoint, connection.Client, e);
            }
            finally
            {
                try
                {
                    await connection.Stream.DisposeAsync().ConfigureAwait(false);
                }
#pragma warning disable CA1031 // Closing an already broken connection may throw; nothing is left to do about it.
                catch (Exception e)
#pragma warning restore CA1031
                {
                    AcceptLoopLog.CloseFailed(logger, kind, endpoint, connection.Client, e.Message);
                }

                lease?.Dispose();
            }
        }
    }
}

/// <summary>One accepted connection: its stream, the host socket under it (none for a connection inside the tunnel) and the client's address for logs.</summary>
internal readonly record struct AcceptedConnection(Stream Stream, Socket? Socket, string? Client);

/// <summary>Where an <see cref="AcceptLoop"/> takes its connections from; the loop disposes it when it ends.</summary>
internal interface IConnectionListener : IAsyncDisposable
{
    /// <summary>Waits for the next connection.</summary>
    ValueTask<AcceptedConnection> AcceptAsync(CancellationToken cancellationToken);
}

/// <summary>The accept loop's log messages (event ids 1550-1559), source-generated.</summary>
internal static partial class AcceptLoopLog
{
    [LoggerMessage(EventId = 1550, Level = LogLevel.Warning, Message = "{Kind} {Endpoint}: accept failed: {Error}")]
    public static partial void AcceptFailed(ILogger logger, string kind, string endpoint, string error);

    [LoggerMessage(EventId = 1551, Level = LogLevel.Error, Message = "{Kind} {Endpoint}: connection from {Client} failed unexpectedly")]
    public static partial void HandlerFailed(ILogger logger, string kind, string endpoint, string? client, Exception exception);

    [LoggerMessage(EventId = 1552, Level = LogLevel.Debug, Message = "{Kind} {Endpoint}: closing the connection from {Client} failed: {Error}")]
    public static partial void CloseFailed(ILogger logger, string kind, string endpoint, string? client, string error);
}
