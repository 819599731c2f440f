using System.Net;
using System.Net.Sockets;
using System.Text;
using Sharptun.Hosting.Metrics;

namespace Sharptun.Hosting.Tests;

public sealed class MetricsServerTests
{
    private const string PeerA = "xTIBA5rboUvnH4htodjb6e697QjLERt1NAB4mZqp8Dg=";
    private const string PeerB = "TrMvSoP4jYQlY6RIzBgbssQqY3vxI2Pi+y71lOWWXX0=";
    private static readonly DateTimeOffset Now = new(2026, 12, 6, 18, 0, 0, TimeSpan.Zero);

    [Fact]
    public void Writer_EscapesLabelsAndHelp_FormatsSpecialValues_ParsesStrictly()
    {
        var text = new StringBuilder();
        var writer = new MetricsWriter(text, []);
        writer.BeginFamily("x_total", MetricType.Counter, "help with \\ and\nnewline");
        writer.Sample(1, "path", "a\"b\\c\nd");
        writer.Sample(2.5, [new("a", "1"), new("b", "2")]);
        writer.BeginFamily("y", MetricType.Gauge, "y");
        writer.Sample(double.NaN);
        writer.BeginFamily("z", MetricType.Gauge, "z");
        writer.Sample(double.PositiveInfinity, "k", "p");
        writer.Sample(double.NegativeInfinity, "k", "n");

        Assert.Contains("# HELP x_total help with \\\\ and\\nnewline\n", text.ToString(), StringComparison.Ordinal);
        Assert.Contains("x_total{path=\"a\\\"b\\\\c\\nd\"} 1\n", text.ToString(), StringComparison.Ordinal);
        var samples = PrometheusText.Parse(text.ToString());
        Assert.Equal(1, samples["x_total{path=\"a\"b\\c\nd\"}"]);
        Assert.Equal(2.5, samples["x_total{a=\"1\",b=\"2\"}"]);
        Assert.True(double.IsNaN(samples["y"]));
        Assert.Equal(double.PositiveInfinity, samples["z{k=\"p\"}"]);
        Assert.Equal(double.NegativeInfinity, samples["z{k=\"n\"}"]);
    }

    [Fact]
    public void Writer_RefusesBadNames_RepeatedFamilies_AndSamplesBeforeAFamily()
    {
        var text = new StringBuilder();
        var writer = new MetricsWriter(text, []);
        Assert.Throws<InvalidOperationException>(() => writer.Sample(1));
        Assert.Throws<ArgumentException>(() => writer.BeginFamily("1abc", MetricType.Gauge, "h"));
        Assert.Throws<ArgumentException>(() => writer.BeginFamily("a-b", MetricType.Gauge, "h"));
        Assert.Throws<ArgumentException>(() => writer.BeginFamily("", MetricType.Gauge, "h"));
        writer.BeginFamily("ok:name_1", MetricType.Gauge, "h");
        Assert.Throws<InvalidOperationException>(() => writer.BeginFamily("ok:name_1", MetricType.Gauge, "h"));
        Assert.Throws<ArgumentException>(() => writer.Sample(1, "a:b", "v"));
        Assert.Throws<ArgumentException>(() => writer.Sample(1, "__reserved", "v"));
        Assert.Throws<ArgumentException>(() => writer.Sample(1, [new("a", "1"), new("a", "2")]));
        writer.Sample(3, "a", "v");
        var samples = PrometheusText.Parse(text.ToString()); // the refused samples left nothing behind
        Assert.Equal(3, samples["ok:name_1{a=\"v\"}"]);
        Assert.Single(samples);
    }

