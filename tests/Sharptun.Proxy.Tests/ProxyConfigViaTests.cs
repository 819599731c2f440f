using Sharptun.Proxy.Config;

namespace Sharptun.Proxy.Tests;

/// <summary><c>[Interface] Via = FILE</c>: the config form of multihop (issue 11 item 4).</summary>
public sealed class ProxyConfigViaTests : IDisposable
{
    private const string PrivateKey = "0IvQ7F2NDi3rEf1lGVIQrHK1nlN0jgiCneMtZQwd7HA=";
    private const string PeerKey = "2CKBqmLWCeTYQHLY04+ZeY8kwleYBMymfEVaIhiNYgg=";

    private readonly string _dir = Directory.CreateTempSubdirectory("proxyvia").FullName;

    public ProxyConfigViaTests() => FakeProxyService.EnsureRegistered(["Socks5"]);

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    private static string WgQuick(string address, string endpoint, string allowed, string interfaceExtra = "") => $"""
        [Interface]
        PrivateKey = {PrivateKey}
        Address = {address}
        {interfaceExtra}

        [Peer]
        PublicKey = {PeerKey}
        Endpoint = {endpoint}
        AllowedIPs = {allowed}
        """;

    private string Write(string relative, string text)
    {
        var path = Path.Combine(_dir, relative);
        Directory.CreateDirectory(Path.GetDirectoryName(path)!);
        File.WriteAllText(path, text);
        return path;
    }

    private static ProxyConfig Load(string path) => ProxyConfig.Load(path, _ => null);

    [Fact]
    public void Via_IsResolvedRelativeToTheFileThatNamesIt_AndParsedAsWgQuick()
    {
        // main.conf (inline) -> hops/wg.conf? no: main names sub/entry.conf, which names ../outer.conf (a chain)
        Write("outer.conf", WgQuick("10.9.0.2/32", "192.0.2.9:51820", "0.0.0.0/0", "MTU = 1500\nPostUp = true"));
        Write("sub/entry.conf", WgQuick("10.8.0.2/32", "198.51.100.1:51820", "198.51.100.0/24", "Via = ../outer.conf\nTable = off"));
        var main = Write("main.conf", WgQuick("10.7.0.2/32", "198.51.100.1:51821", "0.0.0.0/0", "Via = sub/entry.conf") + "\n[Socks5]\nBindAddress = 127.0.0.1:1080\n");

        var config = Load(main);
        var entry = Assert.IsType<ProxyConfig>(config.Via);
        Assert.Equal(Path.Combine(_dir, "sub/entry.conf"), entry.WireGuardPath);
        Assert.Equal("10.8.0.2/32", Assert.Single(entry.Interface.Addresses).ToString());
        Assert.Empty(entry.Services);
        Assert.Equal("Table", Assert.Single(entry.IgnoredKeys).Key);
        var outer = Assert.IsType<ProxyConfig>(entry.Via);
        Assert.Equal(Path.GetFullPath(Path.Combine(_dir, "sub", "../outer.conf")), Path.GetFullPath(outer.WireGuardPath));
        Assert.Null(outer.Via);
        Assert.Equal(1500, outer.Interface.Mtu);

        // no MTU given: 80 bytes under the outer tunnel's, at each hop
        Assert.Equal(1420, entry.Interface.Mtu);
        Assert.Equal(1340, config.Interface.Mtu);
        Assert.True(config.MtuFromVia);
        Assert.Single(config.Services);

        // Via never reaches the wg-quick text the tunnel is started from (the facade's parser rejects unknown keys)
        Assert.DoesNotContain("Via", config.ToWgQuickText(), StringComparison.OrdinalIgnoreCase);
        Assert.Contains("MTU = 1340", config.ToWgQuickText(), StringComparison.Ordinal);
        Assert.True(WireGuardConfigIsAccepted(config.ToWgQuickText()));
        Assert.True(WireGuardConfigIsAccepted(entry.ToWgQuickText()));
    }

