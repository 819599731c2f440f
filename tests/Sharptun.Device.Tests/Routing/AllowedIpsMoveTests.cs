using System.Diagnostics;
using System.Net;
using Sharptun.Device.Routing;
using Xunit.Abstractions;

namespace Sharptun.Device.Tests.Routing;

/// <summary>
/// Moving allowed IPs between peers (UAPI <c>allowed_ip=</c> naming a prefix another peer owns) must cost O(1) list
/// work per prefix, not a <c>List.Remove</c> scan of the previous owner's list: the writes run under the config lock.
/// </summary>
public sealed class AllowedIpsMoveTests(ITestOutputHelper output)
{
    private sealed class Peer(string name)
    {
        public override string ToString() => name;
    }

    // 100k host routes: 10.0.0.0/32 upwards, with a /24 and a /16 sprinkled in so the trie has inner prefixes too.
    private static IpPrefix Prefix(int i) => (i % 1000) switch
    {
        999 => new IpPrefix(new IPAddress([172, (byte)(16 + (i / 1000 % 16)), (byte)(i / 16000), 0]), 24),
        998 => new IpPrefix(new IPAddress([100, (byte)(64 + (i / 1000 % 64)), 0, 0]), 16),
        _ => new IpPrefix(new IPAddress([10, (byte)(i >> 16), (byte)(i >> 8), (byte)i]), 32),
    };

    [Fact]
    public void Insert_MovingHundredThousandPrefixesToAnotherPeer_IsLinearAndExact()
    {
        const int total = 110_000;
        var a = new Peer("a");
        var b = new Peer("b");
        var table = new AllowedIps<Peer>();
        var all = Enumerable.Range(0, total).Select(Prefix).Distinct().ToArray();
        foreach (var p in all)
        {
            table.Insert(p, a);
        }

        // Every 11th prefix stays with a; the other 100k move to b, last-inserted first (the worst case for a
        // front-to-back List.Remove scan of a's list).
        var kept = all.Where((_, i) => i % 11 == 0).ToArray();
        var moved = all.Where((_, i) => i % 11 != 0).Reverse().ToArray();
        Assert.True(moved.Length >= 99_000);

        var sw = Stopwatch.StartNew();
        foreach (var p in moved)
        {
            table.Insert(p, b);
        }

        sw.Stop();
        output.WriteLine($"moved {moved.Length} prefixes in {sw.ElapsedMilliseconds} ms");

        // Measured side by side on a loaded 2-core machine (load average ~14): the quadratic List.Remove code took
        // 173 s here, the linear code 2.6 s. 10 s leaves room for load and still fails the quadratic code 17 times over.
        Assert.True(sw.Elapsed < TimeSpan.FromSeconds(10), $"moving {moved.Length} prefixes took {sw.Elapsed}");

        Assert.Equal(kept, table.EntriesForPeer(a)); // exactly the prefixes left, in insertion order
        Assert.Equal(moved, table.EntriesForPeer(b)); // in the order they arrived at b
        Assert.Equal(all.Length, table.Count);
        Span<byte> address = stackalloc byte[4];
        foreach (var p in moved)
        {
            p.Address.WriteTo(address);
            Assert.Same(b, table.Lookup(address));
        }

        foreach (var p in kept)
        {
            p.Address.WriteTo(address);
            Assert.Same(a, table.Lookup(address));
        }

        // and back again, then removal of a's whole list: nothing of b's is touched
        foreach (var p in moved.Take(1000))
        {
            table.Insert(p, a);
        }

        Assert.Equal(kept.Concat(moved.Take(1000)), table.EntriesForPeer(a));
        Assert.Equal(moved.Skip(1000), table.EntriesForPeer(b));
        table.RemoveByPeer(a);
        Assert.Empty(table.EntriesForPeer(a));
        Assert.Equal(moved.Length - 1000, table.Count);
        Assert.True(table.Remove(moved[^1], b));
        Assert.False(table.Remove(moved[^1], b));
        Assert.Equal(moved.Skip(1000).SkipLast(1), table.EntriesForPeer(b));
    }

    [Fact]
    public void Insert_ConcurrentMovesBetweenPeers_ListsStayExactAndMatchTheTrie()
    {
        var peers = Enumerable.Range(0, 4).Select(i => new Peer("p" + i)).ToArray();
        var table = new AllowedIps<Peer>();
        var all = Enumerable.Range(0, 4000).Select(Prefix).Distinct().ToArray();
        foreach (var p in all)
        {
            table.Insert(p, peers[0]);
        }

        using var start = new Barrier(4);
        var writers = Enumerable.Range(0, 4).Select(t => Task.Run(() =>
        {
            var rng = new Random(t);
            start.SignalAndWait();
            for (int i = 0; i < 50_000; i++)
            {
                var prefix = all[rng.Next(all.Length)];
                var peer = peers[rng.Next(peers.Length)];
                if (rng.Next(8) == 0)
                {
                    table.Remove(prefix, peer);
                }
                else
                {
                    table.Insert(prefix, peer);
                }
            }
        })).ToArray();
        Assert.True(Task.WaitAll(writers, TimeSpan.FromMinutes(2)));

        // every prefix is listed by at most one peer, exactly once, and the trie routes it to that peer
        var listed = peers.SelectMany(p => table.EntriesForPeer(p).Select(prefix => (prefix, p))).ToArray();
        Assert.Equal(listed.Length, listed.Select(e => e.prefix).Distinct().Count());
        Assert.Equal(listed.Length, table.Count);
        Span<byte> address = stackalloc byte[4];
        foreach (var (prefix, owner) in listed)
        {
            prefix.Address.WriteTo(address);
            Assert.Same(owner, table.Lookup(address));
        }

        var unlisted = all.Except(listed.Select(e => e.prefix)).Where(p => p.Length == 32);
        foreach (var prefix in unlisted)
        {
            prefix.Address.WriteTo(address);
            Assert.Null(table.Lookup(address)); // a removed host route (10/8 holds no shorter prefix)
        }
    }
}
