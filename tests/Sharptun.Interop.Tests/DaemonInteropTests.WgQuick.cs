using System.Runtime.Versioning;

namespace Sharptun.Interop.Tests;

/// <summary>
/// <c>wg-quick up</c>/<c>down</c> inside a namespace with sharptun as <c>WG_QUICK_USERSPACE_IMPLEMENTATION</c>, against a
/// wireguard-go peer: addresses, MTU and routes applied, the tunnel carries traffic, <c>wg showconf</c> returns the
/// config's wg part (<c>wg-quick strip</c>) unchanged, and after <c>down</c> the interface, socket and daemon are gone.
/// </summary>
[SupportedOSPlatform("linux")]
public sealed class DaemonWgQuickInteropTests
{
    [InteropFact("wireguard-go", "wg", "wg-quick", "ping")]
    public void WgQuickUpDown_ConfigApplied_ShowconfRoundTrips_DownRemovesEverything()
    {
        using var lab = new NetnsLab();
        using var daemons = new SharptunDaemon(lab);
        var nsA = lab.AddNamespace();
        var nsB = lab.AddNamespace();
        var veth = lab.AddVeth(nsA, nsB);
        var link = lab.NewSubnet();
        lab.AddAddress(nsA, veth.InterfaceA, link.V4Cidr(1));
        lab.AddAddress(nsB, veth.InterfaceB, link.V4Cidr(2));
        var tunnel = lab.NewSubnet();
        var a = new WgSide(WgImpl.Sharptun, nsA, lab.NewInterfaceName('q'), veth.InterfaceA, 1) { OuterAddress = link.V4(1), TunnelV4 = tunnel.V4(1), TunnelV6 = tunnel.V6(1) };
        var b = new WgSide(WgImpl.WireguardGo, nsB, lab.NewInterfaceName('w'), veth.InterfaceB, 2) { OuterAddress = link.V4(2), TunnelV4 = tunnel.V4(2), TunnelV6 = tunnel.V6(2) };
        daemons.Track(a.Interface);

        // B: wireguard-go configured by wg set, knowing A's endpoint.
        WgTunnel.StartDaemon(lab, b);
        WgTunnel.WaitForSocket(lab, b);
        var keyFile = Path.Combine(lab.TempDirectory, "b.key");
        File.WriteAllText(keyFile, b.PrivateKey + "\n");
        lab.Check(nsB, "wg", "set", b.Interface, "private-key", keyFile, "listen-port", b.ListenPort.ToString(System.Globalization.CultureInfo.InvariantCulture),
            "peer", a.PublicKey, "allowed-ips", $"{a.TunnelV4}/32,{a.TunnelV6}/128", "endpoint", a.Endpoint);
        lab.AddAddress(nsB, b.Interface, tunnel.V4Cidr(2));
        lab.AddAddress(nsB, b.Interface, tunnel.V6Cidr(2));
        lab.SetUp(nsB, b.Interface);

        // A: wg-quick. The wg part is written in `wg showconf`'s order so that strip == showconf byte for byte.
        var wgPart =
            "[Interface]\n" +
            $"ListenPort = {a.ListenPort}\n" +
            $"PrivateKey = {a.PrivateKey}\n" +
            "\n[Peer]\n" +
            $"PublicKey = {b.PublicKey}\n" +
            $"AllowedIPs = {tunnel.IPv4Prefix}.128/25, {tunnel.IPv6Prefix}::2/128, {b.TunnelV4}/32\n" +
            $"Endpoint = {b.Endpoint}\n" +
            "PersistentKeepalive = 25\n";
        var config = Path.Combine(lab.TempDirectory, a.Interface + ".conf");
        File.WriteAllText(config, wgPart.Replace(
            $"PrivateKey = {a.PrivateKey}\n",
            $"PrivateKey = {a.PrivateKey}\nAddress = {a.TunnelV4}/32, {a.TunnelV6}/64\nMTU = 1380\n",
            StringComparison.Ordinal));
        File.SetUnixFileMode(config, UnixFileMode.UserRead | UnixFileMode.UserWrite);
        var wrapper = daemons.WriteWrapperScript();

        lab.Check(nsA, TimeSpan.FromSeconds(90), "env", $"WG_QUICK_USERSPACE_IMPLEMENTATION={wrapper}", "wg-quick", "up", config);

        var strip = lab.Check(nsA, "wg-quick", "strip", config).Stdout.TrimEnd('\n') + "\n";
        Assert.Equal(wgPart, strip);
        Assert.Equal(wgPart, lab.Check(nsA, "wg", "showconf", a.Interface).Stdout);
        var addresses = lab.Check(nsA, "ip", "addr", "show", a.Interface).Stdout;
        Assert.Contains($"inet {a.TunnelV4}/32", addresses, StringComparison.Ordinal);
        Assert.Contains($"inet6 {a.TunnelV6}/64", addresses, StringComparison.Ordinal);
        Assert.Contains("mtu 1380", addresses, StringComparison.Ordinal);
        var routes = lab.Check(nsA, "ip", "route", "show", "dev", a.Interface).Stdout;
        Assert.Contains($"{tunnel.IPv4Prefix}.128/25", routes, StringComparison.Ordinal);
        Assert.Contains(b.TunnelV4, routes, StringComparison.Ordinal);

        // The routes wg-quick added carry traffic both ways (B has no route to A until A's handshake, then replies).
        var ping = lab.Exec(nsA, TimeSpan.FromSeconds(30), "ping", "-c", "1", "-i", "0.2", "-w", "20", b.TunnelV4);
        Assert.True(ping.Success, $"{ping}\n{lab.DescribeProcesses()}");
        Assert.True(lab.Exec(nsB, TimeSpan.FromSeconds(20), "ping", "-c", "1", "-w", "10", a.TunnelV6).Success);

        lab.Check(nsA, TimeSpan.FromSeconds(60), "wg-quick", "down", config);

        SharptunDaemon.WaitForExit(a.Interface, TimeSpan.FromSeconds(15));
        Assert.False(File.Exists(a.SocketPath));
        Assert.False(lab.Exec(nsA, "ip", "link", "show", a.Interface).Success);
        Assert.DoesNotContain(a.Interface, lab.Check(nsA, "ip", "route", "show").Stdout, StringComparison.Ordinal);
    }
}
