using System.Net;
using Sharptun.Protocol;

namespace Sharptun.Gateway.Tests;

/// <summary>
/// A <see cref="GatewayHost"/> and one client <see cref="WireGuardTunnel"/> joined over loopback UDP, in process. The
/// gateway maps destinations in 11.0.0.0/8 to host loopback, so tests reach their own listeners through it.
/// </summary>
internal sealed class GatewayLab : IAsyncDisposable
{
    /// <summary>The gateway's tunnel address (also its DNS responder's).</summary>
    public static readonly IPAddress GatewayAddress = IPAddress.Parse("10.66.0.1");

    private GatewayLab(GatewayHost gateway, WireGuardTunnel client)
    {
        Gateway = gateway;
        Client = client;
    }

    public GatewayHost Gateway { get; }

    public WireGuardTunnel Client { get; }

    /// <summary>
    /// Starts the pair. <paramref name="gatewaySection"/> is the body of the gateway's [Gateway] section;
    /// <paramref name="configure"/> adjusts its options after parsing; <paramref name="dualStack"/> gives the client
    /// fd66::2 beside 10.66.0.2 and routes ::/0 too; <paramref name="useGatewayDns"/> sets the client's DNS to the gateway.
    /// </summary>
    public static async Task<GatewayLab> StartAsync(
        string gatewaySection = "", Action<GatewayOptions>? configure = null, bool dualStack = false, bool useGatewayDns = false)
    {
        using var clientKey = Key.GeneratePrivateKey();
        using var gatewayKey = Key.GeneratePrivateKey();
        var clientAddresses = dualStack ? "10.66.0.2/32, fd66::2/128" : "10.66.0.2/32";
        var config = GatewayConfig.Parse($"""
            [Interface]
            PrivateKey = {gatewayKey}
            Address = {GatewayAddress}/32

            [Peer]
            PublicKey = {clientKey.DerivePublicKey()}
            AllowedIPs = {clientAddresses}

            [Gateway]
            {gatewaySection}
            """);
        configure?.Invoke(config.Options);
        var gateway = await GatewayHost.StartAsync(config, new WireGuardTunnelOptions(), MapToLoopback, CancellationToken.None);
        try
        {
            var client = await WireGuardTunnel.StartAsync($"""
                [Interface]
                PrivateKey = {clientKey}
                Address = {clientAddresses}
                {(useGatewayDns ? $"DNS = {GatewayAddress}" : "")}

                [Peer]
                PublicKey = {gatewayKey.DerivePublicKey()}
                Endpoint = 127.0.0.1:{gateway.Tunnel.ListenPort}
                AllowedIPs = {(dualStack ? "0.0.0.0/0, ::/0" : "0.0.0.0/0")}
                """, CancellationToken.None);
            return new GatewayLab(gateway, client);
        }
        catch
        {
            await gateway.DisposeAsync();
            throw;
        }
    }

    public async ValueTask DisposeAsync()
    {
        await Client.DisposeAsync();
        await Gateway.DisposeAsync();
    }

    private static IPEndPoint MapToLoopback(IPEndPoint destination) =>
        destination.Address.GetAddressBytes()[0] == 11 ? new IPEndPoint(IPAddress.Loopback, destination.Port) : destination;
}
