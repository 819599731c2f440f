using System.Net;
using System.Net.Http.Headers;
using System.Net.Sockets;
using System.Text;

namespace Sharptun.Proxy.Tests.Http;

/// <summary>Requests of every method and CONNECT through the HTTP proxy to a Kestrel origin on loopback.</summary>
public sealed class HttpProxyForwardingTests(OriginServer origin) : IClassFixture<OriginServer>
{
    private string Url(string host, string path) => $"http://{host}:{origin.Port}{path}";

    [Fact]
    public async Task Get_AbsoluteUri_ReturnsTheOriginsBodyAndCountsBytes()
    {
        await using var proxy = ProxyHarness.Start();
        using var client = proxy.Client();

        var body = await client.GetByteArrayAsync(Url("a.test", "/bytes/100000"));

        Assert.Equal(Pattern.Bytes(0, 100000), body);

        // The last write is counted just after it completes, maybe after the client has read it.
        for (var i = 0; i < 500 && proxy.Server.Counters.BytesFromTunnel <= 100000; i++)
        {
            await Task.Delay(10);
        }

        Assert.True(proxy.Server.Counters.BytesFromTunnel > 100000, $"from {proxy.Server.Counters.BytesFromTunnel} to {proxy.Server.Counters.BytesToTunnel}");
        Assert.True(proxy.Server.Counters.BytesToTunnel > 0);
        Assert.Equal(0, proxy.Server.Counters.Failed);
    }

    [Theory]
    [InlineData("POST")]
    [InlineData("PUT")]
    [InlineData("DELETE")]
    [InlineData("PATCH")]
    [InlineData("OPTIONS")]
    [InlineData("PROPFIND")]
    public async Task AnyMethod_WithContentLengthBody_ReachesTheOriginAndTheEchoComesBack(string method)
    {
        await using var proxy = ProxyHarness.Start();
        using var client = proxy.Client();
        var sent = Pattern.Bytes(7, 50_000);
        using var request = new HttpRequestMessage(new HttpMethod(method), Url("a.test", "/echo")) { Content = new ByteArrayContent(sent) };

        using var response = await client.SendAsync(request);

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Equal(method, response.Headers.GetValues("X-Method").Single());
        Assert.Equal($"a.test:{origin.Port}", response.Headers.GetValues("X-Host").Single());
        Assert.Equal(sent, await response.Content.ReadAsByteArrayAsync());
    }

    [Fact]
    public async Task Post_ChunkedRequestBody_IsRelayedChunkByChunk_AndTheChunkedEchoComesBack()
    {
        await using var proxy = ProxyHarness.Start();
        using var client = proxy.Client();
        var content = new StreamContent(new PatternStream(300_000), 1000);
        using var request = new HttpRequestMessage(HttpMethod.Post, Url("a.test", "/echo")) { Content = content };
        request.Headers.TransferEncodingChunked = true;

        using var response = await client.SendAsync(request);

        Assert.True(response.Headers.TransferEncodingChunked);
        Assert.Equal(Pattern.Bytes(0, 300_000), await response.Content.ReadAsByteArrayAsync());
    }

    [Fact]
    public async Task LargeBodies_StreamBothWays_HashesMatch()
    {
        const long size = 256L << 20;
        await using var proxy = ProxyHarness.Start();
        using var client = proxy.Client();

        // Upload: chunked, produced as it is read, hashed by the origin as it arrives.
        using var upload = new HttpRequestMessage(HttpMethod.Put, Url("a.test", "/sha")) { Content = new StreamContent(new PatternStream(size), 64 * 1024) };
        upload.Headers.TransferEncodingChunked = true;
        using var uploaded = await client.SendAsync(upload);
        Assert.Equal($"{size} {Pattern.Sha256Hex(size)}", await uploaded.Content.ReadAsStringAsync());

        // Download: chunked from the origin, hashed as it arrives here.
        using var download = await client.GetAsync(Url("b.test", $"/chunked/{size}"), HttpCompletionOption.ResponseHeadersRead);
        await using var stream = await download.Content.ReadAsStreamAsync();
        using var sha = System.Security.Cryptography.IncrementalHash.CreateHash(System.Security.Cryptography.HashAlgorithmName.SHA256);
        var buffer = new byte[64 * 1024];
        long total = 0;
        int n;
        while ((n = await stream.ReadAsync(buffer)) > 0)
        {
            sha.AppendData(buffer, 0, n);
            total += n;
        }

        Assert.Equal(size, total);
        Assert.Equal(Pattern.Sha256Hex(size), Convert.ToHexStringLower(sha.GetHashAndReset()));
    }

