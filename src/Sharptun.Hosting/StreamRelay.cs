using System.Buffers;
using System.Net.Sockets;

namespace Sharptun.Hosting;

/// <summary>
/// Copies bytes both ways between two connected streams until both directions are finished, as a TCP proxy must:
/// end of stream on one side becomes a half-close (FIN) on the other, so a peer that shuts down its sending side
/// still receives the rest of the reply (RFC 9293 §3.10.4); an error on either side (a reset) aborts both; no byte
/// in either direction for <see cref="RelayOptions.IdleTimeout"/> aborts both.
/// </summary>
/// <remarks>
/// Each direction takes a pooled buffer of <see cref="RelayOptions.BufferSize"/> bytes only while it has bytes to move:
/// it waits for data with a zero-byte read, reads, writes, and gives the buffer back once a read drains the source.
/// A quiet direction (the request side of a download, an idle connection) holds nothing, so 100 relayed downloads
/// hold about as many buffers as have data in flight at that moment. The caller owns the streams and disposes them
/// after <see cref="RunAsync"/> returns.
/// </remarks>
public static class StreamRelay
{
    /// <summary>Relays between <paramref name="client"/> and <paramref name="server"/> until both directions end.</summary>
    /// <returns>Bytes each way and how the relay ended. Never throws for I/O errors on either stream; they end the relay.</returns>
    /// <exception cref="OperationCanceledException"><paramref name="cancellationToken"/> was cancelled.</exception>
    public static async Task<RelayResult> RunAsync(Stream client, Stream server, RelayOptions? options = null, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(client);
        ArgumentNullException.ThrowIfNull(server);
        options ??= RelayOptions.Default;
        using var abort = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        var activity = new Activity();
        var up = PumpAsync(client, server, options.BufferSize, activity, abort);
        var down = PumpAsync(server, client, options.BufferSize, activity, abort);
        var idleTimedOut = false;
        if (options.IdleTimeout != Timeout.InfiniteTimeSpan)
        {
            // Cancelled when the watch ends: a pending delay would otherwise keep its timer (and this relay's state)
            // alive for up to the idle timeout after the relay is gone.
            using var idleWait = CancellationTokenSource.CreateLinkedTokenSource(abort.Token);
            var both = Task.WhenAll(up, down);
            var idleMs = (long)options.IdleTimeout.TotalMilliseconds;
            while (!both.IsCompleted && !abort.IsCancellationRequested)
            {
                var quiet = Environment.TickCount64 - activity.LastTicks;
                var wait = TimeSpan.FromMilliseconds(Math.Max(1, idleMs - quiet));
                if (quiet >= idleMs)
                {
                    idleTimedOut = true;
                    await abort.CancelAsync().ConfigureAwait(false);
                    break;
                }

                await Task.WhenAny(both, Task.Delay(wait, idleWait.Token)).ConfigureAwait(false);
            }

            await idleWait.CancelAsync().ConfigureAwait(false);
        }

        var upResult = await up.ConfigureAwait(false);
        var downResult = await down.ConfigureAwait(false);
        cancellationToken.ThrowIfCancellationRequested();
        if (upResult.Failed || downResult.Failed || idleTimedOut)
        {
            Abort(client);
            Abort(server);
        }

        var end = idleTimedOut ? RelayEnd.IdleTimeout : upResult.Failed || downResult.Failed ? RelayEnd.Error : RelayEnd.Closed;
        return new RelayResult(upResult.Bytes, downResult.Bytes, end);
    }

    /// <summary>
    /// Half-closes <paramref name="stream"/>'s sending side if its type allows it (a socket's
    /// <see cref="NetworkStream"/>, a <see cref="TunnelStream"/>); other streams are disposed, which closes both sides.
    /// </summary>
    public static void ShutdownWrite(Stream stream)
    {
        ArgumentNullException.ThrowIfNull(stream);
        switch (stream)
        {
            case NetworkStream network:
                network.Socket.Shutdown(SocketShutdown.Send);
                break;
            case TunnelStream tunnel:
                tunnel.ShutdownWrite();
                break;
            default:
                stream.Dispose();
                break;
        }
    }

