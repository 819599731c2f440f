using Sharptun.Proxy.Config;

namespace Sharptun.Proxy.Tests;

public sealed class ProxyServiceCatalogTests
{
    private static ConfigSection Section(string name, int blankLines = 0) =>
        ConfigFile.Parse(new string('\n', blankLines) + $"[{name}]\nKey = value\n", "cat.conf").Sections[0];

    [Fact]
    public void Lookup_IsCaseInsensitive_AndRegisterReplaces()
    {
        var first = new List<string>();
        ProxyServiceCatalog.Register("CatalogTestCase", (s, c) => { first.Add(s.Name); return FakeProxyService.Create(s, c); });
        Assert.True(ProxyServiceCatalog.IsRegistered("catalogtestcase"));
        Assert.Contains("CatalogTestCase", ProxyServiceCatalog.Names);
        ProxyServiceCatalog.Create(Section("CATALOGTESTCASE"), new ProxyContext(OfflineNetwork.Instance));
        Assert.Equal(["CATALOGTESTCASE"], first);

        var second = 0;
        ProxyServiceCatalog.Register("catalogTESTcase", (s, c) => { second++; return FakeProxyService.Create(s, c); });
        ProxyServiceCatalog.Create(Section("CatalogTestCase"), new ProxyContext(OfflineNetwork.Instance));
        Assert.Equal((1, 1), (first.Count, second));
    }

    [Fact]
    public void UnregisteredSection_IsUnknownSectionWithFileAndLine()
    {
        var e = Assert.Throws<ProxyConfigException>(() => ProxyServiceCatalog.Create(Section("Nobody", blankLines: 4), new ProxyContext(OfflineNetwork.Instance)));
        Assert.Equal(("cat.conf", 5), (e.File, e.Line));
        Assert.StartsWith("cat.conf:5: unknown section [Nobody] (known: [Interface], [Peer], [Resolve]", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void OfflineNetwork_RefusesAllUse()
    {
        var network = OfflineNetwork.Instance;
        Assert.Throws<InvalidOperationException>(() => network.BindUdp());
        Assert.Throws<InvalidOperationException>(() => network.ListenTcp(80));
        Assert.Throws<InvalidOperationException>(() => { _ = network.ConnectAsync("example.com", 80, default); });
    }

    [Fact]
    public async Task RegisterAndCreate_FromManyThreads_AreSafe()
    {
        using var start = new Barrier(8);
        var tasks = Enumerable.Range(0, 8).Select(t => Task.Run(() =>
        {
            start.SignalAndWait();
            for (var i = 0; i < 200; i++)
            {
                var name = $"CatalogRace{t}_{i % 10}";
                ProxyServiceCatalog.Register(name, FakeProxyService.Create);
                Assert.True(ProxyServiceCatalog.IsRegistered(name));
                Assert.IsType<FakeProxyService>(ProxyServiceCatalog.Create(Section(name), new ProxyContext(OfflineNetwork.Instance)));
                _ = ProxyServiceCatalog.Names.Count;
            }
        })).ToArray();
        await Task.WhenAll(tasks).WaitAsync(TimeSpan.FromSeconds(60));
        Assert.Equal(80, ProxyServiceCatalog.Names.Count(n => n.StartsWith("CatalogRace", StringComparison.Ordinal)));
    }
}
