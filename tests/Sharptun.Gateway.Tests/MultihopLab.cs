using System.Net;
using System.Net.Sockets;
using System.Security.Cryptography;
using Sharptun.Protocol;

namespace Sharptun.Gateway.Tests;

/// <summary>
/// The pieces <see cref="MultihopTests"/> (the API) and <see cref="ViaConfigTests"/> (the config) share: an entry and an
/// exit <see cref="GatewayHost"/> over loopback that map destinations 11.0.0.0/8 to host loopback (11.0.0.2 is the
/// exit's WireGuard port), and a host TCP server that answers with the SHA-256 of what it received.
/// </summary>
internal static class MultihopLab
{
    /// <summary>Starts a gateway with <paramref name="own"/> at <paramref name="address"/> serving the one client key at <paramref name="clientAddress"/>.</summary>
    public static Task<GatewayHost> StartGatewayAsync(Key own, Key client, string address, string clientAddress) =>
        GatewayHost.StartAsync(GatewayConfig.Parse($"""
            [Interface]
            PrivateKey = {own}
            Address = {address}

            [Peer]
            PublicKey = {client.DerivePublicKey()}
            AllowedIPs = {clientAddress}
            """), new WireGuardTunnelOptions(), MapToLoopback, CancellationToken.None);

    /// <summary>
    /// Sends <paramref name="data"/> over a stream <paramref name="connect"/> opens to 11.0.0.1 (host loopback behind the
    /// exit), half-closes it and checks that the host server answered with the data's SHA-256.
    /// </summary>
    public static async Task RoundTripThroughExitAsync(Func<int, Task<Stream>> connect, byte[] data)
    {
        using var server = new TcpListener(IPAddress.Loopback, 0);
        server.Start();
        var port = ((IPEndPoint)server.LocalEndpoint).Port;
        var served = Task.Run(async () =>
        {
            using var s = await server.AcceptTcpClientAsync();
            var received = new MemoryStream();
            await s.GetStream().CopyToAsync(received);
            await s.GetStream().WriteAsync(SHA256.HashData(received.ToArray()));
            s.Client.Shutdown(SocketShutdown.Send);
        });

        await using (var stream = await connect(port))
        {
            await stream.WriteAsync(data);
            ((TunnelStream)stream).ShutdownWrite();
            var reply = new MemoryStream();
            await stream.CopyToAsync(reply).WaitAsync(TimeSpan.FromSeconds(60));
            Assert.Equal(SHA256.HashData(data), reply.ToArray());
        }

        await served.WaitAsync(TimeSpan.FromSeconds(60));
    }

    private static IPEndPoint MapToLoopback(IPEndPoint destination) =>
        destination.Address.GetAddressBytes()[0] == 11 ? new IPEndPoint(IPAddress.Loopback, destination.Port) : destination;
}
