using System.Net;
using System.Net.Sockets;
using Sharptun.Hosting;

namespace Sharptun.Proxy.Tests.Socks5;

/// <summary>The connection cap (<see cref="ProxyContext.Gate"/>), and counters under concurrency.</summary>
public sealed class Socks5CapTests
{
    [Fact]
    public async Task ThousandConcurrent_CapFiveHundred_ExactlyTheCapServed_RestRefused_AllReturnToZero()
    {
        const int cap = 500;
        const int total = 1000;
        using var echo = new EchoServer(IPAddress.Loopback);
        await using var harness = new Socks5Harness(cap: cap);
        var clients = new Socks5TestClient[total];
        var outcomes = await Task.WhenAll(Enumerable.Range(0, total).Select(async i =>
        {
            try
            {
                var client = clients[i] = await harness.ConnectClientAsync();
                var (reply, _) = await client.ConnectAsync(Socks5TestClient.Request(0x01, echo.EndPoint));
                return reply;
            }
            catch (Exception e) when (e is IOException or EndOfStreamException or SocketException)
            {
                return (byte)0xFE; // reset before a reply: the refusal budget was full
            }
        }));

        Assert.Equal(cap, outcomes.Count(o => o == 0x00));
        Assert.Equal(total - cap, outcomes.Count(o => o is 0x01 or 0xFE));
        Assert.Equal(cap, harness.Context.Gate.Open);
        Assert.Equal(cap, harness.Server.Counters.Open);
        Assert.Equal(total - cap, harness.Server.Counters.Refused);
        Assert.Equal(total - cap, harness.Context.Gate.Refused);

        // The admitted ones really relay.
        for (var i = 0; i < total; i++)
        {
            if (outcomes[i] == 0x00)
            {
                await clients[i].SendAsync((byte)i);
                Assert.Equal([(byte)i], await clients[i].ReadAsync(1));
            }
        }

        foreach (var client in clients)
        {
            client?.Dispose();
        }

        await Socks5Harness.EventuallyAsync(
            () => harness.Server.Counters.Open == 0 && harness.Context.Gate.Open == 0 && echo.Open == 0 && harness.Server.ConnectionsInFlight == 0,
            "every connection, slot and target connection is released");

        // Below the cap again: served.
        using var again = await harness.ConnectClientAsync();
        Assert.Equal(0x00, (await again.ConnectAsync(Socks5TestClient.Request(0x01, echo.EndPoint))).Reply);
    }

    [Fact]
    public async Task OverCap_IsRefusedWithGeneralFailure_AfterTheGreeting()
    {
        using var echo = new EchoServer(IPAddress.Loopback);
        await using var harness = new Socks5Harness(cap: 1);
        using var first = await harness.ConnectClientAsync();
        Assert.Equal(0x00, (await first.ConnectAsync(Socks5TestClient.Request(0x01, echo.EndPoint))).Reply);
        using var second = await harness.ConnectClientAsync();
        Assert.Equal(0x01, (await second.ConnectAsync(Socks5TestClient.Request(0x01, echo.EndPoint))).Reply);
        Assert.True(await second.ClosedByServerAsync());
        Assert.Equal(1, harness.Server.Counters.Refused);
        Assert.Single(harness.Network.Connects);
    }

    [Fact]
    public async Task CountersRace_ManyParallelRelays_BytesAndConnectionsAddUpExactly()
    {
        const int connections = 100;
        const int bytesEach = 50_000;
        using var echo = new EchoServer(IPAddress.Loopback);
        await using var harness = new Socks5Harness(relay: new RelayOptions { BufferSize = 1024 });
        await Task.WhenAll(Enumerable.Range(0, connections).Select(async i =>
        {
            using var client = await harness.ConnectClientAsync();
            Assert.Equal(0x00, (await client.ConnectAsync(Socks5TestClient.Request(0x01, echo.EndPoint))).Reply);
            var payload = new byte[bytesEach];
            Random.Shared.NextBytes(payload);
            var read = client.ReadAsync(bytesEach);
            await client.SendAsync(payload);
            Assert.Equal(payload, await read);
            client.Socket.Shutdown(SocketShutdown.Send);
            Assert.True(await client.ClosedByServerAsync());
        }));

        await Socks5Harness.EventuallyAsync(() => harness.Server.Counters.Open == 0, "all relays end");
        Assert.Equal(connections, harness.Server.Counters.Accepted);
        Assert.Equal((long)connections * bytesEach, harness.Server.Counters.BytesToTunnel);
        Assert.Equal((long)connections * bytesEach, harness.Server.Counters.BytesFromTunnel);
        Assert.Equal(0, harness.Context.Gate.Open);
    }
}