    [Fact]
    public void TunnelSource_ExportsBytesHandshakesAndDrops_InValidText()
    {
        var stats = Statistics(handshakeA: Now.AddSeconds(-42));
        var text = new StringBuilder();
        new TunnelMetricsSource(() => stats).WriteMetrics(new MetricsWriter(text, []));
        var samples = PrometheusText.Parse(text.ToString());

        Assert.Equal(2, samples["sharptun_peers"]);
        Assert.Equal(1000, samples[$"sharptun_peer_receive_bytes_total{{public_key=\"{PeerA}\"}}"]);
        Assert.Equal(2000, samples[$"sharptun_peer_transmit_bytes_total{{public_key=\"{PeerA}\"}}"]);
        Assert.Equal(Now.AddSeconds(-42).ToUnixTimeSeconds(), samples[$"sharptun_peer_last_handshake_timestamp_seconds{{public_key=\"{PeerA}\"}}"]);
        Assert.Equal(0, samples[$"sharptun_peer_last_handshake_timestamp_seconds{{public_key=\"{PeerB}\"}}"]);
        Assert.Equal(42, samples[$"sharptun_peer_last_handshake_age_seconds{{public_key=\"{PeerA}\"}}"], 3);
        Assert.False(samples.ContainsKey($"sharptun_peer_last_handshake_age_seconds{{public_key=\"{PeerB}\"}}"));
        Assert.Equal(7, samples["sharptun_dropped_packets_total{reason=\"DecryptionFailed\"}"]);
        Assert.Equal(0, samples["sharptun_dropped_packets_total{reason=\"NoRoute\"}"]);
    }

    [Fact]
    public async Task Metrics_ServesPrometheusText_WithExtraSources_AndLeavesOutAFailingSource()
    {
        var extra = new DelegateMetricsSource(w =>
        {
            w.BeginFamily("sharptun_proxy_open_connections", MetricType.Gauge, "Open connections by front-end.");
            w.Sample(3, "frontend", "socks5");
            w.Sample(1, "frontend", "http");
        });
        var failing = new DelegateMetricsSource(w =>
        {
            w.BeginFamily("sharptun_broken", MetricType.Gauge, "never shown");
            w.Sample(1);
            throw new InvalidOperationException("boom");
        });
        var duplicate = new DelegateMetricsSource(w => w.BeginFamily("sharptun_peers", MetricType.Gauge, "clash"));
        await using var server = Start([new TunnelMetricsSource(() => Statistics(null)), failing, extra, duplicate], () => (true, "{}"));

        var response = await GetAsync(server, "GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n");

        Assert.Equal(200, response.Status);
        Assert.Equal(MetricsServer.MetricsContentType, response.Headers["content-type"]);
        Assert.Equal(Encoding.UTF8.GetByteCount(response.Body).ToString(), response.Headers["content-length"]);
        var samples = PrometheusText.Parse(response.Body);
        Assert.Equal(3, samples["sharptun_proxy_open_connections{frontend=\"socks5\"}"]);
        Assert.Equal(2, samples["sharptun_peers"]);
        Assert.DoesNotContain("sharptun_broken", response.Body, StringComparison.Ordinal);
        Assert.DoesNotContain("clash", response.Body, StringComparison.Ordinal);
        Assert.Equal(2, samples["sharptun_metrics_source_errors_total"]);
    }

    [Fact]
    public async Task Readyz_WithCheckAlive_Is503UntilEveryTargetAnswers_200Within_IntervalPlus2s_503After()
    {
        var time = new TestTime(Now);
        var answering = new HashSet<IPAddress>();
        IPAddress[] targets = [IPAddress.Parse("10.0.0.1"), IPAddress.Parse("fd00::1")];
        await using var pinger = new AlivePinger((t, _, _) => ValueTask.FromResult(answering.Contains(t)), targets, TimeSpan.FromSeconds(5), time, null, runLoop: false);
        await using var server = Start([], MetricsServer.ReadinessOf(() => Statistics(null), pinger));

        var before = await GetAsync(server, "GET /readyz HTTP/1.1\r\nHost: x\r\n\r\n");
        Assert.Equal(503, before.Status);
        Assert.Equal("{\"10.0.0.1\":0,\"fd00::1\":0}\n", before.Body);

        answering.Add(targets[0]);
        await pinger.PingRoundAsync(CancellationToken.None);
        Assert.Equal(503, (await GetAsync(server, "GET /readyz HTTP/1.0\r\n\r\n")).Status); // one of two answers

        answering.Add(targets[1]);
        await pinger.PingRoundAsync(CancellationToken.None);
        var ready = await GetAsync(server, "GET /readyz HTTP/1.0\r\n\r\n");
        Assert.Equal(200, ready.Status);
        Assert.Equal("application/json", ready.Headers["content-type"]);
        var stamp = Now.ToUnixTimeSeconds();
        Assert.Equal($"{{\"10.0.0.1\":{stamp},\"fd00::1\":{stamp}}}\n", ready.Body);

        time.Advance(TimeSpan.FromSeconds(7)); // interval 5 s + 2 s grace: still alive
        Assert.Equal(200, (await GetAsync(server, "GET /readyz HTTP/1.0\r\n\r\n")).Status);
        answering.Remove(targets[1]);
        await pinger.PingRoundAsync(CancellationToken.None); // 10.0.0.1 answers again; fd00::1 stays at Now
        time.Advance(TimeSpan.FromMilliseconds(1));
        Assert.False(pinger.IsReady);
        Assert.Equal(503, (await GetAsync(server, "GET /readyz HTTP/1.0\r\n\r\n")).Status);
        Assert.Equal(Now.AddSeconds(7), pinger.LastPong(targets[0]));
        Assert.Equal(Now, pinger.LastPong(targets[1]));
        Assert.Null(pinger.LastPong(IPAddress.Parse("192.0.2.9")));
    }

