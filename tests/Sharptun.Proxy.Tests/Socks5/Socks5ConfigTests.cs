using System.Net;
using Sharptun.Proxy.Config;
using Sharptun.Proxy.Socks5;

namespace Sharptun.Proxy.Tests.Socks5;

/// <summary>wireproxy's <c>[Socks5]</c> section.</summary>
public sealed class Socks5ConfigTests
{
    private static Socks5Server FromText(string text) =>
        Socks5Server.FromSection(ConfigFile.Parse(text, "test.conf").Named("Socks5").Single(), new ProxyContext(new LoopbackNetwork()));

    [Theory]
    [InlineData("127.0.0.1:25344", "127.0.0.1:25344")]
    [InlineData("[::1]:1080", "[::1]:1080")]
    [InlineData("localhost:1080", "127.0.0.1:1080")]
    [InlineData("0.0.0.0:1080", "0.0.0.0:1080")]
    [InlineData(":1080", "[::]:1080")]
    public void BindAddress_Forms(string value, string expected)
    {
        var server = FromText($"[Socks5]\nBindAddress = {value}\n");
        Assert.Equal(expected, server.Endpoint);
        Assert.Equal("socks5", server.Kind);
    }

    [Fact]
    public async Task UsernameAndPassword_FromTheSection_AreWhatTheServerAsksFor_KeysAnyCase()
    {
        var port = Socks5ConnectTests.FreeTcpPort();
        var server = FromText($"[socks5]\nbindaddress = 127.0.0.1:{port}\nUSERNAME = u\npassword = p\n");
        server.Start();
        using var stop = new CancellationTokenSource();
        var run = server.RunAsync(stop.Token);
        using (var wrong = new Socks5TestClient(await ConnectAsync(port)))
        {
            Assert.Equal(0xFF, await wrong.GreetAsync(0x00));
        }

        using (var right = new Socks5TestClient(await ConnectAsync(port)))
        {
            Assert.Equal(0x02, await right.GreetAsync(0x00, 0x02));
            Assert.Equal(0x00, await right.AuthenticateAsync("u", "p"));
        }

        await stop.CancelAsync();
        await run.WaitAsync(TimeSpan.FromSeconds(30));

        static async Task<System.Net.Sockets.Socket> ConnectAsync(int port)
        {
            var socket = new System.Net.Sockets.Socket(System.Net.Sockets.AddressFamily.InterNetwork, System.Net.Sockets.SocketType.Stream, System.Net.Sockets.ProtocolType.Tcp);
            await socket.ConnectAsync(new IPEndPoint(IPAddress.Loopback, port));
            return socket;
        }
    }

    [Theory]
    [InlineData("[Socks5]\nBindAddress = 127.0.0.1:1080\nPort = 3\n", 3, "unknown key 'Port'")]
    [InlineData("[Socks5]\nUsername = u\n", 1, "needs BindAddress")]
    [InlineData("# comment\n[Socks5]\nBindAddress = 127.0.0.1\n", 3, "expected host:port")]
    [InlineData("[Socks5]\nBindAddress = 127.0.0.1:0\n", 2, "port must be a number from 1 to 65535")]
    [InlineData("[Socks5]\nBindAddress = 127.0.0.1:70000\n", 2, "port must be a number from 1 to 65535")]
    [InlineData("[Socks5]\nBindAddress = 127.0.0.1:+80\n", 2, "port must be a number")]
    [InlineData("[Socks5]\nBindAddress = proxy.example:1080\n", 2, "the host must be")]
    [InlineData("[Socks5]\nBindAddress = ::1:1080\n", 2, "the host must be")]
    [InlineData("[Socks5]\nBindAddress = [127.0.0.1]:1080\n", 2, "must be an IPv6 address")]
    public void BadSection_ErrorNamesTheLine(string text, int line, string message)
    {
        var e = Assert.Throws<ProxyConfigException>(() => FromText(text));
        Assert.Equal(line, e.Line);
        Assert.Equal("test.conf", e.File);
        Assert.Contains(message, e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void OverlongUsername_ErrorNamesTheLine()
    {
        var e = Assert.Throws<ProxyConfigException>(() => FromText($"[Socks5]\nBindAddress = 127.0.0.1:1080\nUsername = {new string('x', 256)}\n"));
        Assert.Equal(3, e.Line);
        Assert.Contains("255 bytes", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void PortInUse_FailsAtStart()
    {
        using var busy = new System.Net.Sockets.TcpListener(IPAddress.Loopback, 0);
        busy.Start();
        var server = new Socks5Server(new Socks5Options((IPEndPoint)busy.LocalEndpoint), new ProxyContext(new LoopbackNetwork()));
        Assert.Throws<System.Net.Sockets.SocketException>(server.Start);
    }
}
