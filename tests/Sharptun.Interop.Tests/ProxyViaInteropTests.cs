using System.Globalization;
using System.Runtime.Versioning;
using System.Text.RegularExpressions;

namespace Sharptun.Interop.Tests;

/// <summary>
/// Multihop from a config file (issue 11 item 4): <c>sharptun proxy</c> as uid 65534 in namespace C with
/// <c>Via = entry.conf</c> in its <c>[Interface]</c>. E (the entry) runs Debian's wireguard-go on a kernel TUN with IP
/// forwarding and an nftables masquerade towards X; X is <see cref="ProxyLab"/>'s server (wireguard-go, nginx, dnsmasq),
/// reachable from E only: C's own link to X is removed, so the proxy's main tunnel can reach X's wireguard-go only
/// through the entry tunnel.
/// </summary>
[SupportedOSPlatform("linux")]
public sealed class ProxyViaInteropTests
{
    private const int WgPort = 51820;
    private static readonly TimeSpan CurlTimeout = TimeSpan.FromSeconds(90);

    [InteropFact("wireguard-go", "wg", "nginx", "dnsmasq", "curl", "setpriv", "nft")]
    public void ProxyWithVia_CurlThroughEntryToExit_ExitSeesTheEntrysAddress_ContentByHash()
    {
        using var lab = new NetnsLab();
        using var proxyLab = new ProxyLab(lab);
        var client = proxyLab.ClientNs;
        var exitNs = proxyLab.ServerNs;

        // C loses its direct link to X; E sits between them.
        var direct = lab.Check(client, "ip", "-o", "link", "show", "type", "veth").Stdout
            .Split('\n', StringSplitOptions.RemoveEmptyEntries).Select(l => l.Split(':')[1].Trim().Split('@')[0]).Single();
        lab.Check(client, "ip", "link", "del", direct);
        var entryNs = lab.AddNamespace();
        var ce = lab.AddVeth(client, entryNs);
        var ex = lab.AddVeth(entryNs, exitNs);
        var ceNet = lab.NewSubnet();
        var exNet = lab.NewSubnet();
        var entryTunnel = lab.NewSubnet();
        lab.AddAddress(client, ce.InterfaceA, ceNet.V4Cidr(2));
        lab.AddAddress(entryNs, ce.InterfaceB, ceNet.V4Cidr(1));
        lab.AddAddress(entryNs, ex.InterfaceA, exNet.V4Cidr(1));
        lab.AddAddress(exitNs, ex.InterfaceB, exNet.V4Cidr(2));
        var exitAddress = exNet.V4(2);
        Assert.False(lab.Exec(client, "ip", "route", "get", exitAddress).Success, "C must have no route to X");

        // E: wireguard-go on a kernel TUN, forwarding, masquerade towards X
        lab.Sysctl(entryNs, "net.ipv4.ip_forward", "1");
        lab.Check(entryNs, "nft", "add", "table", "ip", "stvia");
        lab.Check(entryNs, "nft", "add", "chain", "ip", "stvia", "post", "{ type nat hook postrouting priority 100 ; }");
        lab.Check(entryNs, "nft", "add", "rule", "ip", "stvia", "post", "oifname", ex.InterfaceA, "masquerade");
        var entryIf = lab.NewInterfaceName('e');
        var wg = lab.Start(entryNs, new Dictionary<string, string> { ["LOG_LEVEL"] = "error" }, "wireguard-go", "-f", entryIf);
        lab.WaitFor(() => File.Exists($"/var/run/wireguard/{entryIf}.sock") || wg.HasExited, WgTunnel.StartTimeout, "the entry's wireguard-go UAPI socket");
        var (entryPrivate, entryPublic) = WireguardGo.KeyPair();
        var (outerPrivate, outerPublic) = WireguardGo.KeyPair();
        var keyFile = Path.Combine(lab.TempDirectory, "entry.key");
        File.WriteAllText(keyFile, entryPrivate + "\n");
        File.SetUnixFileMode(keyFile, UnixFileMode.UserRead | UnixFileMode.UserWrite);
        lab.Check(entryNs, "wg", "set", entryIf, "private-key", keyFile, "listen-port", WgPort.ToString(CultureInfo.InvariantCulture),
            "peer", outerPublic, "allowed-ips", $"{entryTunnel.V4(2)}/32");
        lab.AddAddress(entryNs, entryIf, entryTunnel.V4Cidr(1));
        lab.SetUp(entryNs, entryIf);

        // C: the proxy's configs, in the proxy user's home; the main tunnel's peer is X's wireguard-go at its E-side address
        proxyLab.WriteConfig("entry.conf",
            "[Interface]\n" +
            $"PrivateKey = {outerPrivate}\n" +
            $"Address = {entryTunnel.V4(2)}/32\n\n" +
            "[Peer]\n" +
            $"PublicKey = {entryPublic}\n" +
            $"Endpoint = {ceNet.V4(1)}:{WgPort}\n" +
            $"AllowedIPs = {exitAddress}/32\n");
        var main = Regex.Replace(proxyLab.InterfaceAndPeer, @"Endpoint = [0-9.]+:", $"Endpoint = {exitAddress}:")
            .Replace("[Interface]\n", "[Interface]\nVia = entry.conf\n", StringComparison.Ordinal);
        Assert.Contains($"Endpoint = {exitAddress}:{WgPort}", main, StringComparison.Ordinal);
        var config = proxyLab.WriteConfig("client.conf", main + "[Socks5]\nBindAddress = 127.0.0.1:1080\n");
        var broken = proxyLab.WriteConfig("broken.conf", main.Replace("Via = entry.conf", "Via = missing.conf", StringComparison.Ordinal));

        // -n reads the Via file too
        var check = proxyLab.RunSharptun(TimeSpan.FromSeconds(60), "proxy", "-n", "-c", config);
        Assert.True(check.Success, check.ToString());
        Assert.Contains("Config OK", check.Stdout, StringComparison.Ordinal);
        var bad = proxyLab.RunSharptun(TimeSpan.FromSeconds(60), "proxy", "-n", "-c", broken);
        Assert.Equal(1, bad.ExitCode);
        Assert.Contains("broken.conf:2: cannot read Via file", bad.Stderr, StringComparison.Ordinal);
        Assert.Contains("missing.conf': no such file", bad.Stderr, StringComparison.Ordinal);

        var proxy = proxyLab.StartProxy(config);
        proxyLab.WaitForTcpListener(1080, proxy);
        var sha = proxyLab.CreateFile("via.bin", 8 << 20);
        var downloaded = Path.Combine(lab.TempDirectory, "via.down");
        var down = proxyLab.Curl(CurlTimeout, "-f", "--socks5-hostname", "127.0.0.1:1080", "-o", downloaded, proxyLab.UrlByName("/via.bin"));
        Assert.True(down.Success, $"{down}\n{proxyLab.Describe()}\n{lab.Exec(entryNs, "wg", "show", entryIf).Stdout}\n{lab.OutputOf(proxy)}");
        Assert.Equal(sha, ProxyLab.HashOf(downloaded));
        var ip = proxyLab.Curl(CurlTimeout, "-f", "--socks5-hostname", "127.0.0.1:1080", proxyLab.Url("/ip"));
        Assert.True(ip.Success, ip.ToString());
        Assert.Equal(proxyLab.ClientV4, ip.Stdout.Trim()); // nginx sees the main tunnel's address

        // X's wireguard-go sees the proxy's main tunnel at E's address (the masquerade): the UDP went through the entry
        var exitEndpoints = lab.Check(exitNs, "wg", "show", proxyLab.ServerInterface, "endpoints").Stdout;
        var exitSees = EndpointOf(exitEndpoints, proxyLab.ClientPublicKey);
        Assert.Equal(exNet.V4(1), exitSees);

        // E's wireguard-go sees the proxy's outer tunnel at C's address and carried more than the file
        var entryEndpoints = lab.Check(entryNs, "wg", "show", entryIf, "endpoints").Stdout;
        Assert.Equal(ceNet.V4(2), EndpointOf(entryEndpoints, outerPublic));
        var transfer = lab.Check(entryNs, "wg", "show", entryIf, "transfer").Stdout.Split('\t');
        Assert.True(long.Parse(transfer[2].Trim(), CultureInfo.InvariantCulture) > 8 << 20, string.Join('\t', transfer));

        // the proxy picked the MTU for the main tunnel and said so; it is still up
        Assert.False(proxy.HasExited, lab.OutputOf(proxy));
        Assert.Contains("MTU 1340 picked", lab.OutputOf(proxy), StringComparison.Ordinal);
        File.Delete(downloaded);
    }

    private static string EndpointOf(string wgShowEndpoints, string publicKey)
    {
        var line = wgShowEndpoints.Split('\n').Single(l => l.StartsWith(publicKey, StringComparison.Ordinal));
        var endpoint = line.Split('\t')[1].Trim();
        return endpoint[..endpoint.LastIndexOf(':')];
    }
}
