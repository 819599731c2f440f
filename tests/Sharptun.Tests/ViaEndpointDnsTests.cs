using System.Net;
using System.Net.Sockets;
using System.Security.Cryptography;
using Sharptun.Protocol;

namespace Sharptun.Tests;

/// <summary>
/// Multihop and host names (issue 11): a tunnel whose UDP goes through another tunnel
/// (<see cref="WireGuardTunnel.CreateDatagramBindFactory"/>, what <c>Via =</c> does for the proxy and the gateway)
/// resolves its peers' <c>Endpoint</c> names through the outer tunnel's <c>DNS</c> servers when the outer config names
/// some, and through the host's resolver when it does not.
/// </summary>
public sealed class ViaEndpointDnsTests
{
    private static readonly TimeSpan Limit = TimeSpan.FromSeconds(60);

    [Fact]
    public async Task InnerEndpointName_OnlyTheOuterTunnelsDnsKnows_IsResolvedThroughIt_NotByTheHost()
    {
        const string Name = "exit.via.test";
        // RFC 6761 §6.2: .test names are not in the host's DNS, so only the tunnel's server can answer this one.
        await Assert.ThrowsAnyAsync<SocketException>(() => Dns.GetHostAddressesAsync(Name));

        // The outer pair: the server side's config names DNS = the client's address, where a DNS server runs in the
        // client tunnel's netstack and knows the name.
        await using var outer = await TunnelPair.StartAsync(extraServerInterface: $"DNS = {TunnelPair.ClientAddress}");
        using var dns = new Sharptun.Testing.Dns.DnsTestServer(outer.Client.Stack, TunnelPair.ClientAddress);
        dns.AddAddress(Name, TunnelPair.ClientAddress);
        using var cts = new CancellationTokenSource(Limit);
        await using (var hello = outer.Server.ListenTcp(9200))
        {
            // the client speaks first, so the server side learns its endpoint
            var accepted = hello.AcceptAsync(cts.Token).AsTask();
            await using var first = await outer.Client.ConnectAsync(TunnelPair.ServerAddress.ToString(), 9200, cts.Token);
            await using var firstAccepted = await accepted;
        }

        var viaServer = (TunnelDatagramBindFactory)outer.Server.CreateDatagramBindFactory();
        Assert.NotNull(viaServer.EndpointResolver);
        Assert.Null(((TunnelDatagramBindFactory)outer.Client.CreateDatagramBindFactory()).EndpointResolver); // no DNS: the host's

        // The inner tunnel pair: its server listens on the outer client's netstack, its client's UDP goes through the
        // outer server side, to the inner server's endpoint given by name.
        using var innerServerKey = Key.GeneratePrivateKey();
        using var innerClientKey = Key.GeneratePrivateKey();
        await using var innerServer = await WireGuardTunnel.StartAsync($"""
            [Interface]
            PrivateKey = {innerServerKey}
            ListenPort = 51998
            Address = 10.78.0.2/32
            MTU = 1340

            [Peer]
            PublicKey = {innerClientKey.DerivePublicKey()}
            AllowedIPs = 10.78.0.1/32
            """, new WireGuardTunnelOptions { BindFactory = outer.Client.CreateDatagramBindFactory() }, cts.Token);
        var queriesBefore = dns.UdpQueries + dns.TcpQueries;
        await using var innerClient = await WireGuardTunnel.StartAsync($"""
            [Interface]
            PrivateKey = {innerClientKey}
            Address = 10.78.0.1/32
            MTU = 1340

            [Peer]
            PublicKey = {innerServerKey.DerivePublicKey()}
            Endpoint = {Name}:51998
            AllowedIPs = 10.78.0.2/32
            """, new WireGuardTunnelOptions { BindFactory = viaServer }, cts.Token);
        Assert.True(dns.UdpQueries + dns.TcpQueries > queriesBefore, "the endpoint name was asked of the outer tunnel's DNS server");
        Assert.Equal(new IPEndPoint(TunnelPair.ClientAddress, 51998), innerClient.Peers.Single().Endpoint);

        // and the inner tunnel works through it
        await using var listener = innerServer.ListenTcp(7000);
        var accept = listener.AcceptAsync(cts.Token).AsTask();
        await using var stream = await innerClient.ConnectAsync("10.78.0.2", 7000, cts.Token);
        await using var served = await accept;
        var data = RandomNumberGenerator.GetBytes(100_000);
        var received = new byte[data.Length];
        var read = served.ReadExactlyAsync(received, cts.Token).AsTask(); // read while writing: the windows are smaller than the data
        await stream.WriteAsync(data, cts.Token);
        await read;
        Assert.Equal(data, received);

        // re-resolution goes the same way (the host's resolver would fail for this name)
        var resolved = await viaServer.EndpointResolver!(Name, cts.Token);
        Assert.Equal([TunnelPair.ClientAddress], resolved);
    }
}
