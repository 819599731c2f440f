using System.Net;
using System.Net.Sockets;
using System.Runtime.CompilerServices;

namespace Sharptun.NetStack.Tcp;

/// <summary>
/// A TCP connection as a <see cref="Stream"/>. Reads return 0 once the peer's FIN has been read (the write side
/// still works until <see cref="ShutdownWrite"/> or Dispose: half-close). WriteAsync completes when all bytes are in
/// the bounded send buffer (it waits for space: backpressure); FlushAsync pushes out a segment held back by Nagle.
/// </summary>
/// <remarks>
/// Thread-safety: one read and one write may be in flight at the same time (from different threads); concurrent
/// reads (or concurrent writes) throw <see cref="InvalidOperationException"/>. All state lives under the stack's
/// Gate; continuations never run inside it.
/// Dispose closes gracefully (FIN after the buffered data; RST if received data was left unread, RFC 1122
/// §4.2.2.13); Abort() resets at once. After either, operations throw <see cref="ObjectDisposedException"/>.
/// Errors: a reset connection throws <see cref="IOException"/> wrapping a <see cref="SocketException"/>
/// (ConnectionReset, TimedOut, ...).
/// </remarks>
public sealed class TcpStream : Stream
{
    private readonly TcpLayer _layer;
    private readonly TcpConnection _conn;
    private bool _disposed;
    private int _readTimeout = Timeout.Infinite;
    private int _writeTimeout = Timeout.Infinite;

    internal TcpStream(TcpLayer layer, TcpConnection connection)
    {
        _layer = layer;
        _conn = connection;
        var t = connection.Tuple;
        LocalEndPoint = new IPEndPoint(t.LocalAddress.ToIPAddress(), t.LocalPort);
        RemoteEndPoint = new IPEndPoint(t.RemoteAddress.ToIPAddress(), t.RemotePort);
    }

    /// <summary>Local address and port.</summary>
    public IPEndPoint LocalEndPoint { get; }

    /// <summary>Remote address and port.</summary>
    public IPEndPoint RemoteEndPoint { get; }

    internal TcpConnection Connection => _conn;

    /// <summary>Disables Nagle's algorithm (RFC 896) when true.</summary>
    public bool NoDelay
    {
        get { lock (_layer.Gate) { return _conn.NoDelay; } }
        set { lock (_layer.Gate) { _conn.NoDelay = value; if (value) { _conn.Push(_layer.Now); } } }
    }

    /// <summary>Enables keepalive probes (RFC 1122 §4.2.3.6) with the layer's KeepAlive* timings.</summary>
    public bool KeepAlive
    {
        get { lock (_layer.Gate) { return _conn.KeepAlive; } }
        set { lock (_layer.Gate) { _conn.KeepAlive = value; } }
    }

    /// <summary>True until the stream is disposed.</summary>
    public override bool CanRead => !_disposed;
    /// <summary>True until the stream is disposed.</summary>
    public override bool CanWrite => !_disposed;
    /// <summary>False: a TCP stream cannot seek.</summary>
    public override bool CanSeek => false;
    /// <summary>True: see <see cref="ReadTimeout"/> and <see cref="WriteTimeout"/>.</summary>
    public override bool CanTimeout => true;

    /// <summary>Timeout in milliseconds for synchronous and asynchronous reads (Timeout.Infinite by default).</summary>
    public override int ReadTimeout
    {
        get => _readTimeout;
        set => _readTimeout = value is > 0 or Timeout.Infinite ? value : throw new ArgumentOutOfRangeException(nameof(value));
    }

    /// <summary>Timeout in milliseconds for synchronous and asynchronous writes (Timeout.Infinite by default).</summary>
    public override int WriteTimeout
    {
        get => _writeTimeout;
        set => _writeTimeout = value is > 0 or Timeout.Infinite ? value : throw new ArgumentOutOfRangeException(nameof(value));
    }

    /// <summary>Not supported (throws <see cref="NotSupportedException"/>).</summary>
    public override long Length => throw new NotSupportedException();
    /// <summary>Not supported (throws <see cref="NotSupportedException"/>).</summary>
    public override long Position { get => throw new NotSupportedException(); set => throw new NotSupportedException(); }
    /// <summary>Not supported (throws <see cref="NotSupportedException"/>).</summary>
    public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();
    /// <summary>Not supported (throws <see cref="NotSupportedException"/>).</summary>
    public override void SetLength(long value) => throw new NotSupportedException();

