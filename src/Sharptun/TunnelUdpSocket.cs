using System.Net;
using System.Net.Sockets;
using Sharptun.NetStack.Udp;

namespace Sharptun;

/// <summary>A UDP socket inside the tunnel (<see cref="WireGuardTunnel.BindUdp"/>): datagrams go through WireGuard.</summary>
public sealed class TunnelUdpSocket : IDisposable
{
    private readonly UdpSocket _inner;
    private readonly WireGuardTunnel _tunnel;

    internal TunnelUdpSocket(UdpSocket inner, WireGuardTunnel tunnel)
    {
        _inner = inner;
        _tunnel = tunnel;
    }

    /// <summary>The local address and port, inside the tunnel.</summary>
    public IPEndPoint LocalEndPoint => _inner.LocalEndPoint;

    /// <summary>Datagrams dropped because the receive queue was full.</summary>
    public long ReceiveQueueDrops => _inner.ReceiveQueueDrops;

    /// <summary>Sends one datagram to <paramref name="remote"/> through the tunnel; waits while the tunnel's queue is full.</summary>
    /// <exception cref="IOException">The tunnel was closed.</exception>
    public async ValueTask SendToAsync(ReadOnlyMemory<byte> datagram, IPEndPoint remote, CancellationToken cancellationToken = default)
    {
        try
        {
            await _inner.SendToAsync(datagram, remote, cancellationToken).ConfigureAwait(false);
        }
        catch (Exception e) when (_tunnel.IsClosed && e is IOException or ObjectDisposedException or SocketException)
        {
            throw WireGuardTunnel.ClosedError(e);
        }
    }

    /// <summary>Receives one datagram into <paramref name="buffer"/> (a longer one is truncated).</summary>
    /// <exception cref="IOException">The tunnel was closed.</exception>
    public async ValueTask<SocketReceiveFromResult> ReceiveFromAsync(Memory<byte> buffer, CancellationToken cancellationToken = default)
    {
        try
        {
            var r = await _inner.ReceiveFromAsync(buffer, cancellationToken).ConfigureAwait(false);
            return new SocketReceiveFromResult { ReceivedBytes = r.Length, RemoteEndPoint = r.RemoteEndPoint };
        }
        catch (Exception e) when (_tunnel.IsClosed && e is IOException or ObjectDisposedException or SocketException)
        {
            throw WireGuardTunnel.ClosedError(e);
        }
    }

    /// <summary>Closes the socket; a pending receive fails with <see cref="ObjectDisposedException"/>.</summary>
    public void Dispose() => _inner.Dispose();
}
