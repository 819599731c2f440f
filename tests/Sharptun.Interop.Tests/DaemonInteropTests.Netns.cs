using System.Runtime.Versioning;

namespace Sharptun.Interop.Tests;

/// <summary>
/// The container pattern of wireguard.com/netns: the daemon creates its interface (and its UDP socket) in one
/// namespace, the interface is then moved into another (<c>ip link set IF netns X</c>) while the socket stays behind.
/// The daemon must keep running (it watches its TUN descriptor, not the interface name in its own namespace), carry
/// traffic for the new namespace, and stop at once - removing its UAPI socket - when the interface is deleted there.
/// </summary>
[SupportedOSPlatform("linux")]
public sealed class DaemonNetnsInteropTests
{
    private static readonly TimeSpan StopTimeout = TimeSpan.FromSeconds(10);

    [InteropFact("wireguard-go", "wg", "ping")]
    public void InterfaceMovedToAnotherNamespace_TrafficFlows_DeletionThereStopsDaemonAndFreesName()
    {
        using var lab = new NetnsLab();
        var t = WgTunnel.Create(lab, WgImpl.Sharptun, WgImpl.WireguardGo);
        t.PingOrFail(t.A, t.B.TunnelV4);
        var container = lab.AddNamespace();

        // Move A's interface into the container; it arrives down and without addresses.
        lab.Check(t.A.Namespace, "ip", "link", "set", t.A.Interface, "netns", container);
        lab.AddAddress(container, t.A.Interface, t.TunnelSubnet.V4Cidr(1));
        lab.SetUp(container, t.A.Interface);

        // The daemon (still in A's namespace, with its UDP socket there) keeps serving the moved interface.
        // Traffic keeps flowing over a few seconds (longer than the daemon's liveness checks take to notice anything).
        var ping = lab.Exec(container, TimeSpan.FromSeconds(40), "ping", "-c", "1", "-i", "0.2", "-w", "20", t.B.TunnelV4);
        Assert.True(ping.Success, $"no traffic from the container through the moved interface: {ping}\n{t.Describe()}");
        var pings = lab.Exec(container, TimeSpan.FromSeconds(40), "ping", "-c", "10", "-i", "0.3", "-W", "5", t.B.TunnelV4);
        Assert.True(pings.Success && pings.Stdout.Contains(" 10 received", StringComparison.Ordinal), $"traffic through the moved interface stopped: {pings}\n{t.Describe()}");
        Assert.False(t.A.Process!.HasExited, $"the daemon exited when its interface moved\n{t.Describe()}");
        Assert.True(File.Exists(t.A.SocketPath));
        Assert.Contains($"interface: {t.A.Interface}\n", lab.Check(t.A.Namespace, "wg", "show", t.A.Interface).Stdout, StringComparison.Ordinal);

        // Deleting it in the container stops the daemon at once and removes its socket.
        lab.Check(container, "ip", "link", "del", t.A.Interface);
        Assert.True(t.A.Process.WaitForExit(StopTimeout), $"the daemon kept running after its interface was deleted in another namespace\n{t.Describe()}");
        Assert.Equal(0, t.A.Process.ExitCode);
        Assert.False(File.Exists(t.A.SocketPath), "the daemon left its UAPI socket behind");

        // A new daemon for the same name starts right away, in either namespace, and does not find the socket "in use".
        foreach (var ns in new[] { t.A.Namespace, container })
        {
            var next = new WgSide(WgImpl.Sharptun, ns, t.A.Interface, t.A.Veth, 1);
            WgTunnel.StartDaemon(lab, next);
            WgTunnel.WaitForSocket(lab, next);
            Assert.False(next.Process!.HasExited, lab.DescribeProcesses());
            Assert.True(lab.Exec(ns, "ip", "link", "show", next.Interface).Success);
            lab.Kill(next.Process, StopTimeout);
            Assert.False(File.Exists(next.SocketPath));
        }
    }
}

/// <summary>
/// A daemon whose device loses a pipeline stage (here the UDP receiver, to an unknown errno) stops with an error and
/// exit code 1 instead of running on without moving packets; the real daemon host on a real TUN, in-process.
/// </summary>
[SupportedOSPlatform("linux")]
public sealed class DaemonFaultInteropTests
{
    [InteropFact]
    public async Task ReceiverFailsWithUnknownErrno_DaemonStopsWithErrorAndExitCode1()
    {
        using var lab = new NetnsLab();
        var ns = lab.AddNamespace();
        var ifname = lab.NewInterfaceName('f');
        var socketDirectory = Path.Combine(lab.TempDirectory, "uapi");
        var text = new StringWriter();
        var output = TextWriter.Synchronized(text);
        using var log = Sharptun.Cli.Daemon.WireGuardGoLoggerProvider.CreateFactory(ifname, output, Microsoft.Extensions.Logging.LogLevel.Debug);
        var binds = new ArmedFailureBindFactory(Sharptun.Transport.Linux.LinuxUdpBind.Factory);
        using var host = NetnsLab.RunInNamespace(ns, () => Sharptun.Cli.Daemon.DaemonHost.Start(ifname, log, socketDirectory, binds));
        var run = host.RunAsync(CancellationToken.None);
        var port = (int)binds.LastPort;

        // The receiver's next batch fails with an errno it does not know.
        binds.Armed = true;
        NetnsLab.RunInNamespace(ns, () =>
        {
            using var udp = new System.Net.Sockets.UdpClient();
            udp.Send(new byte[] { 1, 2, 3, 4 }, 4, new System.Net.IPEndPoint(System.Net.IPAddress.Loopback, port));
            return 0;
        });

        Assert.True(await Task.WhenAny(run, Task.Delay(TimeSpan.FromSeconds(20))) == run, "the daemon kept running without its UDP receiver");
        Assert.Equal(1, await run);
        string logged;
        lock (output)
        {
            logged = text.ToString();
        }

        Assert.Contains("errno 9999", logged, StringComparison.Ordinal);
        Assert.Contains("ERROR", logged, StringComparison.Ordinal);
        host.Dispose();
        Assert.False(File.Exists(host.SocketPath));
    }

    /// <summary>Linux UDP binds whose Receive fails (after receiving) once <see cref="Armed"/> is set.</summary>
    private sealed class ArmedFailureBindFactory(Sharptun.Transport.IDatagramBindFactory inner) : Sharptun.Transport.IDatagramBindFactory
    {
        private volatile bool _armed;

        public bool Armed
        {
            get => _armed;
            set => _armed = value;
        }

        public ushort LastPort { get; private set; }

        public Sharptun.Transport.IDatagramBind Open(ushort port)
        {
            var bind = new Bind(this, inner.Open(port));
            LastPort = bind.LocalPort;
            return bind;
        }

        private sealed class Bind(ArmedFailureBindFactory owner, Sharptun.Transport.IDatagramBind inner) : Sharptun.Transport.IDatagramBind
        {
            public ushort LocalPort => inner.LocalPort;

            public int BatchSize => inner.BatchSize;

            public int Receive(byte[][] buffers, Span<int> sizes, Span<Sharptun.Transport.UdpEndpoint> endpoints)
            {
                var n = inner.Receive(buffers, sizes, endpoints);
                return owner.Armed ? throw new IOException("recvmmsg failed: errno 9999") : n;
            }

            public int Send(byte[][] buffers, ReadOnlySpan<int> sizes, int offset, int count, in Sharptun.Transport.UdpEndpoint destination) =>
                inner.Send(buffers, sizes, offset, count, destination);

            public void SetMark(uint fwmark) => inner.SetMark(fwmark);

            public void Dispose() => inner.Dispose();
        }
    }
}
