using System.Net;
using System.Net.Sockets;
using System.Security.Cryptography;
using Sharptun.Hosting;
using Sharptun.Proxy.Config;
using Sharptun.Proxy.Forwards;
using static Sharptun.Proxy.Tests.Forwards.ForwardTestKit;

namespace Sharptun.Proxy.Tests.Forwards;

public sealed class TcpClientTunnelTests
{
    private static TcpClientTunnel Create(LoopbackNetwork network, string host, int port, ConnectionGate? gate = null) =>
        new(
            new TcpClientTunnelOptions { BindAddress = new IPEndPoint(IPAddress.Loopback, 0), TargetHost = host, TargetPort = port },
            new ProxyContext(network) { Gate = gate ?? new ConnectionGate(64) });

    [Fact]
    public async Task Connection_ReachesNamedTarget_RequestFinAndReplyCrossBothWays()
    {
        var network = new LoopbackNetwork();
        network.Names["web.test"] = IPAddress.Loopback;
        await using var target = new TcpTarget();
        var forward = Create(network, "web.test", target.Port);
        await using (Run(forward))
        {
            await using var client = await ConnectAsync(forward.LocalEndPoint!);
            await client.WriteAsync(Ascii("hello"));
            client.Socket.Shutdown(SocketShutdown.Send);

            // The target answers only after it saw end of stream: the client's FIN crossed the forward.
            Assert.Equal("got:hello"u8.ToArray(), await ReadToEndAsync(client));
            await WaitUntilAsync(() => forward.Counters.Open == 0, "the connection to close");
        }

        Assert.Contains("web.test", network.Connects);
        Assert.Equal(1, forward.Counters.Accepted);
        Assert.Equal(0, forward.Counters.Failed);
        Assert.Equal(5, forward.Counters.BytesToTunnel);
        Assert.Equal(9, forward.Counters.BytesFromTunnel);
    }

    [Fact]
    public async Task OneMebibyteEachWay_ArrivesIntact()
    {
        var payload = RandomNumberGenerator.GetBytes(1 << 20);
        await using var target = new TcpTarget(async (stream, ct) =>
        {
            // Echo as it arrives, then close after the client's FIN.
            await stream.CopyToAsync(stream, ct);
            stream.Socket.Shutdown(SocketShutdown.Send);
        });
        var forward = Create(new LoopbackNetwork(), "127.0.0.1", target.Port);
        await using (Run(forward))
        {
            await using var client = await ConnectAsync(forward.LocalEndPoint!);
            var reading = ReadToEndAsync(client);
            await client.WriteAsync(payload);
            client.Socket.Shutdown(SocketShutdown.Send);
            Assert.Equal(SHA256.HashData(payload), SHA256.HashData(await reading));
        }
    }

    [Fact]
    public async Task UnreachableTarget_ClosesClientInOrder_AndCountsFailure()
    {
        var forward = Create(new LoopbackNetwork(), "127.0.0.1", FreeTcpPort());
        await using (Run(forward))
        {
            await using var client = await ConnectAsync(forward.LocalEndPoint!);
            Assert.Empty(await ReadToEndAsync(client));
            await WaitUntilAsync(() => forward.Counters.Open == 0, "the connection to close");
        }

        Assert.Equal(1, forward.Counters.Failed);
        Assert.Equal(1, forward.Counters.Accepted);
    }

    [Fact]
    public async Task UnresolvableName_CountsFailure()
    {
        var forward = Create(new LoopbackNetwork(), "nowhere.test", 80);
        await using (Run(forward))
        {
            await using var client = await ConnectAsync(forward.LocalEndPoint!);
            Assert.Empty(await ReadToEndAsync(client));
            await WaitUntilAsync(() => forward.Counters.Failed == 1, "the failure to be counted");
        }
    }

    [Fact]
    public async Task PastTheGate_ConnectionIsRefusedAndCounted_SlotFreedAfterClose()
    {
        await using var target = new TcpTarget();
        var gate = new ConnectionGate(1);
        var forward = Create(new LoopbackNetwork(), "127.0.0.1", target.Port, gate);
        await using (Run(forward))
        {
            var first = await ConnectAsync(forward.LocalEndPoint!);
            await WaitUntilAsync(() => gate.Open == 1, "the first connection to hold the slot");

            // Reset (even before the client's connect returns on loopback) or EOF: no byte, and the connection ends.
            Assert.Empty(await ConnectAndReadToEndOrResetAsync(forward.LocalEndPoint!));

            Assert.Equal(1, forward.Counters.Refused);
            await first.WriteAsync(Ascii("x"));
            first.Socket.Shutdown(SocketShutdown.Send);
            Assert.Equal("got:x"u8.ToArray(), await ReadToEndAsync(first));
            await first.DisposeAsync();
            await WaitUntilAsync(() => gate.Open == 0, "the slot to be released");
        }
    }

