using System.Net;
using System.Net.Sockets;
using System.Text;

namespace Sharptun.Proxy.Tests.Http;

/// <summary>Bad input, failing targets, authentication and the connection cap: each gets a clear status and is counted.</summary>
public sealed class HttpProxyErrorTests(OriginServer origin) : IClassFixture<OriginServer>
{
    private string Url(string host, string path) => $"http://{host}:{origin.Port}{path}";

    [Theory]
    [InlineData("GARBAGE\r\n\r\n", 400, "request line")]
    [InlineData("GET  http://a.test/ HTTP/1.1\r\n\r\n", 400, "request line")]
    [InlineData("GET http://a.test/ HTTP/1.1\r\nNoColonHere\r\n\r\n", 400, "no colon")]
    [InlineData("GET http://a.test/ HTTP/1.1\r\nHost : a.test\r\n\r\n", 400, "not a token")]
    [InlineData("GET http://a.test/ HTTP/1.1\r\nX-A: 1\r\n  folded\r\n\r\n", 400, "folding")]
    [InlineData("GET http://a.test/ HTTP/2.0\r\n\r\n", 505, "HTTP/1.0 and HTTP/1.1")]
    [InlineData("GET http://a.test/ FOO/1.1\r\n\r\n", 400, "HTTP version")]
    [InlineData("GET /relative HTTP/1.1\r\nHost: a.test\r\n\r\n", 400, "absolute URI")]
    [InlineData("OPTIONS * HTTP/1.1\r\nHost: a.test\r\n\r\n", 400, "absolute URI")]
    [InlineData("GET https://a.test/ HTTP/1.1\r\n\r\n", 400, "use CONNECT")]
    [InlineData("GET ftp://a.test/ HTTP/1.1\r\n\r\n", 400, "scheme")]
    [InlineData("GET http://user:pw@a.test/ HTTP/1.1\r\n\r\n", 400, "userinfo")]
    [InlineData("GET http://a.test:99999/ HTTP/1.1\r\n\r\n", 400, "port")]
    [InlineData("GET http://bad%host/ HTTP/1.1\r\n\r\n", 400, "host name")]
    [InlineData("CONNECT a.test HTTP/1.1\r\n\r\n", 400, "no port")]
    [InlineData("CONNECT ::1:443 HTTP/1.1\r\n\r\n", 400, "brackets")]
    [InlineData("POST http://a.test/ HTTP/1.1\r\nContent-Length: -5\r\n\r\n", 400, "Content-Length")]
    [InlineData("POST http://a.test/ HTTP/1.1\r\nContent-Length: abc\r\n\r\n", 400, "Content-Length")]
    [InlineData("POST http://a.test/ HTTP/1.1\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\n", 400, "different values")]
    [InlineData("POST http://a.test/ HTTP/1.1\r\nContent-Length: 5, 6\r\n\r\n", 400, "different values")]
    [InlineData("POST http://a.test/ HTTP/1.1\r\nContent-Length: 99999999999999999999\r\n\r\n", 400, "Content-Length")]
    [InlineData("POST http://a.test/ HTTP/1.1\r\nTransfer-Encoding: chunked\r\nContent-Length: 5\r\n\r\n", 400, "both")]
    [InlineData("POST http://a.test/ HTTP/1.1\r\nTransfer-Encoding: gzip\r\n\r\n", 400, "only chunked")]
    public async Task MalformedRequest_IsAnsweredWithAClearStatus_AndCounted(string request, int status, string reason)
    {
        await using var proxy = ProxyHarness.Start();
        using var tcp = await proxy.ConnectRawAsync();
        var stream = tcp.GetStream();

        await RawHttp.SendAsync(stream, request);
        var response = await RawHttp.ReadResponseAsync(stream);

        Assert.Equal(status, response.Status);
        Assert.Contains(reason, response.Text, StringComparison.Ordinal);
        Assert.Equal("close", response.Fields["Connection"]);
        Assert.Empty(await RawHttp.ReadToEndAsync(stream));
        Assert.Equal(1, proxy.Server.Counters.Refused);
        Assert.Empty(((LoopbackNetwork)proxy.Context.Network).Connects);
        tcp.Close();
        await proxy.WaitIdleAsync();
    }

    [Fact]
    public async Task DuplicateEqualContentLengths_AreAccepted()
    {
        await using var proxy = ProxyHarness.Start();
        using var tcp = await proxy.ConnectRawAsync();
        var stream = tcp.GetStream();

        await RawHttp.SendAsync(stream, $"POST {Url("a.test", "/echo")} HTTP/1.1\r\nContent-Length: 5\r\nContent-Length: 5\r\n\r\nhello");
        var response = await RawHttp.ReadResponseAsync(stream);

        Assert.Equal(200, response.Status);
        Assert.Equal("hello", response.Text);
    }

