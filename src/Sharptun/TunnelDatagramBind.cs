using System.Net;
using System.Net.Sockets;
using Sharptun.NetStack;
using Sharptun.NetStack.Udp;
using Sharptun.Transport;
using UdpReceiveResult = Sharptun.NetStack.Udp.UdpReceiveResult;

namespace Sharptun;

/// <summary>
/// Multihop in one process (issue 11 item 4): an <see cref="IDatagramBindFactory"/> whose binds are UDP sockets inside
/// another tunnel's netstack (<see cref="WireGuardTunnel.CreateDatagramBindFactory"/>). A second tunnel started with it
/// as <see cref="WireGuardTunnelOptions.BindFactory"/> sends its WireGuard datagrams through the first tunnel, so an
/// exit server reached through an entry server needs no second process and no TUN.
/// </summary>
/// <remarks>
/// The inner tunnel's packets must fit the outer tunnel in one piece (the netstack does not fragment): give the inner
/// tunnel an MTU at least 60 bytes (IPv4 outer addresses) or 80 bytes (IPv6) below the outer one's; larger datagrams are
/// dropped and counted in <see cref="TunnelDatagramBind.SendDrops"/>.
/// </remarks>
internal sealed class TunnelDatagramBindFactory(WireGuardTunnel tunnel, NetworkStack stack) : IDatagramBindFactory
{
    /// <summary>
    /// How the inner tunnel resolves its peers' endpoint names: through this tunnel's <c>DNS</c> servers (over this
    /// tunnel's stack, <see cref="TunnelNameResolver"/>) when its config names some, since the inner endpoints are
    /// reached through this tunnel and may have names only its DNS knows; null (the host's resolver) otherwise.
    /// </summary>
    public Func<string, CancellationToken, Task<IPAddress[]>>? EndpointResolver =>
        tunnel.Resolver is TunnelNameResolver outer
            ? (host, cancellationToken) => outer.ResolveAsync(host, AddressFamily.Unspecified, cancellationToken).AsTask()
            : null;

    public IDatagramBind Open(ushort port)
    {
        var any = tunnel.Addresses.Any(a => a.AddressFamily == AddressFamily.InterNetworkV6) ? IPAddress.IPv6Any : IPAddress.Any;
        return new TunnelDatagramBind(stack.BindUdp(new IPEndPoint(any, port), receiveQueueLength: 1024));
    }
}

/// <summary>An <see cref="IDatagramBind"/> over a netstack <see cref="UdpSocket"/> (see <see cref="TunnelDatagramBindFactory"/>).</summary>
internal sealed class TunnelDatagramBind(UdpSocket socket) : IDatagramBind
{
    private readonly Lock _sendLock = new();
    private long _receiveDrops;
    private long _sendDrops;
    private volatile bool _closed;

    public ushort LocalPort => (ushort)socket.LocalEndPoint.Port;

    public int BatchSize => 32;

    /// <summary>Datagrams dropped on receive (longer than the caller's buffer).</summary>
    public long ReceiveDrops => Interlocked.Read(ref _receiveDrops);

    /// <summary>Datagrams dropped on send (too large for the outer tunnel's MTU, no route).</summary>
    public long SendDrops => Interlocked.Read(ref _sendDrops);

    public int Receive(byte[][] buffers, Span<int> sizes, Span<UdpEndpoint> endpoints)
    {
        var max = Math.Min(Math.Min(buffers.Length, sizes.Length), Math.Min(endpoints.Length, BatchSize));
        if (max == 0)
        {
            return 0;
        }

        while (true)
        {
            if (_closed)
            {
                return 0;
            }

            UdpReceiveResult first;
            try
            {
                // The device's receive thread blocks here, as it would in recvmmsg.
                first = socket.ReceiveFromAsync(buffers[0]).AsTask().GetAwaiter().GetResult();
            }
            catch (Exception e) when (e is ObjectDisposedException or IOException or SocketException)
            {
                if (_closed || e is ObjectDisposedException)
                {
                    return 0;
                }

                continue; // an ICMP error reported on the socket: not a datagram
            }

            var n = 0;
            if (Accept(first, sizes, endpoints, n))
            {
                n++;
            }

            while (n < max && socket.TryReceiveFrom(buffers[n], out var more))
            {
                if (Accept(more, sizes, endpoints, n))
                {
                    n++;
                }
            }

            if (n > 0)
            {
                return n;
            }
        }
    }

    public int Send(byte[][] buffers, ReadOnlySpan<int> sizes, int offset, int count, in UdpEndpoint destination)
    {
        ObjectDisposedException.ThrowIf(_closed, this);
        var sent = 0;
        lock (_sendLock)
        {
            for (var i = 0; i < count; i++)
            {
                try
                {
                    socket.SendToAsync(buffers[i].AsMemory(offset, sizes[i]), destination.Ip, destination.Port).AsTask().GetAwaiter().GetResult();
                    sent++;
                }
                catch (SocketException)
                {
                    Interlocked.Increment(ref _sendDrops); // too large for the outer tunnel, or no address of that family
                }
                catch (IOException)
                {
                    Interlocked.Increment(ref _sendDrops);
                }
            }
        }

        return sent;
    }

    public void SetMark(uint fwmark)
    {
        if (fwmark != 0)
        {
            throw new IOException("A bind inside a tunnel has no firewall mark (SO_MARK applies to host sockets only).");
        }
    }

    public void Dispose()
    {
        _closed = true;
        socket.Dispose();
    }

    private bool Accept(in UdpReceiveResult r, Span<int> sizes, Span<UdpEndpoint> endpoints, int index)
    {
        if (r.Truncated)
        {
            Interlocked.Increment(ref _receiveDrops);
            return false;
        }

        sizes[index] = r.Length;
        endpoints[index] = new UdpEndpoint(r.RemoteAddress, r.RemotePort);
        return true;
    }
}
