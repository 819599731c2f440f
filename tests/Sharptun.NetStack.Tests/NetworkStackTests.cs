using System.Net;
using System.Net.Sockets;
using Sharptun.NetStack.Wire;
using Sharptun.Transport;

namespace Sharptun.NetStack.Tests;

public sealed class NetworkStackTests
{
    private static readonly IpAddr Peer4 = IpAddr.Parse("10.9.0.1");
    private static readonly IpAddr Local4 = IpAddr.Parse("10.9.0.2");
    private static readonly IpAddr Peer6 = IpAddr.Parse("fd00:9::1");
    private static readonly IpAddr Local6 = IpAddr.Parse("fd00:9::2");

    [Fact]
    public void Write_KernelIcmpv4EchoRequest_RepliesWithMatchingEcho()
    {
        using var stack = TestPackets.Stack("10.9.0.2");
        var request = KernelCaptures.Icmpv4EchoRequest;
        stack.WritePacket(request);
        var replies = TestPackets.Drain(stack);
        var reply = Assert.Single(replies);
        var (protocol, src, dst, payload) = TestPackets.Open(reply);
        Assert.Equal(IpProtocol.Icmp, protocol);
        Assert.Equal(Local4, src);
        Assert.Equal(Peer4, dst);
        Assert.True(IcmpPacket.TryCreate(payload, out var icmp));
        Assert.True(icmp.IsChecksumValidV4);
        Assert.Equal(Icmpv4Type.EchoReply, icmp.Type);
        Assert.Equal(request.AsSpan(24).ToArray(), payload.AsSpan(4).ToArray());   // same id, seq and data
        Assert.Equal(1, stack.Statistics.EchoRequestsAnswered);
    }

    [Fact]
    public void Write_KernelIcmpv6EchoRequest_RepliesWithMatchingEcho()
    {
        using var stack = TestPackets.Stack("fd00:9::2");
        stack.WritePacket(KernelCaptures.Icmpv6EchoRequest);
        var reply = Assert.Single(TestPackets.Drain(stack));
        var (protocol, src, dst, payload) = TestPackets.Open(reply);
        Assert.Equal(IpProtocol.Icmpv6, protocol);
        Assert.Equal((Local6, Peer6), (src, dst));
        Assert.True(IcmpPacket.TryCreate(payload, out var icmp));
        Assert.True(icmp.IsChecksumValidV6(src, dst));
        Assert.Equal(Icmpv6Type.EchoReply, icmp.Type);
        Assert.Equal(KernelCaptures.Icmpv6EchoRequest.AsSpan(44).ToArray(), payload.AsSpan(4).ToArray());
    }

    [Fact]
    public void Write_EchoToOtherAddress_IsNotAnswered()
    {
        using var stack = TestPackets.Stack("10.9.0.3");
        stack.WritePacket(KernelCaptures.Icmpv4EchoRequest);
        Assert.Empty(TestPackets.Drain(stack));
        Assert.Equal(1, stack.Statistics.NotForUs);
    }

    [Fact]
    public void Write_UdpToClosedPortV4_SendsPortUnreachableQuotingPacket()
    {
        using var stack = TestPackets.Stack("10.9.0.2");
        var datagram = KernelCaptures.Udpv4;
        stack.WritePacket(datagram);
        var (protocol, src, dst, payload) = TestPackets.Open(Assert.Single(TestPackets.Drain(stack)));
        Assert.Equal((IpProtocol.Icmp, Local4, Peer4), (protocol, src, dst));
        Assert.True(IcmpPacket.TryCreate(payload, out var icmp));
        Assert.True(icmp.IsChecksumValidV4);
        Assert.Equal((Icmpv4Type.DestinationUnreachable, Icmpv4Type.CodePortUnreachable), (icmp.Type, icmp.Code));
        Assert.Equal(datagram, icmp.Data.ToArray());
        Assert.Equal(1, stack.Statistics.UdpNoSocket);
    }

    [Fact]
    public void Write_UdpToClosedPortV6_SendsPortUnreachable()
    {
        using var stack = TestPackets.Stack("fd00:9::2");
        stack.WritePacket(KernelCaptures.Udpv6);
        var (protocol, src, dst, payload) = TestPackets.Open(Assert.Single(TestPackets.Drain(stack)));
        Assert.Equal((IpProtocol.Icmpv6, Local6, Peer6), (protocol, src, dst));
        Assert.True(IcmpPacket.TryCreate(payload, out var icmp));
        Assert.True(icmp.IsChecksumValidV6(src, dst));
        Assert.Equal((Icmpv6Type.DestinationUnreachable, Icmpv6Type.CodePortUnreachable), (icmp.Type, icmp.Code));
        Assert.Equal(KernelCaptures.Udpv6, icmp.Data.ToArray());
    }

