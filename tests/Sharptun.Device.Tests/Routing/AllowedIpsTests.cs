using System.Net;
using Sharptun.Device.Routing;
using Xunit.Abstractions;

namespace Sharptun.Device.Tests.Routing;

public sealed class AllowedIpsTests(ITestOutputHelper output)
{
    private sealed class Peer(string name)
    {
        public override string ToString() => name;
    }

    private static IpPrefix P(string text)
    {
        Assert.True(IpPrefix.TryParse(text, out var p), text);
        return p;
    }

    private static byte[] A(string text) => IPAddress.Parse(text).GetAddressBytes();

    [Fact]
    public void Lookup_EmptyTable_ReturnsNull()
    {
        var table = new AllowedIps<Peer>();
        Assert.Null(table.Lookup(A("10.0.0.1")));
        Assert.Null(table.Lookup(A("fd00::1")));
    }

    [Fact]
    public void Lookup_BadAddressLength_ReturnsNull()
    {
        var table = new AllowedIps<Peer>();
        table.Insert(P("0.0.0.0/0"), new Peer("a"));
        Assert.Null(table.Lookup(new byte[5]));
        Assert.Null(table.Lookup(ReadOnlySpan<byte>.Empty));
    }

    [Fact]
    public void Lookup_LongestPrefixWins()
    {
        var table = new AllowedIps<Peer>();
        Peer a = new("a"), b = new("b"), c = new("c");
        table.Insert(P("10.0.0.0/8"), a);
        table.Insert(P("10.1.0.0/16"), b);
        table.Insert(P("10.1.2.0/24"), c);
        Assert.Same(c, table.Lookup(A("10.1.2.3")));
        Assert.Same(b, table.Lookup(A("10.1.3.3")));
        Assert.Same(a, table.Lookup(A("10.2.0.1")));
        Assert.Null(table.Lookup(A("11.0.0.1")));
    }

    [Fact]
    public void Lookup_DefaultRouteV4_MatchesEverythingV4Only()
    {
        var table = new AllowedIps<Peer>();
        var a = new Peer("a");
        table.Insert(P("0.0.0.0/0"), a);
        Assert.Same(a, table.Lookup(A("255.255.255.255")));
        Assert.Same(a, table.Lookup(A("0.0.0.0")));
        Assert.Null(table.Lookup(A("::")));
    }

    [Fact]
    public void Lookup_DefaultRouteV6_MatchesEverythingV6Only()
    {
        var table = new AllowedIps<Peer>();
        var a = new Peer("a");
        table.Insert(P("::/0"), a);
        Assert.Same(a, table.Lookup(A("ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff")));
        Assert.Null(table.Lookup(A("1.2.3.4")));
    }

    [Fact]
    public void Lookup_HostRoutes32And128_MatchOnlyThatHost()
    {
        var table = new AllowedIps<Peer>();
        Peer a = new("a"), b = new("b");
        table.Insert(P("192.168.1.1/32"), a);
        table.Insert(P("fd00::1/128"), b);
        Assert.Same(a, table.Lookup(A("192.168.1.1")));
        Assert.Null(table.Lookup(A("192.168.1.0")));
        Assert.Same(b, table.Lookup(A("fd00::1")));
        Assert.Null(table.Lookup(A("fd00::0")));
        Assert.Null(table.Lookup(A("fd00::3")));
    }

    [Fact]
    public void Insert_HostBitsSet_AreMasked()
    {
        var table = new AllowedIps<Peer>();
        var a = new Peer("a");
        table.Insert(P("10.0.0.1/24"), a);
        Assert.Equal([P("10.0.0.0/24")], table.EntriesForPeer(a));
        Assert.Same(a, table.Lookup(A("10.0.0.200")));
    }

    [Fact]
    public void Insert_SamePrefixOtherPeer_ReplacesOwner()
    {
        var table = new AllowedIps<Peer>();
        Peer a = new("a"), b = new("b");
        table.Insert(P("10.0.0.0/24"), a);
        table.Insert(P("10.0.0.0/24"), b);
        Assert.Same(b, table.Lookup(A("10.0.0.5")));
        Assert.Empty(table.EntriesForPeer(a));
        Assert.Equal([P("10.0.0.0/24")], table.EntriesForPeer(b));
        Assert.Equal(1, table.Count);
    }

    [Fact]
    public void Insert_SamePrefixSamePeerTwice_KeepsOneEntry()
    {
        var table = new AllowedIps<Peer>();
        var a = new Peer("a");
        table.Insert(P("10.0.0.0/24"), a);
        table.Insert(P("10.0.0.9/24"), a);
        Assert.Equal([P("10.0.0.0/24")], table.EntriesForPeer(a));
    }

