using System.Buffers.Binary;
using System.Net;
using System.Net.Sockets;
using Sharptun.NetStack.Dns;
using Sharptun.Testing.Dns;

namespace Sharptun.NetStack.Tests.Dns;

/// <summary>
/// EDNS(0) (RFC 6891), search domains and hostile answers, end to end: a <see cref="DnsTestServer"/> on stack B, the
/// resolver on stack A (<see cref="DnsResolverTestBed"/>).
/// </summary>
public sealed class DnsResolverEdnsTests : DnsResolverTestBed
{
    [Fact]
    public async Task Resolve_AnswerLargerThan512_ComesOverUdpWithEdns()
    {
        var server = Server(ServerV4);
        var expected = AddMany(server, "many.example.com", 60, v6: false); // 12 + 22 + 60 * 16 + 11 = 1005 octets
        var resolver = new DnsResolver(Stacks.A, [ServerV4]);
        Assert.Equal(expected, await resolver.ResolveAsync("many.example.com", AddressFamily.InterNetwork));
        Assert.Equal(1, server.UdpQueries);
        Assert.Equal(0, server.TcpQueries);
        Assert.Equal(1, server.OptQueries);
        Assert.Equal(0, server.BadOptQueries);
        Assert.Equal(DnsMessage.EdnsUdpPayloadSize, server.LastPayloadSize);
        Assert.Equal(0, resolver.TcpRetries);
    }

    [Fact]
    public async Task Resolve_AnswerLargerThan1232_TruncatedThenOverTcp()
    {
        var server = Server(ServerV4);
        var expected = AddMany(server, "huge.example.com", 60, v6: true); // 60 * 28 > 1232
        var resolver = new DnsResolver(Stacks.A, [ServerV4]);
        Assert.Equal(expected, await resolver.ResolveAsync("huge.example.com", AddressFamily.InterNetworkV6));
        Assert.Equal(1, server.UdpQueries);
        Assert.Equal(1, server.TcpQueries);
        Assert.Equal(2, server.OptQueries); // the OPT record goes over TCP too
        Assert.Equal(1, resolver.TcpRetries);
    }

    [Theory]
    [InlineData(DnsMessage.FormatError, false)]
    [InlineData(DnsMessage.NotImplemented, false)]
    [InlineData(DnsMessage.FormatError, true)]
    public async Task Resolve_ServerRejectsOpt_AsksAgainWithoutIt_AndRemembers(int rcode, bool withoutQuestion)
    {
        var server = Server(ServerV4);
        server.RejectOpt = rcode;
        server.RejectOptWithoutQuestion = withoutQuestion;
        server.AddAddress("old.example.com", IPAddress.Parse("192.0.2.30"));
        var expected = AddMany(server, "big.example.com", 40, v6: false); // 12 + 21 + 640 > 512: TC without EDNS
        var resolver = new DnsResolver(Stacks.A, [ServerV4]);
        Assert.Equal([IPAddress.Parse("192.0.2.30")], await resolver.ResolveAsync("old.example.com", AddressFamily.InterNetwork));
        Assert.Equal(1, resolver.EdnsFallbacks);
        Assert.Equal(1, server.OptQueries);
        Assert.Equal(2, server.UdpQueries);

        // remembered: the next lookup sends no OPT; its answer does not fit 512 octets, so it comes over TCP
        Assert.Equal(expected, await resolver.ResolveAsync("big.example.com", AddressFamily.InterNetwork));
        Assert.Equal(1, resolver.EdnsFallbacks);
        Assert.Equal(1, server.OptQueries);
        Assert.Equal(1, server.TcpQueries);
        Assert.Equal(-1, server.LastPayloadSize);
    }

