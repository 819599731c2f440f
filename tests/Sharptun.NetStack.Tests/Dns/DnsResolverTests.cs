using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using Sharptun.NetStack.Dns;
using Sharptun.Testing;
using Sharptun.Testing.Dns;

namespace Sharptun.NetStack.Tests.Dns;

/// <summary>
/// End to end: a <see cref="DnsTestServer"/> on stack B, the resolver on stack A, the stacks joined by
/// <see cref="LinkedStacks"/> on real time (<see cref="DnsResolverTestBed"/>).
/// </summary>
public sealed class DnsResolverTests : DnsResolverTestBed
{
    [Fact]
    public async Task Resolve_A_ReturnsTheRecord()
    {
        var server = Server(ServerV4);
        server.AddAddress("www.example.com", IPAddress.Parse("192.0.2.10"));
        server.AddAddress("www.example.com", IPAddress.Parse("192.0.2.11"));
        var resolver = new DnsResolver(Stacks.A, [ServerV4]);
        var addresses = await resolver.ResolveAsync("www.example.com", AddressFamily.InterNetwork);
        Assert.Equal([IPAddress.Parse("192.0.2.10"), IPAddress.Parse("192.0.2.11")], addresses);
        Assert.Equal(1, server.UdpQueries);
    }

    [Fact]
    public async Task Resolve_AaaaOverIpv6Server_ReturnsTheRecord()
    {
        var server = Server(ServerV6);
        server.AddAddress("v6.example.com", IPAddress.Parse("2001:db8::7"));
        var resolver = new DnsResolver(Stacks.A, [ServerV6]);
        Assert.Equal([IPAddress.Parse("2001:db8::7")], await resolver.ResolveAsync("v6.example.com.", AddressFamily.InterNetworkV6));
    }

    [Fact]
    public async Task Resolve_BothFamilies_IPv4First()
    {
        var server = Server(ServerV4);
        server.AddAddress("dual.example.com", IPAddress.Parse("2001:db8::1"));
        server.AddAddress("dual.example.com", IPAddress.Parse("192.0.2.1"));
        var resolver = new DnsResolver(Stacks.A, [ServerV4]);
        Assert.Equal([IPAddress.Parse("192.0.2.1"), IPAddress.Parse("2001:db8::1")], await resolver.ResolveAsync("Dual.Example.com"));
        Assert.Equal(2, server.UdpQueries);

        server.AddAddress("v4only.example.com", IPAddress.Parse("192.0.2.2"));
        Assert.Equal([IPAddress.Parse("192.0.2.2")], await resolver.ResolveAsync("v4only.example.com"));
        var noData = await Assert.ThrowsAsync<SocketException>(() => resolver.ResolveAsync("v4only.example.com", AddressFamily.InterNetworkV6).AsTask());
        Assert.Equal(SocketError.NoData, noData.SocketErrorCode);
    }

    [Fact]
    public async Task Resolve_CnameChain_ReturnsTheTargetsAddress()
    {
        var server = Server(ServerV4);
        server.AddCname("alias.example.com", "middle.example.net");
        server.AddCname("middle.example.net", "host.example.org");
        server.AddAddress("host.example.org", IPAddress.Parse("203.0.113.5"));
        var resolver = new DnsResolver(Stacks.A, [ServerV4]);
        Assert.Equal([IPAddress.Parse("203.0.113.5")], await resolver.ResolveAsync("alias.example.com", AddressFamily.InterNetwork));
    }

    [Fact]
    public async Task Resolve_NxDomain_ThrowsHostNotFoundAndCachesIt()
    {
        var server = Server(ServerV4);
        var resolver = new DnsResolver(Stacks.A, [ServerV4]);
        var e = await Assert.ThrowsAsync<SocketException>(() => resolver.ResolveAsync("nope.example.com").AsTask());
        Assert.Equal(SocketError.HostNotFound, e.SocketErrorCode);
        var queries = server.UdpQueries;
        e = await Assert.ThrowsAsync<SocketException>(() => resolver.ResolveAsync("nope.example.com").AsTask());
        Assert.Equal(SocketError.HostNotFound, e.SocketErrorCode);
        Assert.Equal(queries, server.UdpQueries);
    }

