using System.Buffers.Binary;
using System.Net;
using System.Net.Sockets;
using System.Security.Cryptography;
using Sharptun.Gateway;
using Sharptun.Protocol;

namespace Sharptun.Gateway.Tests;

/// <summary>
/// A client tunnel (10.66.0.2, AllowedIPs 0.0.0.0/0) talks through a <see cref="GatewayHost"/> (10.66.0.1) over
/// loopback UDP. The gateway's destinations 11.0.0.0/8 (public, allowed by default) are mapped to the host's loopback
/// with the same port, where the tests run real TCP and UDP servers.
/// </summary>
public sealed class GatewayHostTests
{
    private static readonly IPAddress Far = IPAddress.Parse("11.0.0.1");

    [Fact]
    public async Task Tcp_RelaysBothWays_HalfCloseCarriesTheReply_CountersReturnToZero()
    {
        await using var lab = await GatewayLab.StartAsync();
        using var server = new TcpListener(IPAddress.Loopback, 0);
        server.Start();
        var port = ((IPEndPoint)server.LocalEndpoint).Port;
        var served = Task.Run(async () =>
        {
            using var s = await server.AcceptTcpClientAsync();
            var stream = s.GetStream();
            var request = new MemoryStream();
            await stream.CopyToAsync(request); // until the client's FIN
            var reply = SHA256.HashData(request.ToArray());
            await stream.WriteAsync(reply);
            s.Client.Shutdown(SocketShutdown.Send);
            return request.Length;
        });

        await using var stream = await lab.Client.ConnectAsync(Far.ToString(), port);
        var data = RandomNumberGenerator.GetBytes(3_000_000);
        await stream.WriteAsync(data);
        ((TunnelStream)stream).ShutdownWrite();
        var reply = new MemoryStream();
        await stream.CopyToAsync(reply).WaitAsync(TimeSpan.FromSeconds(30));
        Assert.Equal(SHA256.HashData(data), reply.ToArray());
        Assert.Equal(data.Length, await served);

        await WaitForAsync(() => lab.Gateway.Counters.Total.OpenTcp == 0 && lab.Gateway.Counters.Open == 0);
        var peer = Assert.Single(lab.Gateway.Counters.Peers).Value;
        Assert.Equal(1, peer.TcpRelayed);
        Assert.Equal(data.Length, peer.BytesToDestinations);
        Assert.Equal(32, peer.BytesFromDestinations);
    }

    [Fact]
    public async Task Tcp_DeniedDestination_IsRefusedAtTheSyn_AndCounted()
    {
        await using var lab = await GatewayLab.StartAsync();
        var e = await Assert.ThrowsAsync<SocketException>(async () => await lab.Client.ConnectAsync("10.9.9.9", 80));
        Assert.Equal(SocketError.ConnectionRefused, e.SocketErrorCode);
        Assert.Equal(1, lab.Gateway.Counters.Total.TcpDenied);
        Assert.Equal(0, lab.Gateway.Counters.Total.TcpRelayed);
    }

    [Fact]
    public async Task Tcp_HostRefusal_BecomesAResetToTheClient()
    {
        await using var lab = await GatewayLab.StartAsync();
        var closedPort = ClosedTcpPort();
        await using var stream = await lab.Client.ConnectAsync(Far.ToString(), closedPort);
        var buffer = new byte[16];
        var e = await Assert.ThrowsAnyAsync<IOException>(async () => await stream.ReadAsync(buffer).AsTask().WaitAsync(TimeSpan.FromSeconds(30)));
        Assert.Contains("reset", e.ToString(), StringComparison.OrdinalIgnoreCase);
        await WaitForAsync(() => lab.Gateway.Counters.Total.TcpHostFailures == 1 && lab.Gateway.Counters.Open == 0);
    }

