using System.Net;
using System.Net.Sockets;
using Sharptun.NetStack;
using Sharptun.NetStack.Udp;
using Sharptun.Transport;

namespace Sharptun;

/// <summary>One datagram a <see cref="TunnelUdpCatchAll"/> received.</summary>
/// <param name="Length">Bytes copied into the caller's buffer.</param>
/// <param name="Source">The peer-side sender (address inside the tunnel and port).</param>
/// <param name="Destination">Where the sender addressed it (any address and port).</param>
/// <param name="Truncated">True when the datagram was longer than the buffer (the rest was discarded).</param>
public readonly record struct TunnelDatagram(int Length, IPEndPoint Source, IPEndPoint Destination, bool Truncated);

/// <summary>
/// The gateway-mode UDP socket (<see cref="WireGuardTunnel.BindUdpAnyDestination"/>): receives every datagram
/// through the tunnel whatever its destination, sends replies from any address, and answers flows a relay refuses
/// with an ICMP destination unreachable.
/// </summary>
/// <remarks>
/// Thread-safe. Datagrams wait in a bounded queue; when it is full new ones are dropped and counted in
/// <see cref="ReceiveQueueDrops"/>. Sends wait while the tunnel's outbound queue is full.
/// </remarks>
public sealed class TunnelUdpCatchAll : IDisposable
{
    private readonly NetworkStack _stack;
    private readonly UdpSocket _inner;
    private readonly WireGuardTunnel _tunnel;

    internal TunnelUdpCatchAll(NetworkStack stack, UdpSocket inner, WireGuardTunnel tunnel)
    {
        _stack = stack;
        _inner = inner;
        _tunnel = tunnel;
    }

    /// <summary>Datagrams dropped because the receive queue was full.</summary>
    public long ReceiveQueueDrops => _inner.ReceiveQueueDrops;

    /// <summary>Receives one datagram into <paramref name="buffer"/>, with its sender and original destination.</summary>
    /// <exception cref="IOException">The tunnel was closed.</exception>
    /// <exception cref="ObjectDisposedException">The socket was disposed.</exception>
    public async ValueTask<TunnelDatagram> ReceiveAsync(Memory<byte> buffer, CancellationToken cancellationToken = default)
    {
        try
        {
            var r = await _inner.ReceiveFromAsync(buffer, cancellationToken).ConfigureAwait(false);
            return new TunnelDatagram(r.Length, r.RemoteEndPoint, r.LocalEndPoint, r.Truncated);
        }
        catch (Exception e) when (_tunnel.IsClosed && e is IOException or ObjectDisposedException or SocketException)
        {
            throw WireGuardTunnel.ClosedError(e);
        }
    }

    /// <summary>Sends <paramref name="datagram"/> to <paramref name="to"/> (a peer-side address) from <paramref name="from"/> (any address and port).</summary>
    /// <exception cref="SocketException">MessageSize: it does not fit the tunnel MTU in one packet.</exception>
    /// <exception cref="IOException">The tunnel was closed.</exception>
    public async ValueTask SendAsync(ReadOnlyMemory<byte> datagram, IPEndPoint from, IPEndPoint to, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(from);
        ArgumentNullException.ThrowIfNull(to);
        ArgumentOutOfRangeException.ThrowIfZero(from.Port, nameof(from));
        try
        {
            await _inner.SendFromAsync(datagram, IpAddr.FromIPAddress(from.Address), IpAddr.FromIPAddress(to.Address), (ushort)to.Port, (ushort)from.Port, cancellationToken)
                .ConfigureAwait(false);
        }
        catch (Exception e) when (_tunnel.IsClosed && e is IOException or ObjectDisposedException or SocketException)
        {
            throw WireGuardTunnel.ClosedError(e);
        }
    }

    /// <summary>
    /// Answers a datagram <paramref name="source"/> sent to <paramref name="destination"/> with an ICMP destination
    /// unreachable from that destination: port unreachable, or administratively prohibited when
    /// <paramref name="prohibited"/> (a policy refused it). <paramref name="payload"/> is the datagram's payload (its
    /// first bytes are quoted). Rate-limited; false when nothing was sent.
    /// </summary>
    public bool SendUnreachable(IPEndPoint source, IPEndPoint destination, ReadOnlySpan<byte> payload, bool prohibited)
    {
        ArgumentNullException.ThrowIfNull(source);
        ArgumentNullException.ThrowIfNull(destination);
        try
        {
            return _stack.SendUdpUnreachable(
                IpAddr.FromIPAddress(source.Address), (ushort)source.Port, IpAddr.FromIPAddress(destination.Address), (ushort)destination.Port,
                payload, prohibited ? UdpUnreachableReason.AdministrativelyProhibited : UdpUnreachableReason.PortUnreachable);
        }
        catch (ObjectDisposedException)
        {
            return false; // the tunnel closed
        }
    }

    /// <summary>Closes the socket; a pending receive fails with <see cref="ObjectDisposedException"/>.</summary>
    public void Dispose() => _inner.Dispose();
}