    [Fact]
    public void Remove_OtherPeersPrefix_ReturnsFalseAndKeepsIt()
    {
        var table = new AllowedIps<Peer>();
        Peer a = new("a"), b = new("b");
        table.Insert(P("10.0.0.0/24"), a);
        Assert.False(table.Remove(P("10.0.0.0/24"), b));
        Assert.Same(a, table.Lookup(A("10.0.0.1")));
    }

    [Fact]
    public void Remove_MoreSpecific_FallsBackToLessSpecific()
    {
        var table = new AllowedIps<Peer>();
        Peer a = new("a"), b = new("b");
        table.Insert(P("10.0.0.0/8"), a);
        table.Insert(P("10.0.0.0/24"), b);
        Assert.True(table.Remove(P("10.0.0.0/24"), b));
        Assert.Same(a, table.Lookup(A("10.0.0.1")));
    }

    [Fact]
    public void RemoveByPeer_RemovesOnlyThatPeersPrefixes()
    {
        var table = new AllowedIps<Peer>();
        Peer a = new("a"), b = new("b");
        table.Insert(P("10.0.0.0/24"), a);
        table.Insert(P("fd00::/64"), a);
        table.Insert(P("10.0.1.0/24"), b);
        table.Insert(P("0.0.0.0/0"), b);
        table.RemoveByPeer(a);
        Assert.Empty(table.EntriesForPeer(a));
        Assert.Same(b, table.Lookup(A("10.0.0.1")));
        Assert.Null(table.Lookup(A("fd00::1")));
        Assert.Equal(2, table.Count);
    }

    [Fact]
    public void EntriesForPeer_ReturnsInsertionOrder()
    {
        var table = new AllowedIps<Peer>();
        var a = new Peer("a");
        IpPrefix[] prefixes = [P("fd00::/64"), P("10.0.0.0/24"), P("0.0.0.0/0"), P("192.168.0.1/32")];
        foreach (var p in prefixes)
        {
            table.Insert(p, a);
        }

        Assert.Equal(prefixes, table.EntriesForPeer(a));
    }

    [Fact]
    public void Clear_RemovesEverything()
    {
        var table = new AllowedIps<Peer>();
        var a = new Peer("a");
        table.Insert(P("0.0.0.0/0"), a);
        table.Insert(P("::/0"), a);
        table.Clear();
        Assert.Null(table.Lookup(A("1.1.1.1")));
        Assert.Null(table.Lookup(A("::1")));
        Assert.Empty(table.EntriesForPeer(a));
    }

    [Fact]
    public void Insert_LengthOutOfRange_Throws()
    {
        var table = new AllowedIps<Peer>();
        Assert.Throws<ArgumentException>(() => table.Insert(new IpPrefix(IPAddress.Parse("10.0.0.0"), 33), new Peer("a")));
    }

    [Fact]
    public void Lookup_ConcurrentWithWrites_NeverSeesForeignPeer()
    {
        // A stable /16 owned by `stable`; a writer churns unrelated /24s elsewhere. Readers must always see `stable`.
        var table = new AllowedIps<Peer>();
        Peer stable = new("stable"), churn = new("churn");
        table.Insert(P("10.1.0.0/16"), stable);
        using var cts = new CancellationTokenSource(TimeSpan.FromMilliseconds(300));
        var writer = Task.Run(() =>
        {
            var i = 0;
            while (!cts.IsCancellationRequested)
            {
                var p = new IpPrefix(new IPAddress(new byte[] { 10, (byte)(2 + (i % 200)), (byte)(i / 200 % 256), 0 }), 24);
                table.Insert(p, churn);
                if (i % 3 == 0)
                {
                    table.Remove(p, churn);
                }

                i++;
            }
        });
        var probe = A("10.1.2.3");
        var misses = 0;
        while (!writer.IsCompleted)
        {
            if (!ReferenceEquals(table.Lookup(probe), stable))
            {
                misses++;
            }
        }

        writer.Wait();
        Assert.Equal(0, misses);
    }

    [Theory]
    [InlineData(1)]
    [InlineData(2)]
    [InlineData(3)]
    public void Lookup_RandomV4_MatchesNaiveRouter(int seed) => Differential(seed, v6: false, prefixCount: 3000, lookups: 8000);

    [Theory]
    [InlineData(11)]
    [InlineData(12)]
    [InlineData(13)]
    public void Lookup_RandomV6_MatchesNaiveRouter(int seed) => Differential(seed, v6: true, prefixCount: 3000, lookups: 8000);

