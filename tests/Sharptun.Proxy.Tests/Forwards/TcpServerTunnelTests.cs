using System.Net;
using System.Net.Sockets;
using Sharptun.Hosting;
using Sharptun.Proxy.Config;
using Sharptun.Proxy.Forwards;
using static Sharptun.Proxy.Tests.Forwards.ForwardTestKit;

namespace Sharptun.Proxy.Tests.Forwards;

/// <summary>The "tunnel" side is LoopbackNetwork.ListenTcp (a loopback port); the target is an ordinary host socket.</summary>
public sealed class TcpServerTunnelTests
{
    private static TcpServerTunnel Create(int listenPort, string host, int port, ConnectionGate? gate = null) =>
        new(
            new TcpServerTunnelOptions { ListenPort = listenPort, TargetHost = host, TargetPort = port, ConnectTimeout = TimeSpan.FromSeconds(5) },
            new ProxyContext(new LoopbackNetwork()) { Gate = gate ?? new ConnectionGate(64) });

    [Theory]
    [InlineData("127.0.0.1")]
    [InlineData("localhost")]
    public async Task TunnelConnection_ReachesHostTarget_RequestFinAndReplyCrossBothWays(string host)
    {
        await using var target = new TcpTarget();
        var listenPort = FreeTcpPort();
        var forward = Create(listenPort, host, target.Port);
        await using (Run(forward))
        {
            await using var peer = await ConnectAsync(new IPEndPoint(IPAddress.Loopback, listenPort));
            await peer.WriteAsync(Ascii("ping"));
            peer.Socket.Shutdown(SocketShutdown.Send);
            Assert.Equal("got:ping"u8.ToArray(), await ReadToEndAsync(peer));
            await WaitUntilAsync(() => forward.Counters.Open == 0, "the connection to close");
        }

        Assert.Equal(1, target.Accepted);
        Assert.Equal(4, forward.Counters.BytesToTunnel);
        Assert.Equal(8, forward.Counters.BytesFromTunnel);
        Assert.Equal($"tunnel port {listenPort}", forward.Endpoint);
    }

    [Fact]
    public async Task TargetSpeaksFirst_AndPeerHalfClosesLater()
    {
        await using var target = new TcpTarget(async (stream, ct) =>
        {
            await stream.WriteAsync("banner\n"u8.ToArray(), ct);
            using var rest = new MemoryStream();
            await stream.CopyToAsync(rest, ct);
            await stream.WriteAsync(rest.ToArray(), ct);
            stream.Socket.Shutdown(SocketShutdown.Send);
        });
        var listenPort = FreeTcpPort();
        var forward = Create(listenPort, "127.0.0.1", target.Port);
        await using (Run(forward))
        {
            await using var peer = await ConnectAsync(new IPEndPoint(IPAddress.Loopback, listenPort));
            Assert.Equal("banner\n"u8.ToArray(), await ReadExactlyAsync(peer, 7));
            await peer.WriteAsync(Ascii("late"));
            peer.Socket.Shutdown(SocketShutdown.Send);
            Assert.Equal("late"u8.ToArray(), await ReadToEndAsync(peer));
        }
    }

    [Fact]
    public async Task UnreachableHostTarget_ClosesTunnelConnection_AndCountsFailure()
    {
        var listenPort = FreeTcpPort();
        var forward = Create(listenPort, "127.0.0.1", FreeTcpPort());
        await using (Run(forward))
        {
            await using var peer = await ConnectAsync(new IPEndPoint(IPAddress.Loopback, listenPort));
            Assert.Empty(await ReadToEndAsync(peer));
            await WaitUntilAsync(() => forward.Counters.Open == 0, "the connection to close");
        }

        Assert.Equal(1, forward.Counters.Failed);
    }

    [Fact]
    public async Task PortInUse_FailsAtStart()
    {
        using var busy = new TcpListener(IPAddress.Loopback, 0);
        busy.Start();
        var forward = Create(((IPEndPoint)busy.LocalEndpoint).Port, "127.0.0.1", 80);
        Assert.Throws<SocketException>(forward.Start);
    }

    [Fact]
    public void FromSection_ReadsPortAndTarget_RejectsBadPort()
    {
        var context = new ProxyContext(new LoopbackNetwork());
        var forward = TcpServerTunnel.FromSection(Section("[TCPServerTunnel]\nListenPort = 3422\nTarget = localhost:25545\n", "TCPServerTunnel"), context);
        Assert.Equal("tcp-server", forward.Kind);
        Assert.Equal("tunnel port 3422", forward.Endpoint);

        var e = Assert.Throws<ProxyConfigException>(() =>
            TcpServerTunnel.FromSection(Section("[TCPServerTunnel]\nListenPort = 0\nTarget = localhost:25545\n", "TCPServerTunnel"), context));
        Assert.Equal(2, e.Line);
        var missing = Assert.Throws<ProxyConfigException>(() =>
            TcpServerTunnel.FromSection(Section("[TCPServerTunnel]\nTarget = localhost:25545\n", "TCPServerTunnel"), context));
        Assert.Contains("needs ListenPort", missing.Message, StringComparison.Ordinal);
        var unknown = Assert.Throws<ProxyConfigException>(() =>
            TcpServerTunnel.FromSection(Section("[TCPServerTunnel]\nListenPort = 1\nTarget = localhost:25545\nBindAddress = 1.2.3.4:5\n", "TCPServerTunnel"), context));
        Assert.Equal(4, unknown.Line);
    }
}
