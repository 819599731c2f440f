using System.Net;
using System.Net.Sockets;
using System.Text;
using Sharptun.Proxy.Socks5;

namespace Sharptun.Proxy.Tests.Socks5;

/// <summary>CONNECT (RFC 1928 §4, §6) and username/password authentication (RFC 1929) against real sockets.</summary>
public sealed class Socks5ConnectTests
{
    [Fact]
    public async Task Connect_IPv4_RelaysBothWays_AndRepliesTheTunnelSideLocalEndPoint()
    {
        using var echo = new EchoServer(IPAddress.Loopback);
        await using var harness = new Socks5Harness();
        using var client = await harness.ConnectClientAsync();
        var (reply, bound) = await client.ConnectAsync(Socks5TestClient.Request(0x01, echo.EndPoint));
        Assert.Equal(0x00, reply);
        Assert.Equal(IPAddress.Loopback, bound.Address);
        Assert.NotEqual(0, bound.Port);
        Assert.NotEqual(harness.EndPoint.Port, bound.Port);
        Assert.NotEqual(echo.EndPoint.Port, bound.Port);

        await client.SendAsync("ping over socks"u8.ToArray());
        Assert.Equal("ping over socks", Encoding.ASCII.GetString(await client.ReadAsync(15)));
        Assert.Equal([echo.EndPoint.ToString()], harness.Network.Connects);
    }

    [Fact]
    public async Task Connect_IPv6_Relays_AndRepliesAnIPv6BoundAddress()
    {
        using var echo = new EchoServer(IPAddress.IPv6Loopback);
        await using var harness = new Socks5Harness();
        using var client = await harness.ConnectClientAsync();
        var (reply, bound) = await client.ConnectAsync(Socks5TestClient.Request(0x01, echo.EndPoint));
        Assert.Equal(0x00, reply);
        Assert.Equal(IPAddress.IPv6Loopback, bound.Address);
        await client.SendAsync(1, 2, 3);
        Assert.Equal([1, 2, 3], await client.ReadAsync(3));
    }

    [Fact]
    public async Task Connect_ByName_ResolvesThroughTheNetwork_NotTheHostResolver()
    {
        using var echo = new EchoServer(IPAddress.Loopback);
        await using var harness = new Socks5Harness();
        harness.Network.Names["web.test"] = IPAddress.Loopback;
        using (var client = await harness.ConnectClientAsync())
        {
            var (reply, _) = await client.ConnectAsync(Socks5TestClient.Request(0x01, "web.test", echo.EndPoint.Port));
            Assert.Equal(0x00, reply);
            await client.SendAsync(42);
            Assert.Equal([42], await client.ReadAsync(1));
        }

        // "localhost" resolves on the host, but not in the network: a server that asked the host would connect.
        using (var client = await harness.ConnectClientAsync())
        {
            var (reply, bound) = await client.ConnectAsync(Socks5TestClient.Request(0x01, "localhost", echo.EndPoint.Port));
            Assert.Equal(0x04, reply);
            Assert.Equal(new IPEndPoint(IPAddress.Any, 0), bound);
            Assert.True(await client.ClosedByServerAsync());
        }

        Assert.Contains("web.test", harness.Network.Connects);
        Assert.Equal(1, harness.Server.Counters.Failed);
    }

    [Fact]
    public async Task Connect_PipelinedGreetingRequestAndData_AllArrive()
    {
        using var echo = new EchoServer(IPAddress.Loopback);
        await using var harness = new Socks5Harness();
        using var client = await harness.ConnectClientAsync();
        await client.SendAsync([0x05, 0x01, 0x00, .. Socks5TestClient.Request(0x01, echo.EndPoint), .. "early"u8.ToArray()]);
        Assert.Equal([0x05, 0x00], await client.ReadAsync(2));
        var (reply, _) = await client.ReadReplyAsync();
        Assert.Equal(0x00, reply);
        Assert.Equal("early", Encoding.ASCII.GetString(await client.ReadAsync(5)));
    }

    [Fact]
    public async Task Connect_RefusedPort_IsReply05_AndCountedFailed()
    {
        await using var harness = new Socks5Harness();
        using var client = await harness.ConnectClientAsync();
        var (reply, _) = await client.ConnectAsync(Socks5TestClient.Request(0x01, new IPEndPoint(IPAddress.Loopback, FreeTcpPort())));
        Assert.Equal(0x05, reply);
        Assert.True(await client.ClosedByServerAsync());
        await Socks5Harness.EventuallyAsync(() => harness.Server.Counters.Open == 0, "the connection closes");
        Assert.Equal(1, harness.Server.Counters.Failed);
        Assert.Equal(1, harness.Server.Counters.Accepted);
    }

