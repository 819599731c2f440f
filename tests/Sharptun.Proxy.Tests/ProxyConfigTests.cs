using System.Net;
using Sharptun.Proxy.Config;

namespace Sharptun.Proxy.Tests;

public sealed class ProxyConfigTests : IDisposable
{
    private const string PrivateKey = "0IvQ7F2NDi3rEf1lGVIQrHK1nlN0jgiCneMtZQwd7HA=";
    private const string PeerKey = "2CKBqmLWCeTYQHLY04+ZeY8kwleYBMymfEVaIhiNYgg=";
    private const string Psk = "ho7797pPSQ19Gctu988Dx3UoWs/Vgh2TJeE53NSgmB4=";

    private static readonly string[] WireproxySections = ["Socks5", "http", "TCPClientTunnel", "TCPServerTunnel", "UDPProxyTunnel", "STDIOTunnel", "SNI"];

    private readonly string _dir = Directory.CreateTempSubdirectory("proxyconfig").FullName;

    public ProxyConfigTests() => FakeProxyService.EnsureRegistered([.. WireproxySections, "ConfigTestFake"]);

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    private static string ConfigsDir => Path.Combine(AppContext.BaseDirectory, "configs");

    private static ProxyConfig Parse(string text, Func<string, string?>? env = null) => ProxyConfig.Parse(text, "test.conf", env ?? (_ => null));

    private static ProxyConfigException Fails(string text, Func<string, string?>? env = null) =>
        Assert.Throws<ProxyConfigException>(() => Parse(text, env));

    private static string Minimal(string interfaceExtra = "", string peerExtra = "", string tail = "") => $"""
        [Interface]
        PrivateKey = {PrivateKey}
        Address = 10.0.0.2/32
        {interfaceExtra}

        [Peer]
        PublicKey = {PeerKey}
        {peerExtra}
        {tail}
        """;

    [Fact]
    public void EveryInterfaceAndPeerKey_IsRead()
    {
        var config = Parse($"""
            [Interface]
            PrivateKey = {PrivateKey}
            Address = 10.0.0.2/24, fd00::2/64
            Address = 10.1.0.2
            DNS = 10.0.0.1, fd00::1
            MTU = 1380
            ListenPort = 51821
            CheckAlive = 10.0.0.1, 1.1.1.1
            CheckAliveInterval = 7

            [Peer]
            PublicKey = {PeerKey}
            PresharedKey = {Psk}
            Endpoint = 192.0.2.1:51820
            AllowedIPs = 10.0.0.0/24
            AllowedIPs = fd00::/64
            PersistentKeepalive = 25
            """);
        var i = config.Interface;
        Assert.Equal(PrivateKey, i.PrivateKey);
        Assert.Equal(["10.0.0.2/24", "fd00::2/64", "10.1.0.2/32"], i.Addresses.Select(a => a.ToString()));
        Assert.Equal([IPAddress.Parse("10.0.0.1"), IPAddress.Parse("fd00::1")], i.Dns);
        Assert.Equal(1380, i.Mtu);
        Assert.Equal(51821, i.ListenPort);
        Assert.Equal([IPAddress.Parse("10.0.0.1"), IPAddress.Parse("1.1.1.1")], i.CheckAlive);
        Assert.Equal(TimeSpan.FromSeconds(7), i.CheckAliveInterval);
        var p = Assert.Single(config.Peers);
        Assert.Equal(PeerKey, p.PublicKey);
        Assert.Equal(Psk, p.PresharedKey);
        Assert.Equal("192.0.2.1", p.EndpointHost);
        Assert.Equal(51820, p.EndpointPort);
        Assert.Equal("192.0.2.1:51820", p.Endpoint);
        Assert.Equal(["10.0.0.0/24", "fd00::/64"], p.AllowedIPs.Select(a => a.ToString()));
        Assert.Equal(25, p.PersistentKeepalive);
        Assert.Equal(ResolveStrategy.Auto, config.ResolveStrategy);
        Assert.False(config.IsServerMode);
        Assert.Empty(config.Services);
    }