    [Fact]
    public async Task Tcp_ServerReset_PropagatesToTheClient_ClientReset_PropagatesToTheServer()
    {
        await using var lab = await GatewayLab.StartAsync();
        using var server = new TcpListener(IPAddress.Loopback, 0);
        server.Start();
        var port = ((IPEndPoint)server.LocalEndpoint).Port;

        // server → client
        await using (var stream = await lab.Client.ConnectAsync(Far.ToString(), port))
        {
            using var s = await server.AcceptTcpClientAsync().WaitAsync(TimeSpan.FromSeconds(30));
            s.Client.LingerState = new LingerOption(true, 0);
            s.Client.Close();
            var e = await Assert.ThrowsAnyAsync<IOException>(async () => await stream.ReadAsync(new byte[8]).AsTask().WaitAsync(TimeSpan.FromSeconds(30)));
            Assert.Contains("reset", e.ToString(), StringComparison.OrdinalIgnoreCase);
        }

        // client → server
        var client = (TunnelStream)await lab.Client.ConnectAsync(Far.ToString(), port);
        using (var s = await server.AcceptTcpClientAsync().WaitAsync(TimeSpan.FromSeconds(30)))
        {
            client.Abort();
            var e = await Assert.ThrowsAnyAsync<Exception>(async () =>
            {
                var n = await s.GetStream().ReadAsync(new byte[8]).AsTask().WaitAsync(TimeSpan.FromSeconds(30));
                Assert.Fail($"read {n} bytes instead of a reset");
            });
            Assert.True(e is IOException or SocketException, e.ToString());
        }

        await WaitForAsync(() => lab.Gateway.Counters.Open == 0);
    }

    [Fact]
    public async Task Tcp_IdleTimeout_ResetsBothSides()
    {
        await using var lab = await GatewayLab.StartAsync("IdleTimeout = 1");
        using var server = new TcpListener(IPAddress.Loopback, 0);
        server.Start();
        var port = ((IPEndPoint)server.LocalEndpoint).Port;
        await using var stream = await lab.Client.ConnectAsync(Far.ToString(), port);
        using var s = await server.AcceptTcpClientAsync().WaitAsync(TimeSpan.FromSeconds(30));
        await Assert.ThrowsAnyAsync<IOException>(async () => await stream.ReadAsync(new byte[8]).AsTask().WaitAsync(TimeSpan.FromSeconds(30)));
        await Assert.ThrowsAnyAsync<IOException>(async () => await s.GetStream().ReadAsync(new byte[8]).AsTask().WaitAsync(TimeSpan.FromSeconds(30)));
        await WaitForAsync(() => lab.Gateway.Counters.Open == 0);
    }

    [Fact]
    public async Task Tcp_PerPeerCap_ResetsTheExtraConnection_AndCountsReturnToZero()
    {
        await using var lab = await GatewayLab.StartAsync("MaxConnectionsPerPeer = 2");
        using var server = new TcpListener(IPAddress.Loopback, 0);
        server.Start();
        var port = ((IPEndPoint)server.LocalEndpoint).Port;
        var a = await lab.Client.ConnectAsync(Far.ToString(), port);
        var b = await lab.Client.ConnectAsync(Far.ToString(), port);
        using var sa = await server.AcceptTcpClientAsync().WaitAsync(TimeSpan.FromSeconds(30));
        using var sb = await server.AcceptTcpClientAsync().WaitAsync(TimeSpan.FromSeconds(30));
        await WaitForAsync(() => lab.Gateway.Counters.Total.OpenTcp == 2);
        await using (var c = await lab.Client.ConnectAsync(Far.ToString(), port))
        {
            await Assert.ThrowsAnyAsync<IOException>(async () => await c.ReadAsync(new byte[8]).AsTask().WaitAsync(TimeSpan.FromSeconds(30)));
        }

        Assert.Equal(1, lab.Gateway.Counters.Total.TcpRefusedByCap);
        await a.DisposeAsync();
        await b.DisposeAsync();
        sa.Close();
        sb.Close();
        await WaitForAsync(() => lab.Gateway.Counters.Open == 0 && lab.Gateway.Counters.Total.OpenTcp == 0);
        await using var d = await lab.Client.ConnectAsync(Far.ToString(), port);
        using var sd = await server.AcceptTcpClientAsync().WaitAsync(TimeSpan.FromSeconds(30));
        await d.WriteAsync(new byte[] { 42 });
        Assert.Equal(42, sd.GetStream().ReadByte());
    }

