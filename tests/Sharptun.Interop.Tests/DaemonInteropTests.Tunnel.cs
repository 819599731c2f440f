using System.Diagnostics;
using System.Globalization;
using System.Runtime.Versioning;
using System.Text.Json;
using Sharptun.Crypto;

namespace Sharptun.Interop.Tests;

/// <summary>A WireGuard implementation run as a daemon behind a TUN (both take the wireguard-go command line).</summary>
public enum WgImpl
{
    /// <summary>Debian's wireguard-go.</summary>
    WireguardGo,

    /// <summary>The sharptun daemon (<c>dotnet sharptun.dll -f IFNAME</c>).</summary>
    Sharptun,
}

/// <summary>How <see cref="WgTunnel.Create"/> builds a tunnel.</summary>
public sealed record WgTunnelOptions
{
    /// <summary>Outer endpoints (the veth addresses the UDP packets travel between) are IPv6.</summary>
    public bool OuterIPv6 { get; init; }

    /// <summary>Both sides use one preshared key.</summary>
    public bool PresharedKey { get; init; }

    /// <summary>Persistent keepalive interval (seconds) side A sets for B; null = off.</summary>
    public int? KeepaliveA { get; init; }

    /// <summary>Side B knows A's endpoint (otherwise only A can initiate and B learns A's endpoint from A's packets).</summary>
    public bool EndpointOnB { get; init; } = true;

    /// <summary>Extra environment of sharptun daemons.</summary>
    public IReadOnlyDictionary<string, string>? SharptunEnvironment { get; init; }

    /// <summary>
    /// Run sharptun daemons this many times faster than real time: they are then the test daemon
    /// (<c>sharptun-testdaemon --time-scale N</c>, tests/Sharptun.TestDaemon), since the shipped one has no time control.
    /// </summary>
    public double? SharptunTimeScale { get; init; }

    /// <summary>Configure with <c>wg setconf FILE</c> instead of <c>wg set</c>.</summary>
    public bool UseSetconf { get; init; }

    /// <summary>
    /// Sharptun daemons get their TUN as an open descriptor (<c>--tun-fd</c>): the test daemon's <c>exec-with-tun</c>
    /// creates the interface and execs the shipped daemon with the descriptor inherited.
    /// </summary>
    public bool SharptunTunFd { get; init; }

    /// <summary>
    /// Run sharptun daemons from this executable (the NativeAOT <c>sharptun</c> of <c>dotnet publish</c>) instead of
    /// <c>dotnet sharptun.dll</c>.
    /// </summary>
    public string? SharptunExecutable { get; init; }
}

/// <summary>One end of a <see cref="WgTunnel"/>.</summary>
public sealed class WgSide
{
    internal WgSide(WgImpl impl, string ns, string ifname, string vethName, int host)
    {
        Impl = impl;
        Namespace = ns;
        Interface = ifname;
        Veth = vethName;
        Host = host;
        Span<byte> priv = stackalloc byte[32];
        Span<byte> pub = stackalloc byte[32];
        X25519.GeneratePrivateKey(priv);
        X25519.PublicKey(priv, pub);
        PrivateKey = Convert.ToBase64String(priv);
        PublicKey = Convert.ToBase64String(pub);
    }

    public WgImpl Impl { get; }
    public string Namespace { get; }
    public string Interface { get; }
    public string Veth { get; }

    /// <summary>Host number of this side in the link and tunnel subnets (1 = A, 2 = B).</summary>
    public int Host { get; }

    public string PrivateKey { get; }
    public string PublicKey { get; }
    public int ListenPort => 51820 + Host;

    /// <summary>The daemon process (foreground), or null before it started.</summary>
    public Process? Process { get; internal set; }

    public string TunnelV4 { get; internal set; } = "";
    public string TunnelV6 { get; internal set; } = "";
    public string OuterAddress { get; internal set; } = "";

    /// <summary>"addr:port" or "[addr]:port" of this side's listen socket on the veth.</summary>
    public string Endpoint => OuterAddress.Contains(':') ? $"[{OuterAddress}]:{ListenPort}" : $"{OuterAddress}:{ListenPort}";

    public string SocketPath => $"/var/run/wireguard/{Interface}.sock";

    public override string ToString() => $"{Impl} {Interface} in {Namespace}";
}