    [Fact]
    public void Write_ManyUdpToClosedPort_ErrorsAreRateLimited()
    {
        using var stack = TestPackets.Stack(o => { o.IcmpErrorBurst = 5; o.IcmpErrorRatePerSecond = 10; }, "10.9.0.2");
        for (var i = 0; i < 20; i++)
        {
            stack.WritePacket(KernelCaptures.Udpv4);
        }

        Assert.Equal(5, TestPackets.Drain(stack).Count);
        Assert.Equal(15, stack.Statistics.IcmpErrorsSuppressed);
        stack.Poll(TimeSpan.FromSeconds(1));   // 10 tokens refilled
        for (var i = 0; i < 20; i++)
        {
            stack.WritePacket(KernelCaptures.Udpv4);
        }

        Assert.Equal(5, TestPackets.Drain(stack).Count);   // capped by the burst
    }

    [Fact]
    public void Write_IcmpErrorAboutIcmpError_IsNotAnswered()
    {
        using var stack = TestPackets.Stack("10.9.0.2");
        var error = new byte[8 + 28];
        new IcmpRepr(Icmpv4Type.DestinationUnreachable, 3, 0, 28).EmitV4(error, new byte[28]);
        // An ICMP error with an unknown IP protocol inside must not trigger anything; and an unknown protocol carrying
        // an ICMP error is impossible, so check the stack neither answers nor crashes on the error itself.
        stack.WritePacket(TestPackets.Ip(Peer4, Local4, IpProtocol.Icmp, error));
        Assert.Empty(TestPackets.Drain(stack));
        Assert.Equal(1, stack.Statistics.IcmpErrorsReceivedCount);
    }

    [Fact]
    public void Write_UnknownProtocolV4_SendsProtocolUnreachable()
    {
        using var stack = TestPackets.Stack("10.9.0.2");
        stack.WritePacket(TestPackets.Ip(Peer4, Local4, 99, [1, 2, 3]));
        var (_, _, _, payload) = TestPackets.Open(Assert.Single(TestPackets.Drain(stack)));
        Assert.Equal((Icmpv4Type.DestinationUnreachable, Icmpv4Type.CodeProtocolUnreachable), (payload[0], payload[1]));
    }

    [Fact]
    public void Write_UnknownNextHeaderV6_SendsParameterProblemPointingAtField()
    {
        using var stack = TestPackets.Stack("fd00:9::2");
        stack.WritePacket(TestPackets.Ip(Peer6, Local6, 99, [1, 2, 3]));
        var (_, _, _, payload) = TestPackets.Open(Assert.Single(TestPackets.Drain(stack)));
        Assert.True(IcmpPacket.TryCreate(payload, out var icmp));
        Assert.Equal((Icmpv6Type.ParameterProblem, Icmpv6Type.CodeUnrecognizedNextHeader, 6u), (icmp.Type, icmp.Code, icmp.RestOfHeader));
    }

    [Fact]
    public void Write_BadIpv4HeaderChecksum_IsDroppedAndCounted()
    {
        using var stack = TestPackets.Stack("10.9.0.2");
        var packet = KernelCaptures.Icmpv4EchoRequest;
        packet[11] ^= 0x40;
        stack.WritePacket(packet);
        Assert.Empty(TestPackets.Drain(stack));
        Assert.Equal(1, stack.Statistics.BadChecksum);
    }

    [Fact]
    public void Write_BadUdpChecksum_IsDroppedAndCounted()
    {
        using var stack = TestPackets.Stack("10.9.0.2");
        using var socket = stack.BindUdp(new IPEndPoint(IPAddress.Any, 5353));
        var packet = KernelCaptures.Udpv4;
        packet[^1] ^= 1;
        stack.WritePacket(packet);
        Assert.False(socket.TryReceiveFrom(new byte[100], out _));
        Assert.Equal(1, stack.Statistics.BadChecksum);
    }