    [Fact]
    public async Task Readyz_WithoutCheckAlive_Is503BeforeTheFirstHandshake_200After()
    {
        TunnelStatistics stats = Statistics(null);
        await using var server = Start([], MetricsServer.ReadinessOf(() => stats, null));

        var before = await GetAsync(server, "GET /readyz HTTP/1.1\r\nHost: x\r\n\r\n");
        stats = Statistics(Now);
        var after = await GetAsync(server, "GET /readyz?verbose=1 HTTP/1.1\r\nHost: x\r\n\r\n");

        Assert.Equal((503, "{}\n"), (before.Status, before.Body));
        Assert.Equal((200, "{}\n"), (after.Status, after.Body));
    }

    [Theory]
    [InlineData("GET /metrics\r\n\r\n", 400)] // no version
    [InlineData("GET  /metrics HTTP/1.1\r\nHost: x\r\n\r\n", 400)] // two spaces
    [InlineData("GET /metrics HTTP/1.1\r\n\r\n", 400)] // HTTP/1.1 without Host (RFC 9112 §3.2)
    [InlineData("GET /metrics HTTP/1.1\r\nHost : x\r\n\r\n", 400)] // whitespace before the colon (RFC 9112 §5.1)
    [InlineData("GET /metrics HTTP/1.1\r\nHost: x\r\n folded\r\n\r\n", 400)] // obs-fold
    [InlineData("GET /metrics HTTP/1.1\r\nHost x\r\n\r\n", 400)] // no colon
    [InlineData("G(T /metrics HTTP/1.1\r\nHost: x\r\n\r\n", 400)] // not a token
    [InlineData("GET metrics HTTP/1.1\r\nHost: x\r\n\r\n", 400)] // not origin-form
    [InlineData("GET /m\u00e9trics HTTP/1.1\r\nHost: x\r\n\r\n", 400)] // not ASCII
    [InlineData("GET /metrics HTTP/1.1\r\nHost: \u0001\r\n\r\n", 400)] // control character
    [InlineData("\r\n\r\n", 400)]
    [InlineData("GET /metrics HTTP/2.0\r\nHost: x\r\n\r\n", 505)]
    [InlineData("GET /metrics XTTP/1.1\r\nHost: x\r\n\r\n", 400)]
    [InlineData("POST /metrics HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello", 405)]
    [InlineData("DELETE /readyz HTTP/1.1\r\nHost: x\r\n\r\n", 405)]
    [InlineData("GET /other HTTP/1.1\r\nHost: x\r\n\r\n", 404)]
    [InlineData("GET / HTTP/1.0\n\n", 404)] // bare LF lines (RFC 9112 §2.2)
    [InlineData("GET http://h:1/metrics HTTP/1.1\r\nHost: h\r\n\r\n", 200)] // absolute-form
    [InlineData("HEAD /metrics HTTP/1.1\r\nHost: x\r\n\r\n", 200)]
    public async Task Requests_GetTheRightStatus_AndTheServerKeepsServing(string request, int status)
    {
        await using var server = Start([new TunnelMetricsSource(() => Statistics(null))], () => (true, "{}"));

        var response = await GetAsync(server, request);
        var next = await GetAsync(server, "GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n");

        Assert.Equal(status, response.Status);
        if (request.StartsWith("HEAD", StringComparison.Ordinal))
        {
            Assert.Equal("", response.Body);
            Assert.NotEqual("0", response.Headers["content-length"]);
        }

        if (status == 405)
        {
            Assert.Equal("GET, HEAD", response.Headers["allow"]);
        }

        Assert.Equal(200, next.Status);
        Assert.Equal(status is 200 or 404 ? 0 : 1, server.BadRequests);
    }

