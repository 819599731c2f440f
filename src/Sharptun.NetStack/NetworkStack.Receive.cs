using System.Buffers.Binary;
using System.Net.Sockets;
using Sharptun.NetStack.Ip;
using Sharptun.NetStack.Udp;
using Sharptun.NetStack.Wire;
using Sharptun.Transport;

namespace Sharptun.NetStack;

// Inbound path, all under Gate:
//   ProcessPacket → IPv4 (header checksum, address filter, reassembly) | IPv6 (extension headers, reassembly)
//   → Deliver by protocol: ICMP/ICMPv6 (echo reply, ping sockets, errors counted) | UDP (sockets, catch-all,
//     port unreachable) | TCP (TCP layer) | other (protocol unreachable / parameter problem).
public sealed partial class NetworkStack
{
    private void ProcessPacket(ReadOnlySpan<byte> packet)
    {
        Statistics.ReceivedPackets++;
        if (packet.IsEmpty)
        {
            Statistics.MalformedDrops++;
            return;
        }

        switch (packet[0] >> 4)
        {
            case 4:
                ProcessIpv4(packet);
                break;
            case 6:
                ProcessIpv6(packet);
                break;
            default:
                Statistics.MalformedDrops++;
                break;
        }
    }

    private void ProcessIpv4(ReadOnlySpan<byte> bytes)
    {
        if (!Ipv4Packet.TryCreate(bytes, out var ip))
        {
            Statistics.MalformedDrops++;
            return;
        }

        if (!ip.IsChecksumValid)
        {
            Statistics.ChecksumDrops++;
            return;
        }

        var source = ip.Source;
        var destination = ip.Destination;
        // RFC 1122 §3.2.1.3: a source that is broadcast or multicast is silently discarded.
        if (source.IsMulticastOrBroadcast)
        {
            Statistics.InvalidSourceDrops++;
            return;
        }

        var broadcast = destination.IsMulticastOrBroadcast;
        if (!broadcast && !IsLocalAddress(destination))
        {
            Statistics.NotForUsDrops++;
            return;
        }

        if (ip.IsFragment)
        {
            ReassembleIpv4(ip, source, destination);
            return;
        }

        Deliver(ip.Protocol, source, destination, ip.Payload, ip.Bytes, broadcast, -1);
    }

    private void ReassembleIpv4(in Ipv4Packet ip, in IpAddr source, in IpAddr destination)
    {
        var key = new FragmentKey(source, destination, ip.Identification, ip.Protocol);
        var result = _reassemblerV4.Add(key, ip.FragmentOffset, ip.MoreFragments, ip.Payload, ip.Header, _now, out var datagram, out var length, out var headerLength);
        if (result != FragmentResult.Complete)
        {
            return;
        }

        try
        {
            if (length > Ipv4Packet.MaxLength)
            {
                Statistics.MalformedDrops++;
                return;
            }

            // Rewrite the first fragment's header for the whole datagram: new length, no fragment fields.
            var header = datagram.AsSpan(0, headerLength);
            BinaryPrimitives.WriteUInt16BigEndian(header[2..], (ushort)length);
            header[6] &= 0x40;   // keep DF, clear MF and the offset
            header[7] = 0;
            header[10] = 0;
            header[11] = 0;
            BinaryPrimitives.WriteUInt16BigEndian(header[10..], Checksum.Compute(header));
            Statistics.ReassembledDatagrams++;
            ProcessIpv4(datagram.AsSpan(0, length));
        }
        finally
        {
            FragmentReassembler.ReturnBuffer(datagram!);
        }
    }

    /// <summary>
    /// Reassembly timer expired with the first fragment present: ICMP Time Exceeded, "fragment reassembly time
    /// exceeded" (RFC 792 code 1; RFC 8200 §4.5, ICMPv6 type 3 code 1), quoting the first fragment.
    /// </summary>
    private void OnReassemblyTimeout(in FragmentKey key, ReadOnlySpan<byte> header, ReadOnlySpan<byte> firstFragment)
    {
        Span<byte> invoking = stackalloc byte[Math.Min(header.Length + firstFragment.Length, 1280)];
        header.CopyTo(invoking);
        firstFragment[..(invoking.Length - header.Length)].CopyTo(invoking[header.Length..]);
        if (key.Source.IsV4)
        {
            // The stored header is the first fragment's own; make its Total Length match what is quoted.
            BinaryPrimitives.WriteUInt16BigEndian(invoking[2..], (ushort)invoking.Length);
            SendIcmpError(invoking, key.Source, key.Destination, Icmpv4Type.TimeExceeded, Icmpv4Type.CodeReassemblyTimeExceeded, 0);
        }
        else
        {
            BinaryPrimitives.WriteUInt16BigEndian(invoking[4..], (ushort)(invoking.Length - Ipv6Packet.HeaderLength));
            SendIcmpError(invoking, key.Source, key.Destination, Icmpv6Type.TimeExceeded, Icmpv6Type.CodeReassemblyTimeExceeded, 0);
        }
    }

