using System.Net;
using Sharptun.NetStack.Dns;

namespace Sharptun.NetStack.Tests.Dns;

/// <summary>The resolver's TTL cache on a hand-moved clock, and raced from several threads.</summary>
public sealed class DnsCacheTests
{
    [Fact]
    public void Entry_ExpiresWithItsTtlCappedByMax()
    {
        var clock = new ManualClock();
        var cache = new DnsCache(8, TimeSpan.FromSeconds(60), TimeSpan.FromSeconds(5), clock);
        cache.Add("a", DnsRecordType.A, [IPAddress.Loopback], ttlSeconds: 3600);
        cache.Add("zero", DnsRecordType.A, [IPAddress.Loopback], ttlSeconds: 0);
        cache.AddNegative("nx", DnsRecordType.A);
        Assert.False(cache.TryGet("zero", DnsRecordType.A, out _));
        Assert.True(cache.TryGet("nx", DnsRecordType.A, out var negative));
        Assert.Null(negative);
        Assert.False(cache.TryGet("a", DnsRecordType.Aaaa, out _));
        clock.Now += TimeSpan.FromSeconds(59);
        Assert.True(cache.TryGet("a", DnsRecordType.A, out var addresses));
        Assert.Equal([IPAddress.Loopback], addresses);
        Assert.False(cache.TryGet("nx", DnsRecordType.A, out _));
        clock.Now += TimeSpan.FromSeconds(1);
        Assert.False(cache.TryGet("a", DnsRecordType.A, out _));
    }

    [Fact]
    public void Full_EvictsExpiredThenSoonestToExpire()
    {
        var clock = new ManualClock();
        var cache = new DnsCache(2, TimeSpan.FromHours(1), TimeSpan.Zero, clock);
        cache.Add("long", DnsRecordType.A, [IPAddress.Loopback], 100);
        cache.Add("short", DnsRecordType.A, [IPAddress.Loopback], 10);
        cache.Add("new", DnsRecordType.A, [IPAddress.Loopback], 50);
        Assert.Equal(2, cache.Count);
        Assert.False(cache.TryGet("short", DnsRecordType.A, out _));
        Assert.True(cache.TryGet("long", DnsRecordType.A, out _));
        Assert.True(cache.TryGet("new", DnsRecordType.A, out _));
        cache.AddNegative("nx", DnsRecordType.A); // negative caching off
        Assert.False(cache.TryGet("nx", DnsRecordType.A, out _));
    }

    [Fact]
    public void Raced_FromManyThreads_StaysWithinCapacityAndConsistent()
    {
        var cache = new DnsCache(16, TimeSpan.FromHours(1), TimeSpan.FromSeconds(5), TimeProvider.System);
        Parallel.For(0, 8, t =>
        {
            for (var i = 0; i < 20_000; i++)
            {
                var name = "h" + (i * 7 + t) % 64;
                var address = new IPAddress((i * 7 + t) % 64);
                cache.Add(name, DnsRecordType.A, [address], 60);
                if (cache.TryGet(name, DnsRecordType.A, out var found))
                {
                    Assert.Equal([address], found);
                }

                Assert.True(cache.Count <= 16);
            }
        });
    }

    private sealed class ManualClock : TimeProvider
    {
        public DateTimeOffset Now { get; set; } = new(2026, 1, 1, 0, 0, 0, TimeSpan.Zero);

        public override DateTimeOffset GetUtcNow() => Now;
    }
}
