using System.Net;
using Sharptun.NetStack.Tcp;

namespace Sharptun;

/// <summary>
/// A TCP connection through the tunnel (what <see cref="WireGuardTunnel.ConnectAsync(IPEndPoint, CancellationToken)"/>
/// and <see cref="TunnelTcpListener.AcceptAsync"/> return): the netstack's TCP stream, with errors caused by closing the
/// tunnel reported as one clear <see cref="IOException"/> ("the WireGuard tunnel was closed").
/// </summary>
public sealed class TunnelStream : Stream
{
    private readonly WireGuardTunnel tunnel;

    internal TunnelStream(TcpStream inner, WireGuardTunnel tunnel)
    {
        Inner = inner;
        this.tunnel = tunnel;
    }

    internal TcpStream Inner { get; }

    /// <summary>Our end of the connection (a tunnel address and port).</summary>
    public IPEndPoint LocalEndPoint => Inner.LocalEndPoint;

    /// <summary>The far end of the connection.</summary>
    public IPEndPoint RemoteEndPoint => Inner.RemoteEndPoint;

    /// <summary>
    /// Half-close: sends FIN after the bytes already written (RFC 9293 §3.10.4, CLOSE in ESTABLISHED); reading still
    /// works until the far end closes too. Further writes fail.
    /// </summary>
    /// <exception cref="IOException">The tunnel was closed.</exception>
    public void ShutdownWrite()
    {
        try
        {
            Inner.ShutdownWrite();
        }
        catch (Exception e) when (tunnel.IsClosed && e is IOException or ObjectDisposedException)
        {
            throw WireGuardTunnel.ClosedError(e);
        }
    }

    /// <summary>
    /// Resets the connection (sends RST, RFC 9293 §3.10.7) and releases it at once; pending reads and writes fail.
    /// Idempotent. Disposing instead closes in order (remaining data, then FIN).
    /// </summary>
    public void Abort() => Inner.Abort();

    /// <inheritdoc/>
    public override bool CanRead => Inner.CanRead;

    /// <inheritdoc/>
    public override bool CanWrite => Inner.CanWrite;

    /// <inheritdoc/>
    public override bool CanSeek => false;

    /// <inheritdoc/>
    public override bool CanTimeout => true;

    /// <inheritdoc/>
    public override int ReadTimeout { get => Inner.ReadTimeout; set => Inner.ReadTimeout = value; }

    /// <inheritdoc/>
    public override int WriteTimeout { get => Inner.WriteTimeout; set => Inner.WriteTimeout = value; }

    /// <inheritdoc/>
    public override long Length => throw new NotSupportedException();

    /// <inheritdoc/>
    public override long Position { get => throw new NotSupportedException(); set => throw new NotSupportedException(); }

    /// <inheritdoc/>
    public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();

    /// <inheritdoc/>
    public override void SetLength(long value) => throw new NotSupportedException();

    /// <inheritdoc/>
    public override int Read(byte[] buffer, int offset, int count) => Read(buffer.AsSpan(offset, count));

    /// <inheritdoc/>
    public override int Read(Span<byte> buffer)
    {
        try
        {
            return Inner.Read(buffer);
        }
        catch (Exception e) when (tunnel.IsClosed && e is IOException or ObjectDisposedException)
        {
            throw WireGuardTunnel.ClosedError(e);
        }
    }

    /// <inheritdoc/>
    public override Task<int> ReadAsync(byte[] buffer, int offset, int count, CancellationToken cancellationToken) =>
        ReadAsync(buffer.AsMemory(offset, count), cancellationToken).AsTask();

    /// <inheritdoc/>
    public override async ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken cancellationToken)
    {
        try
        {
            return await Inner.ReadAsync(buffer, cancellationToken).ConfigureAwait(false);
        }
        catch (Exception e) when (tunnel.IsClosed && e is IOException or ObjectDisposedException)
        {
            throw WireGuardTunnel.ClosedError(e);
        }
    }

    /// <inheritdoc/>
    public override void Write(byte[] buffer, int offset, int count) => Write(buffer.AsSpan(offset, count));

    /// <inheritdoc/>
    public override void Write(ReadOnlySpan<byte> buffer)
    {
        try
        {
            Inner.Write(buffer);
        }
        catch (Exception e) when (tunnel.IsClosed && e is IOException or ObjectDisposedException)
        {
            throw WireGuardTunnel.ClosedError(e);
        }
    }

    /// <inheritdoc/>
    public override Task WriteAsync(byte[] buffer, int offset, int count, CancellationToken cancellationToken) =>
        WriteAsync(buffer.AsMemory(offset, count), cancellationToken).AsTask();

    /// <inheritdoc/>
    public override async ValueTask WriteAsync(ReadOnlyMemory<byte> buffer, CancellationToken cancellationToken)
    {
        try
        {
            await Inner.WriteAsync(buffer, cancellationToken).ConfigureAwait(false);
        }
        catch (Exception e) when (tunnel.IsClosed && e is IOException or ObjectDisposedException)
        {
            throw WireGuardTunnel.ClosedError(e);
        }
    }

    /// <inheritdoc/>
    public override void Flush() => Inner.Flush();

    /// <inheritdoc/>
    public override Task FlushAsync(CancellationToken cancellationToken) => Inner.FlushAsync(cancellationToken);

    /// <inheritdoc/>
    protected override void Dispose(bool disposing)
    {
        if (disposing)
        {
            Inner.Dispose();
        }

        base.Dispose(disposing);
    }
}
