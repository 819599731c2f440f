using System.Diagnostics;
using System.Globalization;
using System.Runtime.Versioning;
using Xunit.Abstractions;

namespace Sharptun.Interop.Tests;

/// <summary>
/// Issue 10 item 6 and issue 11 item 3, the operations pieces of <c>sharptun proxy</c> and <c>sharptun gateway</c>:
/// an in-process tunnel (<c>sharptun-testdaemon ops-tunnel</c>: <c>WireGuardTunnel</c> with
/// <c>UapiSocketPath</c>, <c>MetricsServer</c> and <c>AlivePinger</c>) runs in namespace C as uid/gid 65534 against
/// Debian's wireguard-go in namespace S. Real clients check it: <c>wg show</c> and <c>wg set</c> (root, through a link
/// in /var/run/wireguard, the only place wg looks for sockets) and curl on <c>/metrics</c> and <c>/readyz</c>.
/// </summary>
/// <remarks>
/// The socket lives in the unprivileged process's own directory (0700, owned by 65534: it cannot create one in
/// /var/run/wireguard, which is root's). wg, running as root, reaches it through a symbolic link
/// <c>/var/run/wireguard/NAME.sock</c>: wg stat(2)s (following links) and connect(2)s that path.
/// </remarks>
[SupportedOSPlatform("linux")]
public sealed class TunnelOperationsInteropTests(ITestOutputHelper output)
{
    private const int ListenPort = 51820;
    private static readonly TimeSpan Timeout = TimeSpan.FromSeconds(60);

