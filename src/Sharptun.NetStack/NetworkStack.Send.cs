using System.Net.Sockets;
using Sharptun.NetStack.Wire;
using Sharptun.Transport;

namespace Sharptun.NetStack;

// Outbound path, all under Gate: build IP header + transport data directly in an outbound queue slot (one copy of
// the payload, no allocation), commit, signal the reader. A full queue returns false (backpressure to the caller).
public sealed partial class NetworkStack
{
    private static int IpHeaderLength(in IpAddr address) => address.IsV4 ? Ipv4Repr.HeaderLength : Ipv6Repr.HeaderLength;

    /// <summary>
    /// Under Gate: IStackContext.TrySendIp. Never throws: a segment that cannot be sent (over the MTU, mixed address
    /// families) is dropped and counted, and reported as taken (true), as if the link had lost it: false would mean
    /// "queue full, retry" and make TCP retry the same segment every millisecond.
    /// </summary>
    internal bool TrySendIp(in IpAddr source, in IpAddr destination, byte protocol, ReadOnlySpan<byte> transportSegment)
    {
        if (!IsSendable(source, destination, transportSegment.Length))
        {
            return true;
        }

        var span = BeginIp(source, destination, protocol, transportSegment.Length, out var headerLength);
        if (span.IsEmpty)
        {
            return false;
        }

        transportSegment.CopyTo(span[headerLength..]);
        CommitIp(span.Length);
        return true;
    }

    /// <summary>
    /// Under Gate: false (and a drop counted by reason) for a packet the stack cannot send: address families that differ,
    /// or a packet over the MTU (the stack does not fragment what it sends). Callers of the socket API check sizes
    /// first and report MessageSize; reaching this is an internal sizing bug, which must cost a packet, not a thread.
    /// </summary>
    private bool IsSendable(in IpAddr source, in IpAddr destination, int payloadLength)
    {
        if (source.IsV4 != destination.IsV4)
        {
            Statistics.OutboundInvalidDrops++;
            return false;
        }

        if (IpHeaderLength(source) + payloadLength > _options.Mtu)
        {
            Statistics.OutboundOversizeDrops++;
            return false;
        }

        return true;
    }

    /// <summary>
    /// Under Gate: reserves an outbound slot and writes the IP header. Returns the packet span (header + room for
    /// <paramref name="payloadLength"/> bytes), or an empty span when the queue is full or the packet cannot be sent
    /// (<see cref="IsSendable"/>, counted as a drop).
    /// </summary>
    private Span<byte> BeginIp(in IpAddr source, in IpAddr destination, byte protocol, int payloadLength, out int headerLength)
    {
        headerLength = IpHeaderLength(source);
        var total = headerLength + payloadLength;
        if (!IsSendable(source, destination, payloadLength))
        {
            return default;
        }

        if (_disposed)
        {
            return default;
        }

        var slot = _outbound.TryBegin();
        if (slot.IsEmpty)
        {
            _sendBlocked = true;
            Statistics.OutboundQueueFull++;
            return default;
        }

        if (source.IsV4)
        {
            // RFC 6864 §4.1: the ID only matters for fragments. TCP sets DF (it uses MSS/PMTUD, RFC 1191); other
            // protocols leave routers free to fragment, since the stack itself never does.
            new Ipv4Repr(source, destination, protocol, payloadLength, _options.TimeToLive,
                Identification: _ipv4Identification++, DontFragment: protocol == IpProtocol.Tcp).Emit(slot);
        }
        else
        {
            new Ipv6Repr(source, destination, protocol, payloadLength, _options.TimeToLive).Emit(slot);
        }

        return slot[..total];
    }

    private void CommitIp(int length)
    {
        _outbound.Commit(length);
        Statistics.SentPackets++;
        _outboundReady.Set();
    }

    /// <summary>Under Gate: sends one UDP datagram; false when the outbound queue is full.</summary>
    /// <exception cref="SocketException">MessageSize (does not fit the MTU), AddressNotAvailable, AddressFamilyNotSupported.</exception>
    internal bool TrySendUdp(IpAddr source, ushort sourcePort, in IpAddr destination, ushort destinationPort, ReadOnlySpan<byte> payload)
    {
        if (source.IsUnspecified)
        {
            if (!TrySelectSource(destination, out source))
            {
                throw new SocketException((int)SocketError.AddressNotAvailable);
            }
        }
        else if (source.IsV4 != destination.IsV4)
        {
            throw new SocketException((int)SocketError.AddressFamilyNotSupported);
        }
        else if (!IsLocalAddress(source))
        {
            // No spoofing: an explicit source must be ours (any unicast address in promiscuous mode).
            throw new SocketException((int)SocketError.AddressNotAvailable);
        }

        if (destinationPort == 0)
        {
            throw new SocketException((int)SocketError.AddressNotAvailable);
        }

        var udp = new UdpRepr(sourcePort, destinationPort, payload.Length);
        if (IpHeaderLength(destination) + udp.Length > _options.Mtu)
        {
            throw new SocketException((int)SocketError.MessageSize);
        }

        var span = BeginIp(source, destination, IpProtocol.Udp, udp.Length, out var headerLength);
        if (span.IsEmpty)
        {
            return false;
        }

        udp.Emit(span[headerLength..], payload, source, destination);
        CommitIp(span.Length);
        return true;
    }