    // A naive router: a list of (masked prefix, peer) where an identical prefix replaces the owner; lookup scans
    // every entry for the longest prefix whose leading bits equal the address's.
    private sealed class NaiveRouter
    {
        private readonly List<(IpPrefix Prefix, byte[] Bytes, Peer Peer)> _entries = [];

        public void Insert(IpPrefix prefix, Peer peer)
        {
            var masked = prefix.Masked();
            _entries.RemoveAll(e => e.Prefix == masked);
            _entries.Add((masked, masked.Address.ToIPAddress().GetAddressBytes(), peer));
        }

        public void Remove(IpPrefix prefix, Peer peer)
        {
            var masked = prefix.Masked();
            _entries.RemoveAll(e => e.Prefix == masked && e.Peer == peer);
        }

        public void RemoveByPeer(Peer peer) => _entries.RemoveAll(e => e.Peer == peer);

        public List<IpPrefix> EntriesFor(Peer peer) => [.. _entries.Where(e => e.Peer == peer).Select(e => e.Prefix)];

        public Peer? Lookup(byte[] address)
        {
            Peer? best = null;
            var bestLength = -1;
            foreach (var (prefix, bytes, peer) in _entries)
            {
                if (prefix.Length > bestLength && bytes.Length == address.Length && LeadingBitsEqual(bytes, address, prefix.Length))
                {
                    best = peer;
                    bestLength = prefix.Length;
                }
            }

            return best;
        }

        private static bool LeadingBitsEqual(byte[] a, byte[] b, int bits)
        {
            var i = 0;
            for (; bits >= 8; bits -= 8, i++)
            {
                if (a[i] != b[i])
                {
                    return false;
                }
            }

            return bits == 0 || ((a[i] ^ b[i]) & (0xFF00 >> bits) & 0xFF) == 0;
        }
    }

    private void Differential(int seed, bool v6, int prefixCount, int lookups)
    {
        output.WriteLine($"seed={seed} v6={v6}");
        var rng = new Random(seed);
        var size = v6 ? 16 : 4;
        var bits = size * 8;
        var peers = Enumerable.Range(0, 64).Select(i => new Peer("p" + i)).ToArray();
        var table = new AllowedIps<Peer>();
        var naive = new NaiveRouter();
        var inserted = new List<(IpPrefix, Peer)>();

        // Clustered addresses so prefixes nest and share long common prefixes (the interesting trie cases).
        var bases = Enumerable.Range(0, 8).Select(_ => RandomBytes(rng, size)).ToArray();
        byte[] RandomAddress()
        {
            var a = (byte[])bases[rng.Next(bases.Length)].Clone();
            var keep = rng.Next(bits + 1);
            for (var bit = keep; bit < bits; bit++)
            {
                if (rng.Next(2) == 1)
                {
                    a[bit / 8] ^= (byte)(0x80 >> (bit % 8));
                }
            }

            return a;
        }

        for (var i = 0; i < prefixCount; i++)
        {
            var prefix = new IpPrefix(new IPAddress(RandomAddress()), rng.Next(bits + 1));
            var peer = peers[rng.Next(peers.Length)];
            table.Insert(prefix, peer);
            naive.Insert(prefix, peer);
            inserted.Add((prefix, peer));
        }

        Check(rng, table, naive, lookups, RandomAddress, seed);

        // Random removals (some of them not owned by the named peer any more), then a RemoveByPeer.
        for (var i = 0; i < prefixCount / 2; i++)
        {
            var (prefix, peer) = inserted[rng.Next(inserted.Count)];
            table.Remove(prefix, peer);
            naive.Remove(prefix, peer);
        }

        table.RemoveByPeer(peers[0]);
        naive.RemoveByPeer(peers[0]);
        Check(rng, table, naive, lookups, RandomAddress, seed);

        foreach (var peer in peers)
        {
            Assert.Equal(naive.EntriesFor(peer).OrderBy(p => p.ToString()), table.EntriesForPeer(peer).OrderBy(p => p.ToString()));
        }
    }

    private static void Check(Random rng, AllowedIps<Peer> table, NaiveRouter naive, int lookups, Func<byte[]> randomAddress, int seed)
    {
        for (var i = 0; i < lookups; i++)
        {
            var address = rng.Next(4) == 0 ? RandomBytes(rng, randomAddress().Length) : randomAddress();
            var expected = naive.Lookup(address);
            var actual = table.Lookup(address);
            if (!ReferenceEquals(expected, actual))
            {
                Assert.Fail($"seed {seed}: lookup {new IPAddress(address)} gave {actual?.ToString() ?? "null"}, expected {expected?.ToString() ?? "null"}");
            }
        }
    }

    private static byte[] RandomBytes(Random rng, int size)
    {
        var b = new byte[size];
        rng.NextBytes(b);
        return b;
    }
}