    [Fact]
    public void Write_UdpToBoundSocket_IsReceivedWithAddresses()
    {
        using var stack = TestPackets.Stack("10.9.0.2", "fd00:9::2");
        using var socket = stack.BindUdp(new IPEndPoint(IPAddress.IPv6Any, 5353));
        stack.WritePacket(KernelCaptures.Udpv4);
        stack.WritePacket(KernelCaptures.Udpv6);
        var buffer = new byte[100];
        Assert.True(socket.TryReceiveFrom(buffer, out var r4));
        Assert.Equal(new UdpReceiveResultView(12, Peer4, 40000, Local4, 5353), new UdpReceiveResultView(r4.Length, r4.RemoteAddress, r4.RemotePort, r4.LocalAddress, r4.LocalPort));
        Assert.Equal("hello, stack"u8.ToArray(), buffer[..12]);
        Assert.True(socket.TryReceiveFrom(buffer, out var r6));
        Assert.Equal(Peer6, r6.RemoteAddress);
        Assert.Empty(TestPackets.Drain(stack));
    }

    private readonly record struct UdpReceiveResultView(int Length, IpAddr Remote, ushort RemotePort, IpAddr Local, ushort LocalPort);

    [Fact]
    public void Write_UdpWithSmallBuffer_ReportsTruncation()
    {
        using var stack = TestPackets.Stack("10.9.0.2");
        using var socket = stack.BindUdp(new IPEndPoint(IPAddress.Any, 5353));
        stack.WritePacket(KernelCaptures.Udpv4);
        Assert.True(socket.TryReceiveFrom(new byte[5], out var result));
        Assert.True(result.Truncated);
        Assert.Equal(5, result.Length);
    }

    [Fact]
    public void Write_UdpQueueFull_DropsAndCounts()
    {
        using var stack = TestPackets.Stack("10.9.0.2");
        using var socket = stack.BindUdp(new IPEndPoint(IPAddress.Any, 5353), receiveQueueLength: 3);
        for (var i = 0; i < 5; i++)
        {
            stack.WritePacket(KernelCaptures.Udpv4);
        }

        Assert.Equal(2, socket.ReceiveQueueDrops);
        Assert.Equal(2, stack.Statistics.UdpReceiveQueueFull);
        Assert.True(stack.BufferBytesInUse > 0);
        socket.Dispose();
        Assert.Equal(0, stack.BufferBytesInUse);
    }

    [Fact]
    public void Write_UdpBeyondByteBudget_DropsAndCounts()
    {
        using var stack = TestPackets.Stack(o => o.BufferBudgetBytes = 40, "10.9.0.2");
        using var socket = stack.BindUdp(new IPEndPoint(IPAddress.Any, 5353));
        for (var i = 0; i < 4; i++)
        {
            stack.WritePacket(KernelCaptures.Udpv4);   // 12-byte payloads in 16-byte pooled arrays: two fit in 40 bytes
        }

        Assert.Equal(2, socket.ReceiveQueueDrops);
    }

    [Fact]
    public void Write_ConnectedSocket_OnlyReceivesFromItsPeer()
    {
        using var stack = TestPackets.Stack("10.9.0.2");
        using var wildcard = stack.BindUdp(new IPEndPoint(IPAddress.Any, 5353));
        using var connected = stack.BindUdp(new IPEndPoint(IPAddress.Parse("10.9.0.2"), 5354));
        connected.Connect(new IPEndPoint(IPAddress.Parse("10.9.0.1"), 40000));
        stack.WritePacket(TestPackets.Udp(Peer4, Local4, 40000, 5354, [1]));
        stack.WritePacket(TestPackets.Udp(Peer4, Local4, 40001, 5354, [2]));
        var buffer = new byte[10];
        Assert.True(connected.TryReceiveFrom(buffer, out _));
        Assert.Equal(1, buffer[0]);
        Assert.False(connected.TryReceiveFrom(buffer, out _));
        Assert.Equal(1, stack.Statistics.UdpNoSocket);
    }

    [Fact]
    public void BindUdp_SamePortTwice_Throws()
    {
        using var stack = TestPackets.Stack("10.9.0.2");
        using var first = stack.BindUdp(new IPEndPoint(IPAddress.Any, 5353));
        var e = Assert.Throws<SocketException>(() => stack.BindUdp(new IPEndPoint(IPAddress.Parse("10.9.0.2"), 5353)));
        Assert.Equal(SocketError.AddressAlreadyInUse, e.SocketErrorCode);
        Assert.Throws<SocketException>(() => stack.BindUdp(new IPEndPoint(IPAddress.Parse("10.9.9.9"), 1)));
    }

