using System.Net;
using System.Net.Sockets;
using System.Globalization;
using Sharptun.Protocol;
using Sharptun.Transport;
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
        var sent = await EchoThroughKernelTcpAsync(ns, new IPEndPoint(IPAddress.Parse(net.V4(2)), 7000), cts.Token);
        await echo;

        var status = Assert.Single(onTun.Peers);
        Assert.NotNull(status.LastHandshake);
        Assert.True(status.SentBytes > sent.Length && status.ReceivedBytes > sent.Length);
    }

    [InteropFact("ip", "ping", "wg", "wireguard-go")]
    public async Task StartOnTun_KernelInANamespace_TalksToWireguardGoInAnother()
    {
        using var lab = new NetnsLab();
        var nsA = lab.AddNamespace();
        var nsB = lab.AddNamespace();
        var veth = lab.AddVeth(nsA, nsB);
        var link = lab.NewSubnet();
        lab.AddAddress(nsA, veth.InterfaceA, link.V4Cidr(1));
        lab.AddAddress(nsB, veth.InterfaceB, link.V4Cidr(2));
        var net = lab.NewSubnet();
        using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(30));

        // B: wireguard-go, configured with wg.
        var goName = lab.NewInterfaceName('w');
        using var goKey = Key.GeneratePrivateKey();
        using var ourKey = Key.GeneratePrivateKey();
        var go = lab.Start(nsB, new Dictionary<string, string> { ["LOG_LEVEL"] = "verbose" }, "wireguard-go", "-f", goName);
        lab.WaitFor(() => File.Exists($"/var/run/wireguard/{goName}.sock") || go.HasExited, TimeSpan.FromSeconds(20), "wireguard-go's UAPI socket");
        var goKeyFile = Path.Combine(lab.TempDirectory, goName + ".key");
        File.WriteAllText(goKeyFile, goKey.ToString());
        lab.Check(nsB, "wg", "set", goName, "private-key", goKeyFile, "listen-port", "51822",
            "peer", ourKey.DerivePublicKey().ToString(), "allowed-ips", $"{net.V4(1)}/32");
        lab.AddAddress(nsB, goName, net.V4Cidr(2));
        lab.SetUp(nsB, goName);

        // A: our TUN in its namespace, the facade on its descriptor, the UDP socket opened in the same namespace.
        var name = lab.NewInterfaceName();
        using var tun = NetnsLab.RunInNamespace(nsA, () => LinuxTun.Create(name, mtu: 1420, up: true));
        lab.AddAddress(nsA, name, net.V4Cidr(1));
        var options = new WireGuardTunnelOptions { BindFactory = new InNamespaceBindFactory(nsA) };
        await using var onTun = await WireGuardTunnel.StartOnTunAsync($"""
            [Interface]
            PrivateKey = {ourKey}
            Address = {net.V4(1)}/24

            [Peer]
            PublicKey = {goKey.DerivePublicKey()}
            Endpoint = {link.V4(2)}:51822
            AllowedIPs = {net.V4(2)}/32
            PersistentKeepalive = 25
            """, tun.FileDescriptor, options, cts.Token);

        var ping = lab.Exec(nsA, "ping", "-c", "3", "-i", "0.2", "-W", "5", net.V4(2));
        output.WriteLine(ping.Stdout);
        Assert.True(ping.Success, ping + "\n" + lab.DescribeProcesses());
        var pingBack = lab.Exec(nsB, "ping", "-c", "2", "-i", "0.2", "-W", "5", net.V4(1));
        Assert.True(pingBack.Success, pingBack.ToString());

        // 1 MiB over the kernels' TCP: wireguard-go's side echoes, our side sends and checks.
        using var listen = NetnsLab.RunInNamespace(nsB, () => new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp));
        listen.Bind(new IPEndPoint(IPAddress.Parse(net.V4(2)), 7001));
        listen.Listen();
        var echo = Task.Run(async () =>
        {
            using var accepted = await listen.AcceptAsync(cts.Token);
            await using var s = new NetworkStream(accepted, ownsSocket: false);
            await s.CopyToAsync(s, cts.Token);
            accepted.Shutdown(SocketShutdown.Send);
        });
        var sent = await EchoThroughKernelTcpAsync(nsA, new IPEndPoint(IPAddress.Parse(net.V4(2)), 7001), cts.Token);
        await echo;

        var status = Assert.Single(onTun.Peers);
        Assert.NotNull(status.LastHandshake);
        Assert.True(status.SentBytes > sent.Length && status.ReceivedBytes > sent.Length);
        var wgShow = lab.Check(nsB, "wg", "show", goName, "transfer");
        output.WriteLine(wgShow.Stdout);
        var rx = long.Parse(wgShow.Stdout.Split('\t')[1], CultureInfo.InvariantCulture);
        Assert.True(rx > sent.Length, wgShow.Stdout);
    }

    /// <summary>Opens the device's UDP socket inside a namespace (the kernel keeps a socket in the namespace it was made in).</summary>
    private sealed class InNamespaceBindFactory(string ns) : IDatagramBindFactory
    {
        public IDatagramBind Open(ushort port) => NetnsLab.RunInNamespace(ns, () => DatagramBinds.Default.Open(port));
    }

    /// <summary>
    /// Sends 1 MiB of random bytes over kernel TCP from namespace <paramref name="ns"/> to an echo service at
    /// <paramref name="target"/>, half-closes, and asserts the echo is byte-identical. Returns the bytes sent.
    /// </summary>
    private static async Task<byte[]> EchoThroughKernelTcpAsync(string ns, IPEndPoint target, CancellationToken cancellationToken)
    {
        using var client = NetnsLab.RunInNamespace(ns, () => new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp));
        await client.ConnectAsync(target, cancellationToken);
        var sent = new byte[1 << 20];
        Random.Shared.NextBytes(sent);
        await using var stream = new NetworkStream(client, ownsSocket: false);
        var send = Task.Run(async () =>
        {
            await stream.WriteAsync(sent, cancellationToken);
            client.Shutdown(SocketShutdown.Send);
        });
        var received = new byte[sent.Length];
        await stream.ReadExactlyAsync(received, cancellationToken);
        await send;
        Assert.Equal(sent, received);
        return sent;
    }
}