    /// <summary>Reads up to <paramref name="count"/> bytes, blocking until data, end of stream or the read timeout; 0 at end of stream.</summary>
    public override int Read(byte[] buffer, int offset, int count) => Read(buffer.AsSpan(offset, count));

    /// <summary>Reads up to buffer.Length bytes, blocking until data, end of stream or the read timeout; 0 at end of stream.</summary>
    public override int Read(Span<byte> buffer)
    {
        lock (_layer.Gate)
        {
            if (TryReadLocked(buffer, out int n))
            {
                return n;
            }
        }

        byte[] tmp = new byte[buffer.Length];
        int r = ReadAsync(tmp, CancellationToken.None).AsTask().GetAwaiter().GetResult();
        tmp.AsSpan(0, r).CopyTo(buffer);
        return r;
    }

    /// <summary>Reads up to <paramref name="count"/> bytes; 0 at end of stream.</summary>
    public override Task<int> ReadAsync(byte[] buffer, int offset, int count, CancellationToken cancellationToken) =>
        ReadAsync(buffer.AsMemory(offset, count), cancellationToken).AsTask();

    /// <summary>Reads up to buffer.Length bytes; 0 at end of stream (peer sent FIN and everything was read).</summary>
    /// <remarks>
    /// An empty <paramref name="buffer"/> waits until data, end of stream or an error is there and returns 0 (a
    /// zero-byte read, as on a socket): the caller can then take a buffer only when there is something to put in it.
    /// A read that has to wait takes its state machine box from a pool (PoolingAsyncValueTaskMethodBuilder), so
    /// steady-state reads allocate nothing: await the returned ValueTask once, as the ValueTask contract requires.
    /// </remarks>
    [AsyncMethodBuilder(typeof(PoolingAsyncValueTaskMethodBuilder<>))]
    public override async ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken cancellationToken = default)
    {
        CancellationTokenSource? cts = null;
        try
        {
            while (true)
            {
                ValueTask wait;
                lock (_layer.Gate)
                {
                    if (TryReadLocked(buffer.Span, out int n))
                    {
                        return n;
                    }

                    cancellationToken.ThrowIfCancellationRequested();
                    if (cts is null && _readTimeout != Timeout.Infinite)
                    {
                        cts = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
                        cts.CancelAfter(_readTimeout);
                    }

                    wait = _conn.ReadSignal.Arm(cts?.Token ?? cancellationToken);
                }

                try
                {
                    await wait.ConfigureAwait(false);
                }
                catch (OperationCanceledException) when (cts is not null && !cancellationToken.IsCancellationRequested)
                {
                    throw new IOException("The read timed out.", new SocketException((int)SocketError.TimedOut));
                }
            }
        }
        finally
        {
            cts?.Dispose();
        }
    }

    private bool TryReadLocked(Span<byte> buffer, out int n)
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        n = 0;
        if (buffer.IsEmpty)
        {
            // a zero-byte read waits until a read would not (bytes, end of stream or an error), as a socket's does:
            // a relay can wait for data before it takes a buffer (StreamRelay)
            if (_conn.ReadableBytes > 0)
            {
                return true;
            }
        }
        else
        {
            n = _conn.Receive(buffer, _layer.Now);
            if (n > 0)
            {
                return true;
            }
        }

        if (_conn.ReceiveFinished)
        {
            return true;
        }

        if (_conn.State == TcpState.Closed)
        {
            ThrowError();
        }

        return false;
    }

    private void ThrowError()
    {
        var e = _conn.Error == SocketError.Success ? SocketError.ConnectionReset : _conn.Error;
        if (e == SocketError.OperationAborted)
        {
            throw new ObjectDisposedException(nameof(TcpStream));
        }

        throw new IOException("The TCP connection failed: " + e + ".", new SocketException((int)e));
    }

    /// <summary>Copies the bytes into the send buffer, blocking while it is full (up to the write timeout).</summary>
    public override void Write(byte[] buffer, int offset, int count) => Write(buffer.AsSpan(offset, count));

    /// <summary>Copies all of <paramref name="buffer"/> into the send buffer, blocking while it is full (up to the write timeout).</summary>
    public override void Write(ReadOnlySpan<byte> buffer)
    {
        int done;
        lock (_layer.Gate)
        {
            done = WriteLocked(buffer);
        }

        if (done < buffer.Length)
        {
            WriteAsync(buffer[done..].ToArray(), CancellationToken.None).AsTask().GetAwaiter().GetResult();
        }
    }

    /// <summary>Copies the bytes into the send buffer, waiting for space as needed.</summary>
    public override Task WriteAsync(byte[] buffer, int offset, int count, CancellationToken cancellationToken) =>
        WriteAsync(buffer.AsMemory(offset, count), cancellationToken).AsTask();

    /// <summary>Copies all of <paramref name="buffer"/> into the send buffer, waiting for space as needed.</summary>
    /// <remarks>A write that has to wait takes its state machine box from a pool: steady-state writes allocate nothing.</remarks>
    [AsyncMethodBuilder(typeof(PoolingAsyncValueTaskMethodBuilder))]
    public override async ValueTask WriteAsync(ReadOnlyMemory<byte> buffer, CancellationToken cancellationToken = default)
    {
        CancellationTokenSource? cts = null;
        try
        {
            int done = 0;
            while (true)
            {
                ValueTask wait;
                lock (_layer.Gate)
                {
                    done += WriteLocked(buffer.Span[done..]);
                    if (done == buffer.Length)
                    {
                        return;
                    }

                    cancellationToken.ThrowIfCancellationRequested();
                    if (cts is null && _writeTimeout != Timeout.Infinite)
                    {
                        cts = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
                        cts.CancelAfter(_writeTimeout);
                    }

                    wait = _conn.WriteSignal.Arm(cts?.Token ?? cancellationToken);
                }

                try
                {
                    await wait.ConfigureAwait(false);
                }
                catch (OperationCanceledException) when (cts is not null && !cancellationToken.IsCancellationRequested)
                {
                    throw new IOException("The write timed out.", new SocketException((int)SocketError.TimedOut));
                }
            }
        }
        finally
        {
            cts?.Dispose();
        }
    }

    private int WriteLocked(ReadOnlySpan<byte> data)
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        if (_conn.State == TcpState.Closed)
        {
            ThrowError();
        }

        if (_conn.SendShutdown)
        {
            throw new IOException("The write side was shut down.", new SocketException((int)SocketError.Shutdown));
        }

        if (!_conn.IsSynchronized && _conn.State != TcpState.SynReceived)
        {
            ThrowError();
        }

        return data.IsEmpty ? 0 : _conn.Send(data, _layer.Now);
    }

    /// <summary>Pushes the buffered data out now (does not wait for it to be acknowledged).</summary>
    public override void Flush()
    {
        lock (_layer.Gate)
        {
            ObjectDisposedException.ThrowIf(_disposed, this);
            _conn.Push(_layer.Now);
        }
    }

    /// <summary>As <see cref="Flush"/>; completes at once.</summary>
    public override Task FlushAsync(CancellationToken cancellationToken)
    {
        Flush();
        return Task.CompletedTask;
    }

    /// <summary>Half-close: sends FIN after the buffered data; reading continues until the peer's FIN.</summary>
    public void ShutdownWrite()
    {
        lock (_layer.Gate)
        {
            ObjectDisposedException.ThrowIf(_disposed, this);
            _conn.ShutdownWrite(_layer.Now);
        }
    }

    /// <summary>Resets the connection (RST) and releases it immediately. Idempotent.</summary>
    public void Abort()
    {
        lock (_layer.Gate)
        {
            if (_disposed)
            {
                return;
            }

            _disposed = true;
            _conn.Abort(_layer.Now);
        }
    }

    /// <summary>Closes the connection as the application (remaining data, then FIN) and fails pending reads and writes with <see cref="ObjectDisposedException"/>.</summary>
    protected override void Dispose(bool disposing)
    {
        if (disposing)
        {
            lock (_layer.Gate)
            {
                if (!_disposed)
                {
                    _disposed = true;
                    _conn.CloseByApplication(_layer.Now);

                    var ode = new ObjectDisposedException(nameof(TcpStream));
                    _conn.ReadSignal.SetException(ode);
                    _conn.WriteSignal.SetException(ode);
                }
            }
        }

        base.Dispose(disposing);
    }
}
