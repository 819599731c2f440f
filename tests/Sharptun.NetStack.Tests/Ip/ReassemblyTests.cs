using System.Net;
using Sharptun.NetStack.Wire;
using Sharptun.Transport;

namespace Sharptun.NetStack.Tests.Ip;

public sealed class ReassemblyTests
{
    private static readonly IpAddr Peer4 = IpAddr.Parse("10.9.0.1");
    private static readonly IpAddr Local4 = IpAddr.Parse("10.9.0.2");
    private static readonly IpAddr Peer6 = IpAddr.Parse("fd00:9::1");
    private static readonly IpAddr Local6 = IpAddr.Parse("fd00:9::2");

    private static byte[] Payload(int length, int seed)
    {
        var data = new byte[length];
        new Random(seed).NextBytes(data);
        return data;
    }

    private static (NetworkStack Stack, Udp.UdpSocket Socket) Receiver(Action<NetworkStackOptions>? configure = null)
    {
        var stack = TestPackets.Stack(configure ?? (_ => { }), "10.9.0.2", "fd00:9::2");
        return (stack, stack.BindUdp(new IPEndPoint(IPAddress.IPv6Any, 5353)));
    }

    private static byte[] Receive(Udp.UdpSocket socket)
    {
        var buffer = new byte[70000];
        Assert.True(socket.TryReceiveFrom(buffer, out var r), "no datagram was delivered");
        return buffer[..r.Length];
    }

    [Fact]
    public void KernelFragmentsV4_InOrder_Reassemble()
    {
        var (stack, socket) = Receiver();
        using var _ = stack;
        stack.WritePacket(KernelCaptures.Udpv4Fragment1);
        Assert.False(socket.TryReceiveFrom(new byte[10], out var __));
        stack.WritePacket(KernelCaptures.Udpv4Fragment2);
        var expected = Enumerable.Repeat(Enumerable.Range(0, 256).Select(i => (byte)i), 8).SelectMany(x => x).ToArray();
        Assert.Equal(expected, Receive(socket));
        Assert.Equal(1, stack.Statistics.Reassembled);
        Assert.Equal(0, stack.BufferBytesInUse);   // fragments freed on completion, the datagram freed on receive
    }

    [Fact]
    public void KernelFragmentsV6_OutOfOrder_Reassemble()
    {
        var (stack, socket) = Receiver();
        using var _ = stack;
        stack.WritePacket(KernelCaptures.Udpv6Fragment2);
        stack.WritePacket(KernelCaptures.Udpv6Fragment1);
        Assert.Equal(2048, Receive(socket).Length);
    }

    [Theory]
    [InlineData(true, 1)]
    [InlineData(false, 2)]
    [InlineData(true, 3)]
    [InlineData(false, 4)]
    public void RandomOrder_WithDuplicates_ReassemblesExactly(bool v4, int seed)
    {
        var (stack, socket) = Receiver();
        using var _ = stack;
        var rng = new Random(seed);
        var data = TestPackets.UdpSegment(v4 ? Peer4 : Peer6, v4 ? Local4 : Local6, 1000, 5353, Payload(rng.Next(3000, 20000), seed));
        var fragments = v4
            ? TestPackets.Ipv4Fragments(Peer4, Local4, IpProtocol.Udp, data, 8 * rng.Next(20, 150), (ushort)seed)
            : TestPackets.Ipv6Fragments(Peer6, Local6, IpProtocol.Udp, data, 8 * rng.Next(20, 150), (uint)seed);
        fragments.Add(fragments[rng.Next(fragments.Count)]);   // an exact duplicate is ignored
        var shuffled = fragments.OrderBy(_ => rng.Next()).ToList();
        foreach (var f in shuffled)
        {
            stack.WritePacket(f);
        }

        Assert.Equal(data[8..], Receive(socket));
        Assert.False(socket.TryReceiveFrom(new byte[10], out var __));   // delivered once
    }

    [Fact]
    public void OverlappingFragmentsV6_DiscardWholeDatagram()
    {
        var (stack, socket) = Receiver();
        using var _ = stack;
        var data = TestPackets.UdpSegment(Peer6, Local6, 1000, 5353, Payload(64, 1));
        stack.WritePacket(TestPackets.Ipv6Fragment(Peer6, Local6, IpProtocol.Udp, data.AsSpan(0, 40), 0, true, 9));
        stack.WritePacket(TestPackets.Ipv6Fragment(Peer6, Local6, IpProtocol.Udp, data.AsSpan(32, 16), 32, true, 9));   // overlaps 32..40
        stack.WritePacket(TestPackets.Ipv6Fragment(Peer6, Local6, IpProtocol.Udp, data.AsSpan(40), 40, false, 9));
        Assert.False(socket.TryReceiveFrom(new byte[100], out var __));
        Assert.Equal(1, stack.Statistics.ReassemblyOverlaps);
        // RFC 5722: the first two fragments were freed; the last one arrived after the discard and starts a new
        // (never completing) reassembly, charged until its timeout.
        Assert.Equal(32, stack.BufferBytesInUse);
        stack.Poll(TimeSpan.FromSeconds(60));
        Assert.Equal(0, stack.BufferBytesInUse);
    }