    [Theory]
    [InlineData(SocketError.TimedOut, 0x04)]
    [InlineData(SocketError.NetworkUnreachable, 0x03)]
    [InlineData(SocketError.HostUnreachable, 0x04)]
    [InlineData(SocketError.ConnectionRefused, 0x05)]
    [InlineData(SocketError.AccessDenied, 0x02)]
    [InlineData(SocketError.Shutdown, 0x01)]
    public async Task Connect_NetworkFailure_MapsToTheRfcReplyCode(SocketError error, byte expected)
    {
        var network = new FailingNetwork(new LoopbackNetwork(), error, TimeSpan.FromMilliseconds(200));
        var server = new Socks5Server(new Socks5Options(new IPEndPoint(IPAddress.Loopback, 0)), new ProxyContext(network));
        server.Start();
        using var stop = new CancellationTokenSource();
        var run = server.RunAsync(stop.Token);
        using (var socket = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp))
        {
            await socket.ConnectAsync(server.LocalEndPoint!);
            using var client = new Socks5TestClient(socket);
            var (reply, _) = await client.ConnectAsync(Socks5TestClient.Request(0x01, "unreachable.test", 80));
            Assert.Equal(expected, reply);
            Assert.True(await client.ClosedByServerAsync());
        }

        await stop.CancelAsync();
        await run.WaitAsync(TimeSpan.FromSeconds(30));
        Assert.Equal(1, server.Counters.Failed);
        Assert.Equal(0, server.Counters.Open);
    }

    [Fact]
    public async Task Connect_TargetThatNeverAnswers_RepliesHostUnreachableWithinTheConnectTimeout()
    {
        // A listener whose backlog is full never completes another handshake: SYNs go unanswered.
        using var blackhole = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        blackhole.Bind(new IPEndPoint(IPAddress.Loopback, 0));
        blackhole.Listen(0);
        var fillers = new List<Socket>();
        try
        {
            for (var i = 0; i < 8; i++)
            {
                var filler = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
                fillers.Add(filler);
                _ = filler.ConnectAsync(blackhole.LocalEndPoint!);
            }

            await Task.Delay(200);
            await using var harness = new Socks5Harness(network: new LoopbackNetwork(TimeSpan.FromSeconds(1)));
            using var client = await harness.ConnectClientAsync();
            var started = Environment.TickCount64;
            var (reply, _) = await client.ConnectAsync(Socks5TestClient.Request(0x01, (IPEndPoint)blackhole.LocalEndPoint!));
            Assert.Equal(0x04, reply);
            Assert.True(Environment.TickCount64 - started >= 900, "the reply came before the connect timeout: the target answered");
        }
        finally
        {
            fillers.ForEach(f => f.Dispose());
        }
    }

    [Fact]
    public async Task HalfClose_ClientFin_ReachesTheTarget_AndTheRestOfTheReplyStillArrives()
    {
        using var echo = new EchoServer(IPAddress.Loopback);
        await using var harness = new Socks5Harness();
        using var client = await harness.ConnectClientAsync();
        Assert.Equal(0x00, (await client.ConnectAsync(Socks5TestClient.Request(0x01, echo.EndPoint))).Reply);
        var payload = new byte[200_000];
        Random.Shared.NextBytes(payload);
        await client.SendAsync(payload);
        client.Socket.Shutdown(SocketShutdown.Send);

        // The echo server sees our FIN only through the proxy; it answers with the rest and its own FIN.
        var echoed = await client.ReadAsync(payload.Length);
        Assert.Equal(payload, echoed);
        Assert.True(await client.ClosedByServerAsync());
        await Socks5Harness.EventuallyAsync(() => harness.Server.Counters.Open == 0, "the relay ends");
        Assert.Equal(payload.Length, harness.Server.Counters.BytesToTunnel);
        Assert.Equal(payload.Length, harness.Server.Counters.BytesFromTunnel);
    }

    [Fact]
    public async Task HalfClose_TargetFin_ReachesTheClient_WhichCanStillSend()
    {
        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        var target = Task.Run(async () =>
        {
            using var socket = await listener.AcceptSocketAsync();
            await socket.SendAsync("bye"u8.ToArray(), SocketFlags.None);
            socket.Shutdown(SocketShutdown.Send);
            var buffer = new byte[64];
            var total = new MemoryStream();
            int n;
            while ((n = await socket.ReceiveAsync(buffer, SocketFlags.None)) > 0)
            {
                total.Write(buffer, 0, n);
            }

            return Encoding.ASCII.GetString(total.ToArray());
        });

        await using var harness = new Socks5Harness();
        using var client = await harness.ConnectClientAsync();
        Assert.Equal(0x00, (await client.ConnectAsync(Socks5TestClient.Request(0x01, (IPEndPoint)listener.LocalEndpoint))).Reply);
        Assert.Equal("bye", Encoding.ASCII.GetString(await client.ReadAsync(3)));
        Assert.Equal(0, await client.Stream.ReadAsync(new byte[1]));
        await client.SendAsync("still here"u8.ToArray());
        client.Socket.Shutdown(SocketShutdown.Send);
        Assert.Equal("still here", await target.WaitAsync(TimeSpan.FromSeconds(20)));
    }

    [Fact]
    public async Task Auth_RightCredentials_Connect()
    {
        using var echo = new EchoServer(IPAddress.Loopback);
        await using var harness = new Socks5Harness(new Socks5Options(new IPEndPoint(IPAddress.Loopback, 0)) { Username = "alice", Password = "s3cret" });
        using var client = await harness.ConnectClientAsync();
        Assert.Equal(0x02, await client.GreetAsync(0x00, 0x02));
        Assert.Equal(0x00, await client.AuthenticateAsync("alice", "s3cret"));
        var (reply, _) = await client.RequestAsync(Socks5TestClient.Request(0x01, echo.EndPoint));
        Assert.Equal(0x00, reply);
        await client.SendAsync(7);
        Assert.Equal([7], await client.ReadAsync(1));
    }

    [Theory]
    [InlineData("alice", "wrong")]
    [InlineData("bob", "s3cret")]
    [InlineData("", "")]
    [InlineData("alice", "s3cret2")]
    public async Task Auth_WrongCredentials_Status01_ThenClose(string user, string password)
    {
        await using var harness = new Socks5Harness(new Socks5Options(new IPEndPoint(IPAddress.Loopback, 0)) { Username = "alice", Password = "s3cret" });
        using var client = await harness.ConnectClientAsync();
        Assert.Equal(0x02, await client.GreetAsync(0x02));
        Assert.NotEqual(0x00, await client.AuthenticateAsync(user, password));
        Assert.True(await client.ClosedByServerAsync());
        await Socks5Harness.EventuallyAsync(() => harness.Server.Counters.Open == 0, "the connection closes");
        Assert.Equal(1, harness.Server.Counters.Refused);
        Assert.Empty(harness.Network.Connects);
    }

    [Fact]
    public async Task Auth_Required_ButClientOffersOnlyNoAuth_NoAcceptableMethod()
    {
        await using var harness = new Socks5Harness(new Socks5Options(new IPEndPoint(IPAddress.Loopback, 0)) { Username = "alice", Password = "s3cret" });
        using var client = await harness.ConnectClientAsync();
        Assert.Equal(0xFF, await client.GreetAsync(0x00, 0x01));
        Assert.True(await client.ClosedByServerAsync());
        await Socks5Harness.EventuallyAsync(() => harness.Server.Counters.Refused == 1, "the refusal is counted");
    }

    [Fact]
    public async Task NoAuthConfigured_ClientOffersOnlyUserPass_NoAcceptableMethod()
    {
        await using var harness = new Socks5Harness();
        using var client = await harness.ConnectClientAsync();
        Assert.Equal(0xFF, await client.GreetAsync(0x02));
        Assert.True(await client.ClosedByServerAsync());
    }

    [Fact]
    public async Task Stop_WhileRelaying_EndsRunAsync_AndClosesTheConnections()
    {
        using var echo = new EchoServer(IPAddress.Loopback);
        var harness = new Socks5Harness();
        var clients = new List<Socks5TestClient>();
        for (var i = 0; i < 10; i++)
        {
            var client = await harness.ConnectClientAsync();
            clients.Add(client);
            Assert.Equal(0x00, (await client.ConnectAsync(Socks5TestClient.Request(0x01, echo.EndPoint))).Reply);
        }

        await harness.DisposeAsync();
        Assert.Equal(0, harness.Server.Counters.Open);
        Assert.Equal(0, harness.Context.Gate.Open);
        foreach (var client in clients)
        {
            Assert.True(await client.ClosedByServerAsync());
            client.Dispose();
        }
    }

    internal static int FreeTcpPort()
    {
        using var probe = new TcpListener(IPAddress.Loopback, 0);
        probe.Start();
        return ((IPEndPoint)probe.LocalEndpoint).Port;
    }
}

/// <summary>A network whose connects fail with one <see cref="SocketError"/> after a delay (as the tunnel's would).</summary>
internal sealed class FailingNetwork(ITunnelNetwork inner, SocketError error, TimeSpan delay) : ITunnelNetwork
{
    public async ValueTask<Stream> ConnectAsync(string host, int port, CancellationToken cancellationToken)
    {
        await Task.Delay(delay, cancellationToken);
        throw new SocketException((int)error);
    }

    public async ValueTask<Stream> ConnectAsync(IPEndPoint remote, CancellationToken cancellationToken)
    {
        await Task.Delay(delay, cancellationToken);
        throw new SocketException((int)error);
    }

    public ValueTask<IPAddress> ResolveAsync(string host, CancellationToken cancellationToken) => inner.ResolveAsync(host, cancellationToken);

    public IDatagramChannel BindUdp() => inner.BindUdp();

    public IStreamAcceptor ListenTcp(int port) => inner.ListenTcp(port);
}