    [Fact]
    public async Task Resolve_ConcurrentLookupsToAServerThatRejectsOpt_AllAnswered_FallbackRaced()
    {
        var server = Server(ServerV4);
        server.RejectOpt = DnsMessage.FormatError;
        for (var i = 0; i < 32; i++)
        {
            server.AddAddress($"r{i}.example.com", IPAddress.Parse($"192.0.2.{i + 1}"));
        }

        var resolver = new DnsResolver(Stacks.A, [ServerV4], new DnsResolverOptions { CacheCapacity = 0 });
        using var start = new Barrier(8);
        var workers = Enumerable.Range(0, 8).Select(w => Task.Run(async () =>
        {
            start.SignalAndWait();
            for (var n = 0; n < 8; n++)
            {
                var i = ((w * 8) + n) % 32;
                Assert.Equal([IPAddress.Parse($"192.0.2.{i + 1}")], await resolver.ResolveAsync($"r{i}.example.com", AddressFamily.InterNetwork));
            }
        }));
        await Task.WhenAll(workers);

        // only lookups that raced the first fallback sent OPT; none after it was recorded
        Assert.InRange(resolver.EdnsFallbacks, 1, 8);
        Assert.InRange(server.OptQueries, resolver.EdnsFallbacks, 8 + 8); // more only if a datagram was lost and retried
        Assert.True(server.UdpQueries >= 64 + resolver.EdnsFallbacks, $"{server.UdpQueries} queries");
    }

    [Fact]
    public async Task Resolve_SearchDomains_SingleLabelTriesEachDomainThenTheBareName()
    {
        var server = Server(ServerV4);
        server.AddAddress("db.second.example", IPAddress.Parse("192.0.2.41"));
        server.AddAddress("printer", IPAddress.Parse("192.0.2.42"));
        server.AddAddress("web.corp", IPAddress.Parse("192.0.2.43"));
        var options = new DnsResolverOptions { NegativeCacheTtl = TimeSpan.Zero };
        options.SearchDomains.Add("first.example.");
        options.SearchDomains.Add("Second.Example");
        var resolver = new DnsResolver(Stacks.A, [ServerV4], options);
        Assert.Equal(["first.example", "second.example"], resolver.SearchDomains);

        // db.first.example (NXDOMAIN), then db.second.example
        Assert.Equal([IPAddress.Parse("192.0.2.41")], await resolver.ResolveAsync("db", AddressFamily.InterNetwork));
        Assert.Equal(2, server.UdpQueries);

        // printer.first.example, printer.second.example, then printer
        Assert.Equal([IPAddress.Parse("192.0.2.42")], await resolver.ResolveAsync("printer", AddressFamily.InterNetwork));
        Assert.Equal(5, server.UdpQueries);

        // a dotted name and a name with a trailing dot are fully qualified: one query each
        Assert.Equal([IPAddress.Parse("192.0.2.43")], await resolver.ResolveAsync("web.corp", AddressFamily.InterNetwork));
        Assert.Equal(6, server.UdpQueries);
        var e = await Assert.ThrowsAsync<SocketException>(() => resolver.ResolveAsync("db.", AddressFamily.InterNetwork).AsTask());
        Assert.Equal(SocketError.HostNotFound, e.SocketErrorCode);
        Assert.Equal(7, server.UdpQueries);

        // nowhere: NXDOMAIN after all three candidates
        e = await Assert.ThrowsAsync<SocketException>(() => resolver.ResolveAsync("nothing", AddressFamily.InterNetwork).AsTask());
        Assert.Equal(SocketError.HostNotFound, e.SocketErrorCode);
        Assert.Equal(10, server.UdpQueries);

        // localhost never leaves the process (RFC 6761 §6.3), search domains or not
        Assert.Equal([IPAddress.Loopback, IPAddress.IPv6Loopback], await resolver.ResolveAsync("localhost"));
        Assert.Equal([IPAddress.Loopback], await resolver.ResolveAsync("LocalHost.", AddressFamily.InterNetwork));
        Assert.Equal(10, server.UdpQueries);
    }

