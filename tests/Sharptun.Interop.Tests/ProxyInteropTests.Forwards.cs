using System.Globalization;
using System.Net;
using System.Net.Security;
using System.Net.Sockets;
using System.Security.Authentication;
using System.Runtime.Versioning;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using System.Text;

namespace Sharptun.Interop.Tests;

/// <summary>
/// The forwards of <c>sharptun proxy</c> (issue 10 item 4) against wireguard-go, nginx and a UDP echo in
/// <see cref="ProxyLab"/>, the proxy running as uid 65534: curl through <c>[TCPClientTunnel]</c>, curl from the
/// wireguard-go side through <c>[TCPServerTunnel]</c> to a host-side listener, datagrams through
/// <c>[UDPProxyTunnel]</c>, an HTTP request piped through <c>[STDIOTunnel]</c>'s stdin/stdout, curl over HTTPS
/// through <c>[SNI]</c> to a TLS server known only by the tunnel's DNS name.
/// </summary>
[SupportedOSPlatform("linux")]
public sealed partial class ProxyInteropTests
{
    private static readonly TimeSpan ForwardTimeout = TimeSpan.FromSeconds(60);

    [InteropFact("wireguard-go", "wg", "nginx", "dnsmasq", "curl", "setpriv", "ss")]
    public void TcpClientTunnel_CurlReachesNginxByTunnelName_SmallAndOneMebibyteBodiesBothWays()
    {
        using var lab = new NetnsLab();
        using var proxyLab = new ProxyLab(lab);
        var config = proxyLab.WriteConfig("client-tunnel.conf",
            proxyLab.InterfaceAndPeer +
            $"[TCPClientTunnel]\nBindAddress = 127.0.0.1:18080\nTarget = {ProxyLab.WebName}:{ProxyLab.HttpPort}\n");
        var proxy = proxyLab.StartProxy(config);
        proxyLab.WaitForTcpListener(18080, proxy);

        var get = proxyLab.Curl(ForwardTimeout, "-f", "http://127.0.0.1:18080/hello.txt");
        var body = Path.Combine(lab.TempDirectory, "body.bin");
        var payload = RandomNumberGenerator.GetBytes(1 << 20);
        File.WriteAllBytes(body, payload);
        var echoed = Path.Combine(lab.TempDirectory, "echoed.bin");
        var post = proxyLab.Curl(ForwardTimeout, "-f", "--data-binary", "@" + body, "-o", echoed, "http://127.0.0.1:18080/echo");

        var describe = lab.OutputOf(proxy) + proxyLab.Describe();
        Assert.True(get.Success, get + describe);
        Assert.Equal("hello through the tunnel\n", get.Stdout);
        Assert.True(post.Success, post + describe);
        Assert.Equal(SHA256.HashData(payload), SHA256.HashData(File.ReadAllBytes(echoed)));
        Assert.False(proxy.HasExited, describe);
    }

    [InteropFact("wireguard-go", "wg", "nginx", "dnsmasq", "curl", "setpriv", "ss")]
    public async Task TcpServerTunnel_CurlOnTheWireGuardSide_ReachesAListenerOnTheProxysHost()
    {
        using var lab = new NetnsLab();
        using var proxyLab = new ProxyLab(lab);

        // The host-side service: an HTTP responder on the proxy's loopback, in the proxy's namespace.
        using var listener = NetnsLab.RunInNamespace(proxyLab.ClientNs, () =>
        {
            var socket = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
            socket.Bind(new IPEndPoint(IPAddress.Loopback, 0));
            socket.Listen(16);
            return socket;
        });
        var hostPort = ((IPEndPoint)listener.LocalEndPoint!).Port;
        using var stop = new CancellationTokenSource();
        var serving = ServeHttpAsync(listener, "served from the proxy's host\n", stop.Token);

        var config = proxyLab.WriteConfig("server-tunnel.conf",
            proxyLab.InterfaceAndPeer +
            $"[TCPServerTunnel]\nListenPort = 8080\nTarget = 127.0.0.1:{hostPort}\n");
        var proxy = proxyLab.StartProxy(config);
        proxyLab.WaitForHandshake(proxy);

        var curl4 = lab.Exec(proxyLab.ServerNs, ForwardTimeout, "curl", "-sS", "-f", "--retry", "5", "--retry-connrefused", "--retry-delay", "1",
            $"http://{proxyLab.ClientV4}:8080/");
        var curl6 = lab.Exec(proxyLab.ServerNs, ForwardTimeout, "curl", "-sS", "-f", "--retry", "5", "--retry-connrefused", "--retry-delay", "1",
            $"http://[{proxyLab.ClientV6}]:8080/");
        await stop.CancelAsync();
        await serving;

        var describe = lab.OutputOf(proxy) + proxyLab.Describe();
        Assert.True(curl4.Success, curl4 + describe);
        Assert.Equal("served from the proxy's host\n", curl4.Stdout);
        Assert.True(curl6.Success, curl6 + describe);
        Assert.Equal("served from the proxy's host\n", curl6.Stdout);
    }

