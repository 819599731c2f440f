using System.Globalization;
using System.Net;
using System.Net.Sockets;

namespace Sharptun.Interop.Tests;

/// <summary>
/// <c>sharptun gateway</c> with <c>[Interface] Via = entry.conf</c> (issue 11 item 4 for the gateway). Four namespaces:
/// C runs a wireguard-go client on a kernel TUN; E is an entry server (Debian's wireguard-go on a kernel TUN, IP
/// forwarding); G runs the gateway as uid 65534, which dials E through its Via tunnel and listens for its own peers on
/// that tunnel's netstack; S is a kernel HTTP server only G can reach. C's only way to the gateway is E's tunnel: C has
/// no link to G, G has no route to C, so C's WireGuard UDP goes C → E → (E's tunnel, dialed by G) → the gateway.
/// </summary>
public sealed partial class GatewayInteropTests
{
    [InteropFact("wireguard-go", "wg", "setpriv", "curl", "sha256sum")]
    public void UnprivilegedGatewayWithVia_ClientReachesItOnlyThroughTheEntryTunnelItDials_DownloadByHash()
    {
        const int EntryPort = 51820;
        const int GatewayPort = 51821;
        const long Size = 16L << 20;
        using var lab = new NetnsLab();
        var clientNs = lab.AddNamespace();
        var entryNs = lab.AddNamespace();
        var gatewayNs = lab.AddNamespace();
        var serverNs = lab.AddNamespace();
        var ce = lab.AddVeth(clientNs, entryNs);
        var eg = lab.AddVeth(entryNs, gatewayNs);
        var gs = lab.AddVeth(gatewayNs, serverNs);
        var ceNet = lab.NewSubnet();
        var egNet = lab.NewSubnet();
        var far = lab.NewSubnet();
        var entryTunnel = lab.NewSubnet();
        var gatewayTunnel = lab.NewSubnet();
        lab.AddAddress(clientNs, ce.InterfaceA, ceNet.V4Cidr(2));
        lab.AddAddress(entryNs, ce.InterfaceB, ceNet.V4Cidr(1));
        lab.AddAddress(entryNs, eg.InterfaceA, egNet.V4Cidr(1));
        lab.AddAddress(gatewayNs, eg.InterfaceB, egNet.V4Cidr(2));
        lab.AddAddress(gatewayNs, gs.InterfaceA, far.V4Cidr(1));
        lab.AddAddress(serverNs, gs.InterfaceB, far.V4Cidr(2));
        var serverAddress = IPAddress.Parse(far.V4(2));
        using var http = new KernelHttpServer(NetnsLab.RunInNamespace(serverNs, () =>
        {
            var s = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
            s.Bind(new IPEndPoint(serverAddress, HttpPort));
            s.Listen(64);
            return s;
        }));

        // E: wireguard-go on a kernel TUN, forwarding between C's link and its tunnel (the gateway's Via tunnel)
        lab.Sysctl(entryNs, "net.ipv4.ip_forward", "1");
        var (entryPrivate, entryPublic) = WireguardGo.KeyPair();
        var (outerPrivate, outerPublic) = WireguardGo.KeyPair();
        var entryIf = WireguardGo.Start(lab, entryNs, 'e', entryPrivate,
            ["listen-port", EntryPort.ToString(CultureInfo.InvariantCulture), "peer", outerPublic, "allowed-ips", $"{entryTunnel.V4(2)}/32"],
            [entryTunnel.V4Cidr(1)]);

        // G: the gateway as uid 65534; its Via tunnel dials E and carries C's packets to and from the gateway's port
        var (gatewayPrivate, gatewayPublic) = WireguardGo.KeyPair();
        var (clientPrivate, clientPublic) = WireguardGo.KeyPair();
        var home = Path.Combine(Unprivileged.ReadableDirectory(Path.Combine(lab.TempDirectory, "nobody")), "home");
        Directory.CreateDirectory(home);
        File.WriteAllText(Path.Combine(home, "entry.conf"),
            "[Interface]\n" +
            $"PrivateKey = {outerPrivate}\n" +
            $"Address = {entryTunnel.V4(2)}/32\n\n" +
            "[Peer]\n" +
            $"PublicKey = {entryPublic}\n" +
            $"Endpoint = {egNet.V4(1)}:{EntryPort}\n" +
            $"AllowedIPs = {entryTunnel.V4(0)}/24, {ceNet.V4(0)}/24\n" +
            "PersistentKeepalive = 5\n");
        var config = Path.Combine(home, "gateway.conf");
        File.WriteAllText(config,
            "[Interface]\n" +
            $"PrivateKey = {gatewayPrivate}\n" +
            $"ListenPort = {GatewayPort}\n" +
            $"Address = {gatewayTunnel.V4(1)}/32\n" +
            "Via = entry.conf\n\n" +
            "[Peer]\n" +
            $"PublicKey = {clientPublic}\n" +
            $"AllowedIPs = {gatewayTunnel.V4(2)}/32\n\n" +
            "[Gateway]\n" +
            $"Allow = {far.V4(0)}/24\n");
        var loop = Path.Combine(home, "loop.conf");
        File.WriteAllText(loop, File.ReadAllText(config).Replace("Via = entry.conf", "Via = loop.conf", StringComparison.Ordinal));
        foreach (var file in Directory.GetFiles(home))
        {
            File.SetUnixFileMode(file, UnixFileMode.UserRead | UnixFileMode.UserWrite);
        }

        Unprivileged.OpenWayDown(lab.TempDirectory);
        Unprivileged.OwnHome(lab, home);

        // the config error names file and line, and nothing starts
        var looped = lab.Exec(gatewayNs, "setpriv", Unprivileged.DotnetCommand(home, Path.Combine(Unprivileged.TestOutputCopy, "sharptun.dll"), "gateway", "-c", loop));
        Assert.Equal(1, looped.ExitCode);
        Assert.Contains($"{loop}:5: Via = loop.conf names this file itself", looped.Stderr, StringComparison.Ordinal);

        var gateway = lab.Start(gatewayNs, "setpriv", Unprivileged.DotnetCommand(home, Path.Combine(Unprivileged.TestOutputCopy, "sharptun.dll"), "gateway", "-c", config));
        lab.WaitFor(() => lab.OutputOf(gateway).Contains("gateway ready", StringComparison.Ordinal) || gateway.HasExited, Timeout, "the gateway to start");
        Assert.False(gateway.HasExited, lab.OutputOf(gateway));
        Assert.Equal($"{Unprivileged.Id} {Unprivileged.Id}", Unprivileged.WaitForDotnetIds(gateway.Id, Timeout));
        Assert.Contains($"through the tunnel of Via {Path.Combine(home, "entry.conf")} (MTU 1420); gateway MTU 1340", lab.OutputOf(gateway), StringComparison.Ordinal);

        // C: no link to G and G no route back to C; C reaches the gateway's port at its Via tunnel address through E
        Assert.False(lab.Exec(clientNs, "ip", "route", "get", egNet.V4(2)).Success, "C must have no route to G");
        Assert.False(lab.Exec(gatewayNs, "ip", "route", "get", ceNet.V4(2)).Success, "G must have no route to C");
        lab.Check(clientNs, "ip", "route", "add", $"{entryTunnel.V4(0)}/24", "via", ceNet.V4(1));
        var clientIf = WireguardGo.Start(lab, clientNs, 'c', clientPrivate,
            ["peer", gatewayPublic, "endpoint", $"{entryTunnel.V4(2)}:{GatewayPort}", "allowed-ips", "0.0.0.0/0", "persistent-keepalive", "25"],
            [gatewayTunnel.V4(2) + "/32"],
            mtu: 1340);
        lab.AddRoute(clientNs, far.V4(0) + "/24", clientIf);

        // a download by hash from S, through E's tunnel and the gateway
        var down = lab.Exec(clientNs, "sh", "-c", $"curl -sS -f --max-time 120 http://{serverAddress}:{HttpPort}/bytes/{Size} | sha256sum");
        Assert.True(down.Success, $"{down}\n{lab.Exec(clientNs, "wg", "show", clientIf).Stdout}\n{lab.Exec(entryNs, "wg", "show", entryIf).Stdout}\n{lab.OutputOf(gateway)}");
        Assert.Equal(http.HashOf(Size), down.Stdout.Split(' ')[0]);

        // E saw the gateway's Via tunnel at G's address and received more than the download from it (key, rx, tx)
        var entryEndpoints = lab.Check(entryNs, "wg", "show", entryIf, "endpoints").Stdout;
        Assert.Contains($"{egNet.V4(2)}:", entryEndpoints, StringComparison.Ordinal);
        var transfer = lab.Check(entryNs, "wg", "show", entryIf, "transfer").Stdout.Split('\t');
        Assert.True(long.Parse(transfer[1].Trim(), CultureInfo.InvariantCulture) > Size, string.Join('\t', transfer));

        lab.Kill(gateway, TimeSpan.FromSeconds(20));
        var text = lab.OutputOf(gateway);
        Assert.True(gateway.ExitCode == 0, text);
        Assert.Matches(@"total: tcp 1 relayed, 0 open", text);
    }
}
