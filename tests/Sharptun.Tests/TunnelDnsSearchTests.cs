using System.Net;
using System.Net.Sockets;
using Sharptun.Protocol;
using Sharptun.Testing.Dns;

namespace Sharptun.Tests;

/// <summary>wg-quick's <c>DNS =</c> search domains in the facade, and <c>localhost</c> kept off the tunnel's DNS.</summary>
public sealed class TunnelDnsSearchTests
{
    private static readonly TimeSpan Limit = TimeSpan.FromSeconds(60);

    [Fact]
    public async Task DnsSearchDomains_SingleLabelNameTriedInThem_ThenBare_LocalhostNeverAsked()
    {
        await using var pair = await TunnelPair.StartAsync(extraServerInterface: $"DNS = nowhere.test, {TunnelPair.ClientAddress}, tunnel.test.");
        var resolver = Assert.IsType<TunnelNameResolver>(pair.Server.Resolver).Resolver;
        Assert.Equal([TunnelPair.ClientAddress], resolver.Servers);
        Assert.Equal(["nowhere.test", "tunnel.test"], resolver.SearchDomains);
        using var dns = new DnsTestServer(pair.Client.Stack, TunnelPair.ClientAddress);
        dns.AddAddress("web.tunnel.test", TunnelPair.ClientAddress);
        using var cts = new CancellationTokenSource(Limit);

        // The client speaks first, so the server learns its endpoint (it has none configured).
        await using (var hello = pair.Server.ListenTcp(9300))
        {
            var accepted = hello.AcceptAsync(cts.Token).AsTask();
            await using var first = await pair.Client.ConnectAsync(TunnelPair.ServerAddress.ToString(), 9300, cts.Token);
            await using var firstAccepted = await accepted;
        }

        // "web": web.nowhere.test is NXDOMAIN, web.tunnel.test answers
        await using var listener = pair.Client.ListenTcp(9301);
        var accept = listener.AcceptAsync(cts.Token).AsTask();
        await using (var stream = await pair.Server.ConnectAsync("web", 9301, cts.Token))
        {
            await using var server = await accept;
        }

        Assert.Equal([TunnelPair.ClientAddress], await resolver.ResolveAsync("web.tunnel.test", AddressFamily.InterNetwork, cts.Token));
        var queries = dns.UdpQueries;
        Assert.True(queries >= 2, $"{queries} queries");

        // localhost: answered in the process (RFC 6761 §6.3), loopback, which no peer routes; the DNS server is not asked
        var loopback = await Assert.ThrowsAsync<SocketException>(async () => await pair.Server.ConnectAsync("localhost", 80, cts.Token));
        Assert.Equal(SocketError.NetworkUnreachable, loopback.SocketErrorCode);
        Assert.Equal([IPAddress.Loopback], await resolver.ResolveAsync("localhost", AddressFamily.InterNetwork, cts.Token));
        Assert.Equal(queries, dns.UdpQueries);
    }

    [Fact]
    public async Task Builder_WithDnsSearchDomain_ReachesTheResolver_BadDomainRejected()
    {
        using var key = Key.GeneratePrivateKey();
        await using var tunnel = await new WireGuardTunnelBuilder()
            .WithPrivateKey(key.ToString())
            .AddAddress("10.9.0.1/24")
            .WithDnsSearchDomain("corp.example")
            .WithDns(IPAddress.Parse("10.9.0.53"))
            .WithDnsSearchDomain("lab.example.")
            .StartAsync();
        var resolver = Assert.IsType<TunnelNameResolver>(tunnel.Resolver).Resolver;
        Assert.Equal([IPAddress.Parse("10.9.0.53")], resolver.Servers);
        Assert.Equal(["corp.example", "lab.example"], resolver.SearchDomains);
        Assert.Throws<FormatException>(() => new WireGuardTunnelBuilder().WithDnsSearchDomain("10.0.0.1"));
        Assert.Throws<FormatException>(() => new WireGuardTunnelBuilder().WithDnsSearchDomain("bad domain"));
    }

    [Theory]
    [InlineData("a..b")]
    [InlineData("bad_name!")]
    [InlineData("-lead.example")]
    public async Task DnsEntry_NeitherAddressNorDomain_IsAClearConfigError(string entry)
    {
        using var key = Key.GeneratePrivateKey();
        var e = await Assert.ThrowsAsync<FormatException>(() => WireGuardTunnel.StartAsync($"[Interface]\nPrivateKey = {key}\nAddress = 10.0.0.1/32\nDNS = 10.0.0.53, {entry}\n", CancellationToken.None));
        Assert.Contains(entry, e.Message, StringComparison.Ordinal);
        Assert.Contains("DNS", e.Message, StringComparison.Ordinal);
    }
}