    [Fact]
    public void OverlappingFragmentsV4_DiscardWholeDatagram()
    {
        var (stack, socket) = Receiver();
        using var _ = stack;
        var data = TestPackets.UdpSegment(Peer4, Local4, 1000, 5353, Payload(64, 1));
        var fragments = TestPackets.Ipv4Fragments(Peer4, Local4, IpProtocol.Udp, data, 24, 5);
        var overlapping = TestPackets.Ipv4Fragments(Peer4, Local4, IpProtocol.Udp, data, 16, 5)[1];   // bytes 16..32
        stack.WritePacket(fragments[0]);
        stack.WritePacket(overlapping);
        foreach (var f in fragments.Skip(1))
        {
            stack.WritePacket(f);
        }

        Assert.False(socket.TryReceiveFrom(new byte[100], out var __));
        Assert.Equal(1, stack.Statistics.ReassemblyOverlaps);
    }

    [Fact]
    public void Timeout_FreesMemoryAndNextDeadlineClears()
    {
        var (stack, socket) = Receiver();
        using var _ = stack;
        var data = TestPackets.UdpSegment(Peer4, Local4, 1000, 5353, Payload(4000, 2));
        var fragments = TestPackets.Ipv4Fragments(Peer4, Local4, IpProtocol.Udp, data, 1000, 77);
        stack.WritePacket(fragments[0]);
        stack.WritePacket(fragments[2]);
        Assert.True(stack.BufferBytesInUse >= 2000);
        Assert.Equal(TimeSpan.FromSeconds(30), stack.NextDeadline);
        stack.Poll(TimeSpan.FromSeconds(29));
        Assert.True(stack.BufferBytesInUse >= 2000);
        stack.Poll(TimeSpan.FromSeconds(30));
        Assert.Equal(0, stack.BufferBytesInUse);
        Assert.Equal(1, stack.Statistics.ReassemblyTimeouts);
        Assert.Equal(TimeSpan.MaxValue, stack.NextDeadline);
        stack.WritePacket(fragments[1]);   // late fragments cannot complete the freed datagram
        stack.WritePacket(fragments[3]);
        stack.WritePacket(fragments[4]);
        Assert.False(socket.TryReceiveFrom(new byte[100], out var __));
    }

    [Fact]
    public void Timeout_WithFirstFragment_SendsTimeExceededV4()
    {
        var (stack, _) = Receiver();
        using var __ = stack;
        stack.WritePacket(KernelCaptures.Udpv4Fragment1);
        Assert.Empty(TestPackets.Drain(stack));
        stack.Poll(TimeSpan.FromSeconds(30));
        var (protocol, src, dst, payload) = TestPackets.Open(Assert.Single(TestPackets.Drain(stack)));
        Assert.Equal((IpProtocol.Icmp, Local4, Peer4), (protocol, src, dst));
        Assert.True(IcmpPacket.TryCreate(payload, out var icmp));
        Assert.True(icmp.IsChecksumValidV4);
        Assert.Equal((Icmpv4Type.TimeExceeded, Icmpv4Type.CodeReassemblyTimeExceeded), (icmp.Type, icmp.Code));
        Assert.Equal(KernelCaptures.Udpv4Fragment1.AsSpan(20, 100).ToArray(), icmp.Data.Slice(20, 100).ToArray());
    }

    [Fact]
    public void Timeout_WithFirstFragment_SendsTimeExceededV6()
    {
        var (stack, _) = Receiver();
        using var __ = stack;
        stack.WritePacket(KernelCaptures.Udpv6Fragment1);
        stack.Poll(TimeSpan.FromSeconds(60));
        var (protocol, _, dst, payload) = TestPackets.Open(Assert.Single(TestPackets.Drain(stack)));
        Assert.Equal((IpProtocol.Icmpv6, Peer6), (protocol, dst));
        Assert.True(IcmpPacket.TryCreate(payload, out var icmp));
        Assert.True(icmp.IsChecksumValidV6(Local6, Peer6));
        Assert.Equal((Icmpv6Type.TimeExceeded, Icmpv6Type.CodeReassemblyTimeExceeded), (icmp.Type, icmp.Code));
    }

    [Fact]
    public void Timeout_WithoutFirstFragment_SendsNothing()
    {
        var (stack, _) = Receiver();
        using var __ = stack;
        stack.WritePacket(KernelCaptures.Udpv4Fragment2);
        stack.Poll(TimeSpan.FromSeconds(30));
        Assert.Empty(TestPackets.Drain(stack));
        Assert.Equal(1, stack.Statistics.ReassemblyTimeouts);
    }

    [Fact]
    public void Ipv6Timeout_IsSixtySeconds()
    {
        var (stack, _) = Receiver();
        using var __ = stack;
        stack.WritePacket(KernelCaptures.Udpv6Fragment1);
        Assert.Equal(TimeSpan.FromSeconds(60), stack.NextDeadline);
    }

