using System.Globalization;
using System.Net;
using System.Net.Sockets;
using System.Runtime.Versioning;
using System.Security.Cryptography;
using System.Text;

namespace Sharptun.Interop.Tests;

/// <summary>
/// The forwards of <c>sharptun proxy</c> (issue 10 item 4) against wireguard-go, nginx and a UDP echo in
/// <see cref="ProxyLab"/>, the proxy running as uid 65534: curl through <c>[TCPClientTunnel]</c>, curl from the
/// wireguard-go side through <c>[TCPServerTunnel]</c> to a host-side listener, datagrams through
/// <c>[UDPProxyTunnel]</c>, an HTTP request piped through <c>[STDIOTunnel]</c>'s stdin/stdout.
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
