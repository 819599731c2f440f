using System.Text;
using Sharptun.Hosting.Metrics;

namespace Sharptun.Proxy.Tests;

public sealed class ProxyMetricsSourceTests
{
    [Fact]
    public void EachFrontEnd_GetsItsCounters_LabelledByKindAndEndpoint()
    {
        var socks = new FakeService("socks5", "127.0.0.1:1080");
        var http = new FakeService("http", "[::1]:8080");
        socks.Counters.OnAccepted();
        socks.Counters.OnAccepted();
        socks.Counters.OnClosed();
        socks.Counters.OnRefused();
        socks.Counters.AddBytes(100, 2000);
        http.Counters.OnAccepted();
        http.Counters.OnFailed();

        var text = Render(new ProxyMetricsSource([socks, http]));

        Assert.Contains("# TYPE sharptun_proxy_open_connections gauge\n", text, StringComparison.Ordinal);
        Assert.Contains("sharptun_proxy_open_connections{frontend=\"socks5\",endpoint=\"127.0.0.1:1080\"} 1\n", text, StringComparison.Ordinal);
        Assert.Contains("sharptun_proxy_open_connections{frontend=\"http\",endpoint=\"[::1]:8080\"} 1\n", text, StringComparison.Ordinal);
        Assert.Contains("sharptun_proxy_accepted_connections_total{frontend=\"socks5\",endpoint=\"127.0.0.1:1080\"} 2\n", text, StringComparison.Ordinal);
        Assert.Contains("sharptun_proxy_refused_connections_total{frontend=\"socks5\",endpoint=\"127.0.0.1:1080\"} 1\n", text, StringComparison.Ordinal);
        Assert.Contains("sharptun_proxy_failed_connections_total{frontend=\"http\",endpoint=\"[::1]:8080\"} 1\n", text, StringComparison.Ordinal);
        Assert.Contains("sharptun_proxy_to_tunnel_bytes_total{frontend=\"socks5\",endpoint=\"127.0.0.1:1080\"} 100\n", text, StringComparison.Ordinal);
        Assert.Contains("sharptun_proxy_from_tunnel_bytes_total{frontend=\"socks5\",endpoint=\"127.0.0.1:1080\"} 2000\n", text, StringComparison.Ordinal);
        Assert.Equal(6, text.Split('\n').Count(l => l.StartsWith("# TYPE ", StringComparison.Ordinal)));
    }

    [Fact]
    public void NoFrontEnds_StillValidFamilies()
    {
        var text = Render(new ProxyMetricsSource([]));
        Assert.Equal(12, text.Split('\n', StringSplitOptions.RemoveEmptyEntries).Length); // HELP and TYPE of six families
    }

    private static string Render(IMetricsSource source) => MetricsWriter.Render(source);

    private sealed class FakeService(string kind, string endpoint) : IProxyService
    {
        public string Kind => kind;

        public string Endpoint => endpoint;

        public ProxyServiceCounters Counters { get; } = new();

        public void Start()
        {
        }

        public Task RunAsync(CancellationToken cancellationToken) => Task.CompletedTask;
    }
}
