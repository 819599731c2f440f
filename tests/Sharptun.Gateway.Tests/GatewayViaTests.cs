using System.Net;
using System.Net.Sockets;
using System.Security.Cryptography;
using Sharptun.Protocol;

namespace Sharptun.Gateway.Tests;

/// <summary>
/// <c>[Interface] Via = entry.conf</c> in a gateway's config (issue 11 item 4 for <c>sharptun gateway</c>): the rules
/// are <c>sharptun proxy</c>'s (Sharptun.Hosting's ViaRules), the errors name file and line, and the gateway's
/// ListenPort lives on the entry tunnel's netstack.
/// </summary>
public sealed class GatewayViaTests : IDisposable
{
    private const string PrivateKey = "yAnz5TF+lXXJte14tji3zlMNq+hd2rYUIgJBgB3fBmk=";
    private const string PeerKey = "xTIBA5rboUvnH4htodjb6e697QjLERt1NAB4mZqp8Dg=";
    private readonly string _dir = Directory.CreateTempSubdirectory("gwvia").FullName;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    [Fact]
    public void Via_PicksTheMtuInTheViaLinesPlace_ChainRelativeToEachFile_NoViaLeftForTheTunnelParser()
    {
        Write("outer.conf", Entry("10.65.0.2/32", "127.0.0.1:51820", "10.65.0.1/32", "MTU = 1400"));
        Write("sub/entry.conf", Entry("10.66.0.2/32", "10.65.0.1:51820", "10.66.0.1/32", "Via = ../outer.conf"));
        var config = Parse("gw.conf", Gateway("Via = sub/entry.conf") + "\n[Gateway]\nDefault = deny\n");

        var entry = Assert.IsType<ViaTunnelConfig>(config.Via);
        Assert.Equal(Path.Combine(_dir, "sub/entry.conf"), entry.Path);
        Assert.Equal(1320, entry.Mtu);                  // 1400 - 80
        var outer = Assert.IsType<ViaTunnelConfig>(entry.Via);
        Assert.Equal(1400, outer.Mtu);
        Assert.Null(outer.Via);
        Assert.Equal(1240, config.Mtu);                 // 1320 - 80
        Assert.True(config.MtuFromVia);
        Assert.False(config.Options.AllowUnlisted);     // the [Gateway] section still counts

        // the picked MTU takes the Via line's place (line 5), so the tunnel's parser sees no Via and line numbers stay
        Assert.Equal("MTU = 1240", config.WireGuardText.Split('\n')[4]);
        Assert.DoesNotContain("Via", config.WireGuardText, StringComparison.OrdinalIgnoreCase);
        Assert.DoesNotContain("Via", entry.WireGuardText, StringComparison.OrdinalIgnoreCase);
        Assert.Contains("MTU = 1320", entry.WireGuardText, StringComparison.Ordinal);
    }

