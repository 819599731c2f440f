using System.Buffers;

namespace Sharptun.Proxy.Http;

/// <summary>
/// A buffered reader over one side of an HTTP/1.1 connection: it finds message heads (RFC 9112 §2.1: start line,
/// field lines, empty line) and chunk-size lines in a pooled buffer that starts small and grows only up to
/// <see cref="MaxHeadBytes"/>, and hands body bytes through without copying them into memory as a whole.
/// </summary>
/// <remarks>
/// Bytes read past the end of a head (the start of a body, a pipelined request) stay buffered and are returned first
/// by <see cref="ReadAsync"/>. Not thread-safe: one reader per direction. <see cref="Dispose"/> returns the buffer;
/// it does not dispose the stream.
/// </remarks>
internal sealed class HttpReader : IDisposable
{
    /// <summary>The largest message head accepted (start line and all field lines); larger is a 431.</summary>
    public const int MaxHeadBytes = 64 * 1024;

    /// <summary>The longest chunk-size line (with chunk extensions) or trailer section accepted.</summary>
    public const int MaxChunkLineBytes = 4 * 1024;

    private const int InitialBytes = 4 * 1024;

    private readonly Stream _stream;
    private byte[] _buffer;
    private int _start;
    private int _end;

    public HttpReader(Stream stream)
    {
        _stream = stream;
        _buffer = ArrayPool<byte>.Shared.Rent(InitialBytes);
    }

    /// <summary>The bytes read from the stream but not consumed yet.</summary>
    public ReadOnlyMemory<byte> Buffered => _buffer.AsMemory(_start, _end - _start);

    /// <summary>Waits until at least one byte is buffered; false at end of stream.</summary>
    public async ValueTask<bool> WaitForDataAsync(CancellationToken cancellationToken)
    {
        return _end > _start || await FillAsync(cancellationToken).ConfigureAwait(false) > 0;
    }

    /// <summary>
    /// Reads one message head. Empty lines before it are skipped (RFC 9112 §2.2). The head is returned as buffered
    /// bytes without the final empty line and is consumed; it stays valid until the next read.
    /// </summary>
    public async ValueTask<(HeadStatus Status, ReadOnlyMemory<byte> Head)> ReadHeadAsync(CancellationToken cancellationToken)
    {
        var scanned = 0;
        while (true)
        {
            // RFC 9112 §2.2: a server SHOULD ignore at least one empty line received before the request line.
            while (_end > _start && (_buffer[_start] == (byte)'\r' || _buffer[_start] == (byte)'\n'))
            {
                _start++;
            }

            var end = FindHeadEnd(_buffer.AsSpan(_start, _end - _start), Math.Max(0, scanned - 3), out var terminatorLength);
            if (end >= 0)
            {
                var head = _buffer.AsMemory(_start, end);
                _start += end + terminatorLength;
                return (HeadStatus.Ok, head);
            }

            scanned = _end - _start;
            if (scanned >= MaxHeadBytes)
            {
                return (HeadStatus.TooLarge, default);
            }

            var hadBytes = _end > _start;
            if (await FillAsync(cancellationToken).ConfigureAwait(false) == 0)
            {
                return (hadBytes ? HeadStatus.Truncated : HeadStatus.Closed, default);
            }
        }
    }

    /// <summary>
    /// Reads one line of at most <see cref="MaxChunkLineBytes"/> (CRLF or a bare LF, RFC 9112 §2.2) and consumes it.
    /// The line excludes its terminator and stays valid until the next read. Null at end of stream or when the line
    /// is too long.
    /// </summary>
    public async ValueTask<ReadOnlyMemory<byte>?> ReadLineAsync(CancellationToken cancellationToken)
    {
        var scanned = 0;
        while (true)
        {
            var available = _buffer.AsSpan(_start, _end - _start);
            var newline = available[scanned..].IndexOf((byte)'\n');
            if (newline >= 0)
            {
                newline += scanned;
                var length = newline > 0 && available[newline - 1] == (byte)'\r' ? newline - 1 : newline;
                var line = _buffer.AsMemory(_start, length);
                _start += newline + 1;
                return line;
            }

            scanned = available.Length;
            if (scanned >= MaxChunkLineBytes || await FillAsync(cancellationToken).ConfigureAwait(false) == 0)
            {
                return null;
            }
        }
    }