    [Fact]
    public async Task HugeHead_Is431()
    {
        await using var proxy = ProxyHarness.Start();
        using var tcp = await proxy.ConnectRawAsync();
        var stream = tcp.GetStream();

        var request = new StringBuilder($"GET {Url("a.test", "/bytes/1")} HTTP/1.1\r\n");
        for (var i = 0; i < 1000; i++)
        {
            request.Append("X-Filler-").Append(i).Append(": ").Append('x', 80).Append("\r\n");
        }

        var send = RawHttp.SendAsync(stream, request.Append("\r\n").ToString());
        var response = await RawHttp.ReadResponseAsync(stream);

        Assert.Equal(431, response.Status);
        Assert.Equal(1, proxy.Server.Counters.Refused);
        try
        {
            await send;
        }
        catch (IOException)
        {
            // The proxy may close before the rest of the head is sent.
        }
    }

    [Theory]
    [InlineData("5\r\nabcdefghij\r\n0\r\n\r\n", "longer than its chunk-size")]
    [InlineData("zz\r\nabc\r\n0\r\n\r\n", "not hexadecimal")]
    [InlineData("1234567890abcdef0\r\n", "more than 15 hex digits")]
    [InlineData("a\r\nabc", "the body ended after")]
    public async Task LyingOrMalformedChunks_Are400_AndTheConnectionCloses(string body, string reason)
    {
        await using var proxy = ProxyHarness.Start();
        using var tcp = await proxy.ConnectRawAsync();
        var stream = tcp.GetStream();

        await RawHttp.SendAsync(stream, $"POST {Url("a.test", "/sha")} HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n{body}");
        tcp.Client.Shutdown(SocketShutdown.Send);
        var response = await RawHttp.ReadResponseAsync(stream);

        Assert.Equal(400, response.Status);
        Assert.Contains(reason, response.Text, StringComparison.Ordinal);
        Assert.Empty(await RawHttp.ReadToEndAsync(stream));
        await proxy.WaitIdleAsync();
        Assert.Equal(1, proxy.Server.Counters.Refused);
    }

    [Fact]
    public async Task BodyShorterThanContentLength_Is400()
    {
        await using var proxy = ProxyHarness.Start();
        using var tcp = await proxy.ConnectRawAsync();
        var stream = tcp.GetStream();

        await RawHttp.SendAsync(stream, $"POST {Url("a.test", "/sha")} HTTP/1.1\r\nContent-Length: 100\r\n\r\nonly ten b");
        tcp.Client.Shutdown(SocketShutdown.Send);
        var response = await RawHttp.ReadResponseAsync(stream);

        Assert.Equal(400, response.Status);
        Assert.Contains("ended after 10 of 100 bytes", response.Text, StringComparison.Ordinal);
    }

    [Fact]
    public async Task SlowHead_Is408_AfterTheHandshakeTimeout()
    {
        await using var proxy = ProxyHarness.Start(handshakeTimeout: TimeSpan.FromSeconds(1));
        using var tcp = await proxy.ConnectRawAsync();
        var stream = tcp.GetStream();

        await RawHttp.SendAsync(stream, "GET http://a.test/ HTTP/1.1\r\nX-Never: ends");
        var response = await RawHttp.ReadResponseAsync(stream).WaitAsync(TimeSpan.FromSeconds(30));

        Assert.Equal(408, response.Status);
        await proxy.WaitIdleAsync();
    }

    [Fact]
    public async Task SilentClient_IsDropped_AfterTheHandshakeTimeout()
    {
        await using var proxy = ProxyHarness.Start(handshakeTimeout: TimeSpan.FromSeconds(1));
        using var tcp = await proxy.ConnectRawAsync();

        Assert.Empty(await RawHttp.ReadToEndAsync(tcp.GetStream()).WaitAsync(TimeSpan.FromSeconds(30)));
        await proxy.WaitIdleAsync();
    }

    [Fact]
    public async Task UnresolvableHost_Is502_NamingTheHost()
    {
        await using var proxy = ProxyHarness.Start();
        using var client = proxy.Client();

        using var response = await client.GetAsync("http://nowhere.test/");

        Assert.Equal(HttpStatusCode.BadGateway, response.StatusCode);
        Assert.Contains("Cannot resolve 'nowhere.test' through the tunnel", await response.Content.ReadAsStringAsync(), StringComparison.Ordinal);
        Assert.Equal(1, proxy.Server.Counters.Failed);
    }

