using System.Net;
using Sharptun.Transport;

namespace Sharptun.NetStack.Tests;

/// <summary>Two stacks back to back in-process on a virtual clock.</summary>
public sealed class TwoStackTests
{
    [Theory]
    [InlineData("10.0.0.1", "10.0.0.2")]
    [InlineData("fd00::1", "fd00::2")]
    public void Udp_ExchangeBetweenStacks_DeliversBothWays(string a, string b)
    {
        using var pair = new StackPair();
        using var server = pair.B.BindUdp(new IPEndPoint(IPAddress.Parse(b), 7000));
        using var client = pair.A.BindUdp(new IPEndPoint(a.Contains(':') ? IPAddress.IPv6Any : IPAddress.Any, 0));
        var rng = new Random(42);
        var buffer = new byte[2000];
        for (var i = 0; i < 50; i++)
        {
            var message = new byte[rng.Next(0, 1300)];
            rng.NextBytes(message);
            Assert.True(client.SendToAsync(message, new IPEndPoint(IPAddress.Parse(b), 7000)).IsCompletedSuccessfully);
            pair.Pump();
            Assert.True(server.TryReceiveFrom(buffer, out var request));
            Assert.Equal(message, buffer[..request.Length]);
            Assert.Equal(IpAddr.Parse(a), request.RemoteAddress);
            Array.Reverse(message);
            Assert.True(server.SendToAsync(message, request.RemoteAddress, request.RemotePort).IsCompletedSuccessfully);
            pair.Pump();
            Assert.True(client.TryReceiveFrom(buffer, out var response));
            Assert.Equal(message, buffer[..response.Length]);
            Assert.Equal(7000, response.RemotePort);
        }
    }

    [Fact]
    public void Udp_ReceiveFromAsync_CompletesWhenDatagramArrives()
    {
        using var pair = new StackPair();
        using var server = pair.B.BindUdp(new IPEndPoint(IPAddress.Any, 7000));
        using var client = pair.A.BindUdp(new IPEndPoint(IPAddress.Any, 0));
        client.Connect(new IPEndPoint(IPAddress.Parse("10.0.0.2"), 7000));
        var buffer = new byte[100];
        var receive = server.ReceiveFromAsync(buffer).AsTask();
        Assert.False(receive.IsCompleted);
        Assert.True(client.SendAsync("ping"u8.ToArray()).IsCompletedSuccessfully);
        var result = pair.Run(receive);
        Assert.Equal("ping"u8.ToArray(), buffer[..result.Length]);
        Assert.Equal(client.LocalEndPoint.Port, result.RemotePort);
    }

    [Theory]
    [InlineData("10.0.0.2")]
    [InlineData("fd00::2")]
    public void Ping_PeerStack_RepliesWithRoundTripTime(string target)
    {
        using var pair = new StackPair();
        using var socket = pair.A.CreateEchoSocket();
        var ping = socket.PingAsync(IPAddress.Parse(target), new byte[56], TimeSpan.FromSeconds(1)).AsTask();
        var reply = pair.Run(ping);
        Assert.True(reply.Success);
        Assert.Equal(IpAddr.Parse(target), reply.From);
        Assert.Equal(56, reply.DataLength);
        Assert.Equal(1, pair.B.Statistics.EchoRequestsAnswered);
    }

    [Fact]
    public void Ping_NoReply_TimesOutOnVirtualClock()
    {
        using var pair = new StackPair();
        using var socket = pair.A.CreateEchoSocket();
        var ping = socket.PingAsync(IPAddress.Parse("10.0.0.99"), new byte[8], TimeSpan.FromSeconds(2)).AsTask();
        Assert.Equal(TimeSpan.FromSeconds(2), pair.A.NextDeadline);
        pair.Advance(TimeSpan.FromSeconds(1.5));
        Thread.Sleep(20);
        Assert.False(ping.IsCompleted);
        pair.Advance(TimeSpan.FromSeconds(0.5));
        Assert.True(ping.Wait(TimeSpan.FromSeconds(5)));
        Assert.False(ping.Result.Success);
        Assert.Equal(TimeSpan.MaxValue, pair.A.NextDeadline);
    }

    [Fact]
    public void Udp_ClosedPortOnPeer_ProducesIcmpErrorCountedBySender()
    {
        using var pair = new StackPair();
        using var client = pair.A.BindUdp(new IPEndPoint(IPAddress.Any, 0));
        Assert.True(client.SendToAsync(new byte[10], new IPEndPoint(IPAddress.Parse("10.0.0.2"), 1)).IsCompletedSuccessfully);
        pair.Pump();
        Assert.Equal(1, pair.B.Statistics.IcmpErrorsSentCount);
        Assert.Equal(1, pair.A.Statistics.IcmpErrorsReceivedCount);
    }

    [Theory]
    [InlineData("10.0.0.2")]
    [InlineData("fd00::2")]
    public async Task Udp_ConnectedSocketToClosedPort_ReceiveReportsConnectionRefusedOnce(string server)
    {
        using var pair = new StackPair();
        using var client = pair.A.BindUdp(new IPEndPoint(server.Contains(':') ? IPAddress.IPv6Any : IPAddress.Any, 0));
        client.Connect(new IPEndPoint(IPAddress.Parse(server), 1));
        var receive = client.ReceiveFromAsync(new byte[10]).AsTask();
        Assert.True(client.SendAsync(new byte[10]).IsCompletedSuccessfully);
        pair.Pump();
        var error = await Assert.ThrowsAsync<System.Net.Sockets.SocketException>(() => receive.WaitAsync(TimeSpan.FromSeconds(5)));
        Assert.Equal(System.Net.Sockets.SocketError.ConnectionRefused, error.SocketErrorCode);
        Assert.False(client.TryReceiveFrom(new byte[10], out _));   // reported once
    }

    [Fact]
    public void Udp_UnconnectedSocketToClosedPort_NoErrorReported()
    {
        using var pair = new StackPair();
        using var client = pair.A.BindUdp(new IPEndPoint(IPAddress.Any, 0));
        Assert.True(client.SendToAsync(new byte[10], new IPEndPoint(IPAddress.Parse("10.0.0.2"), 1)).IsCompletedSuccessfully);
        pair.Pump();
        Assert.False(client.TryReceiveFrom(new byte[10], out _));
    }

    [Fact]
    public void Start_DriverThread_ExpiresPingOnRealClock()
    {
        using var stack = TestPackets.Stack("10.0.0.1");
        stack.Start();
        var reply = stack.PingAsync(IPAddress.Parse("10.0.0.2"), 8, TimeSpan.FromMilliseconds(50)).AsTask();
        Assert.True(reply.Wait(TimeSpan.FromSeconds(5)));
        Assert.False(reply.Result.Success);
    }
}
