using System.Net;
using System.Net.Sockets;

namespace Sharptun.Interop.Tests;

public sealed class NetnsLabTests
{
    [InteropFact("ping")]
    public void AddVeth_BetweenTwoNamespaces_PingCrossesIPv4AndIPv6()
    {
        using var lab = new NetnsLab();
        var a = lab.AddNamespace();
        var b = lab.AddNamespace();
        var veth = lab.AddVeth(a, b);
        var net = lab.NewSubnet();
        lab.AddAddress(a, veth.InterfaceA, net.V4Cidr(1));
        lab.AddAddress(b, veth.InterfaceB, net.V4Cidr(2));
        lab.AddAddress(a, veth.InterfaceA, net.V6Cidr(1));
        lab.AddAddress(b, veth.InterfaceB, net.V6Cidr(2));

        var v4 = lab.Exec(a, "ping", "-c1", "-W2", net.V4(2));
        var v6 = lab.Exec(a, "ping", "-6", "-c1", "-W2", net.V6(2));

        Assert.True(v4.Success, v4.ToString());
        Assert.True(v6.Success, v6.ToString());
    }

    [InteropFact("ping")]
    public void AddVeth_ToRootNamespace_RootReachesNamespace()
    {
        using var lab = new NetnsLab();
        var a = lab.AddNamespace();
        var veth = lab.AddVeth(a, null);
        var net = lab.NewSubnet();
        lab.AddAddress(a, veth.InterfaceA, net.V4Cidr(1));
        lab.AddAddress(null, veth.InterfaceB, net.V4Cidr(2));

        var result = lab.Exec(null, "ping", "-c1", "-W2", net.V4(1));

        Assert.True(result.Success, result.ToString());
    }

    [InteropFact]
    public void Exec_FailingCommand_ReturnsExitCodeAndStderr()
    {
        using var lab = new NetnsLab();
        var ns = lab.AddNamespace();

        var result = lab.Exec(ns, "sh", "-c", "echo out; echo err >&2; exit 3");

        Assert.Equal(3, result.ExitCode);
        Assert.Equal("out\n", result.Stdout);
        Assert.Equal("err\n", result.Stderr);
    }

    [InteropFact]
    public void ExecWithInput_Stdin_ReachesCommand()
    {
        using var lab = new NetnsLab();

        var result = lab.ExecWithInput(null, "abc\n", "tr", "a-z", "A-Z");

        Assert.Equal("ABC\n", result.Stdout);
    }

    [InteropFact]
    public void TempDirectory_AfterDispose_IsDeleted()
    {
        string dir;
        using (var lab = new NetnsLab())
        {
            dir = lab.TempDirectory;
            File.WriteAllText(Path.Combine(dir, "wg0.conf"), "[Interface]\n");
            Assert.True(Directory.Exists(dir));
        }

        Assert.False(Directory.Exists(dir));
    }

    [InteropFact]
    public void Exec_CommandLeavingBackgroundChild_ReturnsWithOutput()
    {
        using var lab = new NetnsLab();
        var ns = lab.AddNamespace();
        var sw = System.Diagnostics.Stopwatch.StartNew();

        // The background sleep inherits stdout, so the pipe stays open after the shell exits (as a daemon's would).
        var result = lab.Exec(ns, "sh", "-c", "echo before-daemon; sleep 30 & exit 0");

        Assert.Equal(0, result.ExitCode);
        Assert.Equal("before-daemon\n", result.Stdout);
        Assert.True(sw.Elapsed < TimeSpan.FromSeconds(20), sw.Elapsed.ToString());
    }

    [InteropFact]
    public void Check_FailingCommand_ThrowsWithStderr()
    {
        using var lab = new NetnsLab();

        var e = Assert.Throws<InvalidOperationException>(() => lab.Check(null, "sh", "-c", "echo boom-marker >&2; exit 1"));

        Assert.Contains("boom-marker", e.Message);
    }