    [Fact]
    public void BindUdp_PortZero_PicksEphemeralPort()
    {
        using var stack = TestPackets.Stack("10.9.0.2");
        using var socket = stack.BindUdp(new IPEndPoint(IPAddress.Any, 0));
        Assert.InRange(socket.LocalEndPoint.Port, 49152, 65535);
    }

    [Fact]
    public async Task SendToAsync_LargerThanMtu_ThrowsMessageSize()
    {
        using var stack = TestPackets.Stack(o => o.Mtu = 1280, "10.9.0.2");
        using var socket = stack.BindUdp(new IPEndPoint(IPAddress.Any, 0));
        var e = await Assert.ThrowsAsync<SocketException>(async () => await socket.SendToAsync(new byte[1253], new IPEndPoint(IPAddress.Parse("10.9.0.1"), 9)));
        Assert.Equal(SocketError.MessageSize, e.SocketErrorCode);
        await socket.SendToAsync(new byte[1252], new IPEndPoint(IPAddress.Parse("10.9.0.1"), 9));
        Assert.Equal(1280, Assert.Single(TestPackets.Drain(stack)).Length);
    }

    [Fact]
    public async Task SendToAsync_OutboundQueueFull_WaitsUntilReadFreesSpace()
    {
        using var stack = TestPackets.Stack(o => o.OutboundQueueCapacity = 2, "10.9.0.2");
        using var socket = stack.BindUdp(new IPEndPoint(IPAddress.Any, 0));
        var remote = new IPEndPoint(IPAddress.Parse("10.9.0.1"), 9);
        await socket.SendToAsync(new byte[] { 1 }, remote);
        await socket.SendToAsync(new byte[] { 2 }, remote);
        var third = socket.SendToAsync(new byte[] { 3 }, remote).AsTask();
        await Task.Delay(50);
        Assert.False(third.IsCompleted);
        Assert.Equal(1, stack.Statistics.OutboundFull);
        var buffers = new[] { new byte[2000] };
        var sizes = new int[1];
        Assert.Equal(1, stack.Read(buffers, sizes, 0));
        await third.WaitAsync(TimeSpan.FromSeconds(5));
        var rest = TestPackets.Drain(stack);
        Assert.Equal(2, rest.Count);
        Assert.Equal(3, rest[1][^1]);   // nothing was dropped; order kept
    }

    [Fact]
    public void Read_BlocksUntilPacketThenReturnsBatch()
    {
        using var stack = TestPackets.Stack("10.9.0.2");
        var buffers = new[] { new byte[2000], new byte[2000], new byte[2000] };
        var sizes = new int[3];
        var reader = Task.Run(() => stack.Read(buffers, sizes, 16));
        Thread.Sleep(50);
        Assert.False(reader.IsCompleted);
        stack.Write([KernelCaptures.Icmpv4EchoRequest, KernelCaptures.Icmpv4EchoRequest], [36, 36], 0, 2);
        var n = reader.Wait(TimeSpan.FromSeconds(5)) ? reader.Result : -1;
        Assert.InRange(n, 1, 2);
        Assert.Equal(36, sizes[0]);
        Assert.Equal(0x45, buffers[0][16]);
    }

    [Fact]
    public void Dispose_UnblocksReaderWithZeroAndWriteThrows()
    {
        var stack = TestPackets.Stack("10.9.0.2");
        var reader = Task.Run(() => stack.Read([new byte[2000]], new int[1], 0));
        Thread.Sleep(50);
        stack.Dispose();
        Assert.True(reader.Wait(TimeSpan.FromSeconds(5)));
        Assert.Equal(0, reader.Result);
        Assert.Throws<ObjectDisposedException>(() => stack.Write([new byte[20]], [20], 0, 1));
    }

    [Fact]
    public async Task ReceiveFromAsync_DisposedWhileWaiting_Throws()
    {
        using var stack = TestPackets.Stack("10.9.0.2");
        var socket = stack.BindUdp(new IPEndPoint(IPAddress.Any, 5353));
        var pending = socket.ReceiveFromAsync(new byte[10]).AsTask();
        socket.Dispose();
        await Assert.ThrowsAsync<ObjectDisposedException>(() => pending);
    }

