using System.Net;
using Sharptun.NetStack;

namespace Sharptun;

// Gateway (promiscuous) mode: flows to any destination end in this process (issue 11, sharptun gateway).
public sealed partial class WireGuardTunnel
{
    /// <summary>
    /// Accepts TCP connections through the tunnel to any destination address and port (needs
    /// <see cref="WireGuardTunnelOptions.Promiscuous"/>). Each accepted stream is a <see cref="TunnelStream"/> whose
    /// <see cref="TunnelStream.LocalEndPoint"/> is the destination the peer connected to. <paramref name="admit"/>
    /// (source, destination), when set, is asked about each SYN first: a refused one is answered with RST, as a closed
    /// port would (it runs on the stack's thread: it must be fast and must not block). The stack completes the
    /// handshake of admitted connections before <see cref="TunnelTcpListener.AcceptAsync"/> returns them; a relay that
    /// then cannot reach the destination resets the stream with <see cref="TunnelStream.Abort"/>. At most
    /// <paramref name="backlog"/> connections wait half-open or unaccepted; SYNs beyond that are dropped, so peers
    /// retransmit.
    /// </summary>
    /// <exception cref="InvalidOperationException">The tunnel is not in gateway mode, or runs over a TUN device.</exception>
    /// <exception cref="System.Net.Sockets.SocketException">Another any-destination listener is open.</exception>
    /// <exception cref="IOException">The tunnel was closed.</exception>
    public TunnelTcpListener ListenTcpAnyDestination(Func<IPEndPoint, IPEndPoint, bool>? admit = null, int backlog = 1024)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(backlog, 1);
        ThrowIfClosed();
        var stack = RequirePromiscuousStack();
        return new TunnelTcpListener(stack.ListenTcpAnyDestination(admit, backlog), this);
    }

    /// <summary>
    /// A UDP socket that receives every datagram through the tunnel that no <see cref="BindUdp"/> socket takes, whatever
    /// its destination, and replies from any address (needs <see cref="WireGuardTunnelOptions.Promiscuous"/>). At most
    /// one per tunnel.
    /// </summary>
    /// <exception cref="InvalidOperationException">The tunnel is not in gateway mode, or runs over a TUN device.</exception>
    /// <exception cref="System.Net.Sockets.SocketException">One is already open.</exception>
    /// <exception cref="IOException">The tunnel was closed.</exception>
    public TunnelUdpCatchAll BindUdpAnyDestination(int receiveQueueLength = 0)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(receiveQueueLength);
        ThrowIfClosed();
        var stack = RequirePromiscuousStack();
        return new TunnelUdpCatchAll(stack, stack.BindUdpAnyDestination(receiveQueueLength), this);
    }

    private static void ApplyPromiscuous(WireGuardTunnelOptions options, NetworkStackOptions stackOptions)
    {
        stackOptions.Promiscuous = options.Promiscuous;
        stackOptions.AnswerEchoFor = options.AnswerEchoFor;
    }

    private NetworkStack RequirePromiscuousStack()
    {
        var stack = RequireStack();
        return stack.Promiscuous ? stack : throw new InvalidOperationException(
            "Any-destination sockets need a tunnel started in gateway mode (WireGuardTunnelOptions.Promiscuous).");
    }
}

// Multihop in one process: another tunnel's WireGuard UDP through this tunnel's netstack.
public sealed partial class WireGuardTunnel
{
    /// <summary>
    /// A bind factory whose UDP sockets live inside this tunnel's netstack: pass it as
    /// <see cref="WireGuardTunnelOptions.BindFactory"/> to start a second tunnel whose WireGuard datagrams travel through
    /// this one (multihop in one process: client → entry → exit, no second process, no TUN). The inner tunnel's MTU must
    /// be at least 60 bytes (80 with IPv6 endpoints) below this tunnel's: the netstack does not fragment. When this
    /// tunnel's config names <c>DNS</c> servers, the second tunnel resolves its peers' endpoint names through them (over
    /// this tunnel, at start and when re-resolving), not through the host's resolver.
    /// </summary>
    /// <exception cref="InvalidOperationException">The tunnel runs over a TUN device.</exception>
    public Sharptun.Transport.IDatagramBindFactory CreateDatagramBindFactory()
    {
        ThrowIfClosed();
        return new TunnelDatagramBindFactory(this, RequireStack());
    }
}