    [Fact]
    public async Task ExpectContinue_InterimResponseIsRelayed_AndTheBodyFollows()
    {
        await using var proxy = ProxyHarness.Start();
        using var client = proxy.Client(expectContinue: true);
        var sent = Pattern.Bytes(0, 200_000);

        using var response = await client.PostAsync(Url("a.test", "/sha"), new ByteArrayContent(sent));

        Assert.Equal($"{sent.Length} {Pattern.Sha256Hex(sent.Length)}", await response.Content.ReadAsStringAsync());
    }

    [Fact]
    public async Task Head_ThenPipelinedGet_OnOneConnection_HeadHasNoBody()
    {
        await using var proxy = ProxyHarness.Start();
        using var tcp = await proxy.ConnectRawAsync();
        var stream = tcp.GetStream();

        await RawHttp.SendAsync(stream,
            $"HEAD {Url("a.test", "/bytes/5000")} HTTP/1.1\r\nHost: a.test\r\n\r\n" +
            $"GET {Url("b.test", "/bytes/3")} HTTP/1.1\r\nHost: b.test\r\n\r\n");
        var head = await RawHttp.ReadResponseAsync(stream, head: true);
        var get = await RawHttp.ReadResponseAsync(stream);

        Assert.Equal(200, head.Status);
        Assert.Equal("5000", head.Fields["Content-Length"]);
        Assert.Equal(200, get.Status);
        Assert.Equal(Pattern.Bytes(0, 3), get.Body);
        Assert.Equal(1, proxy.Server.Counters.Accepted);
    }

    [Fact]
    public async Task KeepAlive_RequestsToDifferentHosts_ShareOneClientConnection()
    {
        await using var proxy = ProxyHarness.Start();
        using var client = proxy.Client();

        for (var i = 0; i < 6; i++)
        {
            var host = i % 3 == 0 ? "a.test" : i % 3 == 1 ? "b.test" : "127.0.0.1";
            Assert.Equal(Pattern.Bytes(0, 10 + i), await client.GetByteArrayAsync(Url(host, $"/bytes/{10 + i}")));
        }

        Assert.Equal(1, proxy.Server.Counters.Accepted);
        var network = (LoopbackNetwork)proxy.Context.Network;
        Assert.Equal(["a.test", "b.test", $"127.0.0.1:{origin.Port}"], network.Connects.Take(3));
        Assert.Equal(6, network.Connects.Count);
    }

    [Fact]
    public async Task HopByHopFields_AreDropped_HostComesFromTheUri_ViaIsAdded()
    {
        await using var proxy = ProxyHarness.Start(username: "u", password: "p");
        using var tcp = await proxy.ConnectRawAsync();
        var stream = tcp.GetStream();
        var auth = Convert.ToBase64String(Encoding.UTF8.GetBytes("u:p"));

        await RawHttp.SendAsync(stream,
            $"GET {Url("a.test", "/headers")} HTTP/1.1\r\nHost: wrong.example\r\nConnection: keep-alive, X-Private\r\nX-Private: secret\r\n" +
            $"Keep-Alive: timeout=5\r\nProxy-Connection: keep-alive\r\nTE: trailers\r\nUpgrade: h2c\r\nProxy-Authorization: Basic {auth}\r\n" +
            "X-End-To-End: kept\r\n\r\n");
        var response = await RawHttp.ReadResponseAsync(stream);

        Assert.Equal(200, response.Status);
        var seen = response.Text;
        Assert.Contains($"host: a.test:{origin.Port}\n", seen, StringComparison.Ordinal);
        Assert.Contains("x-end-to-end: kept\n", seen, StringComparison.Ordinal);
        Assert.Contains("via: 1.1 sharptun\n", seen, StringComparison.Ordinal);
        foreach (var dropped in new[] { "x-private", "keep-alive", "proxy-connection", "te", "upgrade", "proxy-authorization" })
        {
            Assert.DoesNotContain("\n" + dropped + ":", "\n" + seen, StringComparison.Ordinal);
        }
    }

    [Fact]
    public async Task Http10Client_GetsTheBodyDecodedFromChunked_AndTheConnectionCloses()
    {
        await using var proxy = ProxyHarness.Start();
        using var tcp = await proxy.ConnectRawAsync();
        var stream = tcp.GetStream();

        await RawHttp.SendAsync(stream, $"GET {Url("a.test", "/chunked/20000")} HTTP/1.0\r\n\r\n");
        var response = await RawHttp.ReadResponseAsync(stream);

        Assert.Equal(200, response.Status);
        Assert.False(response.Fields.ContainsKey("Transfer-Encoding"));
        Assert.Equal("close", response.Fields["Connection"]);
        Assert.Equal(Pattern.Bytes(0, 20000), response.Body);
    }