    [InteropFact("wireguard-go", "wg", "setpriv", "curl")]
    public void UnprivilegedTunnel_WgShowAndSet_CurlScrapesMetricsAndReadyz_ReadyzFollowsCheckAlive()
    {
        using var lab = new NetnsLab();
        var serverNs = lab.AddNamespace();
        var clientNs = lab.AddNamespace();
        var veth = lab.AddVeth(serverNs, clientNs);
        var link = lab.NewSubnet();
        var tunnel = lab.NewSubnet();
        lab.AddAddress(serverNs, veth.InterfaceA, link.V4Cidr(1));
        lab.AddAddress(clientNs, veth.InterfaceB, link.V4Cidr(2));

        // wireguard-go in S.
        var (serverPrivate, serverPublic) = WireguardGo.KeyPair();
        var (clientPrivate, clientPublic) = WireguardGo.KeyPair();
        var ifname = WireguardGo.Start(
            lab,
            serverNs,
            'w',
            serverPrivate,
            ["listen-port", ListenPort.ToString(CultureInfo.InvariantCulture), "peer", clientPublic, "allowed-ips", tunnel.V4(2) + "/32"],
            [tunnel.V4Cidr(1)]);

        // The tunnel as 65534: its program (next to the tests) copied where 65534 can read it, its HOME and config its own.
        var app = Unprivileged.TestOutputCopy;
        Assert.True(File.Exists(Path.Combine(app, "sharptun-testdaemon.dll")), $"sharptun-testdaemon is not next to the tests in {AppContext.BaseDirectory}");
        var home = Path.Combine(Unprivileged.ReadableDirectory(Path.Combine(lab.TempDirectory, "nobody")), "home");
        Directory.CreateDirectory(home);
        Unprivileged.OpenWayDown(lab.TempDirectory);
        var config = Path.Combine(home, "wg.conf");
        File.WriteAllText(config,
            $"[Interface]\nPrivateKey = {clientPrivate}\nAddress = {tunnel.V4(2)}/32\n\n" +
            $"[Peer]\nPublicKey = {serverPublic}\nEndpoint = {link.V4(1)}:{ListenPort}\nAllowedIPs = {tunnel.V4(1)}/32\n");
        File.SetUnixFileMode(config, UnixFileMode.UserRead | UnixFileMode.UserWrite);
        Unprivileged.OwnHome(lab, home);
        var socket = Path.Combine(home, "run", "ops.sock");
        var name = lab.NewInterfaceName('o');
        var linkPath = $"/var/run/wireguard/{name}.sock";
        var process = lab.Start(clientNs, "setpriv", Unprivileged.DotnetCommand(
            home, Path.Combine(app, "sharptun-testdaemon.dll"), "ops-tunnel", config, socket, "127.0.0.1:9080", tunnel.V4(1), "1"));
        try
        {
            lab.WaitFor(() => lab.OutputOf(process).Contains("ready 127.0.0.1:9080", StringComparison.Ordinal) || process.HasExited, Timeout, "the tunnel to serve");
            Assert.False(process.HasExited, lab.DescribeProcesses());
            Assert.Equal($"{Unprivileged.Id} 600", lab.Check(null, "stat", "-c", "%u %a", socket).Stdout.Trim());
            Assert.Equal($"{Unprivileged.Id} 700", lab.Check(null, "stat", "-c", "%u %a", Path.GetDirectoryName(socket)!).Stdout.Trim());
            Directory.CreateDirectory("/var/run/wireguard");
            File.CreateSymbolicLink(linkPath, socket);

            // /readyz: 200 once CheckAlive's ping through the tunnel (to wireguard-go's kernel side) is answered.
            lab.WaitFor(() => Curl(lab, clientNs, "/readyz").Status == 200, Timeout, "/readyz to turn 200");
            var ready = Curl(lab, clientNs, "/readyz");
            Assert.Matches($"^{{\"{tunnel.V4(1).Replace(".", "\\.", StringComparison.Ordinal)}\":[1-9][0-9]+}}\n$", ready.Body);

            // wg show: the peer, with a handshake and transfer both ways.
            var dump = lab.Check(null, "wg", "show", name, "dump").Stdout.Split('\n', StringSplitOptions.RemoveEmptyEntries);
            output.WriteLine(string.Join("\n", dump.Skip(1)));
            var peer = dump[1].Split('\t');
            Assert.Equal(serverPublic, peer[0]);
            Assert.Equal($"{link.V4(1)}:{ListenPort}", peer[2]);
            Assert.True(long.Parse(peer[4], CultureInfo.InvariantCulture) > 0, "no latest handshake in wg show");
            Assert.True(long.Parse(peer[5], CultureInfo.InvariantCulture) > 0 && long.Parse(peer[6], CultureInfo.InvariantCulture) > 0, "no transfer in wg show");
            Assert.Contains("latest handshake:", lab.Check(null, "wg", "show", name).Stdout, StringComparison.Ordinal);

            // wg set: a peer added at run time.
            var (_, extraPublic) = WireguardGo.KeyPair();
            lab.Check(null, "wg", "set", name, "peer", extraPublic, "allowed-ips", tunnel.V4(3) + "/32", "persistent-keepalive", "25");
            var peers = lab.Check(null, "wg", "show", name, "peers").Stdout;
            Assert.Contains(extraPublic, peers, StringComparison.Ordinal);
            Assert.Contains(serverPublic, peers, StringComparison.Ordinal);

            // /metrics: Prometheus text with the peers, bytes, handshake and the caller's metric.
            var metrics = Curl(lab, clientNs, "/metrics");
            Assert.Equal(200, metrics.Status);
            Assert.Contains("text/plain; version=0.0.4", metrics.ContentType, StringComparison.Ordinal);
            Assert.Contains("sharptun_peers 2\n", metrics.Body, StringComparison.Ordinal);
            Assert.Matches($"sharptun_peer_receive_bytes_total\\{{public_key=\"{Escape(serverPublic)}\"\\}} [1-9][0-9]*\n", metrics.Body);
            Assert.Matches($"sharptun_peer_last_handshake_age_seconds\\{{public_key=\"{Escape(serverPublic)}\"\\}} [0-9.]+(E-?[0-9]+)?\n", metrics.Body);
            Assert.Matches($"sharptun_peer_last_handshake_timestamp_seconds\\{{public_key=\"{Escape(extraPublic)}\"\\}} 0\n", metrics.Body);
            Assert.Contains("sharptun_dropped_packets_total{reason=\"NoRoute\"} ", metrics.Body, StringComparison.Ordinal);
            Assert.Contains("sharptun_testdaemon_info{verb=\"ops-tunnel\"} 1\n", metrics.Body, StringComparison.Ordinal);
            Assert.Equal(404, Curl(lab, clientNs, "/nothing").Status);

            // The far side stops answering: /readyz turns 503 (no pong within interval + 2 s).
            lab.Check(serverNs, "ip", "link", "set", ifname, "down");
            lab.WaitFor(() => Curl(lab, clientNs, "/readyz").Status == 503, Timeout, "/readyz to turn 503");
            lab.WaitFor(() => lab.OutputOf(process).Contains($"CheckAlive: {tunnel.V4(1)} gave no pong", StringComparison.Ordinal), Timeout, "the state change in the log");

            // SIGTERM: a clean stop removes the socket.
            lab.Kill(process, TimeSpan.FromSeconds(10));
            Assert.Equal(0, process.ExitCode);
            Assert.False(File.Exists(socket), "the socket outlived the tunnel");
        }
        catch
        {
            output.WriteLine(lab.DescribeProcesses());
            throw;
        }
        finally
        {
            File.Delete(linkPath);
        }
    }

    private static string Escape(string key) => key.Replace("+", "\\+", StringComparison.Ordinal);

    private static (int Status, string ContentType, string Body) Curl(NetnsLab lab, string ns, string path)
    {
        var result = lab.Exec(ns, "curl", "-sS", "--max-time", "10", "-w", "\n%{http_code} %{content_type}", "http://127.0.0.1:9080" + path);
        if (!result.Success)
        {
            return (0, "", result.ToString());
        }

        var last = result.Stdout.LastIndexOf('\n');
        var tail = result.Stdout[(last + 1)..].Split(' ', 2);
        return (int.Parse(tail[0], CultureInfo.InvariantCulture), tail.Length > 1 ? tail[1] : "", result.Stdout[..last]);
    }
}