/// <summary>
/// Two WireGuard daemons (wireguard-go or sharptun, in any pairing) in two namespaces joined by a veth, configured
/// only with the stock <c>wg</c> tool and <c>ip</c>: A = 10.x.y.1 / fd53:..::1 inside the tunnel, B = .2 / ::2.
/// Dispose (through the lab) stops both daemons with SIGTERM and deletes the namespaces.
/// </summary>
[SupportedOSPlatform("linux")]
public sealed class WgTunnel
{
    /// <summary>How long a daemon may take to create its UAPI socket (dotnet start-up on a loaded 2-core machine).</summary>
    public static readonly TimeSpan StartTimeout = TimeSpan.FromSeconds(40);

    private WgTunnel(NetnsLab lab, WgSide a, WgSide b, LabSubnet link, LabSubnet tunnel, string? psk)
    {
        Lab = lab;
        A = a;
        B = b;
        Link = link;
        TunnelSubnet = tunnel;
        PresharedKey = psk;
    }

    public NetnsLab Lab { get; }
    public WgSide A { get; }
    public WgSide B { get; }
    public LabSubnet Link { get; }
    public LabSubnet TunnelSubnet { get; }
    public string? PresharedKey { get; }

    /// <summary>The pairs the Theory tests run over: mixed (sharptun A, wireguard-go B) and sharptun on both ends.</summary>
    public static TheoryData<WgImpl, WgImpl> Pairs => new()
    {
        { WgImpl.Sharptun, WgImpl.WireguardGo },
        { WgImpl.Sharptun, WgImpl.Sharptun },
    };

    /// <summary>
    /// <see cref="Pairs"/> and wireguard-go (A) with sharptun (B): for tests that hold for any roles, so sharptun also
    /// answers wireguard-go's first handshake, keepalives and transfers from the other side.
    /// </summary>
    public static TheoryData<WgImpl, WgImpl> AllPairs => new()
    {
        { WgImpl.Sharptun, WgImpl.WireguardGo },
        { WgImpl.Sharptun, WgImpl.Sharptun },
        { WgImpl.WireguardGo, WgImpl.Sharptun },
    };

    /// <summary>Builds the namespaces, starts both daemons, configures keys, peers, addresses and brings the TUNs up.</summary>
    public static WgTunnel Create(NetnsLab lab, WgImpl implA, WgImpl implB, WgTunnelOptions? options = null)
    {
        options ??= new WgTunnelOptions();
        var nsA = lab.AddNamespace();
        var nsB = lab.AddNamespace();
        var veth = lab.AddVeth(nsA, nsB);
        var link = lab.NewSubnet();
        lab.AddAddress(nsA, veth.InterfaceA, link.V4Cidr(1));
        lab.AddAddress(nsB, veth.InterfaceB, link.V4Cidr(2));
        lab.AddAddress(nsA, veth.InterfaceA, link.V6Cidr(1));
        lab.AddAddress(nsB, veth.InterfaceB, link.V6Cidr(2));
        var tunnel = lab.NewSubnet();
        var a = new WgSide(implA, nsA, lab.NewInterfaceName('w'), veth.InterfaceA, 1);
        var b = new WgSide(implB, nsB, lab.NewInterfaceName('w'), veth.InterfaceB, 2);
        foreach (var side in new[] { a, b })
        {
            side.OuterAddress = options.OuterIPv6 ? link.V6(side.Host) : link.V4(side.Host);
            side.TunnelV4 = tunnel.V4(side.Host);
            side.TunnelV6 = tunnel.V6(side.Host);
        }

        string? psk = null;
        if (options.PresharedKey)
        {
            psk = Convert.ToBase64String(System.Security.Cryptography.RandomNumberGenerator.GetBytes(32));
        }

        var t = new WgTunnel(lab, a, b, link, tunnel, psk);

        // Start both daemons before waiting for either: dotnet start-up dominates on a loaded machine.
        StartDaemon(lab, a, options.SharptunEnvironment, options.SharptunTimeScale, options.SharptunTunFd, options.SharptunExecutable);
        StartDaemon(lab, b, options.SharptunEnvironment, options.SharptunTimeScale, options.SharptunTunFd, options.SharptunExecutable);
        WaitForSocket(lab, a);
        WaitForSocket(lab, b);

        // B completely first (configured and up), then A: A sends its first keepalive (if set) the moment it is set,
        // and a peer that is not configured or whose TUN is down drops it, delaying the handshake by RekeyTimeout (5 s).
        t.Configure(b, a, keepalive: null, withEndpoint: options.EndpointOnB, options.UseSetconf);
        BringUp(lab, b, tunnel);
        t.Configure(a, b, options.KeepaliveA, withEndpoint: true, options.UseSetconf);
        BringUp(lab, a, tunnel);

        return t;
    }

