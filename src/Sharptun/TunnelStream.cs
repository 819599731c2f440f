using Sharptun.NetStack.Tcp;

namespace Sharptun;

/// <summary>
/// A TCP connection through the tunnel: the netstack's <see cref="TcpStream"/>, with errors caused by closing the
/// tunnel reported as one clear <see cref="IOException"/> ("the WireGuard tunnel was closed").
/// </summary>
internal sealed class TunnelStream(TcpStream inner, WireGuardTunnel tunnel) : Stream
{
    public TcpStream Inner { get; } = inner;

    public override bool CanRead => Inner.CanRead;

    public override bool CanWrite => Inner.CanWrite;

    public override bool CanSeek => false;

    public override bool CanTimeout => true;

    public override int ReadTimeout { get => Inner.ReadTimeout; set => Inner.ReadTimeout = value; }

    public override int WriteTimeout { get => Inner.WriteTimeout; set => Inner.WriteTimeout = value; }

    public override long Length => throw new NotSupportedException();

    public override long Position { get => throw new NotSupportedException(); set => throw new NotSupportedException(); }

    public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();

    public override void SetLength(long value) => throw new NotSupportedException();

    public override int Read(byte[] buffer, int offset, int count) => Read(buffer.AsSpan(offset, count));

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

    public override Task<int> ReadAsync(byte[] buffer, int offset, int count, CancellationToken cancellationToken) =>
        ReadAsync(buffer.AsMemory(offset, count), cancellationToken).AsTask();

    public override async ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken cancellationToken = default)
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

    public override void Write(byte[] buffer, int offset, int count) => Write(buffer.AsSpan(offset, count));

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

    public override Task WriteAsync(byte[] buffer, int offset, int count, CancellationToken cancellationToken) =>
        WriteAsync(buffer.AsMemory(offset, count), cancellationToken).AsTask();

    public override async ValueTask WriteAsync(ReadOnlyMemory<byte> buffer, CancellationToken cancellationToken = default)
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

    public override void Flush() => Inner.Flush();

    public override Task FlushAsync(CancellationToken cancellationToken) => Inner.FlushAsync(cancellationToken);

    protected override void Dispose(bool disposing)
    {
        if (disposing)
        {
            Inner.Dispose();
        }

        base.Dispose(disposing);
    }
}
