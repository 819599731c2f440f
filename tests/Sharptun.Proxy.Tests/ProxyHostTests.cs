using System.Net.Sockets;
using Sharptun.Proxy.Config;

namespace Sharptun.Proxy.Tests;

/// <summary>The host over fake front-ends and a real in-process tunnel (a peer that never answers is enough).</summary>
public sealed class ProxyHostTests : IDisposable
{
    private const string Section = "HostTestFake";
    private static readonly TimeSpan Limit = TimeSpan.FromSeconds(30);
    private readonly string _dir = Directory.CreateTempSubdirectory("proxyhost").FullName;

    public ProxyHostTests()
    {
        ProxyServiceCatalog.Register(Section, FakeProxyService.Create);
        ProxyServiceCatalog.Register("HostTestStrict", (section, context) =>
        {
            section.RejectUnknownKeys("Name");
            return FakeProxyService.Create(section, context);
        });
    }

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    private ProxyConfig Config(string services, out string path)
    {
        path = Path.Combine(_dir, Guid.NewGuid().ToString("N") + ".conf");
        File.WriteAllText(path, $"""
            [Interface]
            PrivateKey = 0IvQ7F2NDi3rEf1lGVIQrHK1nlN0jgiCneMtZQwd7HA=
            Address = 10.9.0.2/32

            [Peer]
            PublicKey = 2CKBqmLWCeTYQHLY04+ZeY8kwleYBMymfEVaIhiNYgg=
            Endpoint = 127.0.0.1:9
            AllowedIPs = 10.9.0.0/24

            {services}
            """);
        return ProxyConfig.Load(path, _ => null);
    }

    private static List<FakeProxyService> Fakes(string path)
    {
        lock (FakeProxyService.Built)
        {
            return [.. FakeProxyService.Built.Where(f => f.Section.File == path && f.Context.Network is TunnelNetwork)]; // not the ones Validate built
        }
    }

    private static async Task AssertTunnelClosed(FakeProxyService fake)
    {
        var tunnel = Assert.IsType<TunnelNetwork>(fake.Context.Network).Tunnel;
        await Assert.ThrowsAsync<IOException>(async () => await tunnel.ConnectAsync("10.9.0.1", 80));
    }

    [Fact]
    public async Task Start_BindsEveryService_RunServesUntilCancelled_DisposeClosesTheTunnel()
    {
        var config = Config($"[{Section}]\nName = a\n[{Section}]\nName = b\n", out var path);
        var host = await ProxyHost.StartAsync(config, new ProxyHostOptions { MaxConnections = 7, ConnectTimeout = TimeSpan.FromSeconds(3) });
        var fakes = Fakes(path);
        Assert.Equal(2, fakes.Count);
        Assert.Equal(fakes, host.Services);
        Assert.All(fakes, f => Assert.Equal(1, f.Starts));
        Assert.All(fakes, f => Assert.Same(host.Context, f.Context));
        Assert.Equal(7, host.Context.Gate.Capacity);
        Assert.Same(host.Tunnel, Assert.IsType<TunnelNetwork>(host.Context.Network).Tunnel);

        using var cts = new CancellationTokenSource();
        var run = host.RunAsync(cts.Token);
        var deadline = DateTime.UtcNow + Limit;
        while (fakes.Any(f => f.Runs == 0) && DateTime.UtcNow < deadline)
        {
            await Task.Delay(20);
        }

        Assert.All(fakes, f => Assert.Equal(1, f.Runs));
        Assert.False(run.IsCompleted);
        await cts.CancelAsync();
        await run.WaitAsync(Limit);
        Assert.All(fakes, f => Assert.True(f.Stopped));
        await Assert.ThrowsAsync<InvalidOperationException>(() => host.RunAsync(default));

        await host.DisposeAsync();
        await AssertTunnelClosed(fakes[0]);
        await host.DisposeAsync(); // twice is fine
        Assert.All(fakes, f => Assert.Equal(1, f.Disposals));
    }

    [Fact]
    public async Task BindFailure_StopsWhatStarted_AndTheTunnel_WithTheSectionInTheError()
    {
        var config = Config($"[{Section}]\nName = a\n[{Section}]\nName = b\nFailStart = yes\n[{Section}]\nName = c\n", out var path);
        var e = await Assert.ThrowsAsync<ProxyHostException>(() => ProxyHost.StartAsync(config));
        Assert.StartsWith($"{path}:12: [{Section}] cannot start on fake b:", e.Message, StringComparison.Ordinal);
        Assert.IsType<SocketException>(e.InnerException);
        var fakes = Fakes(path);
        Assert.Equal(3, fakes.Count);
        Assert.True(fakes[0].Stopped); // its listener was closed again
        Assert.Equal(0, fakes[2].Starts); // never bound
        Assert.All(fakes, f => Assert.True(f.Runs <= 1));
        Assert.All(fakes, f => Assert.Equal(1, f.Disposals));
        await AssertTunnelClosed(fakes[0]);
    }

    [Fact]
    public async Task FrontEndConfigError_IsReportedBeforeTheTunnelStarts()
    {
        var config = Config("[HostTestStrict]\nName = a\nColour = blue\n", out var path);
        var e = await Assert.ThrowsAsync<ProxyConfigException>(() => ProxyHost.StartAsync(config));
        Assert.Equal(path, e.File);
        Assert.Equal(12, e.Line);
        Assert.Throws<ProxyConfigException>(() => ProxyHost.Validate(config));
    }

