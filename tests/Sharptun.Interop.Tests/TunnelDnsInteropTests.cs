using System.Globalization;
using System.Net;
using System.Net.Sockets;
using System.Runtime.Versioning;
using System.Text;
using Xunit.Abstractions;

namespace Sharptun.Interop.Tests;

/// <summary>
/// The tunnel's stub resolver against a real DNS server: dnsmasq behind Debian's wireguard-go in namespace S, the
/// in-process tunnel in the test process (root namespace, a veth to S). dnsmasq serves a name with 40 A and 60 AAAA
/// records from a hosts file: the A answer (681 octets) must come over UDP thanks to EDNS(0), the AAAA answer (past
/// 1232 octets) truncated and then over TCP; a single-label name is found through the config's search domain; and
/// dnsmasq's query log shows that <c>localhost</c> never reached it.
/// </summary>
[SupportedOSPlatform("linux")]
public sealed class TunnelDnsInteropTests(ITestOutputHelper output)
{
    private const int ListenPort = 51820;
    private static readonly TimeSpan Timeout = TimeSpan.FromSeconds(60);

    [InteropFact("wireguard-go", "wg", "dnsmasq")]
    public async Task TunnelResolver_Dnsmasq_Edns0UdpAnswerOver512_TcpPast1232_SearchDomain_LocalhostNeverSent()
    {
        using var lab = new NetnsLab();
        var serverNs = lab.AddNamespace();
        var veth = lab.AddVeth(serverNs, null);
        var link = lab.NewSubnet();
        var tunnel = lab.NewSubnet();
        lab.AddAddress(serverNs, veth.InterfaceA, link.V4Cidr(1));
        lab.AddAddress(null, veth.InterfaceB, link.V4Cidr(2));

        var (serverPrivate, serverPublic) = WireguardGo.KeyPair();
        var (clientPrivate, clientPublic) = WireguardGo.KeyPair();
        WireguardGo.Start(
            lab,
            serverNs,
            'd',
            serverPrivate,
            ["listen-port", ListenPort.ToString(CultureInfo.InvariantCulture), "peer", clientPublic, "allowed-ips", tunnel.V4(2) + "/32"],
            [tunnel.V4Cidr(1)]);

        var hosts = new StringBuilder();
        for (var i = 1; i <= 40; i++)
        {
            hosts.Append(CultureInfo.InvariantCulture, $"198.51.100.{i} many.dns.test\n");
        }

        for (var i = 1; i <= 60; i++)
        {
            hosts.Append(CultureInfo.InvariantCulture, $"2001:db8::{i:x} many.dns.test\n");
        }

        var hostsFile = Path.Combine(lab.TempDirectory, "many.hosts");
        File.WriteAllText(hostsFile, hosts.ToString());
        var dnsmasq = lab.Start(serverNs, "dnsmasq",
            "--keep-in-foreground", "--no-resolv", "--no-hosts", "--no-poll", "--bind-interfaces", "--user=root",
            $"--listen-address={tunnel.V4(1)}", "--port=53", $"--pid-file={lab.TempDirectory}/dnsmasq.pid", "--log-facility=-",
            "--log-queries", "--local=/#/", $"--addn-hosts={hostsFile}"); // --local=/#/: unknown names are NXDOMAIN, not REFUSED
        lab.WaitFor(
            () => dnsmasq.HasExited || lab.Exec(serverNs, "ss", "-Hltn", "sport = :53").Stdout.Contains(tunnel.V4(1), StringComparison.Ordinal),
            TimeSpan.FromSeconds(20),
            $"dnsmasq on {tunnel.V4(1)}:53\n{lab.OutputOf(dnsmasq)}");

        await using var client = await WireGuardTunnel.StartAsync(
            $"[Interface]\nPrivateKey = {clientPrivate}\nAddress = {tunnel.V4(2)}/32\nDNS = {tunnel.V4(1)}, dns.test\n\n" +
            $"[Peer]\nPublicKey = {serverPublic}\nEndpoint = {link.V4(1)}:{ListenPort}\nAllowedIPs = {tunnel.V4(0)}/24\n");
        var resolver = Assert.IsType<TunnelNameResolver>(client.Resolver).Resolver;
        using var cts = new CancellationTokenSource(Timeout);
        try
        {
            // "many" through the search domain; 40 A records over UDP (the OPT record let dnsmasq send 681 octets)
            var v4 = await client.ResolveAsync("many", AddressFamily.InterNetwork, cts.Token);
            Assert.Equal(40, v4.Length);
            Assert.Contains(IPAddress.Parse("198.51.100.40"), v4);
            Assert.Equal(0, resolver.TcpRetries);
            Assert.Equal(0, resolver.EdnsFallbacks);

            // 60 AAAA records: 60 * 28 octets do not fit 1232: TC, then TCP
            var v6 = await resolver.ResolveAsync("many.dns.test", AddressFamily.InterNetworkV6, cts.Token);
            Assert.Equal(60, v6.Length);
            Assert.Equal(1, resolver.TcpRetries);
            Assert.Equal(0, resolver.ResponsesDropped);

            // localhost is answered in the process; dnsmasq logs every query it gets
            Assert.Equal([IPAddress.Loopback], await resolver.ResolveAsync("localhost", AddressFamily.InterNetwork, cts.Token));
            var missing = await Assert.ThrowsAsync<SocketException>(async () => await client.ResolveAsync("nothing-here", AddressFamily.InterNetwork, cts.Token));
            Assert.Equal(SocketError.HostNotFound, missing.SocketErrorCode);
            lab.WaitFor(() => lab.OutputOf(dnsmasq).Contains("query[A] nothing-here from", StringComparison.Ordinal), Timeout, "dnsmasq's log of the last query");
            var log = lab.OutputOf(dnsmasq);
            output.WriteLine(log);
            Assert.Contains("query[A] many.dns.test", log, StringComparison.Ordinal);
            var searched = log.IndexOf("query[A] nothing-here.dns.test from", StringComparison.Ordinal);
            var bare = log.IndexOf("query[A] nothing-here from", StringComparison.Ordinal);
            Assert.True(searched >= 0 && bare > searched, "the search domain first, then the bare name"); // resolv.conf, ndots:1
            Assert.DoesNotContain("localhost", log, StringComparison.Ordinal);
        }
        catch
        {
            output.WriteLine(lab.DescribeProcesses());
            throw;
        }
    }
}