    [Fact]
    public async Task OversizeHead_Gets431_SlowClientIsDropped_WithoutBlockingOthers()
    {
        await using var server = Start([new TunnelMetricsSource(() => Statistics(null))], () => (true, "{}"), headTimeout: TimeSpan.FromSeconds(2));

        var big = await GetAsync(server, "GET /metrics HTTP/1.1\r\nHost: x\r\nX-Pad: " + new string('a', MetricsServer.MaxRequestHeadBytes) + "\r\n\r\n");
        Assert.Equal(431, big.Status);

        using var slow = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        await slow.ConnectAsync(server.LocalEndPoint);
        await slow.SendAsync("GET /metrics HTTP/1.1\r\n"u8.ToArray());
        Assert.Equal(200, (await GetAsync(server, "GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n")).Status); // not blocked by it
        var buffer = new byte[100];
        using var wait = new CancellationTokenSource(TimeSpan.FromSeconds(30));
        var n = await slow.ReceiveAsync(buffer, SocketFlags.None, wait.Token); // closed after the head timeout
        Assert.Equal(0, n);
    }

    [Fact]
    public async Task HundredConcurrentScrapes_AllGetCompleteValidText()
    {
        var calls = 0;
        var counting = new DelegateMetricsSource(w =>
        {
            Interlocked.Increment(ref calls);
            w.BeginFamily("sharptun_test_calls", MetricType.Counter, "c");
            w.Sample(1);
        });
        await using var server = Start([new TunnelMetricsSource(() => Statistics(Now)), counting], () => (true, "{}"));

        var responses = await Task.WhenAll(Enumerable.Range(0, 100).Select(i => Task.Run(() =>
            GetAsync(server, i % 2 == 0 ? "GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n" : "GET /readyz HTTP/1.1\r\nHost: x\r\n\r\n"))));

        Assert.All(responses, r => Assert.Equal(200, r.Status));
        foreach (var r in responses.Where((_, i) => i % 2 == 0))
        {
            Assert.Equal(2, PrometheusText.Parse(r.Body)["sharptun_peers"]);
        }

        Assert.Equal(50, Volatile.Read(ref calls));
        Assert.Equal(100, server.Requests);
        Assert.Equal(0, server.Refused);
    }

    [Fact]
    public async Task PastMaxConnections_ClientsGet503_AndTheServerRecovers()
    {
        await using var server = Start([], () => (true, "{}"), headTimeout: TimeSpan.FromSeconds(30));
        var idle = new List<Socket>();
        try
        {
            for (var i = 0; i < MetricsServer.MaxConnections; i++)
            {
                var s = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
                idle.Add(s);
                await s.ConnectAsync(server.LocalEndPoint);
            }

            await WaitUntil(() => server.Refused > 0 || Active(server) >= MetricsServer.MaxConnections);
            var refused = await GetAsync(server, "GET /readyz HTTP/1.1\r\nHost: x\r\n\r\n");
            Assert.Equal(503, refused.Status);
            Assert.Equal("too many connections\n", refused.Body);
        }
        finally
        {
            idle.ForEach(s => s.Dispose());
        }

        await WaitUntil(() => Active(server) == 0);
        Assert.Equal(200, (await GetAsync(server, "GET /readyz HTTP/1.1\r\nHost: x\r\n\r\n")).Status);
    }

    [Fact]
    public async Task ListensOnIPv6Loopback()
    {
        Assert.True(MetricsServer.TryParseEndpoint("[::1]:0", out var endpoint, out _));
        await using var server = MetricsServer.StartCore(endpoint!, [new TunnelMetricsSource(() => Statistics(Now))], () => (true, "{}"), null, TimeSpan.FromSeconds(10));
        using var socket = new Socket(AddressFamily.InterNetworkV6, SocketType.Stream, ProtocolType.Tcp);
        await socket.ConnectAsync(server.LocalEndPoint);
        await socket.SendAsync("GET /readyz HTTP/1.1\r\nHost: [::1]\r\n\r\n"u8.ToArray());
        var buffer = new byte[4096];
        var text = new StringBuilder();
        int n;
        while ((n = await socket.ReceiveAsync(buffer)) > 0)
        {
            text.Append(Encoding.ASCII.GetString(buffer, 0, n));
        }

        Assert.StartsWith("HTTP/1.1 200 OK\r\n", text.ToString(), StringComparison.Ordinal);
        Assert.Equal(IPAddress.IPv6Loopback, server.LocalEndPoint.Address);
    }

