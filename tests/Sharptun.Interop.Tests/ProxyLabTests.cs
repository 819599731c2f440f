using System.Net;
using System.Net.Sockets;
using System.Runtime.Versioning;
using System.Text;

namespace Sharptun.Interop.Tests;

/// <summary>The proxy lab itself works (so a failing proxy test points at the proxy, not at the lab).</summary>
[SupportedOSPlatform("linux")]
public sealed class ProxyLabTests
{
    private static readonly TimeSpan Timeout = TimeSpan.FromSeconds(30);

    [InteropFact("wireguard-go", "wg", "nginx", "dnsmasq", "curl", "setpriv")]
    public void ServerSide_NginxGetPutEchoIp_UdpEcho_AndTheCliCopyRunsAsNobody()
    {
        using var lab = new NetnsLab();
        using var proxyLab = new ProxyLab(lab);
        var sha = proxyLab.CreateFile("blob.bin", 3 << 20);

        var get4 = lab.Exec(proxyLab.ServerNs, Timeout, "curl", "-sS", proxyLab.Url("/hello.txt"));
        var get6 = lab.Exec(proxyLab.ServerNs, Timeout, "curl", "-sS", proxyLab.Url6("/hello.txt"));
        var blob = Path.Combine(lab.TempDirectory, "blob.out");
        var download = lab.Exec(proxyLab.ServerNs, Timeout, "curl", "-sS", "-o", blob, proxyLab.Url("/blob.bin"));
        var put = lab.Exec(proxyLab.ServerNs, Timeout, "curl", "-sS", "-f", "-T", Path.Combine(proxyLab.WebRoot, "blob.bin"), proxyLab.Url("/upload/up.bin"));
        var echo = lab.Exec(proxyLab.ServerNs, Timeout, "curl", "-sS", "--data-binary", "ping-body", proxyLab.Url("/echo"));
        var ip = lab.Exec(proxyLab.ServerNs, Timeout, "curl", "-sS", proxyLab.Url("/ip"));
        var version = proxyLab.RunSharptun(Timeout, "--help");

        var udpReply = NetnsLab.RunInNamespace(proxyLab.ServerNs, () =>
        {
            using var s = new Socket(AddressFamily.InterNetworkV6, SocketType.Dgram, ProtocolType.Udp);
            s.ReceiveTimeout = 5000;
            s.SendTo("udp-ping"u8, new IPEndPoint(IPAddress.Parse(proxyLab.ServerV6), ProxyLab.UdpEchoPort));
            var buffer = new byte[100];
            var n = s.Receive(buffer);
            return Encoding.ASCII.GetString(buffer, 0, n);
        });

        var describe = proxyLab.Describe();
        Assert.Equal("hello through the tunnel\n", get4.Stdout);
        Assert.Equal("hello through the tunnel\n", get6.Stdout);
        Assert.True(download.Success, download + describe);
        Assert.Equal(sha, ProxyLab.HashOf(blob));
        Assert.True(put.Success, put + describe);
        Assert.Equal(sha, ProxyLab.HashOf(Path.Combine(proxyLab.UploadDirectory, "up.bin")));
        Assert.Equal("ping-body", echo.Stdout);
        Assert.Equal(proxyLab.ServerV4 + "\n", ip.Stdout);
        Assert.Equal("udp-ping", udpReply);
        Assert.True(version.Success, version.ToString());
        Assert.Contains("proxy", version.Stdout + version.Stderr, StringComparison.Ordinal);
    }
}