    [Fact]
    public void Defaults_Mtu1420_Interval5_AllowedIPsEverything_NoKeepalive_RandomPort()
    {
        var config = Parse(Minimal(peerExtra: "Endpoint = vpn.example.com:51820"));
        Assert.Equal(1420, config.Interface.Mtu);
        Assert.Equal(TimeSpan.FromSeconds(5), config.Interface.CheckAliveInterval);
        Assert.Null(config.Interface.ListenPort);
        Assert.Empty(config.Interface.Dns);
        Assert.Empty(config.Interface.CheckAlive);
        var peer = Assert.Single(config.Peers);
        Assert.Equal(["0.0.0.0/0", "::/0"], peer.AllowedIPs.Select(a => a.ToString()));
        Assert.Equal(0, peer.PersistentKeepalive);
        Assert.Null(peer.PresharedKey);
    }

    [Fact]
    public void BareAddress_IsHostPrefix_BothFamilies()
    {
        var config = Parse(Minimal(interfaceExtra: "Address = fd00::5"));
        Assert.Equal(["10.0.0.2/32", "fd00::5/128"], config.Interface.Addresses.Select(a => a.ToString()));
    }

    [Fact]
    public void EndpointName_IsKeptAsName_AndIPv6EndpointKeepsBrackets()
    {
        var name = Parse(Minimal(peerExtra: "Endpoint = my.ddns.example.com:51820")).Peers[0];
        Assert.Equal("my.ddns.example.com", name.EndpointHost);
        Assert.Contains("Endpoint = my.ddns.example.com:51820\n", Parse(Minimal(peerExtra: "Endpoint = my.ddns.example.com:51820")).ToWgQuickText(), StringComparison.Ordinal);
        var v6 = Parse(Minimal(peerExtra: "Endpoint = [2001:db8::1]:51820")).Peers[0];
        Assert.Equal("2001:db8::1", v6.EndpointHost);
        Assert.Equal("[2001:db8::1]:51820", v6.Endpoint);
    }

    [Fact]
    public void KeysAndSections_AreCaseInsensitive()
    {
        var config = Parse($"""
            [interface]
            privatekey = {PrivateKey}
            ADDRESS = 10.0.0.2
            mtu = 1300

            [PEER]
            publickey = {PeerKey}
            endpoint = 192.0.2.1:1

            [resolve]
            resolvestrategy = IPv6
            """);
        Assert.Equal(1300, config.Interface.Mtu);
        Assert.Equal(ResolveStrategy.Ipv6, config.ResolveStrategy);
        Assert.Single(config.Peers);
    }

    [Theory]
    [InlineData("auto", ResolveStrategy.Auto)]
    [InlineData("ipv4", ResolveStrategy.Ipv4)]
    [InlineData("ipv6", ResolveStrategy.Ipv6)]
    public void ResolveStrategy_IsRead(string value, ResolveStrategy expected) =>
        Assert.Equal(expected, Parse(Minimal(tail: $"[Resolve]\nResolveStrategy = {value}")).ResolveStrategy);

