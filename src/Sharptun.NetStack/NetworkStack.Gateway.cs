using System.Buffers.Binary;
using System.Net;
using Sharptun.NetStack.Wire;
using Sharptun.Transport;

namespace Sharptun.NetStack;

/// <summary>Why a gateway refuses a UDP flow (<see cref="NetworkStack.SendUdpUnreachable"/>).</summary>
public enum UdpUnreachableReason
{
    /// <summary>The destination port is closed (ICMP type 3 code 3, RFC 792; ICMPv6 type 1 code 4, RFC 4443 §3.1).</summary>
    PortUnreachable,

    /// <summary>
    /// A policy forbids the destination (ICMP type 3 code 13 "communication administratively prohibited", RFC 1812
    /// §5.2.7.1; ICMPv6 type 1 code 1, RFC 4443 §3.1).
    /// </summary>
    AdministrativelyProhibited,
}

// Promiscuous (gateway) helpers: a relay that terminates peers' UDP flows on the catch-all socket answers the flows it
// cannot or must not carry with the ICMP error the destination itself would have sent.
public sealed partial class NetworkStack
{
    private const byte Icmpv4CodeAdministrativelyProhibited = 13; // RFC 1812 §5.2.7.1
    private const byte Icmpv6CodeAdministrativelyProhibited = 1;  // RFC 4443 §3.1

    /// <summary>
    /// Sends an ICMP/ICMPv6 destination unreachable to <paramref name="client"/> about a UDP datagram it sent to
    /// <paramref name="destination"/>, from that destination's address (promiscuous mode; a configured address
    /// otherwise). The quoted invoking packet is rebuilt from the addresses, ports and the first bytes of
    /// <paramref name="payload"/>, which is all a receiver uses to find its socket (RFC 1122 §3.2.2.1, RFC 4443 §2.4(c)).
    /// Rate-limited like every ICMP error the stack sends; returns false when nothing was sent (rate limit, full queue,
    /// or a source or destination that must not get one).
    /// </summary>
    public bool SendUdpUnreachable(IpAddr client, ushort clientPort, IpAddr destination, ushort destinationPort, ReadOnlySpan<byte> payload, UdpUnreachableReason reason)
    {
        if (client.IsV4 != destination.IsV4)
        {
            return false;
        }

        var v4 = client.IsV4;
        var ipLength = v4 ? 20 : 40;
        var quoted = payload[..Math.Min(payload.Length, 64)];
        Span<byte> invoking = stackalloc byte[40 + 8 + 64];
        invoking = invoking[..(ipLength + 8 + quoted.Length)];
        invoking.Clear();
        var udpLength = 8 + payload.Length;
        if (v4)
        {
            invoking[0] = 0x45;
            BinaryPrimitives.WriteUInt16BigEndian(invoking[2..], (ushort)Math.Min(ipLength + udpLength, ushort.MaxValue));
            invoking[8] = _options.TimeToLive;
            invoking[9] = IpProtocol.Udp;
            client.WriteTo(invoking[12..]);
            destination.WriteTo(invoking[16..]);
            BinaryPrimitives.WriteUInt16BigEndian(invoking[10..], Checksum.Finish(Checksum.Add(invoking[..20])));
        }
        else
        {
            invoking[0] = 0x60;
            BinaryPrimitives.WriteUInt16BigEndian(invoking[4..], (ushort)Math.Min(udpLength, ushort.MaxValue));
            invoking[6] = IpProtocol.Udp;
            invoking[7] = _options.TimeToLive;
            client.WriteTo(invoking[8..]);
            destination.WriteTo(invoking[24..]);
        }

        var udp = invoking[ipLength..];
        BinaryPrimitives.WriteUInt16BigEndian(udp, clientPort);
        BinaryPrimitives.WriteUInt16BigEndian(udp[2..], destinationPort);
        BinaryPrimitives.WriteUInt16BigEndian(udp[4..], (ushort)Math.Min(udpLength, ushort.MaxValue));
        quoted.CopyTo(udp[8..]);
        var prohibited = reason == UdpUnreachableReason.AdministrativelyProhibited;
        var (type, code) = v4
            ? (Icmpv4Type.DestinationUnreachable, prohibited ? Icmpv4CodeAdministrativelyProhibited : Icmpv4Type.CodePortUnreachable)
            : (Icmpv6Type.DestinationUnreachable, prohibited ? Icmpv6CodeAdministrativelyProhibited : Icmpv6Type.CodePortUnreachable);
        lock (_gate)
        {
            ObjectDisposedException.ThrowIf(_disposed, this);
            if (!IsLocalAddress(destination))
            {
                return false;
            }

            var sent = Statistics.IcmpErrorsSent;
            SendIcmpError(invoking, client, destination, type, code, 0);
            return Statistics.IcmpErrorsSent != sent;
        }
    }
}

// The any-destination TCP listener with an admission check at SYN time.
public sealed partial class NetworkStack
{
    /// <summary>
    /// Promiscuous mode: a listener for TCP connections to any address and port (as <see cref="ListenTcp"/> with port 0)
    /// that asks <paramref name="admit"/> (source, destination) about each SYN before answering it; a refused SYN gets
    /// RST|ACK, as a closed port would answer (RFC 9293 §3.10.7.1), so a policy refusal looks like "connection refused"
    /// to the peer. <paramref name="admit"/> runs under the stack's lock: it must be fast and must not call the stack.
    /// </summary>
    /// <exception cref="InvalidOperationException">The stack is not promiscuous.</exception>
    /// <exception cref="System.Net.Sockets.SocketException">A wildcard listener is already open.</exception>
    public Tcp.TcpStreamListener ListenTcpAnyDestination(Func<IPEndPoint, IPEndPoint, bool>? admit, int backlog = 128)
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        if (!_options.Promiscuous)
        {
            throw new InvalidOperationException("An any-destination listener needs a promiscuous stack.");
        }

        return _tcp.Listen(new IPEndPoint(IPAddress.IPv6Any, 0), backlog, admit);
    }
}