    private void ProcessIpv6(ReadOnlySpan<byte> bytes)
    {
        if (!Ipv6Packet.TryCreate(bytes, out var ip))
        {
            Statistics.MalformedDrops++;
            return;
        }

        var source = ip.Source;
        var destination = ip.Destination;
        // RFC 4291 §2.7: multicast is never a source. No NDP/MLD on a point-to-point TUN: multicast is not for us.
        if (source.IsMulticastOrBroadcast)
        {
            Statistics.InvalidSourceDrops++;
            return;
        }

        if (destination.IsMulticastOrBroadcast || !IsLocalAddress(destination))
        {
            Statistics.NotForUsDrops++;
            return;
        }

        if (!Ipv6ExtensionHeaders.TryWalk(ip.Payload, ip.NextHeader, out var upper))
        {
            Statistics.MalformedDrops++;
            return;
        }

        if (upper.FragmentHeaderOffset >= 0
            && Ipv6FragmentRepr.TryParse(ip.Payload[upper.FragmentHeaderOffset..], out var fragment)
            && (fragment.FragmentOffset != 0 || fragment.MoreFragments))
        {
            ReassembleIpv6(ip, source, destination, upper, fragment);
            return;
        }

        var pointer = upper.NextHeaderField < 0 ? 6 : Ipv6Packet.HeaderLength + upper.NextHeaderField;
        Deliver(upper.Protocol, source, destination, ip.Payload[upper.Offset..], ip.Bytes, false, pointer);
    }

    private void ReassembleIpv6(in Ipv6Packet ip, in IpAddr source, in IpAddr destination, in Ipv6UpperLayer upper, in Ipv6FragmentRepr fragment)
    {
        // RFC 8200 §4.5: the reassembled packet is the unfragmentable part + the fragments' data. The stack needs no
        // hop-by-hop/routing headers after this point, so it rebuilds a plain 40-byte header naming the fragment's
        // Next Header.
        var data = ip.Payload[upper.Offset..];
        if (fragment.MoreFragments && data.Length % 8 != 0)
        {
            // RFC 8200 §4.5: discard, and send Parameter Problem code 0 pointing at the Payload Length field.
            Statistics.MalformedDrops++;
            SendIcmpError(ip.Bytes, source, destination, Icmpv6Type.ParameterProblem, 0, 4);
            return;
        }

        Span<byte> header = stackalloc byte[Ipv6Packet.HeaderLength];
        ip.Bytes[..Ipv6Packet.HeaderLength].CopyTo(header);
        header[6] = fragment.NextHeader;
        var key = new FragmentKey(source, destination, fragment.Identification, 0);
        var result = _reassemblerV6.Add(key, fragment.FragmentOffset, fragment.MoreFragments, data, header, _now, out var datagram, out var length, out _);
        if (result != FragmentResult.Complete)
        {
            return;
        }

        try
        {
            if (length - Ipv6Packet.HeaderLength > ushort.MaxValue)
            {
                Statistics.MalformedDrops++;
                return;
            }

            BinaryPrimitives.WriteUInt16BigEndian(datagram.AsSpan(4), (ushort)(length - Ipv6Packet.HeaderLength));
            Statistics.ReassembledDatagrams++;
            ProcessIpv6(datagram.AsSpan(0, length));
        }
        finally
        {
            FragmentReassembler.ReturnBuffer(datagram!);
        }
    }

    // nextHeaderPointer (IPv6 only): offset of the Next Header field naming the protocol, for Parameter Problem.
    private void Deliver(byte protocol, in IpAddr source, in IpAddr destination, ReadOnlySpan<byte> payload, ReadOnlySpan<byte> packet, bool broadcast, int nextHeaderPointer)
    {
        switch (protocol)
        {
            case IpProtocol.Udp:
                ProcessUdp(source, destination, payload, packet, broadcast);
                return;
            case IpProtocol.Tcp when !broadcast:
                DeliverTcp(source, destination, payload);
                return;
            case IpProtocol.Icmp when source.IsV4 && !broadcast:
                ProcessIcmpv4(source, destination, payload);
                return;
            case IpProtocol.Icmpv6 when !source.IsV4:
                ProcessIcmpv6(source, destination, payload);
                return;
            case IpProtocol.NoNextHeader when !source.IsV4:
                return;   // RFC 8200 §4.7: nothing follows; not an error
        }

        Statistics.UnknownProtocolDrops++;
        if (broadcast)
        {
            return;
        }

        if (source.IsV4)
        {
            // RFC 1122 §3.2.2.1: protocol unreachable.
            SendIcmpError(packet, source, destination, Icmpv4Type.DestinationUnreachable, Icmpv4Type.CodeProtocolUnreachable, 0);
        }
        else
        {
            // RFC 8200 §4: unrecognized Next Header → Parameter Problem code 1 pointing at the field.
            SendIcmpError(packet, source, destination, Icmpv6Type.ParameterProblem, Icmpv6Type.CodeUnrecognizedNextHeader, (uint)nextHeaderPointer);
        }
    }