    [Fact]
    public async Task Udp_EchoThroughTheGateway_RepliesComeFromTheDestination_IdleFlowsExpire()
    {
        await using var lab = await GatewayLab.StartAsync("UdpIdleTimeout = 1");
        using var echo = new Socket(AddressFamily.InterNetwork, SocketType.Dgram, ProtocolType.Udp);
        echo.Bind(new IPEndPoint(IPAddress.Loopback, 0));
        var port = ((IPEndPoint)echo.LocalEndPoint!).Port;
        using var stop = new CancellationTokenSource();
        var echoing = Task.Run(async () =>
        {
            var buffer = new byte[2048];
            while (!stop.IsCancellationRequested)
            {
                var r = await echo.ReceiveFromAsync(buffer, new IPEndPoint(IPAddress.Any, 0), stop.Token);
                await echo.SendToAsync(buffer.AsMemory(0, r.ReceivedBytes), r.RemoteEndPoint);
            }
        });

        using var socket = lab.Client.BindUdp();
        var buffer = new byte[2048];
        for (var i = 0; i < 20; i++)
        {
            var payload = RandomNumberGenerator.GetBytes(100 + (i * 50));
            await socket.SendToAsync(payload, new IPEndPoint(Far, port));
            var r = await socket.ReceiveFromAsync(buffer).AsTask().WaitAsync(TimeSpan.FromSeconds(30));
            Assert.Equal(new IPEndPoint(Far, port), r.RemoteEndPoint);
            Assert.Equal(payload, buffer[..r.ReceivedBytes]);
        }

        Assert.Equal(1, lab.Gateway.Counters.Total.UdpFlows);
        Assert.Equal(1, lab.Gateway.Counters.Total.OpenUdpFlows);
        await WaitForAsync(() => lab.Gateway.Counters.Total.OpenUdpFlows == 0 && lab.Gateway.Counters.Open == 0);
        await stop.CancelAsync();
    }

    [Fact]
    public async Task Udp_FlowsExpiringWhileDatagramsArrive_NeverLeakOrWedge()
    {
        // Expiry (a timer) races the receive loop's sends on the same flows: flows close and reopen all the time.
        await using var lab = await GatewayLab.StartAsync(configure: o => o.UdpIdleTimeout = TimeSpan.FromMilliseconds(30));
        using var echo = new Socket(AddressFamily.InterNetwork, SocketType.Dgram, ProtocolType.Udp);
        echo.Bind(new IPEndPoint(IPAddress.Loopback, 0));
        var port = ((IPEndPoint)echo.LocalEndPoint!).Port;
        using var stop = new CancellationTokenSource();
        var echoing = Task.Run(async () =>
        {
            var buffer = new byte[2048];
            while (!stop.IsCancellationRequested)
            {
                try
                {
                    var r = await echo.ReceiveFromAsync(buffer, new IPEndPoint(IPAddress.Any, 0), stop.Token);
                    await echo.SendToAsync(buffer.AsMemory(0, r.ReceivedBytes), r.RemoteEndPoint);
                }
                catch (OperationCanceledException)
                {
                    return;
                }
            }
        });

        var senders = Enumerable.Range(0, 4).Select(i => Task.Run(async () =>
        {
            using var socket = lab.Client.BindUdp();
            var random = new Random(i);
            var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(3);
            while (DateTime.UtcNow < deadline)
            {
                await socket.SendToAsync(new byte[] { (byte)i }, new IPEndPoint(Far, port));
                await Task.Delay(random.Next(0, 80));
            }
        })).ToArray();
        await Task.WhenAll(senders);

        await WaitForAsync(() => lab.Gateway.Counters.Total.OpenUdpFlows == 0 && lab.Gateway.Counters.Open == 0 && lab.Gateway.UdpFlowCount == 0);
        Assert.True(lab.Gateway.Counters.Total.UdpFlows > 4, $"{lab.Gateway.Counters.Total.UdpFlows} flows: expiry never raced a send");

        // still relaying afterwards
        using var last = lab.Client.BindUdp();
        var buffer = new byte[16];
        var answered = false;
        for (var attempt = 0; attempt < 20 && !answered; attempt++)
        {
            await last.SendToAsync(new byte[] { 9 }, new IPEndPoint(Far, port));
            using var wait = new CancellationTokenSource(TimeSpan.FromSeconds(1));
            try
            {
                await last.ReceiveFromAsync(buffer, wait.Token);
                answered = true;
            }
            catch (OperationCanceledException)
            {
            }
        }

        Assert.True(answered);
        await stop.CancelAsync();
        await echoing;
    }

