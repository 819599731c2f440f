using System.Security.Cryptography;
using Sharptun.Protocol;
using Sharptun.Proxy;
using Sharptun.Proxy.Config;

namespace Sharptun.Gateway.Tests;

/// <summary>
/// Multihop from config text: a <c>sharptun proxy</c> config whose <c>[Interface]</c> says <c>Via = entry.conf</c>
/// starts the entry tunnel first and sends the main tunnel's WireGuard UDP through it (an entry gateway, then an
/// exit gateway, both over loopback). Destinations 11.0.0.0/8 are mapped to host loopback by both gateways
/// (11.0.0.2 is the exit's WireGuard port), as in <see cref="MultihopTests"/>.
/// </summary>
public sealed class ViaConfigTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("via").FullName;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    [Fact]
    public async Task ProxyConfigWithVia_MainTunnelThroughEntryTunnel_EntryCarriesOnlyUdp_ExitRelaysTheTcp_ViaDisposedWithHost()
    {
        using var outerKey = Key.GeneratePrivateKey();
        using var innerKey = Key.GeneratePrivateKey();
        using var entryKey = Key.GeneratePrivateKey();
        using var exitKey = Key.GeneratePrivateKey();
        await using var exit = await MultihopLab.StartGatewayAsync(exitKey, innerKey, "10.67.0.1/32", "10.67.0.2/32");
        await using var entry = await MultihopLab.StartGatewayAsync(entryKey, outerKey, "10.66.0.1/32", "10.66.0.2/32");

        File.WriteAllText(Path.Combine(_dir, "entry.conf"), $"""
            [Interface]
            PrivateKey = {outerKey}
            Address = 10.66.0.2/32

            [Peer]
            PublicKey = {entryKey.DerivePublicKey()}
            Endpoint = 127.0.0.1:{entry.Tunnel.ListenPort}
            AllowedIPs = 11.0.0.2/32
            """);
        var mainPath = Path.Combine(_dir, "proxy.conf");
        File.WriteAllText(mainPath, $"""
            [Interface]
            PrivateKey = {innerKey}
            Address = 10.67.0.2/32
            Via = entry.conf

            [Peer]
            PublicKey = {exitKey.DerivePublicKey()}
            Endpoint = 11.0.0.2:{exit.Tunnel.ListenPort}
            AllowedIPs = 0.0.0.0/0
            """);
        var config = ProxyConfig.Load(mainPath, _ => null);
        Assert.Equal(1340, config.Interface.Mtu);

        var host = await ProxyHost.StartAsync(config);
        WireGuardTunnel outer;
        var data = RandomNumberGenerator.GetBytes(1_000_000);
        await using (host)
        {
            outer = Assert.Single(host.ViaTunnels);
            Assert.Equal(1340, host.Tunnel.Mtu);
            Assert.Equal(outerKey.DerivePublicKey().ToString(), outer.PublicKey);

            await MultihopLab.RoundTripThroughExitAsync(async port => await host.Tunnel.ConnectAsync("11.0.0.1", port), data);

            // The exit sees the main tunnel's peer at the entry's host socket (not the outer tunnel's port: the main
            // tunnel has no host socket of its own).
            var exitSees = Assert.Single(exit.Tunnel.Peers).Endpoint;
            Assert.NotNull(exitSees);
            Assert.NotEqual(outer.ListenPort, exitSees.Port);
            var entrySees = Assert.Single(entry.Tunnel.Peers).Endpoint;
            Assert.Equal(outer.ListenPort, entrySees!.Port);
        }

        // the entry carried one UDP flow (the main tunnel's WireGuard datagrams) and no TCP; the exit relayed the TCP
        Assert.Equal(0, entry.Counters.Total.TcpRelayed);
        Assert.Equal(1, entry.Counters.Total.UdpFlows);
        Assert.True(entry.Counters.Total.BytesToDestinations > data.Length, "the main tunnel's datagrams went through the entry");
        var exitPeer = Assert.Single(exit.Counters.Peers);
        Assert.Equal(innerKey.DerivePublicKey().ToString(), exitPeer.Key);
        Assert.Equal(1, exitPeer.Value.TcpRelayed);
        Assert.Equal(data.Length, exitPeer.Value.BytesToDestinations);

        // the Via tunnel was disposed with the host
        var closed = Assert.ThrowsAny<Exception>(() => outer.CreateDatagramBindFactory());
        Assert.True(closed is ObjectDisposedException or IOException, closed.ToString());
    }
}
