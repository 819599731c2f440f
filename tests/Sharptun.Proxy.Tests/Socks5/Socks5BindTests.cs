using System.Net;
using System.Net.Sockets;
using System.Security.Cryptography;
using Sharptun.Proxy.Socks5;

namespace Sharptun.Proxy.Tests.Socks5;

/// <summary>
/// SOCKS5 BIND (RFC 1928 §4, §6) over the <see cref="LoopbackNetwork"/> seam: the first reply names the listener,
/// one incoming connection (from the expected host only) gets the second reply and is relayed both ways; a wait
/// past the accept timeout answers 0x06; a client that goes away closes the listener.
/// </summary>
public sealed class Socks5BindTests
{
    private const byte Bind = 0x02;

    [Fact]
    public async Task Bind_AnyHost_TwoReplies_BytesBothWays_HalfClose_ListenerClosedAfterOne_Counted()
    {
        await using var harness = new Socks5Harness();
        using var client = await harness.ConnectClientAsync();
        var (first, bound) = await client.ConnectAsync(Socks5TestClient.Request(Bind, new IPEndPoint(IPAddress.Any, 0)));
        Assert.Equal(0x00, first);
        Assert.Equal(IPAddress.Loopback, bound.Address);
        Assert.InRange(bound.Port, Socks5Server.EphemeralPortLow, 65535);

        using var peer = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        await peer.ConnectAsync(bound);
        var (second, from) = await client.ReadReplyAsync();
        Assert.Equal(0x00, second);
        Assert.Equal(peer.LocalEndPoint, from);

        // Exactly one connection per BIND: the listener is gone.
        using (var late = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp))
        {
            var refused = await Assert.ThrowsAsync<SocketException>(async () => await late.ConnectAsync(bound));
            Assert.Equal(SocketError.ConnectionRefused, refused.SocketErrorCode);
        }

        // Client → peer and peer → client, then the client's half-close reaches the peer while the peer still sends.
        var up = RandomNumberGenerator.GetBytes(100_000);
        var down = RandomNumberGenerator.GetBytes(70_000);
        await client.SendAsync(up);
        Assert.Equal(up, await ReceiveExactlyAsync(peer, up.Length));
        await peer.SendAsync(down);
        Assert.Equal(down, await client.ReadAsync(down.Length));
        client.Socket.Shutdown(SocketShutdown.Send);
        Assert.Equal(0, await peer.ReceiveAsync(new byte[1]).WaitAsync(TimeSpan.FromSeconds(20)));
        await peer.SendAsync("after half-close"u8.ToArray());
        Assert.Equal("after half-close"u8.ToArray(), await client.ReadAsync(16));
        peer.Shutdown(SocketShutdown.Send);
        Assert.True(await client.ClosedByServerAsync());