    [Fact]
    public async Task Connect_RelaysBothWays_AndHalfCloseReachesTheTarget()
    {
        await using var target = new RawOrigin(async (stream, socket) =>
        {
            // Answers only after the client's FIN: what it received, hashed.
            var received = await RawHttp.ReadToEndAsync(stream);
            await stream.WriteAsync(Encoding.ASCII.GetBytes($"got {received.Length} {Convert.ToHexStringLower(System.Security.Cryptography.SHA256.HashData(received))}"));
            socket.Shutdown(SocketShutdown.Send);
        });
        await using var proxy = ProxyHarness.Start();
        using var tcp = await proxy.ConnectRawAsync();
        var stream = tcp.GetStream();
        var payload = Pattern.Bytes(3, 1_000_000);

        await RawHttp.SendAsync(stream, $"CONNECT a.test:{target.Port} HTTP/1.1\r\nHost: a.test:{target.Port}\r\n\r\n");
        var established = await RawHttp.ReadResponseAsync(stream, head: true);
        await stream.WriteAsync(payload);
        tcp.Client.Shutdown(SocketShutdown.Send);
        var reply = Encoding.ASCII.GetString(await RawHttp.ReadToEndAsync(stream));

        Assert.Equal(200, established.Status);
        Assert.Equal($"got {payload.Length} {Convert.ToHexStringLower(System.Security.Cryptography.SHA256.HashData(payload))}", reply);
        await proxy.WaitIdleAsync();
        Assert.True(proxy.Server.Counters.BytesToTunnel >= payload.Length);
    }

    [Fact]
    public async Task Connect_BytesSentBeforeThe200_AreNotLost()
    {
        await using var target = new RawOrigin(async (stream, socket) =>
        {
            var received = await RawHttp.ReadToEndAsync(stream);
            await stream.WriteAsync(received);
            socket.Shutdown(SocketShutdown.Send);
        });
        await using var proxy = ProxyHarness.Start();
        using var tcp = await proxy.ConnectRawAsync();
        var stream = tcp.GetStream();

        await RawHttp.SendAsync(stream, $"CONNECT 127.0.0.1:{target.Port} HTTP/1.1\r\n\r\nearly bytes");
        tcp.Client.Shutdown(SocketShutdown.Send);
        var established = await RawHttp.ReadResponseAsync(stream, head: true);
        var echoed = Encoding.ASCII.GetString(await RawHttp.ReadToEndAsync(stream));

        Assert.Equal(200, established.Status);
        Assert.Equal("early bytes", echoed);
    }

    [Fact]
    public async Task Connect_Ipv6LiteralWithoutListener_Is502_Ipv4LiteralTunnels()
    {
        await using var target = new RawOrigin(async (stream, socket) =>
        {
            await stream.WriteAsync("hello over CONNECT"u8.ToArray());
            socket.Shutdown(SocketShutdown.Send);
            await RawHttp.ReadToEndAsync(stream);
        });
        await using var proxy = ProxyHarness.Start();
        using var tcp = await proxy.ConnectRawAsync();
        var stream = tcp.GetStream();

        // The RawOrigin listens on IPv4 loopback; an IPv6 literal with no listener must fail cleanly, the IPv4 one work.
        await RawHttp.SendAsync(stream, $"CONNECT [::1]:{target.Port} HTTP/1.1\r\n\r\n");
        var refused = await RawHttp.ReadResponseAsync(stream);
        Assert.Equal(502, refused.Status);

        using var tcp2 = await proxy.ConnectRawAsync();
        var stream2 = tcp2.GetStream();
        await RawHttp.SendAsync(stream2, $"CONNECT 127.0.0.1:{target.Port} HTTP/1.1\r\n\r\n");
        Assert.Equal(200, (await RawHttp.ReadResponseAsync(stream2, head: true)).Status);
        Assert.Equal("hello over CONNECT", Encoding.ASCII.GetString(await RawHttp.ReadToEndAsync(stream2)));
    }

    [Fact]
    public async Task ManyConcurrentRequests_AllSucceed_AndCountersReturnToZero()
    {
        await using var proxy = ProxyHarness.Start();
        var clients = Enumerable.Range(0, 8).Select(_ => proxy.Client()).ToArray();
        try
        {
            var tasks = Enumerable.Range(0, 64).Select(async i =>
            {
                var client = clients[i % clients.Length];
                using var response = await client.PostAsync(Url(i % 2 == 0 ? "a.test" : "b.test", "/echo"), new ByteArrayContent(Pattern.Bytes(i, 5000 + i)));
                Assert.Equal(Pattern.Bytes(i, 5000 + i), await response.Content.ReadAsByteArrayAsync());
            });
            await Task.WhenAll(tasks);
        }
        finally
        {
            foreach (var client in clients)
            {
                client.Dispose();
            }
        }

        await proxy.WaitIdleAsync();
        Assert.Equal(0, proxy.Server.Counters.Refused);
        Assert.Equal(0, proxy.Server.Counters.Failed);
    }
}
