using System.Collections.Concurrent;
using System.Net;
using System.Net.Sockets;
using Microsoft.Extensions.Logging;

namespace Sharptun.Proxy.Forwards;

/// <summary>
/// The accept loop the stream forwards share: accepts until cancelled, hands each connection to a handler task
/// without waiting for it, and on cancellation waits for every handler (each sees the same token and closes its
/// streams), so <c>RunAsync</c> returns only when no connection of the service is left open.
/// </summary>
internal static class AcceptLoop
{
    public static async Task RunAsync(
        Func<CancellationToken, ValueTask<(Stream Stream, string? Client)>> accept,
        Func<Stream, string?, CancellationToken, Task> handle,
        ILogger logger,
        string kind,
        string endpoint,
        CancellationToken cancellationToken)
    {
        var running = new ConcurrentDictionary<Task, byte>();
        try
        {
            while (!cancellationToken.IsCancellationRequested)
            {
                Stream stream;
                string? client;
                try
                {
                    (stream, client) = await accept(cancellationToken).ConfigureAwait(false);
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
                    // Out of descriptors, a connection reset before accept: keep serving, but never spin.
                    ForwardLog.Error(logger, kind, endpoint, $"accept failed: {e.Message}");
                    await Task.Delay(TimeSpan.FromMilliseconds(50), cancellationToken).ConfigureAwait(ConfigureAwaitOptions.SuppressThrowing);
                    continue;
                }

                var task = handle(stream, client, cancellationToken);
                running.TryAdd(task, 0);
                _ = task.ContinueWith(static (t, state) => ((ConcurrentDictionary<Task, byte>)state!).TryRemove(t, out _), running, CancellationToken.None, TaskContinuationOptions.ExecuteSynchronously, TaskScheduler.Default);
            }
        }
        finally
        {
            await Task.WhenAll(running.Keys).ConfigureAwait(ConfigureAwaitOptions.SuppressThrowing);
        }
    }

    /// <summary>A host TCP listener on <paramref name="bind"/> (dual-stack when it is [::]).</summary>
    public static Socket ListenHost(IPEndPoint bind)
    {
        var socket = new Socket(bind.AddressFamily, SocketType.Stream, ProtocolType.Tcp);
        try
        {
            if (bind.Address.Equals(IPAddress.IPv6Any))
            {
                socket.DualMode = true;
            }

            socket.Bind(bind);
            socket.Listen(512);
            return socket;
        }
        catch
        {
            socket.Dispose();
            throw;
        }
    }

    /// <summary>Accepts one connection of a host listener as a stream (Nagle off: a forward adds no delay).</summary>
    public static async ValueTask<(Stream Stream, string? Client)> AcceptHostAsync(Socket listener, CancellationToken cancellationToken)
    {
        var socket = await listener.AcceptAsync(cancellationToken).ConfigureAwait(false);
        socket.NoDelay = true;
        return (new NetworkStream(socket, ownsSocket: true), socket.RemoteEndPoint?.ToString());
    }

    /// <summary>Formats an exception of a failed connect for logs: the socket error's message.</summary>
    public static string Describe(Exception e) => e is SocketException s ? $"{s.SocketErrorCode}: {s.Message}" : e.Message;
}