    [Fact]
    public async Task Resolve_Cached_NoSecondQueryUntilTtlRunsOut()
    {
        var server = Server(ServerV4);
        server.Ttl = 2;
        server.AddAddress("cache.example.com", IPAddress.Parse("192.0.2.3"));
        var resolver = new DnsResolver(Stacks.A, [ServerV4]);
        await resolver.ResolveAsync("cache.example.com", AddressFamily.InterNetwork);
        await resolver.ResolveAsync("CACHE.example.com", AddressFamily.InterNetwork);
        Assert.Equal(1, server.UdpQueries);
        Assert.Equal(1, resolver.CacheHits);
        await Task.Delay(2100);
        await resolver.ResolveAsync("cache.example.com", AddressFamily.InterNetwork);
        Assert.Equal(2, server.UdpQueries);
    }

    [Fact]
    public async Task Resolve_FirstServerNeverAnswers_FallsOverToTheSecond()
    {
        var silent = Server(ServerV4);
        silent.Silent = true;
        var good = Server(ServerV6);
        good.AddAddress("www.example.com", IPAddress.Parse("192.0.2.9"));
        var resolver = new DnsResolver(Stacks.A, [ServerV4, ServerV6], new DnsResolverOptions { Timeout = TimeSpan.FromMilliseconds(300) });
        var watch = Stopwatch.StartNew();
        Assert.Equal([IPAddress.Parse("192.0.2.9")], await resolver.ResolveAsync("www.example.com", AddressFamily.InterNetwork));
        Assert.True(watch.Elapsed >= TimeSpan.FromMilliseconds(250), $"answered after {watch.Elapsed}");
        Assert.Equal(1, silent.UdpQueries);
        Assert.Equal(1, good.UdpQueries);
    }

    [Fact]
    public async Task Resolve_NoServerAnswers_FailsWithTryAgainAfterEveryAttempt()
    {
        var silent = Server(ServerV4);
        silent.Silent = true;
        var nobody = IPAddress.Parse("10.0.0.99"); // not on the link: B drops what is sent there
        var resolver = new DnsResolver(Stacks.A, [ServerV4, nobody], new DnsResolverOptions { Timeout = TimeSpan.FromMilliseconds(200), Attempts = 2 });
        var watch = Stopwatch.StartNew();
        var e = await Assert.ThrowsAsync<SocketException>(() => resolver.ResolveAsync("www.example.com", AddressFamily.InterNetwork).AsTask());
        Assert.Equal(SocketError.TryAgain, e.SocketErrorCode);
        Assert.InRange(watch.Elapsed, TimeSpan.FromMilliseconds(750), TimeSpan.FromSeconds(10));
        Assert.Equal(2, silent.UdpQueries);
        Assert.Equal(4, resolver.QueriesSent);
    }

    [Fact]
    public async Task Resolve_PortUnreachable_MovesToTheNextServerWithoutWaitingForTheTimeout()
    {
        // Nothing listens on 10.0.0.2:53: B answers with ICMP port unreachable.
        var good = Server(ServerV6);
        good.AddAddress("www.example.com", IPAddress.Parse("192.0.2.8"));
        var resolver = new DnsResolver(Stacks.A, [ServerV4, ServerV6], new DnsResolverOptions { Timeout = TimeSpan.FromSeconds(20) });
        var watch = Stopwatch.StartNew();
        Assert.Equal([IPAddress.Parse("192.0.2.8")], await resolver.ResolveAsync("www.example.com", AddressFamily.InterNetwork));
        Assert.True(watch.Elapsed < TimeSpan.FromSeconds(10), $"answered after {watch.Elapsed}");
        Assert.Equal(2, resolver.QueriesSent);
    }

    [Fact]
    public async Task Resolve_ServFail_MovesToTheNextServer()
    {
        var failing = Server(ServerV4);
        failing.ResponseCode = 2;
        var good = Server(ServerV6);
        good.AddAddress("www.example.com", IPAddress.Parse("192.0.2.4"));
        var resolver = new DnsResolver(Stacks.A, [ServerV4, ServerV6]);
        Assert.Equal([IPAddress.Parse("192.0.2.4")], await resolver.ResolveAsync("www.example.com", AddressFamily.InterNetwork));
        Assert.Equal(1, failing.UdpQueries);
    }

    [Fact]
    public async Task Resolve_SpoofedAnswerWithWrongId_IsIgnored()
    {
        var server = Server(ServerV4);
        server.SpoofWrongIdFirst = true;
        server.AddAddress("bank.example.com", IPAddress.Parse("192.0.2.77"));
        var resolver = new DnsResolver(Stacks.A, [ServerV4]);
        Assert.Equal([IPAddress.Parse("192.0.2.77")], await resolver.ResolveAsync("bank.example.com", AddressFamily.InterNetwork));
        Assert.Equal(1, resolver.ResponsesDropped);
    }

