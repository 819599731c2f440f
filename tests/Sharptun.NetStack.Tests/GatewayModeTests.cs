using System.Buffers.Binary;
using System.Net;
using Sharptun.NetStack.Wire;
using Sharptun.Transport;

namespace Sharptun.NetStack.Tests;

/// <summary>The promiscuous-mode pieces a gateway uses: SYN admission, ICMP unreachable for UDP flows, the echo filter.</summary>
public sealed class GatewayModeTests
{
    private static readonly IpAddr Peer4 = IpAddr.Parse("10.9.0.1");
    private static readonly IpAddr Far4 = IpAddr.Parse("93.184.216.34");
    private static readonly IpAddr Peer6 = IpAddr.Parse("fd00::1");
    private static readonly IpAddr Far6 = IpAddr.Parse("2606:2800:220:1::1");

    [Fact]
    public void AnyDestinationListener_RefusedSyn_GetsRstAck_AdmittedSyn_GetsSynAck()
    {
        using var stack = TestPackets.Stack(o => o.Promiscuous = true, "10.9.0.2");
        var asked = new List<(IPEndPoint, IPEndPoint)>();
        using var listener = stack.ListenTcpAnyDestination((s, d) =>
        {
            asked.Add((s, d));
            return d.Port == 443;
        });

        stack.WritePacket(Syn(Peer4, 40000, Far4, 80, 1000));
        var (protocol, src, dst, segment) = TestPackets.Open(Assert.Single(TestPackets.Drain(stack)));
        Assert.Equal((IpProtocol.Tcp, Far4, Peer4), (protocol, src, dst));
        Assert.True(TcpRepr.TryParse(segment, Far4, Peer4, verifyChecksum: true, out var rst, out _));
        Assert.Equal(TcpFlags.Rst | TcpFlags.Ack, rst.Flags);
        Assert.Equal(1001u, rst.Ack.Value);
        Assert.Equal((ushort)80, rst.SourcePort);

        stack.WritePacket(Syn(Peer4, 40001, Far4, 443, 2000));
        (_, src, _, segment) = TestPackets.Open(Assert.Single(TestPackets.Drain(stack)));
        Assert.True(TcpRepr.TryParse(segment, Far4, Peer4, verifyChecksum: true, out var synAck, out _));
        Assert.Equal(TcpFlags.Syn | TcpFlags.Ack, synAck.Flags);
        Assert.Equal(Far4, src);
        Assert.Equal(
            [(new IPEndPoint(IPAddress.Parse("10.9.0.1"), 40000), new IPEndPoint(IPAddress.Parse("93.184.216.34"), 80)),
             (new IPEndPoint(IPAddress.Parse("10.9.0.1"), 40001), new IPEndPoint(IPAddress.Parse("93.184.216.34"), 443))],
            asked);
    }

    [Fact]
    public void AnyDestinationListener_NeedsPromiscuous()
    {
        using var stack = TestPackets.Stack("10.9.0.2");
        Assert.Throws<InvalidOperationException>(() => stack.ListenTcpAnyDestination(null));
    }

    [Theory]
    [InlineData(false, UdpUnreachableReason.AdministrativelyProhibited, 3, 13)]
    [InlineData(false, UdpUnreachableReason.PortUnreachable, 3, 3)]
    [InlineData(true, UdpUnreachableReason.AdministrativelyProhibited, 1, 1)]
    [InlineData(true, UdpUnreachableReason.PortUnreachable, 1, 4)]
    public void SendUdpUnreachable_QuotesTheFlow_FromTheDestination(bool v6, UdpUnreachableReason reason, byte type, byte code)
    {
        var (peer, far) = v6 ? (Peer6, Far6) : (Peer4, Far4);
        using var stack = TestPackets.Stack(o => o.Promiscuous = true, "10.9.0.2", "fd00::2");
        Assert.True(stack.SendUdpUnreachable(peer, 40000, far, 53, "query-bytes"u8, reason));
        var (protocol, src, dst, icmp) = TestPackets.Open(Assert.Single(TestPackets.Drain(stack)));
        Assert.Equal((v6 ? IpProtocol.Icmpv6 : IpProtocol.Icmp, far, peer), (protocol, src, dst));
        Assert.Equal((type, code), (icmp[0], icmp[1]));
        var quoted = icmp.AsSpan(8);
        var ipLength = v6 ? 40 : 20;
        var (qsrc, qdst) = v6
            ? (IpAddr.FromV6(quoted.Slice(8, 16)), IpAddr.FromV6(quoted.Slice(24, 16)))
            : (IpAddr.FromV4(quoted.Slice(12, 4)), IpAddr.FromV4(quoted.Slice(16, 4)));
        Assert.Equal((peer, far), (qsrc, qdst));
        Assert.Equal(IpProtocol.Udp, v6 ? quoted[6] : quoted[9]);
        Assert.Equal(40000, BinaryPrimitives.ReadUInt16BigEndian(quoted[ipLength..]));
        Assert.Equal(53, BinaryPrimitives.ReadUInt16BigEndian(quoted[(ipLength + 2)..]));
        Assert.Equal("query-bytes"u8.ToArray(), quoted[(ipLength + 8)..].ToArray());
        Assert.Equal(1, stack.Statistics.IcmpErrorsSentCount);
    }

    [Fact]
    public void SendUdpUnreachable_MixedFamilies_SendsNothing()
    {
        using var stack = TestPackets.Stack(o => o.Promiscuous = true, "10.9.0.2");
        Assert.False(stack.SendUdpUnreachable(Peer4, 1, Far6, 2, [], UdpUnreachableReason.PortUnreachable));
        Assert.Empty(TestPackets.Drain(stack));
    }

    [Fact]
    public void AnswerEchoFor_DecidesPerAddress()
    {
        var allowed = IpAddr.Parse("93.184.216.34");
        var denied = IpAddr.Parse("192.168.1.1");
        using var stack = TestPackets.Stack(o => { o.Promiscuous = true; o.AnswerEchoFor = a => a.Equals(IPAddress.Parse("93.184.216.34")); }, "10.9.0.2");
        stack.WritePacket(TestPackets.EchoRequest(Peer4, allowed, 7, 1, "ping"u8));
        var (protocol, src, _, icmp) = TestPackets.Open(Assert.Single(TestPackets.Drain(stack)));
        Assert.Equal((IpProtocol.Icmp, allowed, (byte)0), (protocol, src, icmp[0]));
        stack.WritePacket(TestPackets.EchoRequest(Peer4, denied, 7, 2, "ping"u8));
        Assert.Empty(TestPackets.Drain(stack));
    }

    private static byte[] Syn(IpAddr src, ushort sport, IpAddr dst, ushort dport, uint seq)
    {
        var repr = new TcpRepr { SourcePort = sport, DestinationPort = dport, Seq = new SeqNumber(seq), Flags = TcpFlags.Syn, Window = 65535, Mss = 1360 };
        var segment = new byte[64];
        var n = repr.Emit(segment, ReadOnlySpan<byte>.Empty, src, dst);
        return TestPackets.Ip(src, dst, IpProtocol.Tcp, segment.AsSpan(0, n));
    }
}
