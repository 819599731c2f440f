using System.Net;
using System.Net.Sockets;
using Sharptun.Hosting.Metrics;
using Sharptun.Protocol;

namespace Sharptun.Hosting.Tests;

/// <summary>The one-call operations endpoint over two real in-process tunnels, scraped with HttpClient.</summary>
public sealed class OperationsEndpointTests
{
    private static readonly TimeSpan Limit = TimeSpan.FromSeconds(60);

    [Fact]
    public async Task MetricsAndReadyz_OverRealTunnels_ReadyzFollowsCheckAlive()
    {
        using var aKey = Key.GeneratePrivateKey();
        using var bKey = Key.GeneratePrivateKey();
        var b = await new WireGuardTunnelBuilder().WithPrivateKey(bKey.ToString()).AddAddress("10.9.0.2/24")
            .AddPeer(aKey.DerivePublicKey().ToString(), null, ["10.9.0.1/32"]).StartAsync();
        await using var a = await new WireGuardTunnelBuilder().WithPrivateKey(aKey.ToString()).AddAddress("10.9.0.1/24")
            .AddPeer(bKey.DerivePublicKey().ToString(), new IPEndPoint(IPAddress.Loopback, b.ListenPort), ["10.9.0.0/24"]).StartAsync();
        var extra = new DelegateMetricsSource(w =>
        {
            w.BeginFamily("sharptun_gateway_flows", MetricType.Gauge, "test");
            w.Sample(4, "protocol", "tcp");
        });
        await using var ops = OperationsEndpoint.Start("127.0.0.1:0", a, [IPAddress.Parse("10.9.0.2")], TimeSpan.FromSeconds(1), [extra]);
        using var http = new HttpClient { BaseAddress = new Uri($"http://{ops.Server!.LocalEndPoint}") };
        using var cts = new CancellationTokenSource(Limit);

        while ((await http.GetAsync(new Uri("/readyz", UriKind.Relative), cts.Token)).StatusCode != HttpStatusCode.OK)
        {
            await Task.Delay(100, cts.Token);
        }

        var metrics = await http.GetStringAsync(new Uri("/metrics", UriKind.Relative), cts.Token);
        var samples = PrometheusText.Parse(metrics);
        var key = bKey.DerivePublicKey().ToString();
        Assert.True(samples[$"sharptun_peer_receive_bytes_total{{public_key=\"{key}\"}}"] > 0);
        Assert.True(samples[$"sharptun_peer_transmit_bytes_total{{public_key=\"{key}\"}}"] > 0);
        Assert.InRange(samples[$"sharptun_peer_last_handshake_age_seconds{{public_key=\"{key}\"}}"], 0, 60);
        Assert.Equal(4, samples["sharptun_gateway_flows{protocol=\"tcp\"}"]);
        Assert.Contains("sharptun_dropped_packets_total{reason=\"DecryptionFailed\"}", samples.Keys);

        await b.DisposeAsync(); // the target stops answering: 503 within interval + 2 s (plus a round)
        HttpResponseMessage response;
        while ((response = await http.GetAsync(new Uri("/readyz", UriKind.Relative), cts.Token)).StatusCode != HttpStatusCode.ServiceUnavailable)
        {
            await Task.Delay(100, cts.Token);
        }

        Assert.StartsWith("{\"10.9.0.2\":", await response.Content.ReadAsStringAsync(cts.Token), StringComparison.Ordinal);
        Assert.False(ops.Pinger!.IsReady);
    }

    [Fact]
    public async Task OnlyWhatIsConfiguredStarts_BadAddressIsAClearError()
    {
        using var key = Key.GeneratePrivateKey();
        await using var a = await new WireGuardTunnelBuilder().WithPrivateKey(key.ToString()).AddAddress("10.9.0.1/24").StartAsync();

        await using (var none = OperationsEndpoint.Start(null, a, [], TimeSpan.FromSeconds(5)))
        {
            Assert.Null(none.Server);
            Assert.Null(none.Pinger);
        }

        await using (var pingOnly = OperationsEndpoint.Start(null, a, [IPAddress.Parse("10.9.0.5")], TimeSpan.FromSeconds(5)))
        {
            Assert.Null(pingOnly.Server);
            Assert.NotNull(pingOnly.Pinger);
        }

        await using (var serverOnly = OperationsEndpoint.Start("[::1]:0", a, [], TimeSpan.FromSeconds(5)))
        {
            using var http = new HttpClient();
            var readyz = await http.GetAsync(new Uri($"http://[::1]:{serverOnly.Server!.LocalEndPoint.Port}/readyz"));
            Assert.Equal(HttpStatusCode.ServiceUnavailable, readyz.StatusCode); // no CheckAlive and no handshake yet
            Assert.Equal("{}\n", await readyz.Content.ReadAsStringAsync());
        }

        var bad = Assert.Throws<ArgumentException>(() => OperationsEndpoint.Start("example.com:9080", a, [], TimeSpan.FromSeconds(5)));
        Assert.Contains("not an IP address", bad.Message, StringComparison.Ordinal);

        // The address is taken: a clear SocketException, and the CheckAlive pinger started before it is stopped.
        using var taken = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        taken.Bind(new IPEndPoint(IPAddress.Loopback, 0));
        taken.Listen();
        var inUse = Assert.Throws<SocketException>(() =>
            OperationsEndpoint.Start(taken.LocalEndPoint!.ToString(), a, [IPAddress.Parse("10.9.0.5")], TimeSpan.FromSeconds(5)));
        Assert.Equal(SocketError.AddressAlreadyInUse, inUse.SocketErrorCode);
    }
}