    [Fact]
    public void SearchDomains_Invalid_Rejected()
    {
        foreach (var bad in new[] { "", "a..b", "bad domain", "10.0.0.1", new string('a', 64) })
        {
            var options = new DnsResolverOptions();
            options.SearchDomains.Add(bad);
            Assert.Throws<ArgumentException>(() => new DnsResolver(Stacks.A, [ServerV4], options));
        }
    }

    public static TheoryData<string> Garbage() =>
    [
        "two OPT records", "OPT in the answer section", "OPT option longer than RDATA", "OPT owner not root",
        "cut short", "compression loop", "additional count overflow", "random bytes",
    ];

    /// <summary>A server that answers only garbage: every answer is a counted drop and the lookup fails with TryAgain, never a crash or hang.</summary>
    [Theory]
    [MemberData(nameof(Garbage))]
    public async Task Resolve_GarbageAnswers_CountedDropsThenTryAgain(string what)
    {
        var server = Server(ServerV4);
        server.AddAddress("bad.example.com", IPAddress.Parse("192.0.2.50"));
        server.RewriteUdp = answer => Garble(what, answer);
        var resolver = new DnsResolver(Stacks.A, [ServerV4], new DnsResolverOptions { Timeout = TimeSpan.FromSeconds(1), Attempts = 2 });
        var e = await Assert.ThrowsAsync<SocketException>(() => resolver.ResolveAsync("bad.example.com", AddressFamily.InterNetwork).AsTask());
        Assert.Equal(SocketError.TryAgain, e.SocketErrorCode);
        Assert.InRange(resolver.ResponsesDropped, 1, 2); // one per attempt (a very slow machine may time out first)
        Assert.Equal(0, resolver.EdnsFallbacks);

        // the server mends its ways: the same resolver works
        server.RewriteUdp = null;
        Assert.Equal([IPAddress.Parse("192.0.2.50")], await resolver.ResolveAsync("bad.example.com", AddressFamily.InterNetwork));
    }

    private static byte[] Garble(string what, byte[] answer)
    {
        // the test server's answer: header, question, one A record (owner pointer to 12), OPT (11 octets, ARCOUNT 1)
        var opt = answer[^11..];
        var withoutOpt = answer[..^11];
        switch (what)
        {
            case "two OPT records":
                return SetCount([.. answer, .. opt], 10, 2);
            case "OPT in the answer section":
                return SetCount(SetCount([.. withoutOpt, .. opt], 6, (ushort)(BinaryPrimitives.ReadUInt16BigEndian(answer.AsSpan(6)) + 1)), 10, 0);
            case "OPT option longer than RDATA":
                opt[10] = 5;
                return [.. withoutOpt, .. opt, 0, 8, 0xFF, 0xFF, 1];
            case "OPT owner not root":
                return [.. withoutOpt, 0xC0, 12, .. opt[1..]];
            case "cut short":
                return answer[..^14];
            case "compression loop":
                var at = withoutOpt.Length - 16; // the A record's owner pointer
                withoutOpt[at] = (byte)(0xC0 | (at >> 8));
                withoutOpt[at + 1] = (byte)at;
                return [.. withoutOpt, .. opt];
            case "additional count overflow":
                return SetCount(answer, 10, 0xFFFF);
            default:
                var random = new byte[answer.Length];
                Random.Shared.NextBytes(random);
                answer.AsSpan(0, 4).CopyTo(random); // our ID and flags: it reaches the parser
                return random;
        }
    }

    private static byte[] SetCount(byte[] message, int offset, ushort count)
    {
        BinaryPrimitives.WriteUInt16BigEndian(message.AsSpan(offset), count);
        return message;
    }

    private static IPAddress[] AddMany(DnsTestServer server, string name, int count, bool v6)
    {
        var addresses = Enumerable.Range(1, count).Select(i => IPAddress.Parse(v6 ? $"2001:db8::{i:x}" : $"192.0.2.{i}")).ToArray();
        foreach (var address in addresses)
        {
            server.AddAddress(name, address);
        }

        return addresses;
    }
}