    private void ProcessUdp(in IpAddr source, in IpAddr destination, ReadOnlySpan<byte> payload, ReadOnlySpan<byte> packet, bool broadcast)
    {
        if (!UdpPacket.TryCreate(payload, out var udp))
        {
            Statistics.MalformedDrops++;
            return;
        }

        if (!udp.IsChecksumValid(source, destination))
        {
            Statistics.ChecksumDrops++;
            return;
        }

        var socket = FindUdpSocket(source, udp.SourcePort, destination, udp.DestinationPort);
        if (socket is null && _udpCatchAll is not null && !broadcast)
        {
            socket = _udpCatchAll;
        }

        if (socket is not null)
        {
            if (!socket.Enqueue(_budget, udp.Payload, source, udp.SourcePort, destination, udp.DestinationPort))
            {
                Statistics.UdpReceiveQueueDrops++;
            }

            return;
        }

        Statistics.UdpNoSocketDrops++;
        // RFC 1122 §4.1.3.1: port unreachable — never for broadcast/multicast destinations.
        if (!broadcast)
        {
            if (source.IsV4)
            {
                SendIcmpError(packet, source, destination, Icmpv4Type.DestinationUnreachable, Icmpv4Type.CodePortUnreachable, 0);
            }
            else
            {
                SendIcmpError(packet, source, destination, Icmpv6Type.DestinationUnreachable, Icmpv6Type.CodePortUnreachable, 0);
            }
        }
    }

    private UdpSocket? FindUdpSocket(in IpAddr source, ushort sourcePort, in IpAddr destination, ushort destinationPort)
    {
        if (!_udp.TryGetValue(destinationPort, out var list))
        {
            return null;
        }

        UdpSocket? best = null;
        var bestScore = -1;
        foreach (var s in list)
        {
            if (!s.Matches(source, sourcePort, destination))
            {
                continue;
            }

            // Most specific wins: connected beats unconnected, a specific address beats the wildcard.
            var score = (s.IsConnected ? 2 : 0) + (s.LocalAddress.IsUnspecified ? 0 : 1);
            if (score > bestScore)
            {
                best = s;
                bestScore = score;
            }
        }

        return best;
    }

    private void ProcessIcmpv4(in IpAddr source, in IpAddr destination, ReadOnlySpan<byte> payload)
    {
        if (!IcmpPacket.TryCreate(payload, out var icmp))
        {
            Statistics.MalformedDrops++;
            return;
        }

        if (!icmp.IsChecksumValidV4)
        {
            Statistics.ChecksumDrops++;
            return;
        }

        var repr = IcmpRepr.Parse(icmp);
        switch (icmp.Type)
        {
            case Icmpv4Type.EchoRequest:
                AnswerEcho(source, destination, repr, icmp.Data, Icmpv4Type.EchoReply);
                break;
            case Icmpv4Type.EchoReply:
                if (_echoSockets.TryGetValue(repr.Identifier, out var socket))
                {
                    socket.OnReply(source, repr.SequenceNumber, repr.DataLength, CurrentTime);
                }

                break;
            case Icmpv4Type.DestinationUnreachable:
            case Icmpv4Type.TimeExceeded:
                Statistics.IcmpErrorsReceived++;
                var portUnreachable = icmp.Type == Icmpv4Type.DestinationUnreachable && icmp.Code == Icmpv4Type.CodePortUnreachable;
                ReportIcmpErrorToUdp(icmp.Data, portUnreachable);
                break;
        }
    }

