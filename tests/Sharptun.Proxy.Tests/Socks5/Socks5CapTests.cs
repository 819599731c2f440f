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

/// <summary>
/// Nothing a connection or an association allocates outlives it: measured as timers alive and the managed heap after
/// full collections. Runs alone (other tests' timers and allocations would blur the figures).
/// </summary>
[Collection(nameof(Socks5LeakTests))]
[CollectionDefinition(nameof(Socks5LeakTests), DisableParallelization = true)]
public sealed class Socks5LeakTests
{
    [Fact]
    public async Task RepeatedRoundsOfConnectionsAndAssociations_ManagedHeapDoesNotGrow()
    {
        using var echo = new EchoServer(IPAddress.Loopback);
        using var udpEcho = new UdpEcho();
        // The relays have an idle timeout: its timer must not outlive them (it once kept each relay's state for the timeout).
        await using var harness = new Socks5Harness(cap: 200, relay: new RelayOptions { IdleTimeout = TimeSpan.FromMinutes(10) });
        var timersBefore = Timer.ActiveCount;
        var retained = new long[8];
        for (var round = 0; round < retained.Length; round++)
        {
            // 300 connections against a cap of 200 (100 refused), and 20 UDP associations, all closed again.
            var clients = await Task.WhenAll(Enumerable.Range(0, 300).Select(async _ =>
            {
                try
                {
                    var client = await harness.ConnectClientAsync();
                    var (reply, _) = await client.ConnectAsync(Socks5TestClient.Request(0x01, echo.EndPoint));
                    if (reply == 0x00)
                    {
                        await client.SendAsync(1, 2, 3);
                        await client.ReadAsync(3);
                    }

                    return client;
                }
                catch (Exception e) when (e is IOException or SocketException)
                {
                    return null;
                }
            }));
            foreach (var client in clients)
            {
                client?.Dispose();
            }

            await Socks5Harness.EventuallyAsync(() => harness.Server.Counters.Open == 0 && echo.Open == 0, "round closed");
            var associations = await Task.WhenAll(Enumerable.Range(0, 20).Select(_ => Socks5UdpClient.AssociateAsync(harness)));
            foreach (var a in associations)
            {
                await a.SendAsync(udpEcho.EndPoint, new byte[500]);
                await a.ReceiveAsync();
                a.Dispose();
            }

            await Socks5Harness.EventuallyAsync(
                () => harness.Server.Counters.Open == 0 && harness.Server.OpenAssociations == 0 && harness.Server.ConnectionsInFlight == 0,
                "round closed");
            lock (harness.Network.Connects)
            {
                harness.Network.Connects.Clear();
            }

            GC.Collect(2, GCCollectionMode.Forced, blocking: true, compacting: true);
            GC.WaitForPendingFinalizers();
            GC.Collect(2, GCCollectionMode.Forced, blocking: true, compacting: true);
            retained[round] = GC.GetTotalMemory(forceFullCollection: true);
        }

        // 8 x 320 relays and associations ran with a 10-minute idle timeout; none of their timers may still be alive.
        var timersAfter = Timer.ActiveCount;
        Assert.True(timersAfter - timersBefore < 100, $"{timersAfter - timersBefore} more timers alive than before the rounds");

        // Pools and per-thread caches settle in the first rounds (and jump by up to ~1 MiB when the thread pool grows);
        // a leak of a few KiB per connection would add over 4 MiB across the last four rounds.
        Assert.True(retained[^1] - retained[3] < 4 << 20, $"managed heap after each round (bytes): {string.Join(", ", retained)}");
    }
}
