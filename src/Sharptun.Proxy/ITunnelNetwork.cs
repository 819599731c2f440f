using System.Net;

namespace Sharptun.Proxy;

/// <summary>
/// The network the proxy's front-ends reach targets through: in production the WireGuard tunnel
/// (<see cref="TunnelNetwork"/>); in unit tests the host's loopback. SOCKS5, the HTTP proxy and the forwards are
/// written against this seam only, so each can be tested without a tunnel and run unchanged over one.
/// </summary>
public interface ITunnelNetwork
{
    /// <summary>
    /// Opens a TCP connection to <paramref name="host"/> (an IP literal or a name, resolved as
    /// <see cref="ResolveAsync"/> does) within the network's connect timeout.
    /// </summary>
    /// <exception cref="System.Net.Sockets.SocketException">
    /// The name does not resolve (<c>HostNotFound</c>), the target refuses (<c>ConnectionRefused</c>), no route
    /// (<c>NetworkUnreachable</c>) or no answer within the connect timeout (<c>TimedOut</c>).
    /// </exception>
    ValueTask<Stream> ConnectAsync(string host, int port, CancellationToken cancellationToken);

    /// <summary>Opens a TCP connection to <paramref name="remote"/> within the network's connect timeout.</summary>
    /// <exception cref="System.Net.Sockets.SocketException">As <see cref="ConnectAsync(string, int, CancellationToken)"/>.</exception>
    ValueTask<Stream> ConnectAsync(IPEndPoint remote, CancellationToken cancellationToken);

    /// <summary>The first address of <paramref name="host"/> that fits the <see cref="ResolveStrategy"/>.</summary>
    /// <exception cref="System.Net.Sockets.SocketException"><c>HostNotFound</c>: no such address.</exception>
    ValueTask<IPAddress> ResolveAsync(string host, CancellationToken cancellationToken);

    /// <summary>A UDP socket on an ephemeral port of the network.</summary>
    IDatagramChannel BindUdp();

    /// <summary>Accepts TCP connections on <paramref name="port"/> of the network's own addresses.</summary>
    /// <exception cref="System.Net.Sockets.SocketException">The port is in use.</exception>
    IStreamAcceptor ListenTcp(int port);
}

/// <summary>A UDP socket of an <see cref="ITunnelNetwork"/>.</summary>
public interface IDatagramChannel : IDisposable
{
    /// <summary>The socket's own address and port.</summary>
    IPEndPoint LocalEndPoint { get; }

    /// <summary>Sends one datagram.</summary>
    ValueTask SendToAsync(ReadOnlyMemory<byte> datagram, IPEndPoint remote, CancellationToken cancellationToken);

    /// <summary>Receives one datagram (a longer one is truncated); the result names its length and sender.</summary>
    ValueTask<System.Net.Sockets.SocketReceiveFromResult> ReceiveFromAsync(Memory<byte> buffer, CancellationToken cancellationToken);
}

/// <summary>A TCP listener of an <see cref="ITunnelNetwork"/>.</summary>
public interface IStreamAcceptor : IAsyncDisposable
{
    /// <summary>The listening address and port.</summary>
    IPEndPoint LocalEndPoint { get; }

    /// <summary>Waits for the next connection.</summary>
    ValueTask<Stream> AcceptAsync(CancellationToken cancellationToken);
}