    [Fact]
    public void Promiscuous_UdpToAnyAddress_GoesToCatchAllAndReplyUsesThatAddress()
    {
        using var stack = TestPackets.Stack(o => o.Promiscuous = true);
        using var catchAll = stack.BindUdpAnyDestination();
        var far = IpAddr.Parse("93.184.216.34");
        stack.WritePacket(TestPackets.Udp(Peer4, far, 40000, 53, "query"u8));
        var buffer = new byte[100];
        Assert.True(catchAll.TryReceiveFrom(buffer, out var r));
        Assert.Equal((far, (ushort)53, Peer4, (ushort)40000), (r.LocalAddress, r.LocalPort, r.RemoteAddress, r.RemotePort));
        Assert.True(catchAll.SendFromAsync("answer"u8.ToArray(), r.LocalAddress, r.RemoteAddress, r.RemotePort, r.LocalPort).IsCompletedSuccessfully);
        var (protocol, src, dst, payload) = TestPackets.Open(Assert.Single(TestPackets.Drain(stack)));
        Assert.Equal((IpProtocol.Udp, far, Peer4), (protocol, src, dst));
        Assert.True(UdpPacket.TryCreate(payload, out var udp));
        Assert.True(udp.IsChecksumValid(far, Peer4));
        Assert.Equal((53, 40000), (udp.SourcePort, udp.DestinationPort));
    }

    [Fact]
    public void Promiscuous_EchoToUnconfiguredAddress_NotAnsweredByDefault()
    {
        using var stack = TestPackets.Stack(o => o.Promiscuous = true, "10.9.0.5");
        stack.WritePacket(KernelCaptures.Icmpv4EchoRequest);
        Assert.Empty(TestPackets.Drain(stack));
        using var answering = TestPackets.Stack(o => { o.Promiscuous = true; o.AnswerEchoForAnyAddress = true; });
        answering.WritePacket(KernelCaptures.Icmpv4EchoRequest);
        Assert.Single(TestPackets.Drain(answering));
    }

    [Fact]
    public async Task SendFromAsync_ForeignSourceWithoutPromiscuous_Throws()
    {
        using var stack = TestPackets.Stack("10.9.0.2");
        using var socket = stack.BindUdp(new IPEndPoint(IPAddress.Any, 5353));
        var e = await Assert.ThrowsAsync<SocketException>(async () =>
            await socket.SendFromAsync(new byte[1], IpAddr.Parse("10.9.0.99"), Peer4, 9));
        Assert.Equal(SocketError.AddressNotAvailable, e.SocketErrorCode);
        Assert.Empty(TestPackets.Drain(stack));
    }

    [Fact]
    public void Write_NonPromiscuousOtherDestination_IsDropped()
    {
        using var stack = TestPackets.Stack("10.9.0.7");
        stack.WritePacket(KernelCaptures.Udpv4);
        Assert.Empty(TestPackets.Drain(stack));
        Assert.Equal(1, stack.Statistics.NotForUs);
    }

    [Fact]
    public void Write_BroadcastUdpToClosedPort_SendsNoError()
    {
        using var stack = TestPackets.Stack("10.9.0.2");
        stack.WritePacket(TestPackets.Udp(Peer4, IpAddr.Parse("255.255.255.255"), 1, 2, [0]));
        Assert.Empty(TestPackets.Drain(stack));
    }

    [Fact]
    public void Write_MulticastSource_IsDropped()
    {
        using var stack = TestPackets.Stack("10.9.0.2");
        stack.WritePacket(TestPackets.Udp(IpAddr.Parse("224.0.0.1"), Local4, 1, 2, [0]));
        Assert.Equal(1, stack.Statistics.InvalidSource);
        Assert.Empty(TestPackets.Drain(stack));
    }

    [Fact]
    public void Write_TcpWithoutTcpLayer_IsCounted()
    {
        using var stack = TestPackets.Stack("10.9.0.2");
        if (stack.HasTcp)
        {
            return;   // covered by the TCP tests once the TCP layer is attached
        }

        stack.WritePacket(TestPackets.Ip(Peer4, Local4, IpProtocol.Tcp, new byte[20]));
        Assert.Equal(1, stack.Statistics.TcpUnavailable);
    }

    [Fact]
    public void AddAddress_NewAddress_IsAnswered()
    {
        using var stack = TestPackets.Stack("10.9.0.7");
        stack.AddAddress(IPAddress.Parse("10.9.0.2"));
        stack.WritePacket(KernelCaptures.Icmpv4EchoRequest);
        Assert.Single(TestPackets.Drain(stack));
        Assert.True(stack.RemoveAddress(IPAddress.Parse("10.9.0.2")));
        stack.WritePacket(KernelCaptures.Icmpv4EchoRequest);
        Assert.Empty(TestPackets.Drain(stack));
    }
}