    [Fact]
    public async Task Cancellation_ClosesOpenConnections_AndRunReturns()
    {
        await using var target = new TcpTarget(async (stream, ct) => await Task.Delay(Timeout.Infinite, ct));
        var forward = Create(new LoopbackNetwork(), "127.0.0.1", target.Port);
        NetworkStream client;
        await using (Run(forward))
        {
            client = await ConnectAsync(forward.LocalEndPoint!);
            await WaitUntilAsync(() => target.Accepted == 1, "the target connection");
        }

        Assert.Empty(await ReadToEndOrResetAsync(client));
        Assert.Equal(0, forward.Counters.Open);
        await client.DisposeAsync();
    }

    [Fact]
    public void FromSection_ReadsBindAndTarget()
    {
        var forward = TcpClientTunnel.FromSection(
            Section("[TCPClientTunnel]\nbindaddress = 127.0.0.1:25565\nTarget = play.example.net:25565\n", "TCPClientTunnel"),
            new ProxyContext(new LoopbackNetwork()));
        Assert.Equal("tcp-client", forward.Kind);
        Assert.Equal("127.0.0.1:25565", forward.Endpoint);
    }

    [Theory]
    [InlineData("localhost:0", "127.0.0.1")]
    [InlineData("[::1]:0", "::1")]
    [InlineData(":0", null)]
    public async Task FromSection_BindAddressForms_ListenWhereGoWould(string bind, string? connectTo)
    {
        await using var target = new TcpTarget();
        var forward = TcpClientTunnel.FromSection(
            Section($"[TCPClientTunnel]\nBindAddress = {bind}\nTarget = 127.0.0.1:{target.Port}\n", "TCPClientTunnel"),
            new ProxyContext(new LoopbackNetwork()));
        await using (Run(forward))
        {
            // ":port" is every address: reachable on IPv4 loopback.
            var address = IPAddress.Parse(connectTo ?? "127.0.0.1");
            await using var client = await ConnectAsync(new IPEndPoint(address, forward.LocalEndPoint!.Port));
            client.Socket.Shutdown(SocketShutdown.Send);
            Assert.Equal("got:"u8.ToArray(), await ReadToEndAsync(client));
        }
    }

    [Theory]
    [InlineData("BindAddress = 127.0.0.1:1\nTarget = host:1\nColour = red\n", 4, "unknown key 'Colour'")]
    [InlineData("BindAddress = 127.0.0.1:1\nTarget = host\n", 3, "Target must be host:port")]
    [InlineData("BindAddress = 127.0.0.1:1\nTarget = host:0\n", 3, "Target must be host:port")]
    [InlineData("BindAddress = 127.0.0.1:1\nTarget = ::1:80\n", 3, "Target must be host:port")]
    [InlineData("BindAddress = myhost:1\nTarget = host:1\n", 2, "needs an IP address")]
    [InlineData("BindAddress = 127.0.0.1:99999\nTarget = host:1\n", 2, "BindAddress must be ip:port")]
    [InlineData("Target = host:1\n", 1, "needs BindAddress")]
    public void FromSection_BadValues_AreErrorsWithTheirLine(string body, int line, string message)
    {
        var e = Assert.Throws<ProxyConfigException>(() =>
            TcpClientTunnel.FromSection(Section("[TCPClientTunnel]\n" + body, "TCPClientTunnel"), new ProxyContext(new LoopbackNetwork())));
        Assert.Equal(line, e.Line);
        Assert.Contains(message, e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task FromSection_BracketedIpv6Target_Connects()
    {
        await using var target = new TcpTarget(address: IPAddress.IPv6Loopback);
        var network = new LoopbackNetwork();
        var forward = TcpClientTunnel.FromSection(
            Section($"[TCPClientTunnel]\nBindAddress = 127.0.0.1:0\nTarget = [::1]:{target.Port}\n", "TCPClientTunnel"),
            new ProxyContext(network));
        await using (Run(forward))
        {
            await using var client = await ConnectAsync(forward.LocalEndPoint!);
            client.Socket.Shutdown(SocketShutdown.Send);
            Assert.Equal("got:"u8.ToArray(), await ReadToEndAsync(client));
        }

        Assert.Equal(["::1"], network.Connects);
    }

    internal static async Task<byte[]> ConnectAndReadToEndOrResetAsync(IPEndPoint endPoint)
    {
        NetworkStream stream;
        try
        {
            stream = await ConnectAsync(endPoint);
        }
        catch (SocketException e) when (e.SocketErrorCode == SocketError.ConnectionReset)
        {
            return [];
        }

        await using (stream)
        {
            return await ReadToEndOrResetAsync(stream);
        }
    }

    internal static async Task<byte[]> ReadToEndOrResetAsync(Stream stream)
    {
        try
        {
            return await ReadToEndAsync(stream);
        }
        catch (IOException e) when (e.InnerException is SocketException { SocketErrorCode: SocketError.ConnectionReset })
        {
            return [];
        }
    }
}