    /// <summary>Under Gate: sends one echo request; false when the outbound queue is full.</summary>
    internal bool TrySendEchoRequest(in IpAddr destination, ushort identifier, ushort sequence, ReadOnlySpan<byte> data)
    {
        if (!TrySelectSource(destination, out var source))
        {
            throw new SocketException((int)SocketError.AddressNotAvailable);
        }

        var icmp = IcmpRepr.Echo(destination.IsV4 ? Icmpv4Type.EchoRequest : Icmpv6Type.EchoRequest, identifier, sequence, data.Length);
        if (IpHeaderLength(destination) + icmp.Length > _options.Mtu)
        {
            throw new SocketException((int)SocketError.MessageSize);
        }

        var span = BeginIp(source, destination, destination.IsV4 ? IpProtocol.Icmp : IpProtocol.Icmpv6, icmp.Length, out var headerLength);
        if (span.IsEmpty)
        {
            return false;
        }

        if (destination.IsV4)
        {
            icmp.EmitV4(span[headerLength..], data);
        }
        else
        {
            icmp.EmitV6(span[headerLength..], data, source, destination);
        }

        CommitIp(span.Length);
        return true;
    }

    /// <summary>
    /// Under Gate: sends an ICMP/ICMPv6 error about <paramref name="invokingPacket"/> back to its source, from the
    /// address it was sent to. Rules: never about an ICMP error, a multicast/broadcast or unspecified source
    /// (RFC 1122 §3.2.2, RFC 4443 §2.4(e)); rate-limited (RFC 1812 §4.3.2.8, RFC 4443 §2.4(f)); quotes as much of the
    /// invoking packet as fits in 576 bytes (IPv4, RFC 1812 §4.3.2.3) or 1280 bytes (IPv6, RFC 4443 §2.4(c)).
    /// </summary>
    private void SendIcmpError(ReadOnlySpan<byte> invokingPacket, in IpAddr invokingSource, in IpAddr invokingDestination, byte type, byte code, uint restOfHeader)
    {
        if (invokingSource.IsUnspecified || invokingSource.IsMulticastOrBroadcast || IsIcmpError(invokingPacket, invokingSource.IsV4))
        {
            return;
        }

        if (!_icmpErrorLimiter.TryTake(CurrentTime))
        {
            Statistics.IcmpErrorsRateLimited++;
            return;
        }

        var v4 = invokingSource.IsV4;
        var headerLength = IpHeaderLength(invokingSource);
        var limit = Math.Min(v4 ? 576 : 1280, _options.Mtu) - headerLength - IcmpRepr.HeaderLength;
        var quote = invokingPacket[..Math.Min(invokingPacket.Length, limit)];
        var icmp = new IcmpRepr(type, code, restOfHeader, quote.Length);
        var span = BeginIp(invokingDestination, invokingSource, v4 ? IpProtocol.Icmp : IpProtocol.Icmpv6, icmp.Length, out _);
        if (span.IsEmpty)
        {
            return;
        }

        if (v4)
        {
            icmp.EmitV4(span[headerLength..], quote);
        }
        else
        {
            icmp.EmitV6(span[headerLength..], quote, invokingDestination, invokingSource);
        }

        CommitIp(span.Length);
        Statistics.IcmpErrorsSent++;
    }

    private static bool IsIcmpError(ReadOnlySpan<byte> packet, bool v4)
    {
        if (v4)
        {
            return Ipv4Packet.TryCreate(packet, out var ip) && ip.Protocol == IpProtocol.Icmp
                && (ip.FragmentOffset != 0 || ip.Payload.Length == 0 || !IsIcmpv4Informational(ip.Payload[0]));
        }

        return Ipv6Packet.TryCreate(packet, out var ip6)
            && Ipv6ExtensionHeaders.TryWalk(ip6.Payload, ip6.NextHeader, out var upper)
            && upper.Protocol == IpProtocol.Icmpv6
            && (upper.Offset >= ip6.Payload.Length || Icmpv6Type.IsError(ip6.Payload[upper.Offset]));
    }

    private static bool IsIcmpv4Informational(byte type) => type is Icmpv4Type.EchoRequest or Icmpv4Type.EchoReply or 13 or 14 or 15 or 16 or 17 or 18;
}