    private static void BringUp(NetnsLab lab, WgSide side, LabSubnet tunnel)
    {
        lab.AddAddress(side.Namespace, side.Interface, tunnel.V4Cidr(side.Host));
        lab.AddAddress(side.Namespace, side.Interface, tunnel.V6Cidr(side.Host));
        lab.SetUp(side.Namespace, side.Interface);
    }

    /// <summary>Starts the daemon of <paramref name="side"/> in the foreground (its output is kept by the lab).</summary>
    public static void StartDaemon(NetnsLab lab, WgSide side, IReadOnlyDictionary<string, string>? sharptunEnvironment = null, double? timeScale = null, bool tunFd = false, string? executable = null)
    {
        var env = new Dictionary<string, string> { ["LOG_LEVEL"] = "verbose" };
        if (side.Impl == WgImpl.Sharptun)
        {
            foreach (var (k, v) in sharptunEnvironment ?? new Dictionary<string, string>())
            {
                env[k] = v;
            }

            if (tunFd)
            {
                Assert.Null(timeScale); // exec-with-tun runs the shipped daemon
                var dotnet = InteropEnvironment.FindTool("dotnet") ?? "dotnet";
                side.Process = lab.Start(
                    side.Namespace, env, "dotnet", SharptunDaemon.TestDaemonDllPath, "exec-with-tun", side.Interface,
                    dotnet, SharptunDaemon.DllPath, "-f", "--tun-fd", "{fd}", side.Interface);
                return;
            }

            side.Process = executable is not null
                ? lab.Start(side.Namespace, env, executable, "-f", side.Interface)
                : timeScale is { } scale
                ? lab.Start(side.Namespace, env, "dotnet", SharptunDaemon.TestDaemonDllPath, "--time-scale", scale.ToString(CultureInfo.InvariantCulture), "-f", side.Interface)
                : lab.Start(side.Namespace, env, "dotnet", SharptunDaemon.DllPath, "-f", side.Interface);
        }
        else
        {
            side.Process = lab.Start(side.Namespace, env, "wireguard-go", "-f", side.Interface);
        }
    }

    /// <summary>Waits for the UAPI socket of <paramref name="side"/> (fails early when the daemon exits).</summary>
    public static void WaitForSocket(NetnsLab lab, WgSide side) =>
        lab.WaitFor(
            () => File.Exists(side.SocketPath) || (side.Process?.HasExited ?? false),
            StartTimeout,
            $"UAPI socket of {side}");

    /// <summary>Configures <paramref name="self"/> with its key, listen port and <paramref name="peer"/> as its only peer.</summary>
    public void Configure(WgSide self, WgSide peer, int? keepalive, bool withEndpoint, bool useSetconf = false)
    {
        Assert.True(File.Exists(self.SocketPath), $"{self} has no UAPI socket\n{Lab.DescribeProcesses()}");
        var dir = Lab.TempDirectory;
        var keyFile = Path.Combine(dir, self.Interface + ".key");
        WriteSecret(keyFile, self.PrivateKey);
        string? pskFile = null;
        if (PresharedKey is not null)
        {
            pskFile = Path.Combine(dir, self.Interface + ".psk");
            WriteSecret(pskFile, PresharedKey);
        }

        var allowed = $"{peer.TunnelV4}/32,{peer.TunnelV6}/128";
        if (useSetconf)
        {
            var conf = Path.Combine(dir, self.Interface + ".conf");
            var text = "[Interface]\n" +
                $"PrivateKey = {self.PrivateKey}\n" +
                $"ListenPort = {self.ListenPort}\n\n" +
                "[Peer]\n" +
                $"PublicKey = {peer.PublicKey}\n" +
                (PresharedKey is null ? "" : $"PresharedKey = {PresharedKey}\n") +
                $"AllowedIPs = {allowed}\n" +
                (withEndpoint ? $"Endpoint = {peer.Endpoint}\n" : "") +
                (keepalive is { } k ? $"PersistentKeepalive = {k}\n" : "");
            WriteSecret(conf, text);
            Lab.Check(self.Namespace, "wg", "setconf", self.Interface, conf);
            return;
        }

        var args = new List<string>
        {
            "set", self.Interface, "private-key", keyFile, "listen-port", self.ListenPort.ToString(CultureInfo.InvariantCulture),
            "peer", peer.PublicKey, "allowed-ips", allowed,
        };
        if (pskFile is not null)
        {
            args.AddRange(["preshared-key", pskFile]);
        }

        if (withEndpoint)
        {
            args.AddRange(["endpoint", peer.Endpoint]);
        }

        if (keepalive is { } ka)
        {
            args.AddRange(["persistent-keepalive", ka.ToString(CultureInfo.InvariantCulture)]);
        }

        Lab.Check(self.Namespace, "wg", [.. args]);
    }

