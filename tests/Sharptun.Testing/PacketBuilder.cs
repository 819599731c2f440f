using System.Buffers.Binary;
using System.Net;
using Sharptun.NetStack;
using Sharptun.NetStack.Wire;
using Sharptun.Transport;

namespace Sharptun.Testing;

/// <summary>
/// Builds inner IP packets for tests with the userspace stack's own wire code (<c>Sharptun.NetStack.Wire</c>:
/// header layout and RFC 1071 checksums), so no test carries its own checksum routine.
/// </summary>
public static class PacketBuilder
{
    /// <summary>IP protocol number of ICMP (RFC 792).</summary>
    public const byte IcmpProtocol = IpProtocol.Icmp;

    /// <summary>IP protocol number of UDP (RFC 768).</summary>
    public const byte UdpProtocol = IpProtocol.Udp;

    /// <summary>An IPv4 packet: a 20-byte header with its checksum (TTL 64, no options), then <paramref name="payload"/>.</summary>
    public static byte[] Ipv4(IPAddress source, IPAddress destination, byte protocol, ReadOnlySpan<byte> payload, ushort identification = 0, bool dontFragment = false)
    {
        var packet = new byte[Ipv4Repr.HeaderLength + payload.Length];
        new Ipv4Repr(IpAddr.FromIPAddress(source), IpAddr.FromIPAddress(destination), protocol, payload.Length,
            Identification: identification, DontFragment: dontFragment).Emit(packet);
        payload.CopyTo(packet.AsSpan(Ipv4Repr.HeaderLength));
        return packet;
    }

    /// <summary>An IPv6 packet: the 40-byte fixed header (hop limit 64, no extension headers), then <paramref name="payload"/>.</summary>
    public static byte[] Ipv6(IPAddress source, IPAddress destination, byte nextHeader, ReadOnlySpan<byte> payload)
    {
        var packet = new byte[Ipv6Repr.HeaderLength + payload.Length];
        new Ipv6Repr(IpAddr.FromIPAddress(source), IpAddr.FromIPAddress(destination), nextHeader, payload.Length).Emit(packet);
        payload.CopyTo(packet.AsSpan(Ipv6Repr.HeaderLength));
        return packet;
    }

    /// <summary>A UDP datagram (with its checksum) in an IPv4 or IPv6 packet, by the family of <paramref name="source"/>.</summary>
    public static byte[] Udp(IPAddress source, IPAddress destination, ushort sourcePort, ushort destinationPort, ReadOnlySpan<byte> payload)
    {
        var udp = new UdpRepr(sourcePort, destinationPort, payload.Length);
        var datagram = new byte[udp.Length];
        udp.Emit(datagram, payload, IpAddr.FromIPAddress(source), IpAddr.FromIPAddress(destination));
        return source.AddressFamily == System.Net.Sockets.AddressFamily.InterNetwork
            ? Ipv4(source, destination, UdpProtocol, datagram)
            : Ipv6(source, destination, UdpProtocol, datagram);
    }

    /// <summary>An ICMPv4 echo request (RFC 792) carrying <paramref name="data"/> in an IPv4 packet.</summary>
    public static byte[] IcmpEchoRequest(IPAddress source, IPAddress destination, ushort identifier, ushort sequence, ReadOnlySpan<byte> data, ushort identification = 0, bool dontFragment = false)
    {
        var icmp = IcmpRepr.Echo(Icmpv4Type.EchoRequest, identifier, sequence, data.Length);
        var message = new byte[icmp.Length];
        icmp.EmitV4(message, data);
        return Ipv4(source, destination, IcmpProtocol, message, identification, dontFragment);
    }

    /// <summary>
    /// Turns an IPv4 ICMP echo request in place into the matching echo reply: addresses swapped, TTL 64, both
    /// checksums recomputed. False (packet untouched) for any other packet.
    /// </summary>
    public static bool TryMakeIcmpEchoReply(Span<byte> packet)
    {
        // RFC 791 header: version/IHL at 0, protocol at 9, checksum at 10, source 12, destination 16.
        if (packet.Length < 28 || packet[0] >> 4 != 4 || packet[9] != IcmpProtocol)
        {
            return false;
        }

        var headerLength = (packet[0] & 0xF) * 4;
        var icmp = packet[headerLength..];
        if (icmp[0] != Icmpv4Type.EchoRequest)
        {
            return false;
        }

        Span<byte> source = stackalloc byte[4];
        packet.Slice(12, 4).CopyTo(source);
        packet.Slice(16, 4).CopyTo(packet[12..]);
        source.CopyTo(packet[16..]);
        packet[8] = 64; // TTL
        BinaryPrimitives.WriteUInt16BigEndian(packet[10..], 0);
        BinaryPrimitives.WriteUInt16BigEndian(packet[10..], Checksum.Compute(packet[..headerLength]));
        icmp[0] = Icmpv4Type.EchoReply;
        BinaryPrimitives.WriteUInt16BigEndian(icmp[2..], 0);
        BinaryPrimitives.WriteUInt16BigEndian(icmp[2..], Checksum.Compute(icmp));
        return true;
    }

    /// <summary>The RFC 1071 Internet checksum of <paramref name="data"/>: the value to store, or 0 when verifying data that holds a correct one.</summary>
    public static ushort InternetChecksum(ReadOnlySpan<byte> data) => Checksum.Compute(data);
}
