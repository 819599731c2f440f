using System.Net;
using System.Runtime.Versioning;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;

namespace Sharptun.Interop.Tests;

/// <summary>
/// Issue 10 item 3: curl through <c>sharptun proxy</c>'s <c>[http]</c> front-ends (plain, with Basic auth, and an
/// HTTPS listener from PEM files) to nginx behind Debian's wireguard-go, the proxy running as uid 65534 (ProxyLab).
/// </summary>
[SupportedOSPlatform("linux")]
public sealed class ProxyHttpInteropTests
{
    private static readonly TimeSpan Timeout = TimeSpan.FromSeconds(90);
    private const int PlainPort = 8080;
    private const int AuthPort = 8081;
    private const int TlsPort = 8443;

    [InteropFact("wireguard-go", "wg", "nginx", "dnsmasq", "curl", "setpriv")]
    public void Curl_ThroughHttpSections_GetPostPutConnectAuthAndHttpsListener()
    {
        using var lab = new NetnsLab();
        using var proxyLab = new ProxyLab(lab);
        var blobSha = proxyLab.CreateFile("blob.bin", 64L << 20);
        var (certPath, keyPath) = WriteCertificate(proxyLab);
        var config = proxyLab.WriteConfig("http.conf",
            proxyLab.InterfaceAndPeer +
            $"[http]\nBindAddress = 127.0.0.1:{PlainPort}\n\n" +
            $"[http]\nBindAddress = 127.0.0.1:{AuthPort}\nUsername = alice\nPassword = wonder land\n\n" +
            $"[http]\nBindAddress = 127.0.0.1:{TlsPort}\nCertFile = {certPath}\nKeyFile = {keyPath}\n");
        var proxy = proxyLab.StartProxy(config);
        proxyLab.WaitForTcpListener(PlainPort, proxy);
        proxyLab.WaitForTcpListener(TlsPort, proxy);
        var plain = $"http://127.0.0.1:{PlainPort}";
        var describe = () => $"{lab.OutputOf(proxy)}\n{proxyLab.Describe()}";

        // GET by IPv4, IPv6 and a name only the tunnel's DNS knows (absolute-form requests).
        var get4 = proxyLab.Curl(Timeout, "-x", plain, proxyLab.Url("/hello.txt"));
        Assert.True(get4.Success, get4 + describe());
        Assert.Equal("hello through the tunnel\n", get4.Stdout);
        Assert.Equal("hello through the tunnel\n", proxyLab.Curl(Timeout, "-x", plain, proxyLab.Url6("/hello.txt")).Stdout);
        Assert.Equal("hello through the tunnel\n", proxyLab.Curl(Timeout, "-x", plain, proxyLab.UrlByName("/hello.txt")).Stdout);
        Assert.Equal(proxyLab.ClientV4 + "\n", proxyLab.Curl(Timeout, "-x", plain, proxyLab.Url("/ip")).Stdout);

        // 64 MiB download, hashed.
        var downloaded = Path.Combine(lab.TempDirectory, "blob.out");
        var download = proxyLab.Curl(Timeout, "-x", plain, "-f", "-o", downloaded, proxyLab.Url("/blob.bin"));
        Assert.True(download.Success, download + describe());
        Assert.Equal(blobSha, ProxyLab.HashOf(downloaded));

        // POST echoed by nginx (3 MiB: curl sends Expect: 100-continue, nginx answers 100 through the proxy).
        var body = Path.Combine(lab.TempDirectory, "post.bin");
        File.WriteAllBytes(body, RandomNumberGenerator.GetBytes(3 << 20));
        var echoed = Path.Combine(lab.TempDirectory, "post.out");
        var post = proxyLab.Curl(Timeout, "-x", plain, "-f", "--data-binary", "@" + body, "-o", echoed, proxyLab.Url("/echo"));
        Assert.True(post.Success, post + describe());
        Assert.Equal(ProxyLab.HashOf(body), ProxyLab.HashOf(echoed));

        // PUT uploads: one with Content-Length, one chunked.
        var put = proxyLab.Curl(Timeout, "-x", plain, "-f", "-T", Path.Combine(proxyLab.WebRoot, "blob.bin"), proxyLab.Url("/upload/put.bin"));
        Assert.True(put.Success, put + describe());
        Assert.Equal(blobSha, ProxyLab.HashOf(Path.Combine(proxyLab.UploadDirectory, "put.bin")));
        var chunked = proxyLab.Curl(Timeout, "-x", plain, "-f", "-H", "Transfer-Encoding: chunked", "-T", body, proxyLab.Url6("/upload/chunked.bin"));
        Assert.True(chunked.Success, chunked + describe());
        Assert.Equal(ProxyLab.HashOf(body), ProxyLab.HashOf(Path.Combine(proxyLab.UploadDirectory, "chunked.bin")));

        // DELETE (wireproxy answers 405 to anything but GET and CONNECT).
        var delete = proxyLab.Curl(Timeout, "-x", plain, "-f", "-X", "DELETE", proxyLab.Url("/upload/put.bin"));
        Assert.True(delete.Success, delete + describe());
        Assert.False(File.Exists(Path.Combine(proxyLab.UploadDirectory, "put.bin")));

        // CONNECT (curl -p), including a name resolved through the tunnel.
        var connect = proxyLab.Curl(Timeout, "-p", "-x", plain, "-f", "-o", downloaded, proxyLab.UrlByName("/blob.bin"));
        Assert.True(connect.Success, connect + describe());
        Assert.Equal(blobSha, ProxyLab.HashOf(downloaded));

        // Basic auth: 407 without or with wrong credentials, success with them (requests and CONNECT).
        var auth = $"http://127.0.0.1:{AuthPort}";
        Assert.Equal("407", StatusOf(proxyLab.Curl(Timeout, "-x", auth, "-o", "/dev/null", "-w", "%{http_code}", proxyLab.Url("/hello.txt"))));
        Assert.Equal("407", StatusOf(proxyLab.Curl(Timeout, "-x", auth, "--proxy-user", "alice:wrong", "-o", "/dev/null", "-w", "%{http_code}", proxyLab.Url("/hello.txt"))));
        var connectNoAuth = proxyLab.Curl(Timeout, "-p", "-x", auth, proxyLab.Url("/hello.txt"));
        Assert.False(connectNoAuth.Success);
        Assert.Contains("407", connectNoAuth.Stderr, StringComparison.Ordinal);
        Assert.Equal("hello through the tunnel\n", proxyLab.Curl(Timeout, "-x", auth, "--proxy-user", "alice:wonder land", proxyLab.Url("/hello.txt")).Stdout);
        Assert.Equal("hello through the tunnel\n", proxyLab.Curl(Timeout, "-p", "-x", auth, "--proxy-user", "alice:wonder land", proxyLab.Url("/hello.txt")).Stdout);

        // The HTTPS listener: TLS to the proxy, then the same requests and CONNECT inside it.
        var tls = $"https://127.0.0.1:{TlsPort}";
        var overTls = proxyLab.Curl(Timeout, "--proxy", tls, "--proxy-insecure", proxyLab.UrlByName("/hello.txt"));
        Assert.True(overTls.Success, overTls + describe());
        Assert.Equal("hello through the tunnel\n", overTls.Stdout);
        var connectOverTls = proxyLab.Curl(Timeout, "-p", "--proxy", tls, "--proxy-insecure", "-f", "-o", downloaded, proxyLab.Url6("/blob.bin"));
        Assert.True(connectOverTls.Success, connectOverTls + describe());
        Assert.Equal(blobSha, ProxyLab.HashOf(downloaded));
        var plainToTls = proxyLab.Curl(TimeSpan.FromSeconds(60), "-x", $"http://127.0.0.1:{TlsPort}", "-m", "10", proxyLab.Url("/hello.txt"));
        Assert.False(plainToTls.Success);

        // Errors: a name the tunnel's DNS does not know is 502 with a reason; nothing was served to a bad target.
        var unknown = proxyLab.Curl(Timeout, "-x", plain, "-w", "\n%{http_code}", "http://nowhere.test/");
        Assert.EndsWith("\n502", unknown.Stdout, StringComparison.Ordinal);
        Assert.Contains("Cannot resolve 'nowhere.test'", unknown.Stdout, StringComparison.Ordinal);

        Assert.False(proxy.HasExited, describe());
    }

    private static string StatusOf(CommandResult result) => result.Stdout.Trim();

    // A self-signed certificate and key as PEM files in the proxy user's home (owned by it, 0600).
    private static (string Cert, string Key) WriteCertificate(ProxyLab proxyLab)
    {
        using var key = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        var request = new CertificateRequest("CN=sharptun proxy", key, HashAlgorithmName.SHA256);
        var san = new SubjectAlternativeNameBuilder();
        san.AddIpAddress(IPAddress.Loopback);
        request.CertificateExtensions.Add(san.Build());
        using var certificate = request.CreateSelfSigned(DateTimeOffset.UtcNow.AddDays(-1), DateTimeOffset.UtcNow.AddDays(30));
        return (proxyLab.WriteConfig("proxy-cert.pem", certificate.ExportCertificatePem()), proxyLab.WriteConfig("proxy-key.pem", key.ExportPkcs8PrivateKeyPem()));
    }
}