    [Theory]
    [InlineData("127.0.0.1:9080", "127.0.0.1:9080")]
    [InlineData("[::1]:9080", "[::1]:9080")]
    [InlineData("localhost:0", "127.0.0.1:0")]
    [InlineData(":9080", "[::]:9080")]
    [InlineData(" 10.1.2.3:65535 ", "10.1.2.3:65535")]
    public void TryParseEndpoint_Accepts(string text, string expected)
    {
        Assert.True(MetricsServer.TryParseEndpoint(text, out var endpoint, out var error), error);
        Assert.Equal(expected, endpoint!.ToString());
    }

    [Theory]
    [InlineData("")]
    [InlineData("9080")]
    [InlineData("::1:9080")]
    [InlineData("127.0.0.1:65536")]
    [InlineData("127.0.0.1:-1")]
    [InlineData("127.0.0.1:")]
    [InlineData("example.com:9080")]
    [InlineData("127.1:9080")]
    [InlineData("[127.0.0.1]:9080")]
    public void TryParseEndpoint_RefusesWithAMessage(string text)
    {
        Assert.False(MetricsServer.TryParseEndpoint(text, out var endpoint, out var error));
        Assert.Null(endpoint);
        Assert.False(string.IsNullOrEmpty(error));
    }

    [Fact]
    public async Task PingerRounds_RacingReaders_SeeConsistentState()
    {
        var time = new TestTime(Now);
        IPAddress[] targets = [IPAddress.Parse("10.0.0.1"), IPAddress.Parse("10.0.0.2"), IPAddress.Parse("10.0.0.3")];
        var flip = 0;
        long totalReads = 0;
        await using var pinger = new AlivePinger((_, _, _) => ValueTask.FromResult(Interlocked.Increment(ref flip) % 4 != 0), targets, TimeSpan.FromSeconds(1), time, null, runLoop: false);
        using var stop = new CancellationTokenSource();
        var started = 0;
        // The readers spin until the writes end: on threads of their own, never the thread pool's. Four spinning pool
        // threads on a 2-core machine starved the pool (the rounds' continuations and every other test's waited for
        // the pool to add threads): the whole process stalled for up to 12 s beside them, and with the pool capped
        // (DOTNET_ThreadPool_ForceMaxWorkerThreads=4) this test never ended.
        var readers = Enumerable.Range(0, 4).Select(r => Task.Factory.StartNew(() =>
        {
            Interlocked.Increment(ref started);
            var reads = 0;
            while (!stop.IsCancellationRequested)
            {
                var json = pinger.ReadinessJson(out _);
                Assert.StartsWith("{\"10.0.0.1\":", json, StringComparison.Ordinal);
                Assert.EndsWith("}", json, StringComparison.Ordinal);
                foreach (var t in targets)
                {
                    if (pinger.LastPong(t) is { } p)
                    {
                        Assert.InRange(p, Now, time.GetUtcNow());
                    }
                }

                reads++;
                Interlocked.Increment(ref totalReads);
            }

            return reads;
        }, CancellationToken.None, TaskCreationOptions.LongRunning, TaskScheduler.Default)).ToArray();

        var deadline = DateTime.UtcNow.AddSeconds(60);
        while (Volatile.Read(ref started) < 4 && DateTime.UtcNow < deadline)
        {
            await Task.Delay(1); // every reader runs before the writes start
        }

        for (var i = 0; i < 2000 || (Interlocked.Read(ref totalReads) < 4000 && DateTime.UtcNow < deadline); i++)
        {
            time.Advance(TimeSpan.FromMilliseconds(10));
            await pinger.PingRoundAsync(CancellationToken.None);
        }

        await stop.CancelAsync();
        Assert.All(await Task.WhenAll(readers), n => Assert.True(n > 0));
        Assert.All(targets, t => Assert.NotNull(pinger.LastPong(t)));
    }