    /// <summary>Pings <paramref name="target"/> from <paramref name="from"/>'s namespace until one reply arrives or <paramref name="deadlineSeconds"/> pass.</summary>
    public CommandResult Ping(WgSide from, string target, int deadlineSeconds = 20) =>
        Lab.Exec(from.Namespace, TimeSpan.FromSeconds(deadlineSeconds + 10), "ping", "-c", "1", "-i", "0.2", "-w",
            deadlineSeconds.ToString(CultureInfo.InvariantCulture), target);

    /// <summary>As <see cref="Ping"/>, failing the test (with both daemons' output) when no reply arrives.</summary>
    public void PingOrFail(WgSide from, string target, int deadlineSeconds = 20)
    {
        var result = Ping(from, target, deadlineSeconds);
        Assert.True(result.Success, $"{result}\n{Describe()}");
    }

    /// <summary>One <c>wg show IFNAME FIELD</c> value of the single peer (e.g. latest-handshakes, endpoints, transfer).</summary>
    public string[] ShowField(WgSide side, string field)
    {
        var line = Lab.Check(side.Namespace, "wg", "show", side.Interface, field).Stdout.Trim();
        return line.Split('\t');
    }

    /// <summary>The unix time of the latest handshake <paramref name="side"/> reports for its peer (0 = none).</summary>
    public long LatestHandshake(WgSide side)
    {
        var f = ShowField(side, "latest-handshakes");
        return f.Length == 2 ? long.Parse(f[1], CultureInfo.InvariantCulture) : 0;
    }

    /// <summary>The received and sent byte counters <paramref name="side"/> reports for its peer.</summary>
    public (long Rx, long Tx) Transfer(WgSide side)
    {
        var f = ShowField(side, "transfer");
        return (long.Parse(f[1], CultureInfo.InvariantCulture), long.Parse(f[2], CultureInfo.InvariantCulture));
    }

    /// <summary><c>wg show</c> of both sides and the output of every process: for failure messages.</summary>
    public string Describe()
    {
        var a = Lab.Exec(A.Namespace, "wg", "show", A.Interface);
        var b = Lab.Exec(B.Namespace, "wg", "show", B.Interface);
        return $"A ({A}):\n{a.Stdout}{a.Stderr}\nB ({B}):\n{b.Stdout}{b.Stderr}\n{Lab.DescribeProcesses()}";
    }

    private static void WriteSecret(string path, string text)
    {
        File.WriteAllText(path, text.EndsWith('\n') ? text : text + "\n");
        File.SetUnixFileMode(path, UnixFileMode.UserRead | UnixFileMode.UserWrite);
    }
}

/// <summary>The parts of an <c>iperf3 -J</c> report the tests assert on.</summary>
/// <param name="ReceivedBitsPerSecond">end.sum_received.bits_per_second.</param>
/// <param name="ReceivedBytes">end.sum_received.bytes.</param>
/// <param name="Retransmits">end.sum_sent.retransmits (the sender's; -1 when iperf3 cannot tell).</param>
/// <param name="IntervalBytes">Bytes of each one-second interval (sender's view).</param>
public sealed record IperfResult(double ReceivedBitsPerSecond, long ReceivedBytes, long Retransmits, long[] IntervalBytes)
{
    public double Mbps => ReceivedBitsPerSecond / 1e6;

