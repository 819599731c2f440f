using System.Runtime.Versioning;

namespace Sharptun.Interop.Tests;

/// <summary>
/// Issue 9 items 3 and 4 against Debian's wireguard-go: the sharptun daemon on the portable UDP bind
/// (<c>SHARPTUN_UDP_BIND=portable</c>, System.Net.Sockets instead of recvmmsg/sendmmsg), and on a TUN it did not create
/// but was handed as an open descriptor (<c>--tun-fd</c>); plus the errors for descriptors that are no TUN.
/// </summary>
[SupportedOSPlatform("linux")]
public sealed class DaemonBindAndTunFdInteropTests
{
    private const int IperfSeconds = 3;

    private static void PingBothWaysAndTransfer(WgTunnel t)
    {
        t.PingOrFail(t.A, t.B.TunnelV4);
        t.PingOrFail(t.B, t.A.TunnelV4, deadlineSeconds: 5);
        t.PingOrFail(t.A, t.B.TunnelV6, deadlineSeconds: 5);

        var up = Iperf.Run(t.Lab, t.B.Namespace, t.A.Namespace, t.B.TunnelV4, IperfSeconds);
        var down = Iperf.Run(t.Lab, t.B.Namespace, t.A.Namespace, t.B.TunnelV4, IperfSeconds, reverse: true);

        Console.WriteLine($"A->B {up}\nB->A {down}");
        Assert.True(up.ReceivedBytes > 1_000_000, $"{up}\n{t.Describe()}");
        Assert.True(down.ReceivedBytes > 1_000_000, $"{down}\n{t.Describe()}");
    }

    [InteropFact("wireguard-go", "wg", "ping", "iperf3")]
    public void PortableBind_SharptunAgainstWireguardGo_PingAndTcpTransfer()
    {
        using var lab = new NetnsLab();
        var t = WgTunnel.Create(lab, WgImpl.Sharptun, WgImpl.WireguardGo, new WgTunnelOptions
        {
            SharptunEnvironment = new Dictionary<string, string> { ["SHARPTUN_UDP_BIND"] = "portable" },
        });

        PingBothWaysAndTransfer(t);

        Assert.Contains("UDP bind: portable", lab.OutputOf(t.A.Process!), StringComparison.Ordinal);
        Assert.Equal(t.A.Endpoint, t.ShowField(t.B, "endpoints")[1]);
    }

    [InteropFact("wireguard-go", "wg", "ping")]
    public void PortableBind_OuterIPv6_SharptunAgainstWireguardGo_Ping()
    {
        using var lab = new NetnsLab();
        var t = WgTunnel.Create(lab, WgImpl.Sharptun, WgImpl.WireguardGo, new WgTunnelOptions
        {
            OuterIPv6 = true,
            SharptunEnvironment = new Dictionary<string, string> { ["SHARPTUN_UDP_BIND"] = "portable" },
        });

        t.PingOrFail(t.B, t.A.TunnelV4);

        Assert.Equal(t.B.Endpoint, t.ShowField(t.A, "endpoints")[1]);
    }

    [InteropFact("wireguard-go", "wg", "ping", "iperf3")]
    public void TunFd_SharptunOnInheritedTun_AgainstWireguardGo_PingAndTcpTransfer()
    {
        using var lab = new NetnsLab();
        var t = WgTunnel.Create(lab, WgImpl.Sharptun, WgImpl.WireguardGo, new WgTunnelOptions { SharptunTunFd = true });

        PingBothWaysAndTransfer(t);

        // The daemon is the shipped one, exec'd over the helper with --tun-fd N (N >= 100: the helper's duplicate).
        var cmdline = File.ReadAllText($"/proc/{t.A.Process!.Id}/cmdline").Split('\0');
        Assert.Contains("--tun-fd", cmdline);
        Assert.EndsWith("sharptun.dll", cmdline.First(a => a.EndsWith(".dll", StringComparison.Ordinal)), StringComparison.Ordinal);
    }

    [InteropFact]
    public void TunFd_BadDescriptors_ClearErrorAndExit1()
    {
        using var lab = new NetnsLab();
        var ns = lab.AddNamespace();
        var dotnet = InteropEnvironment.FindTool("dotnet") ?? "dotnet";
        var name = lab.NewInterfaceName('w');
        var other = lab.NewInterfaceName('w');
        var file = Path.Combine(lab.TempDirectory, "not-a-tun");
        File.WriteAllText(file, "x");
        var daemon = $"exec {dotnet} {SharptunDaemon.DllPath} -f --tun-fd";
        var cases = new (string Description, CommandResult Result, string Expected)[]
        {
            ("not a number", lab.Exec(ns, TimeSpan.FromSeconds(60), dotnet, SharptunDaemon.DllPath, "-f", "--tun-fd", "three", name),
                "--tun-fd `three': not a file descriptor number"),
            ("not open", lab.Exec(ns, TimeSpan.FromSeconds(60), dotnet, SharptunDaemon.DllPath, "-f", "--tun-fd", "1000000", name),
                "descriptor 1000000 is not open"),
            ("a regular file", lab.Exec(ns, TimeSpan.FromSeconds(60), "sh", "-c", $"{daemon} 9 {name} 9<{file}"),
                "descriptor 9 is not a TUN device"),
            ("/dev/net/tun without an interface", lab.Exec(ns, TimeSpan.FromSeconds(60), "sh", "-c", $"{daemon} 9 {name} 9<>/dev/net/tun"),
                "descriptor 9 is a TUN device not attached to an interface"),
            ("another interface's TUN", lab.Exec(ns, TimeSpan.FromSeconds(60), "dotnet", SharptunDaemon.TestDaemonDllPath, "exec-with-tun", other, dotnet, SharptunDaemon.DllPath, "-f", "--tun-fd", "{fd}", name),
                $"is the TUN device of interface {other}, not {name}"),
        };

        foreach (var (description, result, expected) in cases)
        {
            var output = result.Stdout + result.Stderr;
            Assert.True(result.ExitCode == 1, $"{description}: {result}");
            Assert.Contains(expected, output, StringComparison.Ordinal);
            Assert.DoesNotContain("Unhandled exception", output, StringComparison.Ordinal);
            Assert.False(File.Exists(SharptunDaemon.SocketPath(name)), $"{description}: a socket was created");
        }

        // Nothing was left behind: neither interface exists once the processes are gone.
        Assert.False(lab.Exec(ns, "ip", "link", "show", name).Success);
        Assert.False(lab.Exec(ns, "ip", "link", "show", other).Success);
    }
}
