using System.Net;
using Sharptun.Protocol;

namespace Sharptun.Tests;

/// <summary>
/// Two in-process tunnels over loopback UDP, configured with wg-quick INI text: the client (10.77.0.1) knows the
/// server's endpoint; the server (10.77.0.2) learns the client's from its first handshake.
/// </summary>
internal sealed class TunnelPair : IAsyncDisposable
{
    public static readonly IPAddress ClientAddress = IPAddress.Parse("10.77.0.1");
    public static readonly IPAddress ServerAddress = IPAddress.Parse("10.77.0.2");

    private TunnelPair(WireGuardTunnel client, WireGuardTunnel server)
    {
        Client = client;
        Server = server;
    }

    public WireGuardTunnel Client { get; }

    public WireGuardTunnel Server { get; }

    public static async Task<TunnelPair> StartAsync(WireGuardTunnelOptions? options = null, string extraServerInterface = "")
    {
        using var clientKey = Key.GeneratePrivateKey();
        using var serverKey = Key.GeneratePrivateKey();
        var server = await WireGuardTunnel.StartAsync($"""
            [Interface]
            PrivateKey = {serverKey}
            Address = {ServerAddress}/32
            {extraServerInterface}

            [Peer]
            PublicKey = {clientKey.DerivePublicKey()}
            AllowedIPs = {ClientAddress}/32
            """, options ?? new WireGuardTunnelOptions(), CancellationToken.None);
        try
        {
            var client = await WireGuardTunnel.StartAsync($"""
                [Interface]
                PrivateKey = {clientKey}
                Address = {ClientAddress}/32
                MTU = 1420

                [Peer]
                PublicKey = {serverKey.DerivePublicKey()}
                Endpoint = 127.0.0.1:{server.ListenPort}
                AllowedIPs = {ServerAddress}/32
                PersistentKeepalive = 25
                """, options ?? new WireGuardTunnelOptions(), CancellationToken.None);
            return new TunnelPair(client, server);
        }
        catch
        {
            await server.DisposeAsync();
            throw;
        }
    }

    public async ValueTask DisposeAsync()
    {
        await Client.DisposeAsync();
        await Server.DisposeAsync();
    }
}