    [Fact]
    public async Task RefusedPort_Is502_ForRequestsAndConnect()
    {
        int port;
        using (var probe = new TcpListener(IPAddress.Loopback, 0))
        {
            probe.Start();
            port = ((IPEndPoint)probe.LocalEndpoint).Port;
        }

        await using var proxy = ProxyHarness.Start();
        using var client = proxy.Client();
        using var response = await client.GetAsync($"http://a.test:{port}/");
        using var tcp = await proxy.ConnectRawAsync();
        await RawHttp.SendAsync(tcp.GetStream(), $"CONNECT a.test:{port} HTTP/1.1\r\n\r\n");
        var connect = await RawHttp.ReadResponseAsync(tcp.GetStream());

        Assert.Equal(HttpStatusCode.BadGateway, response.StatusCode);
        Assert.Contains("connection refused", await response.Content.ReadAsStringAsync(), StringComparison.Ordinal);
        Assert.Equal(502, connect.Status);
        Assert.Contains("connection refused", connect.Text, StringComparison.Ordinal);
        Assert.Equal(2, proxy.Server.Counters.Failed);
    }

    [Fact]
    public async Task ConnectTimeout_Is504()
    {
        await using var proxy = ProxyHarness.Start(new FailingNetwork(SocketError.TimedOut));
        using var client = proxy.Client();
        using var tcp = await proxy.ConnectRawAsync();

        using var response = await client.GetAsync("http://a.test/");
        await RawHttp.SendAsync(tcp.GetStream(), "CONNECT a.test:443 HTTP/1.1\r\n\r\n");
        var connect = await RawHttp.ReadResponseAsync(tcp.GetStream());

        Assert.Equal(HttpStatusCode.GatewayTimeout, response.StatusCode);
        Assert.Contains("no answer within the connect timeout", await response.Content.ReadAsStringAsync(), StringComparison.Ordinal);
        Assert.Equal(504, connect.Status);
    }

    [Fact]
    public async Task NetworkUnreachable_Is502()
    {
        await using var proxy = ProxyHarness.Start(new FailingNetwork(SocketError.NetworkUnreachable));
        using var client = proxy.Client();

        using var response = await client.GetAsync("http://10.9.9.9/");

        Assert.Equal(HttpStatusCode.BadGateway, response.StatusCode);
        Assert.Contains("unreachable", await response.Content.ReadAsStringAsync(), StringComparison.Ordinal);
    }

    [Fact]
    public async Task SilentOrigin_Is504_AfterTheIdleTimeout()
    {
        await using var silent = new RawOrigin(async (stream, _) => await RawHttp.ReadToEndAsync(stream));
        await using var proxy = ProxyHarness.Start(idleTimeout: TimeSpan.FromSeconds(1));
        using var client = proxy.Client();

        using var response = await client.GetAsync($"http://a.test:{silent.Port}/");

        Assert.Equal(HttpStatusCode.GatewayTimeout, response.StatusCode);
        await proxy.WaitIdleAsync();
    }

    [Theory]
    [InlineData("HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nonly ten b", false)]
    [InlineData("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nabcdefgh\r\n0\r\n\r\n", false)]
    [InlineData("garbage\r\n\r\n", true)]
    [InlineData("HTTP/1.1 200 OK\r\nContent-Length: nope\r\n\r\n", true)]
    [InlineData("", true)]
    public async Task MisbehavingOrigin_Is502_OrTheClientConnectionIsCut(string reply, bool is502)
    {
        await using var bad = new RawOrigin(async (stream, socket) =>
        {
            await RawOrigin.ReadHeadAsync(stream);
            await stream.WriteAsync(Encoding.ASCII.GetBytes(reply));
            socket.Shutdown(SocketShutdown.Send);
        });
        await using var proxy = ProxyHarness.Start();
        using var tcp = await proxy.ConnectRawAsync();
        var stream = tcp.GetStream();

        await RawHttp.SendAsync(stream, $"GET http://a.test:{bad.Port}/ HTTP/1.1\r\n\r\n");
        if (is502)
        {
            var response = await RawHttp.ReadResponseAsync(stream);
            Assert.Equal(502, response.Status);
        }
        else
        {
            // The head went out before the lie showed: the client sees a cut-off response, never a second one.
            var all = Encoding.ASCII.GetString(await RawHttp.ReadToEndAsync(stream));
            Assert.StartsWith("HTTP/1.1 200 OK\r\n", all, StringComparison.Ordinal);
            Assert.DoesNotContain("HTTP/1.1 502", all, StringComparison.Ordinal);
        }

        await proxy.WaitIdleAsync();
    }