    /// <summary>Reads body bytes: buffered ones first, then straight from the stream. 0 at end of stream.</summary>
    public async ValueTask<int> ReadAsync(Memory<byte> destination, CancellationToken cancellationToken)
    {
        if (_end > _start)
        {
            var n = Math.Min(destination.Length, _end - _start);
            _buffer.AsSpan(_start, n).CopyTo(destination.Span);
            _start += n;
            return n;
        }

        return await _stream.ReadAsync(destination, cancellationToken).ConfigureAwait(false);
    }

    /// <summary>Marks <paramref name="count"/> buffered bytes consumed.</summary>
    public void Consume(int count) => _start += count;

    public void Dispose()
    {
        var buffer = Interlocked.Exchange(ref _buffer, []);
        if (buffer.Length > 0)
        {
            ArrayPool<byte>.Shared.Return(buffer);
        }
    }

    // The head ends at the first empty line: CRLF CRLF, or bare LFs (RFC 9112 §2.2 lets a recipient accept LF alone).
    private static int FindHeadEnd(ReadOnlySpan<byte> data, int from, out int terminatorLength)
    {
        while (from < data.Length)
        {
            var i = data[from..].IndexOf((byte)'\n');
            if (i < 0)
            {
                break;
            }

            var at = from + i;
            if (at + 1 < data.Length && data[at + 1] == (byte)'\n')
            {
                return HeadEnd(data, at, 1, out terminatorLength);
            }

            if (at + 2 < data.Length && data[at + 1] == (byte)'\r' && data[at + 2] == (byte)'\n')
            {
                return HeadEnd(data, at, 2, out terminatorLength);
            }

            from = at + 1;
        }

        terminatorLength = 0;
        return -1;
    }

    // The head is everything before the line break that precedes the empty line; the terminator is that line break
    // plus the empty line.
    private static int HeadEnd(ReadOnlySpan<byte> data, int newline, int emptyLineLength, out int terminatorLength)
    {
        var head = newline > 0 && data[newline - 1] == (byte)'\r' ? newline - 1 : newline;
        terminatorLength = newline - head + 1 + emptyLineLength;
        return head;
    }

    private async ValueTask<int> FillAsync(CancellationToken cancellationToken)
    {
        if (_start == _end)
        {
            _start = _end = 0;
        }

        if (_end == _buffer.Length)
        {
            // Callers fill only while fewer than MaxHeadBytes are buffered, so compacting or doubling (up to
            // MaxHeadBytes) always leaves room.
            var live = _end - _start;
            if (_start == 0)
            {
                var bigger = ArrayPool<byte>.Shared.Rent(Math.Min(_buffer.Length * 2, MaxHeadBytes));
                _buffer.AsSpan(0, live).CopyTo(bigger);
                ArrayPool<byte>.Shared.Return(_buffer);
                _buffer = bigger;
            }
            else
            {
                _buffer.AsSpan(_start, live).CopyTo(_buffer);
            }

            _start = 0;
            _end = live;
        }

        var n = await _stream.ReadAsync(_buffer.AsMemory(_end), cancellationToken).ConfigureAwait(false);
        _end += n;
        return n;
    }
}

/// <summary>How reading a message head ended.</summary>
internal enum HeadStatus
{
    /// <summary>A complete head.</summary>
    Ok,

    /// <summary>The stream ended before any byte of a head (a client closing an idle keep-alive connection).</summary>
    Closed,

    /// <summary>The stream ended inside a head.</summary>
    Truncated,

    /// <summary>The head is larger than <see cref="HttpReader.MaxHeadBytes"/>.</summary>
    TooLarge,
}