    [Fact]
    public void ConcurrencyLimit_EvictsOldestReassembly()
    {
        var (stack, socket) = Receiver(o => o.MaxReassemblies = 4);
        using var _ = stack;
        var datagrams = new List<List<byte[]>>();
        for (var id = 0; id < 6; id++)
        {
            var data = TestPackets.UdpSegment(Peer4, Local4, 1000, 5353, Payload(100, id));
            datagrams.Add(TestPackets.Ipv4Fragments(Peer4, Local4, IpProtocol.Udp, data, 56, (ushort)id));
            stack.WritePacket(datagrams[id][0]);
        }

        Assert.Equal(2, stack.Statistics.ReassemblyLimitDrops);
        for (var id = 5; id >= 0; id--)
        {
            stack.WritePacket(datagrams[id][1]);
        }

        var delivered = new List<int>();
        var buffer = new byte[200];
        while (socket.TryReceiveFrom(buffer, out var __))
        {
            delivered.Add(buffer[0]);
        }

        // Datagrams 0 and 1 were evicted; their second fragments only start new reassemblies.
        Assert.Equal(4, delivered.Count);
        Assert.True(stack.BufferBytesInUse > 0);
    }

    [Fact]
    public void ByteLimit_IsNeverExceeded()
    {
        var (stack, socket) = Receiver(o => o.MaxReassemblyBytes = 5000);
        using var _ = stack;
        var rng = new Random(5);
        long peak = 0;
        for (var id = 0; id < 50; id++)
        {
            var data = TestPackets.UdpSegment(Peer4, Local4, 1000, 5353, Payload(3000, id));
            var fragments = TestPackets.Ipv4Fragments(Peer4, Local4, IpProtocol.Udp, data, 1000, (ushort)id);
            stack.WritePacket(fragments[rng.Next(fragments.Count)]);
            peak = Math.Max(peak, stack.BufferBytesInUse);
        }

        Assert.InRange(peak, 1, 5000);
        Assert.True(stack.Statistics.ReassemblyLimitDrops > 0);
    }

    [Fact]
    public void BudgetExhausted_ReassemblyEvictsInsteadOfGrowing()
    {
        var (stack, socket) = Receiver(o => o.BufferBudgetBytes = 2500);
        using var _ = stack;
        for (var id = 0; id < 5; id++)
        {
            var data = TestPackets.UdpSegment(Peer4, Local4, 1000, 5353, Payload(3000, id));
            stack.WritePacket(TestPackets.Ipv4Fragments(Peer4, Local4, IpProtocol.Udp, data, 1000, (ushort)id)[0]);
            Assert.InRange(stack.BufferBytesInUse, 0, 2500);
        }
    }

    [Fact]
    public void NonFinalFragmentNotMultipleOfEightV6_IsDroppedWithParameterProblem()
    {
        var (stack, _) = Receiver();
        using var __ = stack;
        stack.WritePacket(TestPackets.Ipv6Fragment(Peer6, Local6, IpProtocol.Udp, new byte[13], 0, true, 1));
        Assert.Equal(0, stack.BufferBytesInUse);
        var (_, _, _, payload) = TestPackets.Open(Assert.Single(TestPackets.Drain(stack)));
        Assert.True(IcmpPacket.TryCreate(payload, out var icmp));
        Assert.Equal((Icmpv6Type.ParameterProblem, (byte)0, 4u), (icmp.Type, icmp.Code, icmp.RestOfHeader));
    }

    [Fact]
    public void NonFinalFragmentNotMultipleOfEightV4_IsDropped()
    {
        var (stack, _) = Receiver();
        using var __ = stack;
        var packet = new byte[20 + 13];
        new Ipv4Repr(Peer4, Local4, IpProtocol.Udp, 13, Identification: 3, MoreFragments: true).Emit(packet);
        stack.WritePacket(packet);
        Assert.Equal(1, stack.Statistics.ReassemblyMalformed);
        Assert.Equal(0, stack.BufferBytesInUse);
    }

    [Fact]
    public void FragmentBeyond64K_IsDropped()
    {
        var (stack, _) = Receiver();
        using var __ = stack;
        var packet = new byte[20 + 16];
        new Ipv4Repr(Peer4, Local4, IpProtocol.Udp, 16, Identification: 3, FragmentOffset: 65528).Emit(packet);
        stack.WritePacket(packet);
        Assert.Equal(1, stack.Statistics.ReassemblyMalformed);
    }

    [Fact]
    public void FragmentedEchoRequest_IsAnsweredWhenReplyFits()
    {
        using var stack = TestPackets.Stack("10.9.0.2");
        var echo = TestPackets.EchoRequest(Peer4, Local4, 7, 1, Payload(1000, 3));
        foreach (var f in TestPackets.Ipv4Fragments(Peer4, Local4, IpProtocol.Icmp, echo.AsSpan(20), 512, 11))
        {
            stack.WritePacket(f);
        }

        var reply = Assert.Single(TestPackets.Drain(stack));
        Assert.Equal(echo.Length, reply.Length);
    }
}
