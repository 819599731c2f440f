using System.Net;
using System.Text;
using Sharptun.Proxy.Socks5;

namespace Sharptun.Proxy.Tests.Socks5;

/// <summary>
/// Bad input: every case ends in a clear reply or a close, is counted as refused, leaves nothing open and never
/// reaches the network.
/// </summary>
public sealed class Socks5MalformedTests
{
    public static TheoryData<string, byte[], byte[]> ClosedCases => new()
    {
        // name, bytes sent, bytes the server answers before it closes
        { "short greeting", [0x05], [] },
        { "SOCKS4", [0x04, 0x01, 0x00, 0x50, 127, 0, 0, 1, 0x00], [] },
        { "HTTP", Encoding.ASCII.GetBytes("GET / HTTP/1.1\r\nHost: x\r\n\r\n"), [] },
        { "zero methods", [0x05, 0x00], [0x05, 0xFF] },
        { "methods short of NMETHODS", [0x05, 0x03, 0x00], [] },
        { "garbage request after greeting", [0x05, 0x01, 0x00, 0x47, 0x45, 0x54, 0x20], [0x05, 0x00] },
        { "BIND unknown address type", [0x05, 0x01, 0x00, 0x05, 0x02, 0x00, 0x07, 127, 0, 0, 1, 0, 80], [0x05, 0x00, 0x05, 0x08, 0x00, 0x01, 0, 0, 0, 0, 0, 0] },
        { "BIND name with NUL", [0x05, 0x01, 0x00, 0x05, 0x02, 0x00, 0x03, 0x03, (byte)'a', 0, (byte)'b', 0, 80], [0x05, 0x00, 0x05, 0x01, 0x00, 0x01, 0, 0, 0, 0, 0, 0] },
        { "BIND IPv4 address cut short", [0x05, 0x01, 0x00, 0x05, 0x02, 0x00, 0x01, 127, 0], [0x05, 0x00] },
        { "BIND IPv6 address cut short", [0x05, 0x01, 0x00, 0x05, 0x02, 0x00, 0x04, 0, 0, 0, 0], [0x05, 0x00] },
        { "BIND reserved byte with request version 4", [0x05, 0x01, 0x00, 0x04, 0x02, 0x00, 0x01, 127, 0, 0, 1, 0, 0], [0x05, 0x00] },
        { "unknown command", [0x05, 0x01, 0x00, 0x05, 0x09, 0x00, 0x01, 127, 0, 0, 1, 0, 80], [0x05, 0x00, 0x05, 0x07, 0x00, 0x01, 0, 0, 0, 0, 0, 0] },
        { "unknown address type", [0x05, 0x01, 0x00, 0x05, 0x01, 0x00, 0x07, 127, 0, 0, 1, 0, 80], [0x05, 0x00, 0x05, 0x08, 0x00, 0x01, 0, 0, 0, 0, 0, 0] },
        { "empty name", [0x05, 0x01, 0x00, 0x05, 0x01, 0x00, 0x03, 0x00, 0, 80], [0x05, 0x00, 0x05, 0x01, 0x00, 0x01, 0, 0, 0, 0, 0, 0] },
        { "name with NUL", [0x05, 0x01, 0x00, 0x05, 0x01, 0x00, 0x03, 0x03, (byte)'a', 0, (byte)'b', 0, 80], [0x05, 0x00, 0x05, 0x01, 0x00, 0x01, 0, 0, 0, 0, 0, 0] },
        { "name with a space", [0x05, 0x01, 0x00, 0x05, 0x01, 0x00, 0x03, 0x03, (byte)'a', (byte)' ', (byte)'b', 0, 80], [0x05, 0x00, 0x05, 0x01, 0x00, 0x01, 0, 0, 0, 0, 0, 0] },
        { "IPv4 address cut short", [0x05, 0x01, 0x00, 0x05, 0x01, 0x00, 0x01, 127, 0], [0x05, 0x00] },
        { "IPv6 address cut short", [0x05, 0x01, 0x00, 0x05, 0x01, 0x00, 0x04, 0, 0, 0, 0, 0, 0, 0, 0], [0x05, 0x00] },
        { "name longer than sent", [0x05, 0x01, 0x00, 0x05, 0x01, 0x00, 0x03, 0xFF, (byte)'a', (byte)'b'], [0x05, 0x00] },
        { "request version 4", [0x05, 0x01, 0x00, 0x04, 0x01, 0x00, 0x01, 127, 0, 0, 1, 0, 80], [0x05, 0x00] },
    };