    [Fact]
    public void Via_InAWGConfigFile_IsRelativeToThatFile()
    {
        Write("wg/entry.conf", WgQuick("10.8.0.2/32", "192.0.2.1:51820", "192.0.2.0/24"));
        Write("wg/wg0.conf", WgQuick("10.7.0.2/32", "192.0.2.2:51820", "0.0.0.0/0", "Via = entry.conf\nMTU = 1360"));
        var main = Write("proxy.conf", "WGConfig = wg/wg0.conf\n\n[Socks5]\nBindAddress = 127.0.0.1:1080\n");

        var config = Load(main);
        Assert.Equal(Path.Combine(_dir, "wg/entry.conf"), config.Via!.WireGuardPath);
        Assert.Equal(1360, config.Interface.Mtu); // IPv4 endpoint: 60 bytes of headers, 1420 - 60 fits
        Assert.False(config.MtuFromVia);
    }

    [Fact]
    public void Via_NamingItself_IsAnErrorAtItsLine()
    {
        var main = Write("self.conf", "[Interface]\n" + $"PrivateKey = {PrivateKey}\nAddress = 10.7.0.2/32\nVia = ./self.conf\n");
        var e = Assert.Throws<ProxyConfigException>(() => Load(main));
        Assert.Equal(main, e.File);
        Assert.Equal(4, e.Line);
        Assert.Contains("names this file itself", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Via_Loop_IsAnErrorAtTheLineThatClosesIt_NamingTheFiles()
    {
        Write("a.conf", WgQuick("10.8.0.2/32", "192.0.2.1:51820", "0.0.0.0/0", "Via = b.conf"));
        var b = Write("b.conf", WgQuick("10.9.0.2/32", "192.0.2.1:51820", "0.0.0.0/0", "Via = a.conf"));
        var main = Write("main.conf", WgQuick("10.7.0.2/32", "192.0.2.1:51821", "0.0.0.0/0", "Via = a.conf"));

        var e = Assert.Throws<ProxyConfigException>(() => Load(main));
        Assert.Equal(b, e.File);
        Assert.Equal(4, e.Line);
        Assert.Contains("makes a loop (a.conf -> b.conf -> a.conf)", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Via_MissingFile_NamesTheFileAndTheLine()
    {
        var main = Write("main.conf", WgQuick("10.7.0.2/32", "192.0.2.1:51821", "0.0.0.0/0", "Via = nowhere/entry.conf"));
        var e = Assert.Throws<ProxyConfigException>(() => Load(main));
        Assert.Equal(main, e.File);
        Assert.Equal(4, e.Line);
        Assert.Contains($"cannot read Via file '{Path.Combine(_dir, "nowhere/entry.conf")}': no such file", e.Message, StringComparison.Ordinal);

        var empty = Write("empty.conf", WgQuick("10.7.0.2/32", "192.0.2.1:51821", "0.0.0.0/0", "Via ="));
        Assert.Contains("empty.conf:4: Via = needs a file name", Assert.Throws<ProxyConfigException>(() => Load(empty)).Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Via_BrokenFile_IsAnErrorInThatFile()
    {
        var entry = Write("entry.conf", WgQuick("10.8.0.2/32", "192.0.2.1:51820", "0.0.0.0/0", "Bogus = 1"));
        var main = Write("main.conf", WgQuick("10.7.0.2/32", "192.0.2.1:51821", "0.0.0.0/0", "Via = entry.conf"));
        var e = Assert.Throws<ProxyConfigException>(() => Load(main));
        Assert.Equal(entry, e.File);
        Assert.Equal(4, e.Line);
        Assert.Contains("unknown key 'Bogus'", e.Message, StringComparison.Ordinal);

        // a Via file is a wg-quick file: no front-ends in it
        Write("entry.conf", WgQuick("10.8.0.2/32", "192.0.2.1:51820", "0.0.0.0/0") + "\n[Socks5]\nBindAddress = 127.0.0.1:1\n");
        e = Assert.Throws<ProxyConfigException>(() => Load(main));
        Assert.Equal(entry, e.File);
        Assert.Contains("unknown section [Socks5] in a WireGuard config", e.Message, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("192.0.2.1:51821", "", 1361, 1360, "IPv4")]
    [InlineData("[2001:db8::1]:51821", "", 1341, 1340, "IPv6")]
    [InlineData("exit.example:51821", ", fd00::2/128", 1341, 1340, "IPv6")] // a name with an IPv6-capable outer tunnel
    public void Via_MtuTooLargeForTheOuterTunnel_IsAnErrorAtTheMtuLine(string endpoint, string outerV6, int tooLarge, int fits, string family)
    {
        Write("entry.conf", WgQuick("10.8.0.2/32" + outerV6, "192.0.2.1:51820", "0.0.0.0/0, ::/0"));
        var main = Write("main.conf", WgQuick("10.7.0.2/32", endpoint, "0.0.0.0/0", $"Via = entry.conf\nMTU = {tooLarge}"));
        var e = Assert.Throws<ProxyConfigException>(() => Load(main));
        Assert.Equal(5, e.Line);
        Assert.Contains($"MTU {tooLarge} does not fit through Via = entry.conf (MTU 1420): at most {fits}", e.Message, StringComparison.Ordinal);
        Assert.Contains($"outer IP{(family == "IPv4" ? "v4" : "v6")}", e.Message, StringComparison.Ordinal);

        Write("main.conf", WgQuick("10.7.0.2/32", endpoint, "0.0.0.0/0", $"Via = entry.conf\nMTU = {fits}"));
        Assert.Equal(fits, Load(main).Interface.Mtu);
    }

    [Fact]
    public void Via_OuterMtuTooSmallToCarryATunnel_IsAnErrorAtTheViaLine()
    {
        Write("entry.conf", WgQuick("10.8.0.2/32", "192.0.2.1:51820", "0.0.0.0/0", "MTU = 600"));
        var main = Write("main.conf", WgQuick("10.7.0.2/32", "192.0.2.1:51821", "0.0.0.0/0", "Via = entry.conf"));
        var e = Assert.Throws<ProxyConfigException>(() => Load(main));
        Assert.Equal(4, e.Line);
        Assert.Contains("its MTU 600 leaves less than the minimum MTU 576", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Via_EndpointOutsideTheOuterTunnelsAllowedIPs_IsAnErrorAtThePeer()
    {
        Write("entry.conf", WgQuick("10.8.0.2/32", "192.0.2.1:51820", "198.51.100.0/24"));
        var main = Write("main.conf", WgQuick("10.7.0.2/32", "203.0.113.5:51821", "0.0.0.0/0", "Via = entry.conf"));
        var e = Assert.Throws<ProxyConfigException>(() => Load(main));
        Assert.Equal(6, e.Line);
        Assert.Contains("Endpoint 203.0.113.5:51821 is not in the AllowedIPs of any [Peer] of Via = entry.conf", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void WithoutVia_NothingChanges()
    {
        var main = Write("plain.conf", WgQuick("10.7.0.2/32", "192.0.2.1:51821", "0.0.0.0/0"));
        var config = Load(main);
        Assert.Null(config.Via);
        Assert.False(config.MtuFromVia);
        Assert.Equal(ProxyInterface.DefaultMtu, config.Interface.Mtu);
        Assert.Equal(ProxyConfig.Parse(File.ReadAllText(main), main, _ => null).ToWgQuickText(), config.ToWgQuickText());
        Assert.True(WireGuardConfigIsAccepted(config.ToWgQuickText()));
    }

    private static bool WireGuardConfigIsAccepted(string text) =>
        Sharptun.Device.Config.WgConfigParser.TryParse(text, "t.conf", out _, out var errors) && errors.Count == 0;
}