    [Fact]
    public async Task RunFailure_StopsTheOthers_AndEndsTheRunWithTheSection()
    {
        var config = Config($"[{Section}]\nName = a\n[{Section}]\nName = b\nFailRun = yes\n", out var path);
        await using var host = await ProxyHost.StartAsync(config);
        var e = await Assert.ThrowsAsync<ProxyHostException>(() => host.RunAsync(default).WaitAsync(Limit));
        Assert.StartsWith($"{path}:12: [{Section}] on fake b failed: the fake front-end broke", e.Message, StringComparison.Ordinal);
        Assert.True(Fakes(path)[0].Stopped);
    }

    [Fact]
    public async Task DisposeWithoutRun_ClosesTheServicesListeners()
    {
        var config = Config($"[{Section}]\nName = a\n", out var path);
        var host = await ProxyHost.StartAsync(config);
        await host.DisposeAsync();
        var fake = Assert.Single(Fakes(path));
        Assert.True(fake.Stopped);
        await AssertTunnelClosed(fake);
        Assert.Throws<ObjectDisposedException>(() => { _ = host.RunAsync(default); });
    }

    [Fact]
    public async Task Counters_AreTheServicesAndTheSharedGate()
    {
        var config = Config($"[{Section}]\nName = a\n[{Section}]\nName = b\n", out _);
        await using var host = await ProxyHost.StartAsync(config, new ProxyHostOptions { MaxConnections = 2 });
        host.Services[0].Counters.OnAccepted();
        host.Services[1].Counters.OnRefused();
        Assert.Equal((1, 1, 0, 0), (host.Services[0].Counters.Open, host.Services[0].Counters.Accepted, host.Services[0].Counters.Refused, host.Services[1].Counters.Accepted));
        Assert.Equal(1, host.Services[1].Counters.Refused);

        // one gate for all front-ends: two leases from different services fill it
        using var first = host.Context.Gate.TryEnter();
        using var second = ((FakeProxyService)host.Services[1]).Context.Gate.TryEnter();
        Assert.NotNull(first);
        Assert.NotNull(second);
        Assert.Null(host.Context.Gate.TryEnter());
        Assert.Equal((2, 1L), (host.Context.Gate.Open, host.Context.Gate.Refused));
    }

    [Fact]
    public async Task BadOptions_AreRejected()
    {
        var config = Config(string.Empty, out _);
        await Assert.ThrowsAsync<ArgumentOutOfRangeException>(() => ProxyHost.StartAsync(config, new ProxyHostOptions { MaxConnections = 0 }));
        await Assert.ThrowsAsync<ArgumentOutOfRangeException>(() => ProxyHost.StartAsync(config, new ProxyHostOptions { ConnectTimeout = TimeSpan.Zero }));
    }

    [Fact]
    public async Task NoFrontEnds_RunsTheTunnelUntilCancelled()
    {
        var config = Config(string.Empty, out _);
        await using var host = await ProxyHost.StartAsync(config);
        Assert.Empty(host.Services);
        Assert.Equal("10.9.0.2", Assert.Single(host.Tunnel.Addresses).ToString());
        using var cts = new CancellationTokenSource(TimeSpan.FromMilliseconds(200));
        await host.RunAsync(cts.Token).WaitAsync(Limit);
    }

    [Fact]
    public async Task ManyServicesFailingAtOnce_OneErrorIsReported_TheRestStop()
    {
        var sections = string.Concat(Enumerable.Range(0, 16).Select(i => i % 2 == 0
            ? $"[{Section}]\nName = f{i}\nFailRun = yes\n"
            : $"[{Section}]\nName = ok{i}\n"));
        var config = Config(sections, out var path);
        await using var host = await ProxyHost.StartAsync(config);
        var e = await Assert.ThrowsAsync<ProxyHostException>(() => host.RunAsync(default).WaitAsync(Limit));
        Assert.Matches(@"\[HostTestFake\] on fake f\d+ failed: the fake front-end broke$", e.Message);
        Assert.All(Fakes(path).Where(f => f.Section.Get("FailRun") is null), f => Assert.True(f.Stopped));
    }

    [Fact]
    public async Task EndpointName_IsResolvedWhenTheTunnelStarts()
    {
        var config = ProxyConfig.Parse("""
            [Interface]
            PrivateKey = 0IvQ7F2NDi3rEf1lGVIQrHK1nlN0jgiCneMtZQwd7HA=
            Address = 10.9.0.2/32

            [Peer]
            PublicKey = 2CKBqmLWCeTYQHLY04+ZeY8kwleYBMymfEVaIhiNYgg=
            Endpoint = localhost:51820
            """, "name.conf", _ => null);
        Assert.Equal("localhost", config.Peers[0].EndpointHost);
        await using var host = await ProxyHost.StartAsync(config);
        var endpoint = Assert.Single(host.Tunnel.Peers).Endpoint;
        Assert.NotNull(endpoint);
        Assert.True(System.Net.IPAddress.IsLoopback(endpoint.Address), endpoint.ToString());
        Assert.Equal(51820, endpoint.Port);
    }

    [Fact]
    public async Task UnresolvableEndpointName_FailsTheStart_NamingTheWireGuardFile()
    {
        var config = ProxyConfig.Parse("""
            [Interface]
            PrivateKey = 0IvQ7F2NDi3rEf1lGVIQrHK1nlN0jgiCneMtZQwd7HA=
            Address = 10.9.0.2/32

            [Peer]
            PublicKey = 2CKBqmLWCeTYQHLY04+ZeY8kwleYBMymfEVaIhiNYgg=
            Endpoint = no-such-host.invalid:51820
            """, "noname.conf", _ => null);
        var e = await Assert.ThrowsAsync<ProxyHostException>(() => ProxyHost.StartAsync(config));
        Assert.StartsWith("noname.conf: the WireGuard tunnel did not start:", e.Message, StringComparison.Ordinal);
    }
}