    [Fact]
    public void Via_ExplicitMtuThatFits_IsKept_OneThatDoesNot_IsAnErrorAtTheMtuLine()
    {
        Write("entry.conf", Entry("10.66.0.2/32", "127.0.0.1:51820", "10.66.0.1/32"));
        var fits = Parse("ok.conf", Gateway("Via = entry.conf\nMTU = 1360"));
        Assert.Equal(1360, fits.Mtu);
        Assert.False(fits.MtuFromVia);

        var e = Assert.Throws<FormatException>(() => Parse("big.conf", Gateway("Via = entry.conf\nMTU = 1400")));
        Assert.StartsWith($"{_dir}/big.conf:6: MTU 1400 does not fit through Via = entry.conf (MTU 1420): at most 1360", e.Message, StringComparison.Ordinal);

        // an outer MTU too small to leave the minimum: the error is at the Via line
        Write("tiny.conf", Entry("10.66.0.2/32", "127.0.0.1:51820", "10.66.0.1/32", "MTU = 600"));
        var tiny = Assert.Throws<FormatException>(() => Parse("t.conf", Gateway("Via = tiny.conf")));
        Assert.StartsWith($"{_dir}/t.conf:5: Via = tiny.conf: its MTU 600 leaves less than the minimum MTU 576", tiny.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Via_MissingFile_Empty_Self_Loop_AreErrorsAtTheLineThatNamesThem()
    {
        var missing = Assert.Throws<FormatException>(() => Parse("gw.conf", Gateway("Via = nowhere/entry.conf")));
        Assert.Equal($"{_dir}/gw.conf:5: cannot read Via file '{Path.Combine(_dir, "nowhere/entry.conf")}': no such file", missing.Message);

        var empty = Assert.Throws<FormatException>(() => Parse("gw.conf", Gateway("Via =")));
        Assert.StartsWith($"{_dir}/gw.conf:5: Via = needs a file name", empty.Message, StringComparison.Ordinal);

        var self = Path.Combine(_dir, "self.conf");
        File.WriteAllText(self, Gateway("Via = ./self.conf"));
        var selfError = Assert.Throws<FormatException>(() => GatewayConfig.Parse(File.ReadAllText(self), self));
        Assert.Equal($"{self}:5: Via = ./self.conf names this file itself: a tunnel cannot carry its own UDP", selfError.Message);

        Write("a.conf", Entry("10.66.0.2/32", "127.0.0.1:51820", "0.0.0.0/0", "Via = b.conf"));
        var b = Write("b.conf", Entry("10.67.0.2/32", "127.0.0.1:51820", "0.0.0.0/0", "Via = a.conf"));
        var loop = Assert.Throws<FormatException>(() => Parse("gw.conf", Gateway("Via = a.conf")));
        Assert.Equal($"{b}:3: Via = a.conf makes a loop (a.conf -> b.conf -> a.conf)", loop.Message);

        var twice = Assert.Throws<FormatException>(() => Parse("gw.conf", Gateway("Via = a.conf\nVia = b.conf")));
        Assert.StartsWith($"{_dir}/gw.conf:6: a second Via (the first is at line 5)", twice.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Via_PeerEndpointOutsideTheEntrysAllowedIps_IsAnErrorAtTheEndpointLine_ABrokenViaFileNamesItself()
    {
        Write("entry.conf", Entry("10.66.0.2/32", "127.0.0.1:51820", "10.66.0.0/24"));
        var text = Gateway("Via = entry.conf") + $"\n[Peer]\nPublicKey = {PeerKey.Replace('x', 'y')}\nEndpoint = 192.0.2.9:51820\nAllowedIPs = 10.68.0.3/32\n";
        var e = Assert.Throws<FormatException>(() => Parse("gw.conf", text));
        Assert.StartsWith($"{_dir}/gw.conf:13: Endpoint 192.0.2.9:51820 is not in the AllowedIPs of any [Peer] of Via = entry.conf", e.Message, StringComparison.Ordinal);
        var inside = Parse("ok.conf", text.Replace("192.0.2.9", "10.66.0.7", StringComparison.Ordinal));
        Assert.NotNull(inside.Via);

        var broken = Write("broken.conf", Entry("10.66.0.2/32", "127.0.0.1:51820", "10.66.0.1/32", "Colour = blue"));
        var bad = Assert.Throws<FormatException>(() => Parse("gw.conf", Gateway("Via = broken.conf")));
        Assert.Contains($"{broken}:3", bad.Message, StringComparison.Ordinal);
        Assert.Contains("Colour", bad.Message, StringComparison.Ordinal);
    }

    /// <summary>
    /// The gateway dials the entry E (a plain tunnel on loopback) through its Via tunnel and listens on that tunnel's
    /// netstack; the client C's WireGuard UDP goes through E's netstack (E has no route anywhere else), so C reaches the
    /// gateway only through the hop the gateway itself dialed; C's TCP is relayed by the gateway to a host server.
    /// </summary>
    [Fact]
    public async Task GatewayWithVia_ListensOnTheEntryTunnelsNetstack_ClientThroughEntry_RelaysByHash_ViaDisposedWithHost()
    {
        using var entryKey = Key.GeneratePrivateKey();
        using var outerKey = Key.GeneratePrivateKey();
        using var gatewayKey = Key.GeneratePrivateKey();
        using var clientKey = Key.GeneratePrivateKey();
        await using var entry = await WireGuardTunnel.StartAsync($"""
            [Interface]
            PrivateKey = {entryKey}
            Address = 10.66.0.1/32

            [Peer]
            PublicKey = {outerKey.DerivePublicKey()}
            AllowedIPs = 10.66.0.2/32
            """, CancellationToken.None);
        Write("entry.conf", $"""
            [Interface]
            PrivateKey = {outerKey}
            Address = 10.66.0.2/32

            [Peer]
            PublicKey = {entryKey.DerivePublicKey()}
            Endpoint = 127.0.0.1:{entry.ListenPort}
            AllowedIPs = 10.66.0.1/32
            PersistentKeepalive = 1
            """);
        var config = Parse("gw.conf", $"""
            [Interface]
            PrivateKey = {gatewayKey}
            ListenPort = 51999
            Address = 10.68.0.1/32
            Via = entry.conf

            [Peer]
            PublicKey = {clientKey.DerivePublicKey()}
            AllowedIPs = 10.68.0.2/32
            """);
        var host = await GatewayHost.StartAsync(config, new WireGuardTunnelOptions(), MapToLoopback, CancellationToken.None);
        WireGuardTunnel outer;
        await using (host)
        {
            outer = Assert.Single(host.ViaTunnels);
            Assert.Equal(outerKey.DerivePublicKey().ToString(), outer.PublicKey);
            Assert.Equal(1340, host.Tunnel.Mtu);
            Assert.Equal(51999, host.Tunnel.ListenPort);

            // the outer tunnel's keepalive tells E where the gateway is
            await WaitUntilAsync(() => entry.Peers.Single().Endpoint is not null, "the gateway's Via tunnel to reach the entry");

            await using var client = await WireGuardTunnel.StartAsync($"""
                [Interface]
                PrivateKey = {clientKey}
                Address = 10.68.0.2/32
                MTU = 1340

                [Peer]
                PublicKey = {gatewayKey.DerivePublicKey()}
                Endpoint = 10.66.0.2:51999
                AllowedIPs = 0.0.0.0/0
                """, new WireGuardTunnelOptions { BindFactory = entry.CreateDatagramBindFactory() }, CancellationToken.None);

            var data = RandomNumberGenerator.GetBytes(1_000_000);
            await MultihopLab.RoundTripThroughExitAsync(async port => await client.ConnectAsync("11.0.0.1", port), data);

            // the gateway saw its client at E's netstack address: the datagrams came through the Via tunnel
            var seen = Assert.Single(host.Tunnel.Peers).Endpoint;
            Assert.Equal(IPAddress.Parse("10.66.0.1"), seen!.Address);
            var peer = Assert.Single(host.Counters.Peers);
            Assert.Equal(1, peer.Value.TcpRelayed);
            Assert.Equal(data.Length, peer.Value.BytesToDestinations);
            Assert.True(outer.Peers.Single().ReceivedBytes > data.Length, "the client's datagrams went through the Via tunnel");
        }

        // the Via tunnel went down with the gateway
        await Assert.ThrowsAsync<IOException>(async () => await outer.ConnectAsync("10.66.0.1", 80));
    }

    private static IPEndPoint MapToLoopback(IPEndPoint destination) =>
        destination.Address.GetAddressBytes()[0] == 11 ? new IPEndPoint(IPAddress.Loopback, destination.Port) : destination;

    private static async Task WaitUntilAsync(Func<bool> condition, string what)
    {
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(30);
        while (!condition())
        {
            Assert.True(DateTime.UtcNow < deadline, "timed out waiting for " + what);
            await Task.Delay(50);
        }
    }

    private static string Entry(string address, string endpoint, string allowed, string extra = "") =>
        $"[Interface]\nPrivateKey = {PrivateKey}\n{extra}\nAddress = {address}\n\n[Peer]\nPublicKey = {PeerKey}\nEndpoint = {endpoint}\nAllowedIPs = {allowed}\n";

    private static string Gateway(string extra) =>
        $"[Interface]\nPrivateKey = {PrivateKey}\nListenPort = 51820\nAddress = 10.68.0.1/32\n{extra}\n\n[Peer]\nPublicKey = {PeerKey}\nAllowedIPs = 10.68.0.2/32\n";

    private GatewayConfig Parse(string name, string text) => GatewayConfig.Parse(text, Path.Combine(_dir, name));

    private string Write(string name, string text)
    {
        var path = Path.Combine(_dir, name);
        Directory.CreateDirectory(Path.GetDirectoryName(path)!);
        File.WriteAllText(path, text);
        return path;
    }
}