    [InteropFact("wireguard-go", "wg", "nginx", "dnsmasq", "curl", "setpriv", "ss")]
    public async Task UdpProxyTunnel_TwoClients_EachGetsItsOwnEchoes()
    {
        using var lab = new NetnsLab();
        using var proxyLab = new ProxyLab(lab);
        var config = proxyLab.WriteConfig("udp-tunnel.conf",
            proxyLab.InterfaceAndPeer +
            $"[UDPProxyTunnel]\nBindAddress = 127.0.0.1:15353\nTarget = [{proxyLab.ServerV6}]:{ProxyLab.UdpEchoPort}\nInactivityTimeout = 30\n");
        var proxy = proxyLab.StartProxy(config);
        lab.WaitFor(
            () => proxy.HasExited || lab.Exec(proxyLab.ClientNs, "ss", "-Hlun", "sport = :15353").Stdout.Contains(":15353", StringComparison.Ordinal),
            TimeSpan.FromSeconds(30),
            "the UDP tunnel's socket\n" + lab.OutputOf(proxy));
        var forward = new IPEndPoint(IPAddress.Loopback, 15353);

        using var a = NetnsLab.RunInNamespace(proxyLab.ClientNs, UdpClientSocket);
        using var b = NetnsLab.RunInNamespace(proxyLab.ClientNs, UdpClientSocket);
        var replies = new List<string>();
        for (var i = 0; i < 5; i++)
        {
            replies.Add(await EchoAsync(a, forward, $"a-{i}"));
            replies.Add(await EchoAsync(b, forward, $"b-{i}"));
        }

        var describe = lab.OutputOf(proxy) + proxyLab.Describe();
        Assert.Equal(Enumerable.Range(0, 5).SelectMany(i => new[] { $"a-{i}", $"b-{i}" }), replies);
        Assert.True(proxyLab.UdpEcho.Echoed >= 10, describe);
        Assert.False(proxy.HasExited, describe);
    }

    [InteropFact("wireguard-go", "wg", "nginx", "dnsmasq", "curl", "setpriv", "ss")]
    public async Task UdpProxyTunnel_DatagramsTheTargetSendsOnItsOwn_ReachTheSessionsClient()
    {
        using var lab = new NetnsLab();
        using var proxyLab = new ProxyLab(lab);
        using var server = NetnsLab.RunInNamespace(proxyLab.ServerNs, () =>
        {
            var socket = new Socket(AddressFamily.InterNetwork, SocketType.Dgram, ProtocolType.Udp);
            socket.Bind(new IPEndPoint(IPAddress.Parse(proxyLab.ServerV4), 9999));
            return socket;
        });
        var config = proxyLab.WriteConfig("udp-push.conf",
            proxyLab.InterfaceAndPeer +
            $"[UDPProxyTunnel]\nBindAddress = 127.0.0.1:15354\nTarget = {proxyLab.ServerV4}:9999\n");
        var proxy = proxyLab.StartProxy(config);
        lab.WaitFor(
            () => proxy.HasExited || lab.Exec(proxyLab.ClientNs, "ss", "-Hlun", "sport = :15354").Stdout.Contains(":15354", StringComparison.Ordinal),
            TimeSpan.FromSeconds(30),
            "the UDP tunnel's socket\n" + lab.OutputOf(proxy));

        using var client = NetnsLab.RunInNamespace(proxyLab.ClientNs, UdpClientSocket);
        await client.SendToAsync("subscribe"u8.ToArray(), SocketFlags.None, new IPEndPoint(IPAddress.Loopback, 15354));
        var buffer = new byte[1024];
        using var timeout = new CancellationTokenSource(ForwardTimeout);
        var first = await server.ReceiveFromAsync(buffer, SocketFlags.None, new IPEndPoint(IPAddress.Any, 0), timeout.Token);
        var session = (IPEndPoint)first.RemoteEndPoint;
        var subscribed = Encoding.ASCII.GetString(buffer, 0, first.ReceivedBytes);

        // No request pending: the target speaks on its own, to the session's tunnel address.
        await server.SendToAsync("push-1"u8.ToArray(), SocketFlags.None, session);
        await server.SendToAsync("push-2"u8.ToArray(), SocketFlags.None, session);
        var got = new List<string>();
        while (got.Count < 2)
        {
            var n = await client.ReceiveAsync(buffer, SocketFlags.None, timeout.Token);
            got.Add(Encoding.ASCII.GetString(buffer, 0, n));
        }

        Assert.Equal("subscribe", subscribed);
        Assert.Equal(proxyLab.ClientV4, session.Address.ToString());
        Assert.Equal(["push-1", "push-2"], got);
        Assert.False(proxy.HasExited, lab.OutputOf(proxy));
    }