        await Socks5Harness.EventuallyAsync(() => harness.Server.Counters.Open == 0 && harness.Context.Gate.Open == 0, "the BIND connection is closed");
        Assert.Equal(1, harness.Server.Counters.Accepted);
        Assert.Equal(0, harness.Server.Counters.Failed);
        Assert.Equal(0, harness.Server.Counters.Refused);
        Assert.Equal(up.Length, harness.Server.Counters.BytesToTunnel);
        Assert.Equal(down.Length + 16, harness.Server.Counters.BytesFromTunnel);
        Assert.Empty(harness.Network.Connects); // BIND connects nowhere
    }

    [Fact]
    public async Task Bind_RequestedPort_UsedWhenFree_EphemeralWhenTaken()
    {
        await using var harness = new Socks5Harness();
        var free = FreePort();
        using (var client = await harness.ConnectClientAsync())
        {
            var (reply, bound) = await client.ConnectAsync(Socks5TestClient.Request(Bind, new IPEndPoint(IPAddress.Any, free)));
            Assert.Equal(0x00, reply);
            Assert.Equal(new IPEndPoint(IPAddress.Loopback, free), bound);
        }

        using var taken = new TcpListener(IPAddress.Loopback, 0);
        taken.Start();
        var takenPort = ((IPEndPoint)taken.LocalEndpoint).Port;
        using (var client = await harness.ConnectClientAsync())
        {
            var (reply, bound) = await client.ConnectAsync(Socks5TestClient.Request(Bind, new IPEndPoint(IPAddress.Any, takenPort)));
            Assert.Equal(0x00, reply);
            Assert.NotEqual(takenPort, bound.Port);
            Assert.InRange(bound.Port, Socks5Server.EphemeralPortLow, 65535);

            // And it really listens there.
            using var peer = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
            await peer.ConnectAsync(bound);
            Assert.Equal(0x00, (await client.ReadReplyAsync()).Reply);
        }
    }

    [Fact]
    public async Task Bind_NoConnectionWithinTheAcceptTimeout_ReplyTtlExpired_ListenerClosed_CountedFailed()
    {
        await using var harness = new Socks5Harness(acceptTimeout: TimeSpan.FromSeconds(1));
        using var client = await harness.ConnectClientAsync();
        var (first, bound) = await client.ConnectAsync(Socks5TestClient.Request(Bind, new IPEndPoint(IPAddress.Any, 0)));
        Assert.Equal(0x00, first);

        var (second, _) = await client.ReadReplyAsync();
        Assert.Equal(0x06, second); // RFC 1928 §6: TTL expired
        Assert.True(await client.ClosedByServerAsync());
        using var late = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        var refused = await Assert.ThrowsAsync<SocketException>(async () => await late.ConnectAsync(bound));
        Assert.Equal(SocketError.ConnectionRefused, refused.SocketErrorCode);
        await Socks5Harness.EventuallyAsync(() => harness.Server.Counters.Open == 0 && harness.Context.Gate.Open == 0, "the BIND connection is closed");
        Assert.Equal(1, harness.Server.Counters.Failed);
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public async Task Bind_ExpectedHost_OthersAreResetAndCounted_TheExpectedOneIsRelayed(bool byName)
    {
        await using var harness = new Socks5Harness();
        harness.Network.Names["peer.test"] = IPAddress.Parse("127.0.0.2");
        using var client = await harness.ConnectClientAsync();
        var request = byName
            ? Socks5TestClient.Request(Bind, "peer.test", 21)
            : Socks5TestClient.Request(Bind, new IPEndPoint(IPAddress.Parse("127.0.0.2"), 0));
        var (first, bound) = await client.ConnectAsync(request);
        Assert.Equal(0x00, first);

        // From 127.0.0.1: not the expected host. The kernel completes the handshake, then the proxy resets it (on
        // loopback the reset can arrive before the connect reports completion).
        using (var stranger = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp))
        {
            var connected = true;
            try
            {
                await stranger.ConnectAsync(bound);
            }
            catch (SocketException e) when (e.SocketErrorCode == SocketError.ConnectionReset)
            {
                connected = false;
            }

            await Socks5Harness.EventuallyAsync(() => harness.Server.BindPeersRefused == 1, "the stranger is refused");
            Assert.True(!connected || await ClosedAsync(stranger));
        }

        using var peer = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        peer.Bind(new IPEndPoint(IPAddress.Parse("127.0.0.2"), 0));
        await peer.ConnectAsync(bound);
        var (second, from) = await client.ReadReplyAsync();
        Assert.Equal(0x00, second);
        Assert.Equal(peer.LocalEndPoint, from);
        await peer.SendAsync("from the expected host"u8.ToArray());
        Assert.Equal("from the expected host"u8.ToArray(), await client.ReadAsync(22));
        await client.SendAsync("to it"u8.ToArray());
        Assert.Equal("to it"u8.ToArray(), await ReceiveExactlyAsync(peer, 5));
        Assert.Equal(1, harness.Server.BindPeersRefused);
    }

    [Fact]
    public async Task Bind_ExpectedNameDoesNotResolve_ReplyHostUnreachable_NoListener()
    {
        await using var harness = new Socks5Harness();
        using var client = await harness.ConnectClientAsync();
        var (reply, _) = await client.ConnectAsync(Socks5TestClient.Request(Bind, "nowhere.test", 0));
        Assert.Equal(0x04, reply);
        Assert.True(await client.ClosedByServerAsync());
        await Socks5Harness.EventuallyAsync(() => harness.Server.Counters.Open == 0, "the connection is closed");
        Assert.Equal(1, harness.Server.Counters.Failed);
    }

    [Fact]
    public async Task Bind_ClientGoesAwayWhileWaiting_ListenerClosedAtOnce_SlotReleased()
    {
        // A long accept timeout: only the client's close can end the wait within the test.
        await using var harness = new Socks5Harness(acceptTimeout: TimeSpan.FromMinutes(10));
        IPEndPoint bound;
        using (var client = await harness.ConnectClientAsync())
        {
            var (first, b) = await client.ConnectAsync(Socks5TestClient.Request(Bind, new IPEndPoint(IPAddress.Any, 0)));
            Assert.Equal(0x00, first);
            bound = b;
            Assert.Equal(1, harness.Server.Counters.Open);
        }

        await Socks5Harness.EventuallyAsync(() => harness.Server.Counters.Open == 0 && harness.Context.Gate.Open == 0, "the BIND ends with its client");
        using var late = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        var refused = await Assert.ThrowsAsync<SocketException>(async () => await late.ConnectAsync(bound));
        Assert.Equal(SocketError.ConnectionRefused, refused.SocketErrorCode);
        Assert.Equal(1, harness.Server.Counters.Failed);
    }

    [Fact]
    public async Task Bind_ServerStopsWhileWaiting_ListenerClosed_ClientClosed()
    {
        var harness = new Socks5Harness(acceptTimeout: TimeSpan.FromMinutes(10));
        using var client = await harness.ConnectClientAsync();
        var (first, bound) = await client.ConnectAsync(Socks5TestClient.Request(Bind, new IPEndPoint(IPAddress.Any, 0)));
        Assert.Equal(0x00, first);

        await harness.DisposeAsync(); // cancels the server and waits for every handler
        Assert.True(await client.ClosedByServerAsync());
        using var late = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        var refused = await Assert.ThrowsAsync<SocketException>(async () => await late.ConnectAsync(bound));
        Assert.Equal(SocketError.ConnectionRefused, refused.SocketErrorCode);
        Assert.Equal(0, harness.Server.Counters.Open);
    }

    [Fact]
    public async Task Bind_BytesSentBeforeTheSecondReply_AreKeptAndRelayed()
    {
        // The watch for the client's close peeks: early bytes are not consumed, they reach the peer after the second reply.
        await using var harness = new Socks5Harness();
        using var client = await harness.ConnectClientAsync();
        var (_, bound) = await client.ConnectAsync(Socks5TestClient.Request(Bind, new IPEndPoint(IPAddress.Any, 0)));
        await client.SendAsync("early"u8.ToArray());
        await Task.Delay(200);
        using var peer = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        await peer.ConnectAsync(bound);
        Assert.Equal(0x00, (await client.ReadReplyAsync()).Reply);
        Assert.Equal("early"u8.ToArray(), await ReceiveExactlyAsync(peer, 5));
    }

    [Fact]
    public async Task Bind_FiftyAtOnce_EachPeerReachesItsOwnClient()
    {
        // Concurrent BINDs race the listeners, the client watches and the counters: every pair must stay paired.
        await using var harness = new Socks5Harness();
        const int count = 50;
        var results = await Task.WhenAll(Enumerable.Range(0, count).Select(async i =>
        {
            using var client = await harness.ConnectClientAsync();
            var (first, bound) = await client.ConnectAsync(Socks5TestClient.Request(Bind, new IPEndPoint(IPAddress.Any, 0)));
            Assert.Equal(0x00, first);
            using var peer = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
            await peer.ConnectAsync(bound);
            Assert.Equal(0x00, (await client.ReadReplyAsync()).Reply);
            var token = BitConverter.GetBytes(i);
            await peer.SendAsync(token);
            var back = await client.ReadAsync(4);
            await client.SendAsync(back);
            return BitConverter.ToInt32(await ReceiveExactlyAsync(peer, 4));
        }));

        Assert.Equal(Enumerable.Range(0, count), results);
        await Socks5Harness.EventuallyAsync(() => harness.Server.Counters.Open == 0 && harness.Context.Gate.Open == 0, "every BIND is closed");
        Assert.Equal(count, harness.Server.Counters.Accepted);
        Assert.Equal(0, harness.Server.Counters.Failed);
    }

    private static int FreePort()
    {
        using var probe = new TcpListener(IPAddress.Loopback, 0);
        probe.Start();
        return ((IPEndPoint)probe.LocalEndpoint).Port;
    }

    private static async Task<byte[]> ReceiveExactlyAsync(Socket socket, int count)
    {
        var buffer = new byte[count];
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(20));
        var read = 0;
        while (read < count)
        {
            var n = await socket.ReceiveAsync(buffer.AsMemory(read), SocketFlags.None, timeout.Token);
            Assert.True(n > 0, $"end of stream after {read} of {count} bytes");
            read += n;
        }

        return buffer;
    }

    /// <summary>Whether the other side closed or reset <paramref name="socket"/> within 20 s.</summary>
    private static async Task<bool> ClosedAsync(Socket socket)
    {
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(20));
        try
        {
            return await socket.ReceiveAsync(new byte[1], SocketFlags.None, timeout.Token) == 0;
        }
        catch (SocketException)
        {
            return true;
        }
        catch (OperationCanceledException)
        {
            return false;
        }
    }
}