    [Fact]
    public async Task Pinger_ThrowingPings_CountAsMissingPongs()
    {
        var time = new TestTime(Now);
        await using var pinger = new AlivePinger((_, _, _) => throw new IOException("closed"), [IPAddress.Loopback], TimeSpan.FromSeconds(5), time, null, runLoop: false);
        await pinger.PingRoundAsync(CancellationToken.None);
        Assert.False(pinger.IsReady);
        Assert.Null(pinger.LastPong(IPAddress.Loopback));
        Assert.Throws<ArgumentException>(() => new AlivePinger((_, _, _) => ValueTask.FromResult(true), [], TimeSpan.FromSeconds(1), time, null, runLoop: false));
    }

    [Fact]
    public async Task Pinger_Stop_ReturnsWithoutWaiting_AndTheLoopEnds()
    {
        var pings = 0;
        var inPing = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var pinger = new AlivePinger(async (_, _, ct) =>
        {
            Interlocked.Increment(ref pings);
            inPing.TrySetResult();
            await Task.Delay(Timeout.Infinite, ct); // a ping that answers only to cancellation
            return true;
        }, [IPAddress.Loopback], TimeSpan.FromMilliseconds(50), TimeProvider.System, null, runLoop: true);
        await inPing.Task.WaitAsync(TimeSpan.FromSeconds(30));

        pinger.Stop(); // OperationsEndpoint.Start's failure path: synchronous, must not wait for the loop
        await pinger.Loop.WaitAsync(TimeSpan.FromSeconds(30));
        var after = Volatile.Read(ref pings);
        await Task.Delay(300);
        Assert.Equal(after, Volatile.Read(ref pings));
        Assert.Null(pinger.LastPong(IPAddress.Loopback));
    }

    private static int Active(MetricsServer server) => server.ActiveConnections;

    private static async Task WaitUntil(Func<bool> condition)
    {
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(30));
        while (!condition())
        {
            await Task.Delay(20, timeout.Token);
        }
    }

    private static MetricsServer Start(IMetricsSource[] sources, Func<(bool, string)> readiness, TimeSpan? headTimeout = null) =>
        MetricsServer.StartCore(new IPEndPoint(IPAddress.Loopback, 0), sources, readiness, null, headTimeout ?? TimeSpan.FromSeconds(10));

    private static TunnelStatistics Statistics(DateTimeOffset? handshakeA) => new(
        [
            new TunnelPeer(PeerA, new IPEndPoint(IPAddress.Parse("192.0.2.1"), 51820), handshakeA, 1000, 2000, [IPNetwork.Parse("10.0.0.0/24")], null),
            new TunnelPeer(PeerB, null, null, 0, 0, [], null),
        ],
        [new TunnelDropCount("NoRoute", 0), new TunnelDropCount("DecryptionFailed", 7)],
        Now);

    private sealed record Response(int Status, Dictionary<string, string> Headers, string Body);

    /// <summary>Sends <paramref name="request"/> raw and reads the response to EOF (the server closes each connection).</summary>
    private static async Task<Response> GetAsync(MetricsServer server, string request)
    {
        using var socket = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(30));
        await socket.ConnectAsync(server.LocalEndPoint, timeout.Token);
        await socket.SendAsync(Encoding.UTF8.GetBytes(request), SocketFlags.None, timeout.Token);
        var received = new MemoryStream();
        var buffer = new byte[8192];
        int n;
        while ((n = await socket.ReceiveAsync(buffer, SocketFlags.None, timeout.Token)) > 0)
        {
            received.Write(buffer, 0, n);
        }

        var text = Encoding.UTF8.GetString(received.ToArray());
        var split = text.IndexOf("\r\n\r\n", StringComparison.Ordinal);
        Assert.True(split > 0, $"no response head in '{text}'");
        var lines = text[..split].Split("\r\n");
        Assert.StartsWith("HTTP/1.1 ", lines[0], StringComparison.Ordinal);
        var headers = lines.Skip(1).Select(l => l.Split(": ", 2)).ToDictionary(p => p[0].ToLowerInvariant(), p => p[1]);
        Assert.Equal("close", headers["connection"]);
        return new Response(int.Parse(lines[0].Split(' ')[1], System.Globalization.CultureInfo.InvariantCulture), headers, text[(split + 4)..]);
    }
}