    [InteropFact("wireguard-go", "wg", "nginx", "dnsmasq", "curl", "setpriv")]
    public void StdioTunnel_RequestOnStdin_ResponseOnStdoutOnly_ProxyExitsWhenNginxCloses()
    {
        using var lab = new NetnsLab();
        using var proxyLab = new ProxyLab(lab);
        var config = proxyLab.WriteConfig("stdio-tunnel.conf",
            proxyLab.InterfaceAndPeer +
            $"[STDIOTunnel]\nTarget = {ProxyLab.WebName}:{ProxyLab.HttpPort}\n");

        // HTTP/1.0: nginx answers and closes, and stdin's end half-closes the request side first, as ssh's would.
        var result = proxyLab.RunSharptunWithInput(
            $"GET /hello.txt HTTP/1.0\r\nHost: {ProxyLab.WebName}\r\n\r\n",
            "proxy", "-c", config);

        var describe = result + proxyLab.Describe();
        Assert.True(result.Success, describe);
        Assert.StartsWith("HTTP/1.1 200 OK\r\n", result.Stdout, StringComparison.Ordinal);
        Assert.EndsWith("\r\n\r\nhello through the tunnel\n", result.Stdout, StringComparison.Ordinal);
    }

    [InteropFact("wireguard-go", "wg", "nginx", "dnsmasq", "curl", "setpriv", "ss")]
    public async Task SniProxy_CurlHttps_IsRoutedByServerNameThroughTheTunnelsDns()
    {
        using var lab = new NetnsLab();
        using var proxyLab = new ProxyLab(lab);
        using var certificate = CreateCertificate(ProxyLab.WebName);

        // A TLS server on port 443 of both wireguard-go tunnel addresses (the name resolves to either).
        var listeners = NetnsLab.RunInNamespace(proxyLab.ServerNs, () => new[]
        {
            ListenOn(IPAddress.Parse(proxyLab.ServerV4), 443),
            ListenOn(IPAddress.Parse(proxyLab.ServerV6), 443),
        });
        using var stop = new CancellationTokenSource();
        var serving = listeners.Select(l => ServeHttpsAsync(l, certificate, "tls through the sni forward\n", stop.Token)).ToArray();

        var config = proxyLab.WriteConfig("sni.conf", proxyLab.InterfaceAndPeer + "[SNI]\nBindAddress = 127.0.0.1:18443\n");
        var proxy = proxyLab.StartProxy(config);
        proxyLab.WaitForTcpListener(18443, proxy);

        // curl sends server_name web.test; only the proxy's tunnel DNS knows that name.
        var curl = proxyLab.Curl(ForwardTimeout, "-f", "-k", "--resolve", $"{ProxyLab.WebName}:18443:127.0.0.1", $"https://{ProxyLab.WebName}:18443/");
        var noName = proxyLab.Curl(ForwardTimeout, "-k", "https://127.0.0.1:18443/");
        await stop.CancelAsync();
        foreach (var l in listeners)
        {
            l.Dispose();
        }

        await Task.WhenAll(serving);
        var describe = lab.OutputOf(proxy) + proxyLab.Describe();
        Assert.True(curl.Success, curl + describe);
        Assert.Equal("tls through the sni forward\n", curl.Stdout);

        // An IP literal carries no server name (RFC 6066 §3): the forward refuses it.
        Assert.False(noName.Success, noName + describe);
        Assert.False(proxy.HasExited, describe);
    }

    private static Socket ListenOn(IPAddress address, int port)
    {
        var socket = new Socket(address.AddressFamily, SocketType.Stream, ProtocolType.Tcp);
        socket.Bind(new IPEndPoint(address, port));
        socket.Listen(16);
        return socket;
    }

