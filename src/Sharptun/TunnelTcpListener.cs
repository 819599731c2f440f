using System.Net;
using Sharptun.NetStack.Tcp;

namespace Sharptun;

/// <summary>Accepts TCP connections that arrive through the tunnel (<see cref="WireGuardTunnel.ListenTcp"/>).</summary>
public sealed class TunnelTcpListener : IAsyncDisposable, IDisposable
{
    private readonly TcpStreamListener _inner;
    private readonly WireGuardTunnel _tunnel;

    internal TunnelTcpListener(TcpStreamListener inner, WireGuardTunnel tunnel)
    {
        _inner = inner;
        _tunnel = tunnel;
    }

    /// <summary>The address and port listened on, inside the tunnel.</summary>
    public IPEndPoint LocalEndPoint => _inner.LocalEndPoint;

    /// <summary>Waits for the next connection through the tunnel.</summary>
    /// <exception cref="IOException">The tunnel was closed.</exception>
    /// <exception cref="ObjectDisposedException">The listener was disposed.</exception>
    public async ValueTask<Stream> AcceptAsync(CancellationToken cancellationToken = default)
    {
        try
        {
            var stream = await _inner.AcceptAsync(cancellationToken).ConfigureAwait(false);
            return new TunnelStream(stream, _tunnel);
        }
        catch (Exception e) when (_tunnel.IsClosed && e is IOException or ObjectDisposedException or InvalidOperationException)
        {
            throw WireGuardTunnel.ClosedError(e);
        }
    }

    /// <summary>Stops listening; connections already accepted stay open.</summary>
    public void Dispose() => _inner.Dispose();

    /// <summary>Stops listening; connections already accepted stay open.</summary>
    public ValueTask DisposeAsync()
    {
        Dispose();
        return ValueTask.CompletedTask;
    }
}