    [Fact]
    public async Task OriginBodyDelimitedByClose_IsRelayed_AndTheClientConnectionCloses()
    {
        await using var old = new RawOrigin(async (stream, socket) =>
        {
            await RawOrigin.ReadHeadAsync(stream);
            await stream.WriteAsync("HTTP/1.0 200 OK\r\nContent-Type: text/plain\r\n\r\nall until close"u8.ToArray());
            socket.Shutdown(SocketShutdown.Send);
        });
        await using var proxy = ProxyHarness.Start();
        using var tcp = await proxy.ConnectRawAsync();
        var stream = tcp.GetStream();

        await RawHttp.SendAsync(stream, $"GET http://a.test:{old.Port}/ HTTP/1.1\r\n\r\n");
        var response = await RawHttp.ReadResponseAsync(stream);

        Assert.Equal(200, response.Status);
        Assert.Equal("close", response.Fields["Connection"]);
        Assert.Equal("all until close", response.Text);
    }

    [Fact]
    public async Task OriginAnsweringEarly_ReachesTheClient_EvenWhileItsBodyIsUnsent()
    {
        await using var early = new RawOrigin(async (stream, socket) =>
        {
            await RawOrigin.ReadHeadAsync(stream);
            await stream.WriteAsync("HTTP/1.1 413 Content Too Large\r\nContent-Length: 8\r\nConnection: close\r\n\r\ntoo big!"u8.ToArray());
            socket.Shutdown(SocketShutdown.Send);
        });
        await using var proxy = ProxyHarness.Start();
        using var tcp = await proxy.ConnectRawAsync();
        var stream = tcp.GetStream();

        // Declares a large body but sends only its head and a little of it.
        await RawHttp.SendAsync(stream, $"POST http://a.test:{early.Port}/ HTTP/1.1\r\nContent-Length: 100000000\r\n\r\nsome");
        var response = await RawHttp.ReadResponseAsync(stream);

        Assert.Equal(413, response.Status);
        Assert.Equal("too big!", response.Text);
        Assert.Equal("close", response.Fields["Connection"]);
        tcp.Close();
        await proxy.WaitIdleAsync();
    }

    [Fact]
    public async Task Auth_RightCredentials_Pass_MissingAndWrongAre407()
    {
        await using var proxy = ProxyHarness.Start(username: "alice", password: "s3cret:with colon");
        using (var anonymous = proxy.Client())
        {
            using var missing = await anonymous.GetAsync(Url("a.test", "/bytes/4"));
            Assert.Equal(HttpStatusCode.ProxyAuthenticationRequired, missing.StatusCode);
            Assert.Equal("Basic", missing.Headers.ProxyAuthenticate.Single().Scheme);
        }

        using (var wrong = proxy.Client(new NetworkCredential("alice", "s3cret")))
        {
            using var response = await wrong.GetAsync(Url("a.test", "/bytes/4"));
            Assert.Equal(HttpStatusCode.ProxyAuthenticationRequired, response.StatusCode);
        }

        using (var right = proxy.Client(new NetworkCredential("alice", "s3cret:with colon")))
        {
            Assert.Equal(Pattern.Bytes(0, 4), await right.GetByteArrayAsync(Url("a.test", "/bytes/4")));
            Assert.Equal(Pattern.Bytes(0, 5), await right.GetByteArrayAsync(Url("b.test", "/bytes/5")));
        }

        Assert.True(proxy.Server.Counters.Refused >= 2);
        Assert.DoesNotContain("127.0.0.1", ((LoopbackNetwork)proxy.Context.Network).Connects);
        Assert.Equal(2, ((LoopbackNetwork)proxy.Context.Network).Connects.Count);
    }

    [Theory]
    [InlineData("Basic YWxpY2U6d3Jvbmc=")] // alice:wrong
    [InlineData("Basic not-base64!")]
    [InlineData("Bearer YWxpY2U6cHc=")]
    [InlineData("Basic YWxpY2U=")] // alice (no colon)
    [InlineData("basic YWxpY2U6cHd4")] // alice:pwx
    public async Task Auth_BadHeaders_Are407_OnConnectToo(string header)
    {
        await using var proxy = ProxyHarness.Start(username: "alice", password: "pw");
        using var tcp = await proxy.ConnectRawAsync();

        await RawHttp.SendAsync(tcp.GetStream(), $"CONNECT a.test:{origin.Port} HTTP/1.1\r\nProxy-Authorization: {header}\r\n\r\n");
        var response = await RawHttp.ReadResponseAsync(tcp.GetStream());

        Assert.Equal(407, response.Status);
        Assert.StartsWith("Basic realm=", response.Fields["Proxy-Authenticate"], StringComparison.Ordinal);
        Assert.Empty(((LoopbackNetwork)proxy.Context.Network).Connects);
    }