    private static async Task ServeHttpsAsync(Socket listener, X509Certificate2 certificate, string body, CancellationToken cancellationToken)
    {
        var response = Encoding.ASCII.GetBytes(
            "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nConnection: close\r\n" +
            $"Content-Length: {body.Length.ToString(CultureInfo.InvariantCulture)}\r\n\r\n{body}");
        while (!cancellationToken.IsCancellationRequested)
        {
            Socket connection;
            try
            {
                connection = await listener.AcceptAsync(cancellationToken);
            }
            catch (Exception e) when (e is OperationCanceledException or ObjectDisposedException or SocketException)
            {
                return;
            }

            try
            {
                await using var tls = new SslStream(new NetworkStream(connection, ownsSocket: true));
                await tls.AuthenticateAsServerAsync(new SslServerAuthenticationOptions { ServerCertificate = certificate }, cancellationToken);
                var request = new StringBuilder();
                var buffer = new byte[4096];
                while (!request.ToString().Contains("\r\n\r\n", StringComparison.Ordinal))
                {
                    var n = await tls.ReadAsync(buffer, cancellationToken);
                    if (n == 0)
                    {
                        break;
                    }

                    request.Append(Encoding.ASCII.GetString(buffer, 0, n));
                }

                await tls.WriteAsync(response, cancellationToken);
                await tls.ShutdownAsync();
            }
            catch (Exception e) when (e is IOException or AuthenticationException or OperationCanceledException or SocketException)
            {
                // a client that gave up; serve the next one
            }
        }
    }

    private static X509Certificate2 CreateCertificate(string name)
    {
        using var key = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        var request = new CertificateRequest($"CN={name}", key, HashAlgorithmName.SHA256);
        var san = new SubjectAlternativeNameBuilder();
        san.AddDnsName(name);
        request.CertificateExtensions.Add(san.Build());
        using var certificate = request.CreateSelfSigned(DateTimeOffset.UtcNow.AddDays(-1), DateTimeOffset.UtcNow.AddDays(1));
        return X509CertificateLoader.LoadPkcs12(certificate.Export(X509ContentType.Pfx), null);
    }

    private static Socket UdpClientSocket()
    {
        var socket = new Socket(AddressFamily.InterNetwork, SocketType.Dgram, ProtocolType.Udp);
        socket.Bind(new IPEndPoint(IPAddress.Loopback, 0));
        return socket;
    }

    /// <summary>Sends until the echo comes back (the first datagram may wait on the handshake); returns the echo.</summary>
    private static async Task<string> EchoAsync(Socket socket, IPEndPoint forward, string text)
    {
        var buffer = new byte[1024];
        for (var attempt = 0; attempt < 10; attempt++)
        {
            await socket.SendToAsync(Encoding.ASCII.GetBytes(text), SocketFlags.None, forward);
            using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(3));
            try
            {
                while (true)
                {
                    var n = await socket.ReceiveAsync(buffer, SocketFlags.None, timeout.Token);
                    var reply = Encoding.ASCII.GetString(buffer, 0, n);
                    if (reply == text)
                    {
                        return reply;
                    }
                }
            }
            catch (OperationCanceledException)
            {
                // lost or not through yet: send again
            }
        }

        return "(no echo for " + text + ")";
    }

    private static async Task ServeHttpAsync(Socket listener, string body, CancellationToken cancellationToken)
    {
        var response = Encoding.ASCII.GetBytes(
            "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nConnection: close\r\n" +
            $"Content-Length: {body.Length.ToString(CultureInfo.InvariantCulture)}\r\n\r\n{body}");
        while (!cancellationToken.IsCancellationRequested)
        {
            Socket connection;
            try
            {
                connection = await listener.AcceptAsync(cancellationToken);
            }
            catch (OperationCanceledException)
            {
                return;
            }

            using (connection)
            {
                var request = new StringBuilder();
                var buffer = new byte[4096];
                while (!request.ToString().Contains("\r\n\r\n", StringComparison.Ordinal))
                {
                    var n = await connection.ReceiveAsync(buffer, SocketFlags.None, cancellationToken);
                    if (n == 0)
                    {
                        break;
                    }

                    request.Append(Encoding.ASCII.GetString(buffer, 0, n));
                }

                await connection.SendAsync(response, SocketFlags.None, cancellationToken);
                connection.Shutdown(SocketShutdown.Both);
            }
        }
    }
}