    private void ProcessIcmpv6(in IpAddr source, in IpAddr destination, ReadOnlySpan<byte> payload)
    {
        if (!IcmpPacket.TryCreate(payload, out var icmp))
        {
            Statistics.MalformedDrops++;
            return;
        }

        if (!icmp.IsChecksumValidV6(source, destination))
        {
            Statistics.ChecksumDrops++;
            return;
        }

        var repr = IcmpRepr.Parse(icmp);
        switch (icmp.Type)
        {
            case Icmpv6Type.EchoRequest:
                AnswerEcho(source, destination, repr, icmp.Data, Icmpv6Type.EchoReply);
                break;
            case Icmpv6Type.EchoReply:
                if (_echoSockets.TryGetValue(repr.Identifier, out var socket))
                {
                    socket.OnReply(source, repr.SequenceNumber, repr.DataLength, CurrentTime);
                }

                break;
            default:
                if (Icmpv6Type.IsError(icmp.Type))
                {
                    Statistics.IcmpErrorsReceived++;
                    if (icmp.Type is Icmpv6Type.DestinationUnreachable or Icmpv6Type.TimeExceeded)
                    {
                        var portUnreachable = icmp.Type == Icmpv6Type.DestinationUnreachable && icmp.Code == Icmpv6Type.CodePortUnreachable;
                        ReportIcmpErrorToUdp(icmp.Data, portUnreachable);
                    }
                }

                break;   // RFC 4443 §2.4(b): unknown informational messages are discarded silently
        }
    }

    /// <summary>
    /// RFC 1122 §4.1.3.3: passes an ICMP error about a UDP datagram we sent to the connected socket that sent it
    /// (port unreachable → ConnectionRefused, others → HostUnreachable, as Linux maps them). The quoted packet is
    /// truncated, so it is parsed leniently: only the fixed header (+ IPv6 extension headers) and the UDP ports.
    /// </summary>
    private void ReportIcmpErrorToUdp(ReadOnlySpan<byte> quoted, bool portUnreachable)
    {
        IpAddr source, destination;
        ReadOnlySpan<byte> transport;
        if (quoted.Length >= Ipv4Packet.MinHeaderLength && quoted[0] >> 4 == 4)
        {
            var headerLength = (quoted[0] & 0x0F) * 4;
            if (quoted[9] != IpProtocol.Udp || headerLength < Ipv4Packet.MinHeaderLength || quoted.Length < headerLength + 4)
            {
                return;
            }

            source = IpAddr.FromV4(BinaryPrimitives.ReadUInt32BigEndian(quoted[12..]));
            destination = IpAddr.FromV4(BinaryPrimitives.ReadUInt32BigEndian(quoted[16..]));
            transport = quoted[headerLength..];
        }
        else if (quoted.Length >= Ipv6Packet.HeaderLength && quoted[0] >> 4 == 6)
        {
            var rest = quoted[Ipv6Packet.HeaderLength..];
            if (!Ipv6ExtensionHeaders.TryWalk(rest, quoted[6], out var upper) || upper.Protocol != IpProtocol.Udp
                || upper.FragmentHeaderOffset >= 0 || rest.Length < upper.Offset + 4)
            {
                return;
            }

            source = IpAddr.FromV6(quoted.Slice(8, 16));
            destination = IpAddr.FromV6(quoted.Slice(24, 16));
            transport = rest[upper.Offset..];
        }
        else
        {
            return;
        }

        var sourcePort = BinaryPrimitives.ReadUInt16BigEndian(transport);
        var destinationPort = BinaryPrimitives.ReadUInt16BigEndian(transport[2..]);
        if (!_udp.TryGetValue(sourcePort, out var list))
        {
            return;
        }

        foreach (var socket in list)
        {
            if (socket.IsConnected && socket.RemoteAddress == destination && socket.RemotePort == destinationPort
                && (socket.LocalAddress.IsUnspecified || socket.LocalAddress == source))
            {
                socket.OnIcmpError(portUnreachable ? SocketError.ConnectionRefused : SocketError.HostUnreachable);
                return;
            }
        }
    }

    private void AnswerEcho(in IpAddr requester, in IpAddr target, in IcmpRepr request, ReadOnlySpan<byte> data, byte replyType)
    {
        // RFC 1122 §3.2.2.6 / RFC 4443 §4.2: same identifier, sequence and data; source is the request's destination.
        if (!IsConfigured(target) && !_options.AnswerEchoForAnyAddress
            && !(_options.Promiscuous && _options.AnswerEchoFor is { } answer && answer(target.ToIPAddress())))
        {
            Statistics.NotForUsDrops++;
            return;
        }

        var reply = IcmpRepr.Echo(replyType, request.Identifier, request.SequenceNumber, data.Length);
        if (IpHeaderLength(target) + reply.Length > _options.Mtu)
        {
            Statistics.MalformedDrops++;   // a reassembled request larger than the MTU: the stack does not fragment
            return;
        }

        var protocol = target.IsV4 ? IpProtocol.Icmp : IpProtocol.Icmpv6;
        var span = BeginIp(target, requester, protocol, reply.Length, out var headerLength);
        if (span.IsEmpty)
        {
            return;
        }

        if (target.IsV4)
        {
            reply.EmitV4(span[headerLength..], data);
        }
        else
        {
            reply.EmitV6(span[headerLength..], data, target, requester);
        }

        CommitIp(span.Length);
        Statistics.IcmpEchoRequests++;
    }
}