    /// <summary>
    /// Closes <paramref name="stream"/> abortively where the type allows it (a socket is closed with a zero linger
    /// time, a <see cref="TunnelStream"/> is aborted: both send RST), else disposes it. Never throws.
    /// </summary>
    public static void Abort(Stream stream)
    {
        ArgumentNullException.ThrowIfNull(stream);
        try
        {
            if (stream is NetworkStream network)
            {
                network.Socket.LingerState = new LingerOption(true, 0);
                network.Socket.Close();
            }
            else if (stream is TunnelStream tunnel)
            {
                tunnel.Abort();
            }

            stream.Dispose();
        }
        catch (Exception e) when (e is IOException or SocketException or ObjectDisposedException)
        {
        }
    }

    private static async Task<(long Bytes, bool Failed)> PumpAsync(Stream from, Stream to, int bufferSize, Activity activity, CancellationTokenSource abort)
    {
        byte[]? buffer = null;
        long bytes = 0;
        try
        {
            while (true)
            {
                if (buffer is null)
                {
                    // Wait for data before taking a buffer (a zero-byte read, as sockets, SslStream and the netstack's
                    // streams support; others return at once and the read below waits instead): a quiet direction
                    // such as the request side of a download holds no memory.
                    await from.ReadAsync(Memory<byte>.Empty, abort.Token).ConfigureAwait(false);
                    buffer = ArrayPool<byte>.Shared.Rent(bufferSize);
                }

                var n = await from.ReadAsync(buffer.AsMemory(0, bufferSize), abort.Token).ConfigureAwait(false);
                activity.Touch();
                if (n == 0)
                {
                    ShutdownWrite(to);
                    return (bytes, false);
                }

                await to.WriteAsync(buffer.AsMemory(0, n), abort.Token).ConfigureAwait(false);
                bytes += n;
                activity.Touch();
                if (n < bufferSize)
                {
                    // drained what was there: give the buffer back until more arrives (a full read keeps it, more
                    // is likely waiting)
                    ArrayPool<byte>.Shared.Return(buffer);
                    buffer = null;
                }
            }
        }
        catch (Exception e) when (e is IOException or SocketException or ObjectDisposedException or OperationCanceledException or InvalidOperationException)
        {
            // The other direction cannot usefully go on: a reset, a closed tunnel or the idle timer.
            await abort.CancelAsync().ConfigureAwait(false);
            return (bytes, true);
        }
        finally
        {
            if (buffer is not null)
            {
                ArrayPool<byte>.Shared.Return(buffer);
            }
        }
    }

    private sealed class Activity
    {
        private long _lastTicks = Environment.TickCount64;

        public long LastTicks => Volatile.Read(ref _lastTicks);

        public void Touch() => Volatile.Write(ref _lastTicks, Environment.TickCount64);
    }
}

/// <summary>Settings of a <see cref="StreamRelay"/>.</summary>
public sealed class RelayOptions
{
    /// <summary>16 KiB buffers, no idle timeout.</summary>
    public static RelayOptions Default { get; } = new();

    /// <summary>Bytes of each direction's buffer (default 16 KiB).</summary>
    public int BufferSize { get; init; } = 16 * 1024;

    /// <summary>Abort both sides after this long with no byte either way (default: never).</summary>
    public TimeSpan IdleTimeout { get; init; } = Timeout.InfiniteTimeSpan;
}

/// <summary>How a relay ended.</summary>
public enum RelayEnd
{
    /// <summary>Both sides closed their sending side in order (FIN both ways).</summary>
    Closed,

    /// <summary>A read or write failed (a reset, a closed tunnel); both sides were aborted.</summary>
    Error,

    /// <summary>No byte moved for the idle timeout; both sides were aborted.</summary>
    IdleTimeout,
}

/// <summary>The outcome of <see cref="StreamRelay.RunAsync"/>.</summary>
/// <param name="ClientToServerBytes">Bytes copied from the client stream to the server stream.</param>
/// <param name="ServerToClientBytes">Bytes copied from the server stream to the client stream.</param>
/// <param name="End">How the relay ended.</param>
public readonly record struct RelayResult(long ClientToServerBytes, long ServerToClientBytes, RelayEnd End);
