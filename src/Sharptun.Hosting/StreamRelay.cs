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
/// hold about as many buffers as have data in flight at that moment. A direction whose read fills its buffer is moving
/// a bulk transfer: it trades up to a <see cref="RelayOptions.LargeBufferSize"/> buffer while one of the
/// <see cref="RelayOptions.LargeBufferCount"/> the relays sharing the options may hold is free, so a fast transfer
/// makes a quarter of the reads, writes and (on a socket) system calls, and the memory that allows stays bounded. The
/// caller owns the streams and disposes them after <see cref="RunAsync"/> returns.
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
        var up = PumpAsync(client, server, options, activity, abort);
        var down = PumpAsync(server, client, options, activity, abort);
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

    private static async Task<(long Bytes, bool Failed)> PumpAsync(Stream from, Stream to, RelayOptions options, Activity activity, CancellationTokenSource abort)
    {
        byte[]? buffer = null;
        var bufferSize = options.BufferSize;
        var large = false;
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
                    Release(ref buffer, ref large, options);
                    bufferSize = options.BufferSize;
                }
                else if (!large && options.TryTakeLargeBuffer())
                {
                    // a bulk transfer: move it in larger pieces while the options' large buffers allow
                    ArrayPool<byte>.Shared.Return(buffer);
                    buffer = null;
                    large = true; // the slot is held from here: the finally block gives it back whatever happens
                    bufferSize = options.LargeBufferSize;
                    buffer = ArrayPool<byte>.Shared.Rent(bufferSize);
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
            Release(ref buffer, ref large, options);
        }
    }

    /// <summary>Gives back the direction's buffer (when it holds one) and its large-buffer slot (when it holds one).</summary>
    private static void Release(ref byte[]? buffer, ref bool large, RelayOptions options)
    {
        if (buffer is not null)
        {
            ArrayPool<byte>.Shared.Return(buffer);
            buffer = null;
        }

        if (large)
        {
            options.ReturnLargeBuffer();
            large = false;
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
    private int _largeBuffersInUse;

    /// <summary>16 KiB buffers, 8 large ones of 64 KiB, no idle timeout.</summary>
    public static RelayOptions Default { get; } = new();

    /// <summary>Bytes of each direction's buffer (default 16 KiB).</summary>
    public int BufferSize { get; init; } = 16 * 1024;

    /// <summary>
    /// Bytes of the buffer a direction moving a bulk transfer (its read filled <see cref="BufferSize"/>) trades up to
    /// (default 64 KiB). At most <see cref="LargeBufferCount"/> are held at once by the relays sharing these options.
    /// </summary>
    public int LargeBufferSize { get; init; } = 64 * 1024;

    /// <summary>
    /// How many <see cref="LargeBufferSize"/> buffers the relays sharing these options may hold at once (default 8,
    /// 512 KiB of 64 KiB buffers); beyond that, bulk transfers keep <see cref="BufferSize"/>. 0 turns large buffers off.
    /// </summary>
    public int LargeBufferCount { get; init; } = 8;

    /// <summary>Large buffers held now by relays using these options.</summary>
    internal int LargeBuffersInUse => Volatile.Read(ref _largeBuffersInUse);

    internal bool TryTakeLargeBuffer()
    {
        if (LargeBufferSize <= BufferSize)
        {
            return false;
        }

        var taken = Volatile.Read(ref _largeBuffersInUse);
        while (taken < LargeBufferCount)
        {
            var seen = Interlocked.CompareExchange(ref _largeBuffersInUse, taken + 1, taken);
            if (seen == taken)
            {
                return true;
            }

            taken = seen;
        }

        return false;
    }

    internal void ReturnLargeBuffer() => Interlocked.Decrement(ref _largeBuffersInUse);

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