    [Theory]
    [MemberData(nameof(ClosedCases))]
    public async Task Malformed_GetsTheRightAnswer_ThenClose_CountedRefused(string name, byte[] sent, byte[] expected)
    {
        await using var harness = new Socks5Harness();
        using var client = await harness.ConnectClientAsync();
        await client.SendAsync(sent);
        client.Socket.Shutdown(System.Net.Sockets.SocketShutdown.Send);
        var received = new MemoryStream();
        var buffer = new byte[256];
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(20));
        try
        {
            int n;
            while ((n = await client.Stream.ReadAsync(buffer, timeout.Token)) > 0)
            {
                received.Write(buffer, 0, n);
            }
        }
        catch (IOException)
        {
        }

        Assert.True(expected.AsSpan().SequenceEqual(received.ToArray()), $"{name}: got {Convert.ToHexString(received.ToArray())}");
        await Socks5Harness.EventuallyAsync(() => harness.Server.Counters.Open == 0 && harness.Context.Gate.Open == 0, $"{name}: the connection is closed");
        Assert.Equal(1, harness.Server.Counters.Refused);
        Assert.Equal(0, harness.Server.Counters.Failed);
        Assert.Empty(harness.Network.Connects);
    }

    [Fact]
    public async Task Malformed_WithoutHalfClose_StillClosedByTheServer()
    {
        // The same answers while the client keeps its side open (the server must close, not wait for more).
        await using var harness = new Socks5Harness();
        foreach (var bytes in new byte[][] { [0x04, 0x01], [0x05, 0x00], [0x05, 0x01, 0x00, 0x05, 0x09, 0x00, 0x01] })
        {
            using var client = await harness.ConnectClientAsync();
            await client.SendAsync(bytes);
            Assert.True(await client.ClosedByServerAsync(), Convert.ToHexString(bytes));
        }
    }

    [Fact]
    public async Task LengthsLying_ClientStalls_DroppedAtTheHandshakeTimeout()
    {
        await using var harness = new Socks5Harness(handshakeTimeout: TimeSpan.FromSeconds(1));
        var cases = new byte[][]
        {
            [0x05, 0xFF, 0x00, 0x01],                                   // 255 methods announced, 2 sent
            [0x05, 0x01, 0x00, 0x05, 0x01, 0x00, 0x03, 0xC8, 0x61],     // a 200-byte name, 1 sent
            [0x05, 0x01, 0x00, 0x05, 0x01],                             // a request cut in the middle
        };
        var clients = new List<Socks5TestClient>();
        foreach (var bytes in cases)
        {
            var client = await harness.ConnectClientAsync();
            clients.Add(client);
            await client.SendAsync(bytes);
        }

        foreach (var client in clients)
        {
            Assert.True(await client.ClosedByServerAsync());
            client.Dispose();
        }

        await Socks5Harness.EventuallyAsync(() => harness.Server.Counters.Open == 0, "all closed");
        Assert.Equal(cases.Length, harness.Server.Counters.Refused);
    }

    [Fact]
    public async Task Slowloris_OneByteAtATime_DroppedAtTheHandshakeTimeout()
    {
        await using var harness = new Socks5Harness(handshakeTimeout: TimeSpan.FromSeconds(1));
        using var client = await harness.ConnectClientAsync();
        var request = (byte[])[0x05, 0x01, 0x00, .. Socks5TestClient.Request(0x01, "web.test", 80)];
        var started = Environment.TickCount64;
        var dropped = false;
        foreach (var b in request)
        {
            try
            {
                await client.SendAsync(b);
            }
            catch (IOException)
            {
                dropped = true;
                break;
            }

            await Task.Delay(300);
            if (Environment.TickCount64 - started > 4_000)
            {
                break;
            }
        }

        Assert.True(dropped || await client.ClosedByServerAsync());
        await Socks5Harness.EventuallyAsync(() => harness.Server.Counters.Open == 0, "the slow client is dropped");
        Assert.Equal(1, harness.Server.Counters.Refused);
        Assert.Empty(harness.Network.Connects);
    }

    [Theory]
    [InlineData(new byte[] { 0x05, 0x03, (byte)'a', (byte)'b', (byte)'c' }, new byte[] { 0x01, 0xFF })] // sub-negotiation version 5
    [InlineData(new byte[] { 0x01, 0x00, 0x00 }, new byte[] { 0x01, 0x01 })]                          // empty user and password
    [InlineData(new byte[] { 0x01, 0x05, (byte)'a', (byte)'l', (byte)'i', (byte)'c', (byte)'e' }, new byte[] { })] // no PLEN: stalls, timeout
    public async Task Auth_Malformed_RefusedAndClosed(byte[] sent, byte[] expected)
    {
        // A short handshake timeout only where the client stalls (no answer expected): on a loaded machine a 1 s budget
        // can run out during the greeting itself.
        var handshakeTimeout = TimeSpan.FromSeconds(expected.Length == 0 ? 3 : 30);
        await using var harness = new Socks5Harness(new Socks5Options(new IPEndPoint(IPAddress.Loopback, 0)) { Username = "alice", Password = "pw" }, handshakeTimeout: handshakeTimeout);
        using var client = await harness.ConnectClientAsync();
        Assert.Equal(0x02, await client.GreetAsync(0x02));
        await client.SendAsync(sent);
        var received = new MemoryStream();
        var buffer = new byte[16];
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(20));
        try
        {
            int n;
            while ((n = await client.Stream.ReadAsync(buffer, timeout.Token)) > 0)
            {
                received.Write(buffer, 0, n);
            }
        }
        catch (IOException)
        {
        }

        Assert.Equal(expected, received.ToArray());
        await Socks5Harness.EventuallyAsync(() => harness.Server.Counters.Open == 0, "closed");
        Assert.Equal(1, harness.Server.Counters.Refused);
    }

    [Fact]
    public async Task RandomGarbage_NeverCrashes_AndEverythingCloses()
    {
        // Requests that happen to be well-formed go to a network that refuses everything (never the internet).
        await using var harness = new Socks5Harness(handshakeTimeout: TimeSpan.FromSeconds(2), seam: new FailingNetwork(new LoopbackNetwork(), System.Net.Sockets.SocketError.ConnectionRefused, TimeSpan.Zero));
        var random = new Random(1928);
        var inputs = Enumerable.Range(0, 200).Select(i =>
        {
            var bytes = new byte[random.Next(1, 600)];
            random.NextBytes(bytes);
            if (i % 2 == 0)
            {
                bytes[0] = 0x05; // get past the version check more often
            }

            if (i % 4 == 0)
            {
                bytes[1] = 0x01; // one method: reach the request parser
                bytes[2] = 0x00;
                bytes[3] = 0x05;
            }

            return bytes;
        }).ToList();
        var tasks = inputs.Select(async bytes =>
        {

            using var client = await harness.ConnectClientAsync();
            try
            {
                await client.SendAsync(bytes);
                client.Socket.Shutdown(System.Net.Sockets.SocketShutdown.Send);
            }
            catch (IOException)
            {
            }

            Assert.True(await client.ClosedByServerAsync());
        });
        await Task.WhenAll(tasks);
        await Socks5Harness.EventuallyAsync(() => harness.Server.Counters.Open == 0 && harness.Context.Gate.Open == 0 && harness.Server.ConnectionsInFlight == 0, "all closed");
        Assert.Equal(harness.Server.Counters.Accepted, harness.Server.Counters.Refused + harness.Server.Counters.Failed);
    }
}
