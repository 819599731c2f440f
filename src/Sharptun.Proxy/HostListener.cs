using System.Net;
using System.Net.Sockets;

namespace Sharptun.Proxy;

/// <summary>
/// A TCP listener on a host address for an <see cref="AcceptLoop"/>: dual-stack when bound to [::] (as Go's
/// <c>net.Listen(":port")</c>), and each accepted socket gets Nagle off (a proxy adds no delay of its own).
/// </summary>
internal sealed class HostListener : IConnectionListener
{
    private readonly Socket _socket;

    private HostListener(Socket socket)
    {
        _socket = socket;
        LocalEndPoint = (IPEndPoint)socket.LocalEndPoint!;
    }

    /// <summary>The bound address and port (the real port when 0 was asked for); still known once disposed.</summary>
    public IPEndPoint LocalEndPoint { get; }

    /// <summary>Binds and listens on <paramref name="bind"/> with a queue of <paramref name="backlog"/> connections.</summary>
    /// <exception cref="SocketException">The address is taken, not local, or of a family the host lacks.</exception>
    public static HostListener Bind(IPEndPoint bind, int backlog = 512)
    {
        var socket = new Socket(bind.AddressFamily, SocketType.Stream, ProtocolType.Tcp);
        try
        {
            if (bind.Address.Equals(IPAddress.IPv6Any))
            {
                socket.DualMode = true;
            }

            socket.Bind(bind);
            socket.Listen(backlog);
            return new HostListener(socket);
        }
        catch
        {
            socket.Dispose();
            throw;
        }
    }

    /// <inheritdoc/>
    public async ValueTask<AcceptedConnection> AcceptAsync(CancellationToken cancellationToken)
    {
        var socket = await _socket.AcceptAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            socket.NoDelay = true;
            return new AcceptedConnection(new NetworkStream(socket, ownsSocket: true), socket, socket.RemoteEndPoint?.ToString());
        }
        catch (SocketException)
        {
            // Reset between accept and here: the loop logs it and goes on.
            socket.Dispose();
            throw;
        }
    }

    /// <inheritdoc/>
    public ValueTask DisposeAsync()
    {
        _socket.Dispose();
        return ValueTask.CompletedTask;
    }
}

/// <summary>An <see cref="IStreamAcceptor"/> of the tunnel as an <see cref="AcceptLoop"/>'s listener (clients have no host address to log).</summary>
internal sealed class TunnelListener(IStreamAcceptor acceptor) : IConnectionListener
{
    /// <inheritdoc/>
    public async ValueTask<AcceptedConnection> AcceptAsync(CancellationToken cancellationToken) =>
        new(await acceptor.AcceptAsync(cancellationToken).ConfigureAwait(false), null, null);

    /// <inheritdoc/>
    public ValueTask DisposeAsync() => acceptor.DisposeAsync();
}
