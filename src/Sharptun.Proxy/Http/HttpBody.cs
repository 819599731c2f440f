using System.Buffers;
using System.Globalization;

namespace Sharptun.Proxy.Http;

/// <summary>
/// Relays one message body from an <see cref="HttpReader"/> to a stream as it arrives, through one caller-owned
/// buffer: a body is never held in memory as a whole, whatever its size.
/// </summary>
internal static class HttpBody
{
    /// <summary>The most trailer field lines read after the last chunk (they are dropped, see below).</summary>
    private const int MaxTrailerLines = 64;

    /// <summary>Copies exactly <paramref name="length"/> bytes.</summary>
    /// <exception cref="HttpBodyException">The sender closed before <paramref name="length"/> bytes.</exception>
    public static async ValueTask CopyExactAsync(HttpReader from, Stream to, long length, byte[] buffer, Progress progress, CancellationToken cancellationToken)
    {
        var left = length;
        while (left > 0)
        {
            var n = await from.ReadAsync(buffer.AsMemory(0, (int)Math.Min(buffer.Length, left)), cancellationToken).ConfigureAwait(false);
            if (n == 0)
            {
                throw new HttpBodyException($"the body ended after {length - left} of {length} bytes");
            }

            progress.Touch();
            await to.WriteAsync(buffer.AsMemory(0, n), cancellationToken).ConfigureAwait(false);
            progress.Add(n);
            left -= n;
        }
    }

    /// <summary>Copies until the sender closes; returns the byte count.</summary>
    public static async ValueTask CopyToEndAsync(HttpReader from, Stream to, byte[] buffer, Progress progress, CancellationToken cancellationToken)
    {
        while (true)
        {
            var n = await from.ReadAsync(buffer, cancellationToken).ConfigureAwait(false);
            if (n == 0)
            {
                return;
            }

            progress.Touch();
            await to.WriteAsync(buffer.AsMemory(0, n), cancellationToken).ConfigureAwait(false);
            progress.Add(n);
        }
    }

    /// <summary>
    /// Relays a chunked body (RFC 9112 §7.1), checking every chunk's framing: with <paramref name="rechunk"/> the
    /// output is chunked again (chunk extensions and trailer fields dropped, as §7.1.1 and RFC 9110 §6.5.1 allow),
    /// else it is the decoded content (for an HTTP/1.0 client, delimited by closing the connection).
    /// </summary>
    /// <exception cref="HttpBodyException">A chunk-size line is malformed or too long, a chunk is shorter or longer than its size, or the trailer section is too large.</exception>
    public static async ValueTask CopyChunkedAsync(HttpReader from, Stream to, bool rechunk, byte[] buffer, Progress progress, CancellationToken cancellationToken)
    {
        var header = new byte[24];
        while (true)
        {
            var line = await from.ReadLineAsync(cancellationToken).ConfigureAwait(false)
                ?? throw new HttpBodyException("the chunked body ended or has a chunk-size line longer than 4 KiB");
            progress.Touch();
            var size = ParseChunkSize(line.Span);
            if (size == 0)
            {
                // last-chunk, then trailer-section, then CRLF (RFC 9112 §7.1).
                for (var lines = 0; ; lines++)
                {
                    var trailer = await from.ReadLineAsync(cancellationToken).ConfigureAwait(false);
                    if (trailer is null || lines == MaxTrailerLines)
                    {
                        throw new HttpBodyException("the chunked body's trailer section is cut off or too large");
                    }

                    if (trailer.Value.IsEmpty)
                    {
                        break;
                    }
                }

                if (rechunk)
                {
                    await to.WriteAsync(LastChunk, cancellationToken).ConfigureAwait(false);
                    progress.Add(5);
                }

                return;
            }

            if (rechunk)
            {
                size.TryFormat(header, out var n, "x", CultureInfo.InvariantCulture);
                header[n++] = (byte)'\r';
                header[n++] = (byte)'\n';
                await to.WriteAsync(header.AsMemory(0, n), cancellationToken).ConfigureAwait(false);
                progress.Add(n);
            }

            await CopyExactAsync(from, to, size, buffer, progress, cancellationToken).ConfigureAwait(false);
            var end = await from.ReadLineAsync(cancellationToken).ConfigureAwait(false);
            if (end is null || !end.Value.IsEmpty)
            {
                throw new HttpBodyException($"a chunk is longer than its chunk-size ({size} bytes)");
            }

            if (rechunk)
            {
                await to.WriteAsync(Crlf, cancellationToken).ConfigureAwait(false);
                progress.Add(2);
            }
        }
    }

    private static readonly byte[] Crlf = "\r\n"u8.ToArray();
    private static readonly byte[] LastChunk = "0\r\n\r\n"u8.ToArray();

    // chunk-size = 1*HEXDIG, then optional BWS ";" chunk-ext (RFC 9112 §7.1, §7.1.1).
    private static long ParseChunkSize(ReadOnlySpan<byte> line)
    {
        long size = 0;
        var digits = 0;
        foreach (var b in line)
        {
            var value = HexValue(b);
            if (value < 0)
            {
                break;
            }

            // 15 hex digits is far past any real chunk and cannot overflow a long.
            if (++digits > 15)
            {
                throw new HttpBodyException("a chunk-size has more than 15 hex digits");
            }

            size = (size << 4) | (uint)value;
        }

        var rest = line[digits..];
        var trimmed = rest.TrimStart(" \t"u8);
        if (digits == 0 || (!trimmed.IsEmpty && trimmed[0] != (byte)';') || (trimmed.IsEmpty && !rest.IsEmpty))
        {
            throw new HttpBodyException("a chunk-size line is not hexadecimal");
        }

        return size;
    }

    private static int HexValue(byte b) => b switch
    {
        >= (byte)'0' and <= (byte)'9' => b - '0',
        >= (byte)'a' and <= (byte)'f' => b - 'a' + 10,
        >= (byte)'A' and <= (byte)'F' => b - 'A' + 10,
        _ => -1,
    };

    /// <summary>Rents the relay buffer.</summary>
    public static byte[] RentBuffer(int size) => ArrayPool<byte>.Shared.Rent(size);

    /// <summary>Returns the relay buffer.</summary>
    public static void ReturnBuffer(byte[] buffer) => ArrayPool<byte>.Shared.Return(buffer);

    /// <summary>Progress of one direction: every read restarts the exchange's idle timer, every write is counted.</summary>
    internal sealed class Progress(CancellationTokenSource idle, TimeSpan idleTimeout, Action<long> count)
    {
        public void Touch()
        {
            if (idleTimeout != Timeout.InfiniteTimeSpan)
            {
                try
                {
                    idle.CancelAfter(idleTimeout);
                }
                catch (ObjectDisposedException)
                {
                }
            }
        }

        public void Add(long bytes) => count(bytes);
    }
}

/// <summary>A message body's framing is wrong (a lying Content-Length or chunk size, a malformed chunk line).</summary>
internal sealed class HttpBodyException(string message) : Exception(message);
