using System.Net;

namespace Sharptun;

// Gateway (promiscuous) mode: the options a server that terminates its peers' flows needs (issue 11).
public sealed partial class WireGuardTunnelOptions
{
    /// <summary>
    /// Gateway mode (default false): the tunnel's TCP/IP stack accepts packets to any destination address, not only
    /// the config's <c>Address</c>es, so a server can terminate its peers' TCP and UDP flows itself
    /// (<see cref="WireGuardTunnel.ListenTcpAnyDestination"/>, <see cref="WireGuardTunnel.BindUdpAnyDestination"/>) and
    /// relay them to host sockets. Only for a tunnel whose peers send it traffic for other addresses (an exit server).
    /// </summary>
    public bool Promiscuous { get; set; }

    /// <summary>
    /// In gateway mode, which destinations the stack answers ICMP echo requests for, besides the tunnel's own addresses
    /// (default null: none). Called on the stack's thread for each request: it must be fast and must not block.
    /// </summary>
    public Func<IPAddress, bool>? AnswerEchoFor { get; set; }
}
