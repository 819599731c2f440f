using System.Net;
using System.Net.Sockets;
using Sharptun.Protocol;
using Sharptun.Transport.Linux;
using Xunit.Abstractions;

namespace Sharptun.Interop.Tests;

/// <summary>
/// <see cref="WireGuardTunnel.StartOnTunAsync"/> (issue 9 item 4): the facade's device over a TUN descriptor the test
/// made in a network namespace, so the kernel's stack in that namespace speaks through WireGuard to an in-process
/// netstack tunnel over loopback UDP.
/// </summary>
[System.Runtime.Versioning.SupportedOSPlatform("linux")]
public sealed class TunnelOnTunInteropTests(ITestOutputHelper output)
{
    [InteropFact("ip", "ping")]
    public async Task StartOnTun_KernelInANamespace_PingsAndTransfersToANetstackPeer()
    {
        using var lab = new NetnsLab();
        var ns = lab.AddNamespace();
        var name = lab.NewInterfaceName();
        var net = lab.NewSubnet();
        using var tun = NetnsLab.RunInNamespace(ns, () => LinuxTun.Create(name, mtu: 1420, up: true));
        lab.AddAddress(ns, name, net.V4Cidr(1));
        using var tunKey = Key.GeneratePrivateKey();
        using var peerKey = Key.GeneratePrivateKey();
        using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(30));

        await using var peer = await WireGuardTunnel.StartAsync($"""
            [Interface]
            PrivateKey = {peerKey}
            Address = {net.V4(2)}/32

            [Peer]
            PublicKey = {tunKey.DerivePublicKey()}
            AllowedIPs = {net.V4(1)}/32
            """, null, cts.Token);
        await using var onTun = await WireGuardTunnel.StartOnTunAsync($"""
            [Interface]
            PrivateKey = {tunKey}
            Address = {net.V4(1)}/24

            [Peer]
            PublicKey = {peerKey.DerivePublicKey()}
            Endpoint = 127.0.0.1:{peer.ListenPort}
            AllowedIPs = {net.V4(2)}/32
            PersistentKeepalive = 25
            """, tun.FileDescriptor, null, cts.Token);

        Assert.True(onTun.IsOnTun);
        Assert.Equal([IPAddress.Parse(net.V4(1))], onTun.Addresses);
        var refused = await Assert.ThrowsAsync<InvalidOperationException>(async () => await onTun.ConnectAsync(net.V4(2), 80, cts.Token));
        Assert.Contains("TUN device", refused.Message, StringComparison.Ordinal);
        Assert.Throws<InvalidOperationException>(() => onTun.ListenTcp(80));

        var ping = lab.Exec(ns, "ping", "-c", "3", "-i", "0.2", "-W", "5", net.V4(2));
        output.WriteLine(ping.Stdout);
        Assert.True(ping.Success, ping.ToString());

        // TCP from the kernel (in the namespace) to the netstack peer, echoed back.
        await using var listener = peer.ListenTcp(7000);
        var echo = Task.Run(async () =>
        {
            await using var accepted = await listener.AcceptAsync(cts.Token);
            await accepted.CopyToAsync(accepted, cts.Token);
        });
        using var client = NetnsLab.RunInNamespace(ns, () => new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp));
        await client.ConnectAsync(new IPEndPoint(IPAddress.Parse(net.V4(2)), 7000), cts.Token);
        var sent = new byte[1 << 20];
        Random.Shared.NextBytes(sent);
        await using var stream = new NetworkStream(client, ownsSocket: false);
        var send = Task.Run(async () =>
        {
            await stream.WriteAsync(sent, cts.Token);
            client.Shutdown(SocketShutdown.Send);
        });
        var received = new byte[sent.Length];
        await stream.ReadExactlyAsync(received, cts.Token);
        await send;
        Assert.Equal(sent, received);
        await echo;

        var status = Assert.Single(onTun.Peers);
        Assert.NotNull(status.LastHandshake);
        Assert.True(status.SentBytes > sent.Length && status.ReceivedBytes > sent.Length);
    }
}
