using System.Net;
using System.Net.Security;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using Sharptun.Proxy.Config;
using Sharptun.Proxy.Http;

namespace Sharptun.Proxy.Tests.Http;

/// <summary>The HTTPS listener and the <c>[http]</c> section reader.</summary>
public sealed class HttpProxyTlsAndConfigTests(OriginServer origin) : IClassFixture<OriginServer>, IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("sharptun-http-").FullName;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    internal static X509Certificate2 SelfSigned()
    {
        using var key = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        var request = new CertificateRequest("CN=sharptun-test-proxy", key, HashAlgorithmName.SHA256);
        var san = new SubjectAlternativeNameBuilder();
        san.AddIpAddress(IPAddress.Loopback);
        request.CertificateExtensions.Add(san.Build());
        return request.CreateSelfSigned(DateTimeOffset.UtcNow.AddDays(-1), DateTimeOffset.UtcNow.AddDays(1));
    }

    private static async Task<SslStream> ConnectTlsAsync(ProxyHarness proxy)
    {
        var tcp = await proxy.ConnectRawAsync();
        var tls = new SslStream(tcp.GetStream(), leaveInnerStreamOpen: false, (_, _, _, _) => true);
        await tls.AuthenticateAsClientAsync(new SslClientAuthenticationOptions { TargetHost = "127.0.0.1" });
        return tls;
    }

    [Fact]
    public async Task HttpsListener_ServesRequestsAndConnectInsideTls()
    {
        using var certificate = SelfSigned();
        await using var proxy = ProxyHarness.Start(certificate: certificate);

        await using (var tls = await ConnectTlsAsync(proxy))
        {
            await RawHttp.SendAsync(tls, $"GET http://a.test:{origin.Port}/bytes/70000 HTTP/1.1\r\n\r\n");
            var get = await RawHttp.ReadResponseAsync(tls);
            await RawHttp.SendAsync(tls, $"POST http://b.test:{origin.Port}/echo HTTP/1.1\r\nContent-Length: 6\r\n\r\nhello!");
            var post = await RawHttp.ReadResponseAsync(tls);

            Assert.Equal(Pattern.Bytes(0, 70000), get.Body);
            Assert.Equal("hello!", post.Text);
            Assert.Equal(1, proxy.Server.Counters.Accepted);
        }

        await using (var tls = await ConnectTlsAsync(proxy))
        {
            await RawHttp.SendAsync(tls, $"CONNECT a.test:{origin.Port} HTTP/1.1\r\n\r\n");
            Assert.Equal(200, (await RawHttp.ReadResponseAsync(tls, head: true)).Status);
            await RawHttp.SendAsync(tls, $"GET /bytes/10 HTTP/1.1\r\nHost: a.test\r\n\r\n");
            Assert.Equal(Pattern.Bytes(0, 10), (await RawHttp.ReadResponseAsync(tls)).Body);
        }

        await proxy.WaitIdleAsync();
    }

    [Fact]
    public async Task HttpsListener_WithHttpClientAndAnHttpsProxyUri()
    {
        using var certificate = SelfSigned();
        await using var proxy = ProxyHarness.Start(certificate: certificate);
        using var handler = new SocketsHttpHandler
        {
            Proxy = new WebProxy(new Uri($"https://127.0.0.1:{proxy.EndPoint.Port}")),
            UseProxy = true,
            SslOptions = new SslClientAuthenticationOptions { RemoteCertificateValidationCallback = (_, _, _, _) => true },
        };
        using var client = new HttpClient(handler);

        Assert.Equal(Pattern.Bytes(0, 1234), await client.GetByteArrayAsync($"http://a.test:{origin.Port}/bytes/1234"));
    }

    [Fact]
    public async Task HttpsListener_PlainHttpClient_IsDroppedWithoutHarm()
    {
        using var certificate = SelfSigned();
        await using var proxy = ProxyHarness.Start(certificate: certificate, handshakeTimeout: TimeSpan.FromSeconds(2));
        using var tcp = await proxy.ConnectRawAsync();

        await RawHttp.SendAsync(tcp.GetStream(), $"GET http://a.test:{origin.Port}/ HTTP/1.1\r\n\r\n");
        await RawHttp.ReadToEndAsync(tcp.GetStream()).WaitAsync(TimeSpan.FromSeconds(30));

        await proxy.WaitIdleAsync();
        Assert.Empty(((LoopbackNetwork)proxy.Context.Network).Connects);
    }

    [Fact]
    public async Task FromSection_WithPemCertAndKey_ServesHttpsWithAuth()
    {
        using (var certificate = SelfSigned())
        {
            File.WriteAllText(Path.Combine(_dir, "cert.pem"), certificate.ExportCertificatePem());
            File.WriteAllText(Path.Combine(_dir, "key.pem"), certificate.GetECDsaPrivateKey()!.ExportPkcs8PrivateKeyPem());
        }

        var config = ConfigFile.Parse(
            $"[http]\nBindAddress = 127.0.0.1:0\nusername = bob\nPassword = $PROXY_PW\nCertFile = {_dir}/cert.pem\nKeyFile = {_dir}/key.pem\n",
            "proxy.conf",
            name => name == "PROXY_PW" ? "hunter2" : null);
        var context = new ProxyContext(ProxyHarness.Network());
        var server = HttpProxyServer.FromSection(config.Named("http").Single(), context);
        await using var proxy = ProxyHarness.Start(server, context);
        Assert.Equal("http", server.Kind);
        Assert.Equal($"127.0.0.1:{proxy.EndPoint.Port}", server.Endpoint);

        await using var tls = await ConnectTlsAsync(proxy);
        await RawHttp.SendAsync(tls, $"GET http://a.test:{origin.Port}/bytes/9 HTTP/1.1\r\nProxy-Authorization: Basic Ym9iOmh1bnRlcjI=\r\n\r\n");
        var response = await RawHttp.ReadResponseAsync(tls);

        Assert.Equal(200, response.Status);
        Assert.Equal(Pattern.Bytes(0, 9), response.Body);
    }

    [Theory]
    [InlineData("[http]\nBindAddress = 127.0.0.1:8080\nColour = blue\n", 3, "unknown key 'Colour'")]
    [InlineData("[http]\nUsername = a\n", 1, "needs BindAddress")]
    [InlineData("[http]\nBindAddress = 127.0.0.1\n", 2, "not host:port")]
    [InlineData("[http]\nBindAddress = 127.0.0.1:70000\n", 2, "not host:port")]
    [InlineData("[http]\nBindAddress = ::1:8080\n", 2, "not host:port")]
    [InlineData("[http]\nBindAddress = example.com:8080\n", 2, "not host:port")]
    [InlineData("[http]\nBindAddress = :8080\nUsername = a:b\nPassword = c\n", 3, "cannot contain ':'")]
    [InlineData("[http]\nBindAddress = :8080\nCertFile = /nonexistent/cert.pem\n", 3, "both CertFile and KeyFile")]
    [InlineData("[http]\nBindAddress = :8080\nCertFile = /nonexistent/cert.pem\nKeyFile = /nonexistent/key.pem\n", 3, "cannot load the certificate")]
    public void FromSection_BadValues_FailWithFileAndLine(string text, int line, string message)
    {
        var config = ConfigFile.Parse(text, "proxy.conf");

        var e = Assert.Throws<ProxyConfigException>(() => HttpProxyServer.FromSection(config.Named("http").Single(), new ProxyContext(ProxyHarness.Network())));

        Assert.Equal(line, e.Line);
        Assert.StartsWith($"proxy.conf:{line}: ", e.Message, StringComparison.Ordinal);
        Assert.Contains(message, e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void FromSection_CertFileThatIsNotPem_FailsWithItsLine()
    {
        File.WriteAllText(Path.Combine(_dir, "cert.pem"), "not a certificate");
        File.WriteAllText(Path.Combine(_dir, "key.pem"), "not a key");
        var config = ConfigFile.Parse($"[http]\nBindAddress = :8080\nCertFile = {_dir}/cert.pem\nKeyFile = {_dir}/key.pem\n", "proxy.conf");

        var e = Assert.Throws<ProxyConfigException>(() => HttpProxyServer.FromSection(config.Named("http").Single(), new ProxyContext(ProxyHarness.Network())));

        Assert.Equal(3, e.Line);
        Assert.Contains("cannot load the certificate", e.Message, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("Username = solo\n", "solo:")]
    [InlineData("Password = only\n", ":only")]
    public async Task FromSection_UsernameOrPasswordAlone_RequiresThatPair_AsWireproxy(string keys, string credentials)
    {
        var config = ConfigFile.Parse("[http]\nBindAddress = 127.0.0.1:0\n" + keys, "proxy.conf");
        var context = new ProxyContext(ProxyHarness.Network());
        await using var proxy = ProxyHarness.Start(HttpProxyServer.FromSection(config.Named("http").Single(), context), context);
        var url = $"http://a.test:{origin.Port}/bytes/2";

        using var without = await proxy.ConnectRawAsync();
        await RawHttp.SendAsync(without.GetStream(), $"GET {url} HTTP/1.1\r\n\r\n");
        using var with = await proxy.ConnectRawAsync();
        await RawHttp.SendAsync(with.GetStream(), $"GET {url} HTTP/1.1\r\nProxy-Authorization: Basic {Convert.ToBase64String(System.Text.Encoding.UTF8.GetBytes(credentials))}\r\n\r\n");

        Assert.Equal(407, (await RawHttp.ReadResponseAsync(without.GetStream())).Status);
        Assert.Equal(200, (await RawHttp.ReadResponseAsync(with.GetStream())).Status);
    }

    [Theory]
    [InlineData("127.0.0.1:8080", "127.0.0.1:8080")]
    [InlineData("[::1]:3128", "[::1]:3128")]
    [InlineData(":8080", "[::]:8080")]
    [InlineData("localhost:25345", "127.0.0.1:25345")]
    [InlineData("0.0.0.0:0", "0.0.0.0:0")]
    public void BindAddress_AcceptsWhatWireproxyAccepts(string text, string expected)
    {
        Assert.True(BindAddressParser.TryParse(text, out var endPoint));
        Assert.Equal(expected, endPoint.ToString());
    }

    [Fact]
    public async Task EmptyBindHost_ListensOnEveryInterface_IPv4Included()
    {
        var context = new ProxyContext(ProxyHarness.Network());
        var config = ConfigFile.Parse("[http]\nBindAddress = :0\n", "proxy.conf");
        await using var proxy = ProxyHarness.Start(HttpProxyServer.FromSection(config.Named("http").Single(), context), context);
        using var tcp = new System.Net.Sockets.TcpClient();
        await tcp.ConnectAsync(IPAddress.Loopback, proxy.EndPoint.Port);

        await RawHttp.SendAsync(tcp.GetStream(), $"GET http://a.test:{origin.Port}/bytes/3 HTTP/1.1\r\n\r\n");

        Assert.Equal(Pattern.Bytes(0, 3), (await RawHttp.ReadResponseAsync(tcp.GetStream())).Body);
    }

    [Fact]
    public void Start_PortInUse_Throws()
    {
        using var busy = new System.Net.Sockets.TcpListener(IPAddress.Loopback, 0);
        busy.Start();
        var server = new HttpProxyServer(
            new HttpProxyOptions { BindAddress = (IPEndPoint)busy.LocalEndpoint },
            new ProxyContext(ProxyHarness.Network()));

        Assert.Throws<System.Net.Sockets.SocketException>(server.Start);
    }
}