    [InteropFact]
    public void Exec_CommandExceedingTimeout_IsKilledAndReportedTimedOut()
    {
        using var lab = new NetnsLab();

        var result = lab.Exec(null, TimeSpan.FromMilliseconds(300), "sleep", "30");

        Assert.True(result.TimedOut);
        Assert.False(result.Success);
    }

    [InteropFact]
    public void Dispose_AfterSetup_RemovesNamespacesVethsAndProcesses()
    {
        string ns;
        VethPair veth;
        int pid;
        using (var lab = new NetnsLab())
        {
            ns = lab.AddNamespace();
            veth = lab.AddVeth(ns, null);
            pid = lab.Start(ns, "sleep", "60").Id;
        }

        Assert.False(Directory.Exists($"/proc/{pid}"));
        Assert.False(File.Exists("/var/run/netns/" + ns));
        Assert.False(Directory.Exists("/sys/class/net/" + veth.InterfaceB));
    }

    [InteropFact]
    public void Dispose_RunningDaemon_GetsSigtermBeforeSigkill()
    {
        var marker = Path.Combine(Path.GetTempPath(), $"netnslab-term-{Environment.ProcessId}");
        File.Delete(marker);
        using (var lab = new NetnsLab())
        {
            var ns = lab.AddNamespace();
            var p = lab.Start(ns, "sh", "-c", $"trap 'echo bye > {marker}; exit 0' TERM; echo ready; while true; do sleep 0.1; done");
            lab.WaitFor(() => lab.OutputOf(p).Contains("out: ready"), TimeSpan.FromSeconds(10), "the daemon to start");
        }

        try
        {
            Assert.Equal("bye\n", File.ReadAllText(marker));
        }
        finally
        {
            File.Delete(marker);
        }
    }

    [InteropFact]
    public void Start_BackgroundProcess_OutputIsCaptured()
    {
        using var lab = new NetnsLab();
        var ns = lab.AddNamespace();

        var p = lab.Start(ns, "sh", "-c", "echo hello-from-ns; ip -o link show lo");

        NetnsLab.WaitUntil(() => p.HasExited, TimeSpan.FromSeconds(10), "the process to exit");
        p.WaitForExit(); // drains the asynchronous output readers
        var output = lab.OutputOf(p);
        Assert.Contains("out: hello-from-ns", output);
        Assert.Contains("LOOPBACK", output);
    }

    [InteropFact]
    public void WaitUntil_ConditionNeverTrue_ThrowsTimeoutNamingWhat()
    {
        var e = Assert.Throws<TimeoutException>(() => NetnsLab.WaitUntil(() => false, TimeSpan.FromMilliseconds(100), "the impossible"));

        Assert.Contains("the impossible", e.Message);
    }

    [InteropFact]
    public void RunInNamespace_SocketCreatedInside_StaysInNamespace()
    {
        using var lab = new NetnsLab();
        var ns = lab.AddNamespace();
        var veth = lab.AddVeth(ns, null);
        var net = lab.NewSubnet();
        lab.AddAddress(ns, veth.InterfaceA, net.V4Cidr(1));

        // The address exists only inside the namespace, so binding to it succeeds only there.
        using var socket = NetnsLab.RunInNamespace(ns, () =>
        {
            var s = new Socket(AddressFamily.InterNetwork, SocketType.Dgram, ProtocolType.Udp);
            s.Bind(new IPEndPoint(IPAddress.Parse(net.V4(1)), 0));
            return s;
        });
        var port = ((IPEndPoint)socket.LocalEndPoint!).Port;
        lab.Check(ns, "bash", "-c", $"echo -n ping-through-ns > /dev/udp/{net.V4(1)}/{port}");
        var buffer = new byte[64];
        socket.ReceiveTimeout = 5000;
        var n = socket.Receive(buffer);

        Assert.Equal("ping-through-ns", System.Text.Encoding.ASCII.GetString(buffer, 0, n));
        Assert.Throws<SocketException>(() =>
        {
            using var root = new Socket(AddressFamily.InterNetwork, SocketType.Dgram, ProtocolType.Udp);
            root.Bind(new IPEndPoint(IPAddress.Parse(net.V4(1)), 0));
        });
    }
}