    [Fact]
    public async Task Udp_DeniedDestination_GetsNoRelay_AndIsCounted()
    {
        await using var lab = await GatewayLab.StartAsync();
        using var socket = lab.Client.BindUdp();
        await socket.SendToAsync(new byte[] { 1, 2, 3 }, new IPEndPoint(IPAddress.Parse("192.168.7.7"), 53));
        await WaitForAsync(() => lab.Gateway.Counters.Total.UdpDenied == 1);
        Assert.Equal(0, lab.Gateway.Counters.Total.UdpFlows);
    }

    [Fact]
    public async Task Dns_ToTheGatewayAddress_IsAnsweredThroughTheHostResolver_OverUdpAndTcp()
    {
        await using var lab = await GatewayLab.StartAsync();
        using var socket = lab.Client.BindUdp();
        var query = DnsResponderTests.Query(0x4242, "localhost", 1);
        await socket.SendToAsync(query, new IPEndPoint(GatewayLab.GatewayAddress, 53));
        var buffer = new byte[600];
        var r = await socket.ReceiveFromAsync(buffer).AsTask().WaitAsync(TimeSpan.FromSeconds(30));
        Assert.Equal(new IPEndPoint(GatewayLab.GatewayAddress, 53), r.RemoteEndPoint);
        Assert.Equal(0x4242, BinaryPrimitives.ReadUInt16BigEndian(buffer));
        Assert.Equal(0, buffer[3] & 0xF);
        Assert.True(BinaryPrimitives.ReadUInt16BigEndian(buffer.AsSpan(6)) >= 1);
        Assert.Equal([127, 0, 0, 1], buffer.AsSpan(r.ReceivedBytes - 4, 4).ToArray());

        await using var tcp = await lab.Client.ConnectAsync(GatewayLab.GatewayAddress.ToString(), 53);
        var framed = new byte[2 + query.Length];
        BinaryPrimitives.WriteUInt16BigEndian(framed, (ushort)query.Length);
        query.CopyTo(framed, 2);
        await tcp.WriteAsync(framed);
        var length = new byte[2];
        await tcp.ReadExactlyAsync(length).AsTask().WaitAsync(TimeSpan.FromSeconds(30));
        var response = new byte[BinaryPrimitives.ReadUInt16BigEndian(length)];
        await tcp.ReadExactlyAsync(response).AsTask().WaitAsync(TimeSpan.FromSeconds(30));
        Assert.Equal(0x4242, BinaryPrimitives.ReadUInt16BigEndian(response));
        Assert.Equal(2, lab.Gateway.Counters.Total.DnsQueries);

        // other ports of the gateway's own address are closed
        var e = await Assert.ThrowsAsync<SocketException>(async () => await lab.Client.ConnectAsync(GatewayLab.GatewayAddress.ToString(), 80));
        Assert.Equal(SocketError.ConnectionRefused, e.SocketErrorCode);
    }

    private static int ClosedTcpPort()
    {
        using var l = new TcpListener(IPAddress.Loopback, 0);
        l.Start();
        return ((IPEndPoint)l.LocalEndpoint).Port;
    }

    private static async Task WaitForAsync(Func<bool> condition)
    {
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(30);
        while (!condition())
        {
            Assert.True(DateTime.UtcNow < deadline, "condition not reached in 30 s");
            await Task.Delay(20);
        }
    }
}
