using System.Runtime.Versioning;

namespace Sharptun.Interop.Tests;

/// <summary>
/// <c>sharptun proxy</c>'s operations (issue 10 item 6) with real clients: curl scrapes <c>-i</c>'s <c>/metrics</c> and
/// <c>/readyz</c> (CheckAlive pinging wireguard-go's address), and the stock <c>wg</c> reads and changes the proxy
/// instance through <c>--uapi-socket</c>; the proxy runs as uid 65534.
/// </summary>
public sealed partial class ProxyInteropTests
{
    [InteropFact("wireguard-go", "wg", "nginx", "dnsmasq", "curl", "setpriv")]
    [SupportedOSPlatform("linux")]
    public void Operations_MetricsReadyzFollowCheckAlive_WgShowAndSetWorkOnTheProxy()
    {
        using var lab = new NetnsLab();
        using var proxyLab = new ProxyLab(lab);
        var text = proxyLab.InterfaceAndPeer.Replace("[Peer]", $"CheckAlive = {proxyLab.ServerV4}\nCheckAliveInterval = 1\n\n[Peer]", StringComparison.Ordinal) +
            "[Socks5]\nBindAddress = 127.0.0.1:1080\n";
        var config = proxyLab.WriteConfig("ops.conf", text);
        var socket = Path.Combine(proxyLab.ClientHome, "proxy.sock");
        var link = $"/var/run/wireguard/{lab.NewInterfaceName('p')}.sock";
        var proxy = proxyLab.StartProxy(config, "-i", "127.0.0.1:9081", "--uapi-socket", socket);
        try
        {
            proxyLab.WaitForTcpListener(9081, proxy);
            File.CreateSymbolicLink(link, socket);
            var name = Path.GetFileNameWithoutExtension(link);
            var get = proxyLab.Curl(CurlTimeout, "--socks5-hostname", "127.0.0.1:1080", proxyLab.UrlByName("/hello.txt"));
            lab.WaitFor(() => proxyLab.Curl(CurlTimeout, "-o", "/dev/null", "-w", "%{http_code}", "http://127.0.0.1:9081/readyz").Stdout == "200",
                TimeSpan.FromSeconds(30), "/readyz to answer 200\n" + lab.OutputOf(proxy));
            var metrics = proxyLab.Curl(CurlTimeout, "http://127.0.0.1:9081/metrics");
            var ready = proxyLab.Curl(CurlTimeout, "http://127.0.0.1:9081/readyz");
            var show = lab.Exec(null, "wg", "show", name, "dump");
            var (_, newPeer) = NewKey(lab);
            var set = lab.Exec(null, "wg", "set", name, "peer", newPeer, "allowed-ips", "10.99.0.1/32");
            var afterSet = lab.Exec(null, "wg", "show", name, "peers");

            var describe = proxyLab.Describe() + lab.OutputOf(proxy);
            Assert.True(get.Success, get + describe);
            Assert.True(metrics.Success, metrics + describe);
            Assert.Matches(@"sharptun_proxy_accepted_connections_total\{frontend=""socks5"",endpoint=""127\.0\.0\.1:1080""\} 1", metrics.Stdout);
            Assert.Contains("# TYPE", metrics.Stdout, StringComparison.Ordinal);
            Assert.Contains(proxyLab.ServerV4, ready.Stdout, StringComparison.Ordinal); // the last pong of the CheckAlive target
            Assert.True(show.Success, show + describe);
            var peer = show.Stdout.Split('\n', StringSplitOptions.RemoveEmptyEntries)[1].Split('\t');
            Assert.NotEqual("0", peer[4]); // a handshake with wireguard-go
            Assert.True(set.Success, set + describe);
            Assert.Contains(newPeer, afterSet.Stdout, StringComparison.Ordinal);

            // wireguard-go goes away: CheckAlive stops getting pongs and /readyz turns 503 within interval + 2 s (+ slack)
            lab.Check(proxyLab.ServerNs, "nft", "add", "table", "inet", "cut");
            lab.Check(proxyLab.ServerNs, "nft", "add", "chain", "inet", "cut", "in", "{ type filter hook input priority 0; policy drop; }");
            lab.WaitFor(() => proxyLab.Curl(CurlTimeout, "-o", "/dev/null", "-w", "%{http_code}", "http://127.0.0.1:9081/readyz").Stdout == "503",
                TimeSpan.FromSeconds(30), "/readyz to answer 503 once pings go unanswered\n" + lab.OutputOf(proxy));
        }
        finally
        {
            File.Delete(link);
        }
    }

    private static (string Private, string Public) NewKey(NetnsLab lab)
    {
        var priv = lab.Check(null, "wg", "genkey").Stdout.Trim();
        var pub = lab.ExecWithInput(null, priv + "\n", "wg", "pubkey").Stdout.Trim();
        return (priv, pub);
    }
}
