using System.Security.Cryptography;
using Sharptun.Gateway;
using Sharptun.Protocol;

namespace Sharptun.Gateway.Tests;

/// <summary>
/// Multihop in one process: the client process holds an outer tunnel to an entry gateway and an inner tunnel to an
/// exit gateway whose WireGuard UDP travels through the outer one (<see cref="WireGuardTunnel.CreateDatagramBindFactory"/>).
/// Destinations 11.0.0.0/8 are mapped to host loopback by both gateways (11.0.0.2 is the exit's WireGuard port).
/// </summary>
public sealed class MultihopTests
{
    [Fact]
    public async Task InnerTunnelThroughOuterTunnel_EntryCarriesOnlyUdp_ExitRelaysTheTcp()
    {
        using var outerKey = Key.GeneratePrivateKey();
        using var innerKey = Key.GeneratePrivateKey();
        using var entryKey = Key.GeneratePrivateKey();
        using var exitKey = Key.GeneratePrivateKey();
        await using var exit = await MultihopLab.StartGatewayAsync(exitKey, innerKey, "10.67.0.1/32", "10.67.0.2/32");
        await using var entry = await MultihopLab.StartGatewayAsync(entryKey, outerKey, "10.66.0.1/32", "10.66.0.2/32");
        await using var outer = await WireGuardTunnel.StartAsync($"""
            [Interface]
            PrivateKey = {outerKey}
            Address = 10.66.0.2/32

            [Peer]
            PublicKey = {entryKey.DerivePublicKey()}
            Endpoint = 127.0.0.1:{entry.Tunnel.ListenPort}
            AllowedIPs = 11.0.0.2/32
            """, CancellationToken.None);
        await using var inner = await WireGuardTunnel.StartAsync($"""
            [Interface]
            PrivateKey = {innerKey}
            Address = 10.67.0.2/32
            MTU = 1340

            [Peer]
            PublicKey = {exitKey.DerivePublicKey()}
            Endpoint = 11.0.0.2:{exit.Tunnel.ListenPort}
            AllowedIPs = 0.0.0.0/0
            """, new WireGuardTunnelOptions { BindFactory = outer.CreateDatagramBindFactory() }, CancellationToken.None);

        var data = RandomNumberGenerator.GetBytes(2_000_000);
        await MultihopLab.RoundTripThroughExitAsync(async port => await inner.ConnectAsync("11.0.0.1", port), data);
        // the entry saw one UDP flow (the inner tunnel's WireGuard datagrams) and no TCP; the exit relayed the TCP
        Assert.Equal(0, entry.Counters.Total.TcpRelayed);
        Assert.Equal(1, entry.Counters.Total.UdpFlows);
        Assert.True(entry.Counters.Total.BytesToDestinations > data.Length, "the inner tunnel's datagrams went through the entry");
        var exitPeer = Assert.Single(exit.Counters.Peers);
        Assert.Equal(innerKey.DerivePublicKey().ToString(), exitPeer.Key);
        Assert.Equal(1, exitPeer.Value.TcpRelayed);
        Assert.Equal(data.Length, exitPeer.Value.BytesToDestinations);
        Assert.Equal(0, exit.Counters.Total.UdpFlows);
    }
}