    [Fact]
    public async Task Auth_SchemeIsCaseInsensitive_OnConnect()
    {
        await using var proxy = ProxyHarness.Start(username: "alice", password: "pw");
        using var tcp = await proxy.ConnectRawAsync();

        await RawHttp.SendAsync(tcp.GetStream(), $"CONNECT a.test:{origin.Port} HTTP/1.1\r\nProxy-Authorization: bAsIc YWxpY2U6cHc=\r\n\r\n");

        Assert.Equal(200, (await RawHttp.ReadResponseAsync(tcp.GetStream(), head: true)).Status);
    }

    [Fact]
    public async Task OverTheCap_Is503_AndCountersReturnToZero()
    {
        await using var proxy = ProxyHarness.Start(capacity: 2);
        using var first = await proxy.ConnectRawAsync();
        using var second = await proxy.ConnectRawAsync();
        await RawHttp.SendAsync(first.GetStream(), $"CONNECT a.test:{origin.Port} HTTP/1.1\r\n\r\n");
        await RawHttp.SendAsync(second.GetStream(), $"CONNECT a.test:{origin.Port} HTTP/1.1\r\n\r\n");
        Assert.Equal(200, (await RawHttp.ReadResponseAsync(first.GetStream(), head: true)).Status);
        Assert.Equal(200, (await RawHttp.ReadResponseAsync(second.GetStream(), head: true)).Status);

        using var third = await proxy.ConnectRawAsync();
        await RawHttp.SendAsync(third.GetStream(), $"GET {Url("a.test", "/bytes/1")} HTTP/1.1\r\n\r\n");
        var refused = await RawHttp.ReadResponseAsync(third.GetStream());

        Assert.Equal(503, refused.Status);
        Assert.Contains("limit of 2 connections", refused.Text, StringComparison.Ordinal);
        Assert.Equal(2, proxy.Server.Counters.Open);
        Assert.Equal(1, proxy.Server.Counters.Refused);
        first.Close();
        second.Close();
        await proxy.WaitIdleAsync();

        using var client = proxy.Client();
        Assert.Equal(Pattern.Bytes(0, 3), await client.GetByteArrayAsync(Url("a.test", "/bytes/3")));
    }

    [Fact]
    public async Task ConcurrentConnectionsAgainstTheCap_EachGets200Or503_AndNothingLeaks()
    {
        const int clients = 64;
        await using var proxy = ProxyHarness.Start(capacity: 8);
        var statuses = await Task.WhenAll(Enumerable.Range(0, clients).Select(async i =>
        {
            using var tcp = await proxy.ConnectRawAsync();
            await RawHttp.SendAsync(tcp.GetStream(), $"GET {Url(i % 2 == 0 ? "a.test" : "b.test", "/bytes/20000")} HTTP/1.1\r\nConnection: close\r\n\r\n");
            var response = await RawHttp.ReadResponseAsync(tcp.GetStream());
            if (response.Status == 200)
            {
                Assert.Equal(Pattern.Bytes(0, 20000), response.Body);
            }

            return response.Status;
        }));

        Assert.All(statuses, s => Assert.True(s is 200 or 503, $"status {s}"));
        Assert.Contains(200, statuses);
        await proxy.WaitIdleAsync();
        var counters = proxy.Server.Counters;
        Assert.Equal(clients, counters.Accepted + counters.Refused);
        Assert.Equal(statuses.Count(s => s == 503), counters.Refused);
        Assert.Equal(proxy.Context.Gate.Refused, counters.Refused);
    }

    /// <summary>A network whose every connect fails with one error, after a short delay.</summary>
    private sealed class FailingNetwork(SocketError error) : ITunnelNetwork
    {
        public async ValueTask<Stream> ConnectAsync(string host, int port, CancellationToken cancellationToken)
        {
            await Task.Delay(50, cancellationToken);
            throw new SocketException((int)error);
        }

        public async ValueTask<Stream> ConnectAsync(IPEndPoint remote, CancellationToken cancellationToken)
        {
            await Task.Delay(50, cancellationToken);
            throw new SocketException((int)error);
        }

        public ValueTask<IPAddress> ResolveAsync(string host, CancellationToken cancellationToken) => ValueTask.FromResult(IPAddress.Loopback);

        public IDatagramChannel BindUdp() => throw new NotSupportedException();

        public IStreamAcceptor ListenTcp(int port) => throw new NotSupportedException();
    }
}
