using System.Net;
using System.Net.Sockets;
using System.Security.Cryptography;
using Sharptun.Protocol;
using Sharptun.Proxy;
using Sharptun.Proxy.Config;

namespace Sharptun.Gateway.Tests;

/// <summary>
/// <c>sharptun proxy</c> with <c>Via = entry.conf</c> whose entry config says <c>DNS = </c> the entry's tunnel address:
/// the main tunnel's <c>Endpoint = exit.via.test:PORT</c> is a name only the entry's DNS knows (the entry is a
/// <see cref="GatewayHost"/> whose DNS responder answers it), so it must be resolved through the entry tunnel.
/// </summary>
public sealed class ViaEndpointNameTests : IDisposable
{
    private const string ExitName = "exit.via.test";
    private readonly string _dir = Directory.CreateTempSubdirectory("vianame").FullName;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    [Fact]
    public async Task ProxyWithVia_EndpointNameOnlyTheEntrysDnsKnows_ResolvedThroughTheEntryTunnel()
    {
        // RFC 6761 §6.2: the host's resolver does not know .test names
        await Assert.ThrowsAnyAsync<SocketException>(() => Dns.GetHostAddressesAsync(ExitName));

        using var outerKey = Key.GeneratePrivateKey();
        using var innerKey = Key.GeneratePrivateKey();
        using var entryKey = Key.GeneratePrivateKey();
        using var exitKey = Key.GeneratePrivateKey();
        await using var exit = await MultihopLab.StartGatewayAsync(exitKey, innerKey, "10.67.0.1/32", "10.67.0.2/32");
        var asked = 0;
        var entryConfig = GatewayConfig.Parse($"""
            [Interface]
            PrivateKey = {entryKey}
            Address = 10.66.0.1/32

            [Peer]
            PublicKey = {outerKey.DerivePublicKey()}
            AllowedIPs = 10.66.0.2/32
            """);
        entryConfig.Options.DnsResolve = (name, family, _) =>
        {
            Interlocked.Increment(ref asked);
            return name != ExitName
                ? Task.FromException<IPAddress[]>(new SocketException((int)SocketError.HostNotFound))
                : Task.FromResult(family == AddressFamily.InterNetwork ? new[] { IPAddress.Parse("11.0.0.2") } : []);
        };
        await using var entry = await GatewayHost.StartAsync(entryConfig, new WireGuardTunnelOptions(), MapToLoopback, CancellationToken.None);

        File.WriteAllText(Path.Combine(_dir, "entry.conf"), $"""
            [Interface]
            PrivateKey = {outerKey}
            Address = 10.66.0.2/32
            DNS = 10.66.0.1

            [Peer]
            PublicKey = {entryKey.DerivePublicKey()}
            Endpoint = 127.0.0.1:{entry.Tunnel.ListenPort}
            AllowedIPs = 11.0.0.2/32, 10.66.0.1/32
            """);
        var mainPath = Path.Combine(_dir, "proxy.conf");
        File.WriteAllText(mainPath, $"""
            [Interface]
            PrivateKey = {innerKey}
            Address = 10.67.0.2/32
            Via = entry.conf

            [Peer]
            PublicKey = {exitKey.DerivePublicKey()}
            Endpoint = {ExitName}:{exit.Tunnel.ListenPort}
            AllowedIPs = 0.0.0.0/0
            """);

        await using var host = await ProxyHost.StartAsync(ProxyConfig.Load(mainPath, _ => null));
        Assert.True(Volatile.Read(ref asked) >= 1, "the entry's DNS was asked for the exit's name");
        Assert.True(entry.Counters.Total.DnsQueries >= 1);
        Assert.Equal(new IPEndPoint(IPAddress.Parse("11.0.0.2"), exit.Tunnel.ListenPort), host.Tunnel.Peers.Single().Endpoint);

        var data = RandomNumberGenerator.GetBytes(200_000);
        await MultihopLab.RoundTripThroughExitAsync(async port => await host.Tunnel.ConnectAsync("11.0.0.1", port), data);
        Assert.Equal(1, Assert.Single(exit.Counters.Peers).Value.TcpRelayed);
    }

    private static IPEndPoint MapToLoopback(IPEndPoint destination) =>
        destination.Address.GetAddressBytes()[0] == 11 ? new IPEndPoint(IPAddress.Loopback, destination.Port) : destination;
}
