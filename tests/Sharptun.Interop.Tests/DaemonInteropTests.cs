using Sharptun.Device.Uapi;

namespace Sharptun.Interop.Tests;

/// <summary>
/// The sharptun daemon (<c>sharptun IFNAME</c>, the wireguard-go command line) driven by the stock wg and wg-quick
/// tools in a network namespace: start/detach, get/set/showconf through the UAPI socket, shutdown on SIGTERM and on
/// link deletion, stale-socket recovery and startup errors.
/// </summary>
[System.Runtime.Versioning.UnsupportedOSPlatform("windows")]
public sealed class DaemonInteropTests
{
    private static readonly TimeSpan ExitTimeout = TimeSpan.FromSeconds(10);

    [InteropFact("wg")]
    public void Daemon_Started_CreatesInterfaceAndSocketThatWgShows()
    {
        using var lab = new NetnsLab();
        using var daemons = new SharptunDaemon(lab);
        var ns = lab.AddNamespace();
        var ifname = lab.NewInterfaceName('w');

        daemons.StartOrFail(ns, ifname);

        Assert.True(lab.Exec(ns, "ip", "link", "show", ifname).Success);
        Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite, File.GetUnixFileMode(SharptunDaemon.SocketPath(ifname)));
        var show = lab.Check(ns, "wg", "show", ifname);
        Assert.StartsWith($"interface: {ifname}\n", show.Stdout, StringComparison.Ordinal);
        Assert.DoesNotContain("peer:", show.Stdout, StringComparison.Ordinal);
    }

    [InteropFact("wg")]
    public void WgSet_AllSettings_AreReadBackByShowconfAndShow()
    {
        using var lab = new NetnsLab();
        using var daemons = new SharptunDaemon(lab);
        var ns = lab.AddNamespace();
        var ifname = lab.NewInterfaceName('w');
        daemons.StartOrFail(ns, ifname);
        var privateKey = lab.Check(null, "wg", "genkey").Stdout.Trim();
        var publicKey = lab.ExecWithInput(null, privateKey, "wg", "pubkey").Stdout.Trim();
        var peerKey = lab.ExecWithInput(null, lab.Check(null, "wg", "genkey").Stdout, "wg", "pubkey").Stdout.Trim();
        var keyFile = Path.Combine(lab.TempDirectory, "private.key");
        File.WriteAllText(keyFile, privateKey + "\n");

        lab.Check(ns, "wg", "set", ifname, "private-key", keyFile, "listen-port", "51999", "fwmark", "0x2a",
            "peer", peerKey, "allowed-ips", "10.7.0.0/24,fd07::/64", "endpoint", "192.0.2.1:51820", "persistent-keepalive", "25");

        var conf = lab.Check(ns, "wg", "showconf", ifname).Stdout;
        Assert.Contains("ListenPort = 51999\n", conf, StringComparison.Ordinal);
        Assert.Contains("FwMark = 0x2a\n", conf, StringComparison.Ordinal);
        Assert.Contains($"PrivateKey = {privateKey}\n", conf, StringComparison.Ordinal);
        Assert.Contains($"PublicKey = {peerKey}\n", conf, StringComparison.Ordinal);
        Assert.Contains("AllowedIPs = 10.7.0.0/24, fd07::/64\n", conf, StringComparison.Ordinal);
        Assert.Contains("Endpoint = 192.0.2.1:51820\n", conf, StringComparison.Ordinal);
        Assert.Contains("PersistentKeepalive = 25\n", conf, StringComparison.Ordinal);
        Assert.Equal(publicKey, lab.Check(ns, "wg", "show", ifname, "public-key").Stdout.Trim());

        // Our own `show` reads the same socket.
        var ours = lab.Check(ns, "dotnet", SharptunDaemon.DllPath, "show", ifname).Stdout;
        Assert.Contains($"  public key: {publicKey}\n", ours, StringComparison.Ordinal);
        Assert.Contains("  listening port: 51999\n", ours, StringComparison.Ordinal);
        Assert.Contains("  persistent keepalive: every 25 seconds\n", ours, StringComparison.Ordinal);
    }

    [InteropFact("wg")]
    public async Task BadSetRequest_ReturnsErrnoAndChangesNothing()
    {
        using var lab = new NetnsLab();
        using var daemons = new SharptunDaemon(lab);
        var ns = lab.AddNamespace();
        var ifname = lab.NewInterfaceName('w');
        daemons.StartOrFail(ns, ifname);
        lab.Check(ns, "wg", "set", ifname, "listen-port", "4000");
        var before = lab.Check(ns, "wg", "showconf", ifname).Stdout;

        // wg rejects a bad value before sending anything ...
        Assert.False(lab.Exec(ns, "wg", "set", ifname, "listen-port", "5000", "peer", "not-a-key").Success);

        // ... and the daemon rejects a request whose last line is bad, keeping the valid lines before it unapplied.
        var errno = await UapiClient.SetAsync(SharptunDaemon.SocketPath(ifname), "listen_port=5000\nfwmark=1\nbogus_key=1\n");

        Assert.Equal(UapiErrno.Invalid, errno);
        Assert.Equal(before, lab.Check(ns, "wg", "showconf", ifname).Stdout);
    }

    [InteropFact("wg")]
    public void Sigterm_StopsDaemonAndRemovesSocket()
    {
        using var lab = new NetnsLab();
        using var daemons = new SharptunDaemon(lab);
        var ns = lab.AddNamespace();
        var ifname = lab.NewInterfaceName('w');
        daemons.StartOrFail(ns, ifname);

        SharptunDaemon.Terminate(ifname);

        SharptunDaemon.WaitForExit(ifname, ExitTimeout);
        Assert.False(File.Exists(SharptunDaemon.SocketPath(ifname)));
        Assert.False(lab.Exec(ns, "ip", "link", "show", ifname).Success);
    }

    [InteropFact("wg")]
    public void LinkDelete_StopsDaemonAndRemovesSocket()
    {
        using var lab = new NetnsLab();
        using var daemons = new SharptunDaemon(lab);
        var ns = lab.AddNamespace();
        var ifname = lab.NewInterfaceName('w');
        daemons.StartOrFail(ns, ifname);

        lab.Check(ns, "ip", "link", "del", ifname);

        SharptunDaemon.WaitForExit(ifname, ExitTimeout);
        Assert.False(File.Exists(SharptunDaemon.SocketPath(ifname)));
    }

    [InteropFact("wg")]
    public void KilledDaemon_StaleSocketIsReplacedOnNextStart()
    {
        using var lab = new NetnsLab();
        using var daemons = new SharptunDaemon(lab);
        var ns = lab.AddNamespace();
        var ifname = lab.NewInterfaceName('w');
        daemons.StartOrFail(ns, ifname);
        SharptunDaemon.KillHard(ifname);
        Assert.True(File.Exists(SharptunDaemon.SocketPath(ifname))); // SIGKILL leaves the socket behind
        NetnsLab.WaitUntil(() => !lab.Exec(ns, "ip", "link", "show", ifname).Success, ExitTimeout, "the TUN to vanish with its process");

        daemons.StartOrFail(ns, ifname);

        Assert.StartsWith($"interface: {ifname}\n", lab.Check(ns, "wg", "show", ifname).Stdout, StringComparison.Ordinal);
    }

    [InteropFact("wg")]
    public void Start_InvalidInterfaceName_ParentFailsWithMessage()
    {
        using var lab = new NetnsLab();
        using var daemons = new SharptunDaemon(lab);
        var ns = lab.AddNamespace();

        var result = daemons.Start(ns, "bad/name");

        Assert.Equal(1, result.ExitCode);
        Assert.Contains("Invalid interface name", result.Stderr, StringComparison.Ordinal);
    }

    [InteropFact("wg")]
    public void Start_TunCannotBeCreated_ParentFailsWithMessageFromDetachedChild()
    {
        using var lab = new NetnsLab();
        using var daemons = new SharptunDaemon(lab);
        var ns = lab.AddNamespace();

        // "lo" exists and is not a TUN: TUNSETIFF fails in the detached child, which reports through the pipe.
        var result = daemons.Start(ns, "lo");

        Assert.Equal(1, result.ExitCode);
        Assert.Contains("Failed to create TUN device", result.Stderr, StringComparison.Ordinal);
        Assert.False(File.Exists(SharptunDaemon.SocketPath("lo")) && SharptunDaemon.FindPid("lo") is not null);
    }

    [InteropFact("wg", "ping")]
    public void TwoDaemons_ConfiguredByWg_HandshakeAndPing()
    {
        using var lab = new NetnsLab();
        using var daemons = new SharptunDaemon(lab);
        var nsA = lab.AddNamespace();
        var nsB = lab.AddNamespace();
        var veth = lab.AddVeth(nsA, nsB);
        var under = lab.NewSubnet();
        var tunnel = lab.NewSubnet();
        lab.AddAddress(nsA, veth.InterfaceA, under.V4Cidr(1));
        lab.AddAddress(nsB, veth.InterfaceB, under.V4Cidr(2));
        var ifA = lab.NewInterfaceName('w');
        var ifB = lab.NewInterfaceName('w');
        daemons.StartOrFail(nsA, ifA);
        daemons.StartOrFail(nsB, ifB);
        var keyA = Path.Combine(lab.TempDirectory, "a.key");
        var keyB = Path.Combine(lab.TempDirectory, "b.key");
        File.WriteAllText(keyA, lab.Check(null, "wg", "genkey").Stdout);
        File.WriteAllText(keyB, lab.Check(null, "wg", "genkey").Stdout);
        var pubA = lab.ExecWithInput(null, File.ReadAllText(keyA), "wg", "pubkey").Stdout.Trim();
        var pubB = lab.ExecWithInput(null, File.ReadAllText(keyB), "wg", "pubkey").Stdout.Trim();

        lab.Check(nsA, "wg", "set", ifA, "private-key", keyA, "listen-port", "40001",
            "peer", pubB, "allowed-ips", tunnel.V4(2) + "/32", "endpoint", under.V4(2) + ":40002");
        lab.Check(nsB, "wg", "set", ifB, "private-key", keyB, "listen-port", "40002",
            "peer", pubA, "allowed-ips", tunnel.V4(1) + "/32", "endpoint", under.V4(1) + ":40001");
        lab.AddAddress(nsA, ifA, tunnel.V4Cidr(1));
        lab.AddAddress(nsB, ifB, tunnel.V4Cidr(2));
        lab.SetUp(nsA, ifA);
        lab.SetUp(nsB, ifB);

        var ping = lab.Exec(nsA, "ping", "-c", "3", "-W", "5", tunnel.V4(2));

        Assert.True(ping.Success, ping.ToString());
        var show = lab.Check(nsA, "wg", "show", ifA).Stdout;
        Assert.Contains("latest handshake: ", show, StringComparison.Ordinal);
        Assert.Contains(" received, ", show, StringComparison.Ordinal);
    }

    [InteropFact("wg", "wg-quick")]
    public void WgQuick_UpAndDown_WithSharptunAsUserspaceImplementation()
    {
        using var lab = new NetnsLab();
        using var daemons = new SharptunDaemon(lab);
        var ns = lab.AddNamespace();
        var ifname = lab.NewInterfaceName('q');
        daemons.Track(ifname);
        var wrapper = daemons.WriteWrapperScript();
        var peerKey = lab.ExecWithInput(null, lab.Check(null, "wg", "genkey").Stdout, "wg", "pubkey").Stdout.Trim();
        var config = Path.Combine(lab.TempDirectory, ifname + ".conf");
        File.WriteAllText(config,
            "[Interface]\n" +
            $"PrivateKey = {lab.Check(null, "wg", "genkey").Stdout.Trim()}\n" +
            "Address = 10.9.0.1/24\n" +
            "ListenPort = 51888\n" +
            "MTU = 1380\n" +
            "\n[Peer]\n" +
            $"PublicKey = {peerKey}\n" +
            "AllowedIPs = 10.9.1.0/24\n");

        var up = lab.Check(ns, TimeSpan.FromSeconds(90), "env", $"WG_QUICK_USERSPACE_IMPLEMENTATION={wrapper}", "wg-quick", "up", config);

        Assert.Contains("Falling back to slow userspace implementation", up.Stderr, StringComparison.Ordinal);
        var conf = lab.Check(ns, "wg", "showconf", ifname).Stdout;
        Assert.Contains("ListenPort = 51888\n", conf, StringComparison.Ordinal);
        Assert.Contains($"PublicKey = {peerKey}\n", conf, StringComparison.Ordinal);
        var link = lab.Check(ns, "ip", "addr", "show", ifname).Stdout;
        Assert.Contains("inet 10.9.0.1/24", link, StringComparison.Ordinal);
        Assert.Contains("mtu 1380", link, StringComparison.Ordinal);
        Assert.Contains("10.9.1.0/24", lab.Check(ns, "ip", "route", "show", "dev", ifname).Stdout, StringComparison.Ordinal);

        lab.Check(ns, TimeSpan.FromSeconds(60), "wg-quick", "down", config);

        SharptunDaemon.WaitForExit(ifname, ExitTimeout);
        Assert.False(File.Exists(SharptunDaemon.SocketPath(ifname)));
    }
}