    [Fact]
    public async Task Resolve_Truncated_RetriesOverTcp()
    {
        var server = Server(ServerV4);
        server.TruncateUdp = true;
        server.AddAddress("big.example.com", IPAddress.Parse("192.0.2.55"));
        var resolver = new DnsResolver(Stacks.A, [ServerV4]);
        Assert.Equal([IPAddress.Parse("192.0.2.55")], await resolver.ResolveAsync("big.example.com", AddressFamily.InterNetwork));
        Assert.Equal(1, server.UdpQueries);
        Assert.Equal(1, server.TcpQueries);
        Assert.Equal(1, resolver.TcpRetries);
    }

    [Fact]
    public async Task Resolve_LiteralsAndLocalhost_SendNoQuery()
    {
        var server = Server(ServerV4);
        var resolver = new DnsResolver(Stacks.A, [ServerV4]);
        Assert.Equal([IPAddress.Parse("192.0.2.1")], await resolver.ResolveAsync("192.0.2.1"));
        Assert.Equal([IPAddress.Parse("2001:db8::1")], await resolver.ResolveAsync("[2001:db8::1]"));
        Assert.Empty(await resolver.ResolveAsync("192.0.2.1", AddressFamily.InterNetworkV6));
        Assert.Equal([IPAddress.Loopback, IPAddress.IPv6Loopback], await resolver.ResolveAsync("localhost"));
        Assert.Equal([IPAddress.IPv6Loopback], await resolver.ResolveAsync("app.LOCALHOST.", AddressFamily.InterNetworkV6));
        Assert.Equal(0, resolver.QueriesSent);
        Assert.Equal(0, server.UdpQueries);
    }

    [Fact]
    public async Task Resolve_BadInput_ThrowsArgumentException()
    {
        var resolver = new DnsResolver(Stacks.A, [ServerV4]);
        await Assert.ThrowsAsync<ArgumentException>(() => resolver.ResolveAsync("a..b").AsTask());
        await Assert.ThrowsAsync<ArgumentException>(() => resolver.ResolveAsync(new string('a', 64) + ".com").AsTask());
        await Assert.ThrowsAsync<ArgumentException>(() => resolver.ResolveAsync("x.com", AddressFamily.Unix).AsTask());
        Assert.Throws<ArgumentException>(() => new DnsResolver(Stacks.A, []));
        Assert.Throws<ArgumentOutOfRangeException>(() => new DnsResolver(Stacks.A, [ServerV4], new DnsResolverOptions { Attempts = 0 }));
    }

    [Fact]
    public async Task Resolve_Cancelled_ThrowsOperationCanceled()
    {
        var server = Server(ServerV4);
        server.Silent = true;
        var resolver = new DnsResolver(Stacks.A, [ServerV4], new DnsResolverOptions { Timeout = TimeSpan.FromSeconds(30) });
        using var cts = new CancellationTokenSource(TimeSpan.FromMilliseconds(100));
        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => resolver.ResolveAsync("www.example.com", AddressFamily.Unspecified, cts.Token).AsTask());
    }

    [Fact]
    public async Task Resolve_ConcurrentLookupsThroughASmallCache_AllCorrect()
    {
        var server = Server(ServerV4);
        for (var i = 0; i < 20; i++)
        {
            server.AddAddress($"h{i}.example.com", IPAddress.Parse($"192.0.2.{i + 1}"));
        }

        var resolver = new DnsResolver(Stacks.A, [ServerV4], new DnsResolverOptions { CacheCapacity = 4 });
        var lookups = Enumerable.Range(0, 200).Select(async n =>
        {
            var i = n % 20;
            var addresses = await resolver.ResolveAsync($"h{i}.example.com", AddressFamily.InterNetwork);
            Assert.Equal([IPAddress.Parse($"192.0.2.{i + 1}")], addresses);
        });
        await Task.WhenAll(lookups);
        // Every lookup was a cache hit or sent at least one query (a burst of 200 may lose some and retry).
        Assert.True(resolver.CacheHits + resolver.QueriesSent >= 200, $"{resolver.CacheHits} hits, {resolver.QueriesSent} queries");
    }
}