    [Fact]
    public void BadResolveStrategy_NamesLine()
    {
        var e = Fails(Minimal(tail: "[Resolve]\nResolveStrategy = ipv5"));
        Assert.Equal(10, e.Line);
        Assert.Contains("auto, ipv4 or ipv6", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void EnvironmentValues_AndDollarEscape()
    {
        var env = new Dictionary<string, string> { ["WG_KEY"] = PrivateKey };
        var config = ProxyConfig.Parse($"""
            [Interface]
            PrivateKey = $WG_KEY
            Address = 10.0.0.2

            [Peer]
            PublicKey = {PeerKey}

            [ConfigTestFake]
            Password = $$ecret
            """, "env.conf", n => env.GetValueOrDefault(n));
        Assert.Equal(PrivateKey, config.Interface.PrivateKey);
        Assert.Equal("$ecret", config.Services[0].Get("Password"));

        var unset = Fails(Minimal(tail: "[ConfigTestFake]\nPassword = $NOT_SET_ANYWHERE"));
        Assert.Equal(10, unset.Line);
        Assert.Contains("NOT_SET_ANYWHERE", unset.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void RepeatedFrontEndSections_StaySeparate_InFileOrder()
    {
        var config = Parse(Minimal(tail: """
            [ConfigTestFake]
            Name = one
            [Socks5]
            BindAddress = 127.0.0.1:1080
            [configtestfake]
            Name = two
            """));
        Assert.Equal(["ConfigTestFake", "Socks5", "configtestfake"], config.Services.Select(s => s.Name));
        Assert.Equal("two", config.Services[2].Get("Name"));
        Assert.Equal(13, config.Services[2].Line);
    }

    [Fact]
    public void UnknownSection_IsErrorWithLine()
    {
        var e = Fails(Minimal(tail: "[Socks6]\nBindAddress = 127.0.0.1:1"));
        Assert.Equal("test.conf", e.File);
        Assert.Equal(9, e.Line);
        Assert.StartsWith("test.conf:9: unknown section [Socks6]", e.Message, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("[Interface]", "Addresss = 10.0.0.3", 4)]
    [InlineData("[Peer]", "Endpiont = 1.2.3.4:5", 8)]
    public void UnknownKey_IsErrorWithLine(string where, string line, int expectedLine)
    {
        var text = where == "[Interface]" ? Minimal(interfaceExtra: line) : Minimal(peerExtra: line);
        var e = Fails(text);
        Assert.Equal(expectedLine, e.Line);
        Assert.Contains("unknown key", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void UnknownRootKey_IsError()
    {
        var e = Fails("WGConfg = wg0.conf\n" + Minimal());
        Assert.Equal(1, e.Line);
        Assert.Contains("WGConfg", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void WgQuickHostKeys_AreIgnoredAndListed()
    {
        var config = Parse(Minimal(interfaceExtra: "PostUp = iptables -A FORWARD -i %i -j ACCEPT\nTable = off"));
        Assert.Equal(["PostUp", "Table"], config.IgnoredKeys.Select(k => k.Key));
    }

    [Theory]
    [InlineData("Address = 10.0.0", "Address")]
    [InlineData("Address = 10.0.0.1/33", "Address")]
    [InlineData("Address = fd00::1/129", "Address")]
    [InlineData("Address = example.com", "Address")]
    [InlineData("DNS = 10.0.0.0/24", "DNS")]
    [InlineData("DNS = one.one.one.one", "DNS")]
    [InlineData("MTU = 100", "MTU")]
    [InlineData("MTU = big", "MTU")]
    [InlineData("ListenPort = 70000", "ListenPort")]
    [InlineData("CheckAlive = 10.0.0.999", "CheckAlive")]
    [InlineData("CheckAliveInterval = 0", "CheckAliveInterval")]
    [InlineData("CheckAliveInterval = soon", "CheckAliveInterval")]
    [InlineData("PrivateKey = not-a-key", "PrivateKey")]
    public void BadInterfaceValue_NamesKeyAndLine(string line, string key)
    {
        var e = Fails(Minimal(interfaceExtra: line));
        Assert.Equal(4, e.Line);
        Assert.Contains(key, e.Message, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("Endpoint = 192.0.2.1")]
    [InlineData("Endpoint = 192.0.2.1:0")]
    [InlineData("Endpoint = 192.0.2.1:65536")]
    [InlineData("Endpoint = 2001:db8::1:51820")]
    [InlineData("Endpoint = bad host:51820")]
    [InlineData("Endpoint = 10.0.0:51820")]
    [InlineData("Endpoint = [10.0.0.1]:51820")]
    [InlineData("Endpoint = :51820")]
    [InlineData("Endpoint = .example.com:51820")]
    [InlineData("AllowedIPs = 10.0.0.0/40")]
    [InlineData("PersistentKeepalive = -1")]
    [InlineData("PresharedKey = c2hvcnQ=")]
    public void BadPeerValue_NamesLine(string line)
    {
        var e = Fails(Minimal(peerExtra: line));
        Assert.Equal(8, e.Line);
        Assert.Contains(line.Split(' ')[0], e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void MissingPieces_AreErrors()
    {
        Assert.Contains("no [Interface]", Fails("[Socks5]\nBindAddress = 127.0.0.1:1").Message, StringComparison.Ordinal);
        Assert.Contains("needs Address", Fails($"[Interface]\nPrivateKey = {PrivateKey}\n").Message, StringComparison.Ordinal);
        Assert.Contains("needs PrivateKey", Fails("[Interface]\nAddress = 10.0.0.1\n").Message, StringComparison.Ordinal);
        Assert.Contains("needs PublicKey", Fails($"[Interface]\nPrivateKey = {PrivateKey}\nAddress = 10.0.0.1\n[Peer]\nAllowedIPs = 10.0.0.0/8\n").Message, StringComparison.Ordinal);
        var second = Fails(Minimal(tail: $"[Interface]\nPrivateKey = {PrivateKey}"));
        Assert.Equal(9, second.Line);
    }

    [Fact]
    public void ServerMode_ListenPortAndPeerWithoutEndpoint()
    {
        Assert.True(Parse(Minimal(interfaceExtra: "ListenPort = 51820")).IsServerMode);
        Assert.False(Parse(Minimal()).IsServerMode);
        Assert.False(Parse(Minimal(interfaceExtra: "ListenPort = 51820", peerExtra: "Endpoint = 192.0.2.1:1")).IsServerMode);
    }

    [Fact]
    public void WGConfig_BareName_IsRelativeToMainConfigFolder_NotTheWorkingDirectory()
    {
        var sub = Directory.CreateDirectory(Path.Combine(_dir, "etc")).FullName;
        File.WriteAllText(Path.Combine(sub, "wg0.conf"), Minimal(peerExtra: "Endpoint = 192.0.2.7:51820"));
        File.WriteAllText(Path.Combine(sub, "proxy.conf"), "WGConfig = wg0.conf\n\n[ConfigTestFake]\nName = x\n");
        var config = ProxyConfig.Load(Path.Combine(sub, "proxy.conf"), _ => null);
        Assert.Equal(Path.Combine(sub, "wg0.conf"), config.WireGuardPath);
        Assert.Equal("192.0.2.7", config.Peers[0].EndpointHost);
        Assert.Equal("ConfigTestFake", Assert.Single(config.Services).Name);

        File.WriteAllText(Path.Combine(sub, "abs.conf"), $"WGConfig = {Path.Combine(sub, "wg0.conf")}\n");
        Assert.Single(ProxyConfig.Load(Path.Combine(sub, "abs.conf"), _ => null).Peers);
    }

    [Fact]
    public void WGConfig_ErrorsNameTheWireGuardFile()
    {
        File.WriteAllText(Path.Combine(_dir, "wg0.conf"), Minimal(peerExtra: "Endpoint = nope"));
        File.WriteAllText(Path.Combine(_dir, "proxy.conf"), "WGConfig = wg0.conf\n");
        var e = Assert.Throws<ProxyConfigException>(() => ProxyConfig.Load(Path.Combine(_dir, "proxy.conf"), _ => null));
        Assert.Equal(Path.Combine(_dir, "wg0.conf"), e.File);
        Assert.Equal(8, e.Line);

        File.WriteAllText(Path.Combine(_dir, "missing.conf"), "# comment\nWGConfig = nowhere.conf\n");
        var missing = Assert.Throws<ProxyConfigException>(() => ProxyConfig.Load(Path.Combine(_dir, "missing.conf"), _ => null));
        Assert.Equal(2, missing.Line);
        Assert.Contains("nowhere.conf", missing.Message, StringComparison.Ordinal);

        File.WriteAllText(Path.Combine(_dir, "socks-in-wg.conf"), Minimal(tail: "[Socks5]\nBindAddress = 127.0.0.1:1"));
        File.WriteAllText(Path.Combine(_dir, "proxy2.conf"), "WGConfig = socks-in-wg.conf\n");
        Assert.Equal(9, Assert.Throws<ProxyConfigException>(() => ProxyConfig.Load(Path.Combine(_dir, "proxy2.conf"), _ => null)).Line);
    }

    [Fact]
    public void WGConfig_AndInlineInterface_IsAnError()
    {
        var e = Fails("WGConfig = wg0.conf\n\n" + Minimal());
        Assert.Equal(3, e.Line);
        Assert.Contains("WGConfig", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void MissingConfigFile_IsAClearError()
    {
        var e = Assert.Throws<ProxyConfigException>(() => ProxyConfig.Load(Path.Combine(_dir, "none.conf")));
        Assert.Contains("no such file", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void WgQuickText_IsWhatTheFacadeReads()
    {
        var config = Parse($"""
            [Interface]
            PrivateKey = {PrivateKey}
            Address = 10.0.0.2/24, fd00::2
            DNS = 10.0.0.1
            ListenPort = 51000
            CheckAlive = 10.0.0.1

            [Peer]
            PublicKey = {PeerKey}
            PresharedKey = {Psk}
            Endpoint = vpn.example.com:51820
            PersistentKeepalive = off
            """);
        Assert.Equal($"""
            [Interface]
            PrivateKey = {PrivateKey}
            Address = 10.0.0.2/24, fd00::2/128
            DNS = 10.0.0.1
            MTU = 1420
            ListenPort = 51000

            [Peer]
            PublicKey = {PeerKey}
            PresharedKey = {Psk}
            Endpoint = vpn.example.com:51820
            AllowedIPs = 0.0.0.0/0, ::/0

            """.Replace("\r", string.Empty, StringComparison.Ordinal), config.ToWgQuickText());
        Assert.True(Sharptun.Device.Config.WgConfigParser.TryParse(config.ToWgQuickText(), "x", out _, out var errors), string.Join("; ", errors));
    }

    [Fact]
    public void ReadmeInline_ParsesUnchanged()
    {
        var config = ProxyConfig.Load(Path.Combine(ConfigsDir, "readme-inline.conf"), _ => null);
        Assert.Equal("10.200.200.2/32", Assert.Single(config.Interface.Addresses).ToString());
        Assert.Equal("my.ddns.example.com", config.Peers[0].EndpointHost);
        Assert.Equal(["TCPClientTunnel", "TCPServerTunnel", "Socks5", "http"], config.Services.Select(s => s.Name));
        Assert.Equal("127.0.0.1:25344", config.Services[2].Get("BindAddress"));
        ProxyHost.Validate(config);
    }

    [Fact]
    public void ReadmeWGConfig_WithWgQuickFile_ParsesUnchanged()
    {
        var config = ProxyConfig.Load(Path.Combine(ConfigsDir, "readme-wgconfig.conf"), _ => null);
        Assert.Equal(Path.Combine(ConfigsDir, "wg0.conf"), config.WireGuardPath);
        Assert.Equal(["10.13.13.2/24", "fd00:13::2/64"], config.Interface.Addresses.Select(a => a.ToString()));
        Assert.Equal(1380, config.Interface.Mtu);
        Assert.Equal(["Table", "PostUp", "PostDown"], config.IgnoredKeys.Select(k => k.Key));
        Assert.Equal("[2001:db8::1]:51820", config.Peers[0].Endpoint);
        Assert.Equal("$ecret", config.Services[0].Get("Password"));
        Assert.Equal(["Socks5", "http", "TCPClientTunnel"], config.Services.Select(s => s.Name));
        ProxyHost.Validate(config);
    }

    [Fact]
    public void ReadmeMultiPeer_ParsesUnchanged()
    {
        var config = ProxyConfig.Load(Path.Combine(ConfigsDir, "multi-peer.conf"), _ => null);
        Assert.Equal(2, config.Peers.Count);
        Assert.Equal(["10.254.254.1/32", "fdee:1337:c000:d00d::1/128"], config.Peers[1].AllowedIPs.Select(a => a.ToString()));
        Assert.Equal(3, config.Services.Count(s => s.Name == "TCPServerTunnel"));
        ProxyHost.Validate(config);
    }

    [Fact]
    public void ServerModeFile_ParsesUnchanged()
    {
        var config = ProxyConfig.Load(Path.Combine(ConfigsDir, "server-mode.conf"), n => n == "WG_PROXY_TEST_KEY" ? PrivateKey : null);
        Assert.True(config.IsServerMode);
        Assert.Equal(ResolveStrategy.Ipv4, config.ResolveStrategy);
        Assert.Equal(TimeSpan.FromSeconds(10), config.Interface.CheckAliveInterval);
        Assert.Equal(["UDPProxyTunnel", "STDIOTunnel", "SNI"], config.Services.Select(s => s.Name));
        ProxyHost.Validate(config);
    }
}
