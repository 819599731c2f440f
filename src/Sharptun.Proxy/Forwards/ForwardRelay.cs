using System.Net.Sockets;
using Microsoft.Extensions.Logging;
using Sharptun.Hosting;

namespace Sharptun.Proxy.Forwards;

/// <summary>
/// One forwarded TCP connection, the same for every stream forward: accepted by the shared <see cref="AcceptLoop"/>
/// with a slot from the proxy's <see cref="ProxyContext.Gate"/> (refused with a reset past the cap), the connect to the target (a failure closes
/// the client in order and is counted), bytes already read from the client replayed to the target (the SNI
/// forward's ClientHello), then <see cref="StreamRelay"/> with half-close both ways.
/// </summary>
internal sealed class ForwardRelay(ProxyContext context, ProxyServiceCounters counters, ILogger logger, string kind, string endpoint)
{
    /// <summary>
    /// Runs the forward's <see cref="AcceptLoop"/> on <paramref name="listener"/> (disposed when it ends): each admitted
    /// connection goes to <paramref name="serve"/> (the client stream and its address); one past the cap is reset,
    /// logged and (by the loop) counted as refused.
    /// </summary>
    public Task ServeAsync(IConnectionListener listener, Func<Stream, string?, CancellationToken, Task> serve, CancellationToken cancellationToken) =>
        AcceptLoop.ServeAsync(
            listener,
            (connection, admitted, ct) => admitted ? serve(connection.Stream, connection.Client, ct) : Refuse(connection),
            context.Gate,
            counters,
            logger,
            kind,
            endpoint,
            cancellationToken);

    private Task Refuse(AcceptedConnection connection)
    {
        ForwardLog.Refused(logger, kind, endpoint, connection.Client, $"over the connection cap ({context.Gate.Capacity})");
        StreamRelay.Abort(connection.Stream);
        return Task.CompletedTask;
    }

    /// <summary>Connects, replays <paramref name="prefix"/>, relays; disposes <paramref name="client"/> in every case. Never throws.</summary>
    public async Task RunAsync(
        Stream client,
        string? from,
        string target,
        Func<CancellationToken, ValueTask<Stream>> connect,
        ReadOnlyMemory<byte> prefix,
        CancellationToken cancellationToken)
    {
        counters.OnAccepted();
        Stream? server = null;
        try
        {
            try
            {
                server = await connect(cancellationToken).ConfigureAwait(false);
                if (!prefix.IsEmpty)
                {
                    await server.WriteAsync(prefix, cancellationToken).ConfigureAwait(false);
                }
            }
            catch (Exception e) when (e is SocketException or IOException or InvalidOperationException or ObjectDisposedException
                                          || (e is OperationCanceledException && !cancellationToken.IsCancellationRequested))
            {
                counters.OnFailed();
                ForwardLog.TargetFailed(logger, kind, endpoint, target, ForwardLog.Describe(e));
                return;
            }

            var result = await StreamRelay.RunAsync(client, server, context.Relay, cancellationToken).ConfigureAwait(false);
            counters.AddBytes(result.ClientToServerBytes + prefix.Length, result.ServerToClientBytes);
            ForwardLog.RelayEnded(logger, kind, endpoint, from, target, result.End, result.ClientToServerBytes + prefix.Length, result.ServerToClientBytes);
        }
        catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
        {
            // The proxy is stopping: the streams are closed below.
        }
        finally
        {
            await client.DisposeAsync().ConfigureAwait(false);
            if (server is not null)
            {
                await server.DisposeAsync().ConfigureAwait(false);
            }

            counters.OnClosed();
        }
    }
}
