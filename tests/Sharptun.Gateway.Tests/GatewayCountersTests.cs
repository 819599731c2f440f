using Sharptun.Gateway;

namespace Sharptun.Gateway.Tests;

public sealed class GatewayCountersTests
{
    [Fact]
    public void PerPeerCap_RefusesThatPeerOnly_GlobalCapRefusesEveryone_ReleasesFreeBoth()
    {
        var counters = new GatewayCounters(maxConnections: 3, maxConnectionsPerPeer: 2);
        var a1 = counters.TryAdmit("a");
        var a2 = counters.TryAdmit("a");
        Assert.NotNull(a1);
        Assert.NotNull(a2);
        Assert.Null(counters.TryAdmit("a"));
        var b1 = counters.TryAdmit("b");
        Assert.NotNull(b1);
        Assert.Null(counters.TryAdmit("b")); // global cap
        Assert.Equal(3, counters.Open);

        a1!.Dispose();
        a1.Dispose();
        Assert.Equal(2, counters.Open);
        var b2 = counters.TryAdmit("b");
        Assert.NotNull(b2);
        a2!.Dispose();
        b1!.Dispose();
        b2!.Dispose();
        Assert.Equal(0, counters.Open);
    }

    [Fact]
    public void PeerCounters_AddUpIntoTheTotal()
    {
        var counters = new GatewayCounters(10, 10);
        counters.For("a").CountTcpDenied();
        counters.For("b").CountTcpDenied();
        counters.For("b").AddBytes(5, 7);
        counters.For("a").AddOpenTcp(1);
        Assert.Equal(1, counters.Peers["a"].TcpDenied);
        Assert.Equal(2, counters.Total.TcpDenied);
        Assert.Equal(5, counters.Total.BytesToDestinations);
        Assert.Equal(7, counters.Peers["b"].BytesFromDestinations);
        Assert.Equal(1, counters.Total.OpenTcp);
    }

    [Fact]
    public void ManyThreadsAdmittingAndReleasingForManyPeers_NeverExceedTheCaps_AndEndAtZero()
    {
        var counters = new GatewayCounters(maxConnections: 16, maxConnectionsPerPeer: 3);
        var peers = new[] { "a", "b", "c", "d", "e", "f", "g", "h" };
        var open = new int[peers.Length];
        var maxPerPeer = 0;
        var maxGlobal = 0;
        Parallel.For(0, 8, new ParallelOptions { MaxDegreeOfParallelism = 8 }, t =>
        {
            var random = new Random(t);
            for (var i = 0; i < 20_000; i++)
            {
                var p = random.Next(peers.Length);
                using var lease = counters.TryAdmit(peers[p]);
                if (lease is null)
                {
                    continue;
                }

                var nowPeer = Interlocked.Increment(ref open[p]);
                var nowGlobal = counters.Open;
                InterlockedMax(ref maxPerPeer, nowPeer);
                InterlockedMax(ref maxGlobal, nowGlobal);
                Interlocked.Decrement(ref open[p]);
            }
        });
        Assert.InRange(maxPerPeer, 1, 3);
        Assert.InRange(maxGlobal, 1, 16);
        Assert.Equal(0, counters.Open);
    }

    private static void InterlockedMax(ref int target, int value)
    {
        var current = Volatile.Read(ref target);
        while (value > current)
        {
            var seen = Interlocked.CompareExchange(ref target, value, current);
            if (seen == current)
            {
                return;
            }

            current = seen;
        }
    }
}