    public override string ToString() =>
        $"{Mbps:0.0} Mbit/s, {ReceivedBytes} B, {Retransmits} retransmits, intervals [{string.Join(' ', IntervalBytes)}]";
}

/// <summary>Runs iperf3 TCP between two namespaces.</summary>
[SupportedOSPlatform("linux")]
public static class Iperf
{
    private static int s_port = 5201 + (Environment.ProcessId % 1000) * 10;

    /// <summary>
    /// Starts a one-shot server in <paramref name="serverNs"/> and runs a client in <paramref name="clientNs"/> for
    /// <paramref name="seconds"/>; <paramref name="reverse"/> makes the server send (<c>-R</c>). Throws with the
    /// output when iperf3 fails.
    /// </summary>
    public static IperfResult Run(NetnsLab lab, string serverNs, string clientNs, string serverIp, int seconds, bool reverse = false)
    {
        var (client, _) = Start(lab, serverNs, clientNs, serverIp, seconds, reverse);
        return Finish(lab, client, seconds);
    }

    /// <summary>Starts the server and the client in the background; <see cref="Finish"/> collects the client's report.</summary>
    public static (Process Client, Process Server) Start(NetnsLab lab, string serverNs, string clientNs, string serverIp, int seconds, bool reverse = false)
    {
        var port = Interlocked.Increment(ref s_port).ToString(CultureInfo.InvariantCulture);
        var server = lab.Start(serverNs, "iperf3", "-s", "-1", "-p", port);

        // Until the server listens the client fails fast with "Connection refused": wait for the listening socket.
        NetnsLab.WaitUntil(
            () => lab.Exec(serverNs, "ss", "-Htln", "sport", "= :" + port).Stdout.Contains(':' + port, StringComparison.Ordinal) || server.HasExited,
            TimeSpan.FromSeconds(20),
            "iperf3 server to listen");
        var args = new List<string> { "-c", serverIp, "-p", port, "-t", seconds.ToString(CultureInfo.InvariantCulture), "-J", "--connect-timeout", "10000" };
        if (reverse)
        {
            args.Add("-R");
        }

        var client = lab.Start(clientNs, "iperf3", [.. args]);
        return (client, server);
    }

    /// <summary>Waits for a client from <see cref="Start"/> and parses its JSON report; throws with the output when it failed.</summary>
    public static IperfResult Finish(NetnsLab lab, Process client, int seconds)
    {
        if (!client.WaitForExit(TimeSpan.FromSeconds(seconds + 40)))
        {
            throw new TimeoutException("iperf3 client did not finish\n" + lab.DescribeProcesses());
        }

        client.WaitForExit(); // flush the asynchronous output readers
        var output = lab.OutputOf(client);
        var json = string.Concat(output.Split('\n').Where(l => l.StartsWith("out: ", StringComparison.Ordinal)).Select(l => l[5..] + "\n"));
        if (client.ExitCode != 0)
        {
            throw new InvalidOperationException($"iperf3 failed (exit {client.ExitCode})\n{lab.DescribeProcesses()}");
        }

        return Parse(json);
    }

    /// <summary>Parses an <c>iperf3 -J</c> TCP report.</summary>
    public static IperfResult Parse(string json)
    {
        using var doc = JsonDocument.Parse(json);
        var root = doc.RootElement;
        if (root.TryGetProperty("error", out var error))
        {
            throw new InvalidOperationException("iperf3: " + error.GetString());
        }

        var end = root.GetProperty("end");
        var received = end.GetProperty("sum_received");
        var sent = end.GetProperty("sum_sent");
        var retransmits = sent.TryGetProperty("retransmits", out var r) ? r.GetInt64() : -1;
        var intervals = root.GetProperty("intervals").EnumerateArray()
            .Select(i => (long)i.GetProperty("sum").GetProperty("bytes").GetDouble())
            .ToArray();
        return new IperfResult(received.GetProperty("bits_per_second").GetDouble(), (long)received.GetProperty("bytes").GetDouble(), retransmits, intervals);
    }
}
