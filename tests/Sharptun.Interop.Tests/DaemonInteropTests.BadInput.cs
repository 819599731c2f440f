using System.Diagnostics;
using System.Globalization;
using System.Net;
using System.Net.Sockets;
using System.Runtime.Versioning;
using Sharptun.Device.Uapi;
using Sharptun.Protocol;

namespace Sharptun.Interop.Tests;

/// <summary>
/// The sharptun daemon (A) under hostile or broken input, with wireguard-go (B) as the legitimate peer: garbage and
/// truncated datagrams on the listen port, a handshake flood from many source ports of another host (cookie replies
/// under load, whitepaper §5.3/§5.4.7), invalid UAPI requests, the interface deleted under a running tunnel, and a
/// SIGKILLed daemon replaced by a new one.
/// </summary>
[SupportedOSPlatform("linux")]
public sealed class DaemonBadInputInteropTests
{
    [InteropFact("wireguard-go", "wg", "ping")]
    public void GarbageAndTruncatedDatagrams_DaemonStillHandshakesAndForwards()
    {
        using var lab = new NetnsLab();
        var t = WgTunnel.Create(lab, WgImpl.Sharptun, WgImpl.WireguardGo);
        var seed = Environment.TickCount;
        var random = new Random(seed);
        var target = new IPEndPoint(IPAddress.Parse(t.A.OuterAddress), t.A.ListenPort);
        using var socket = NetnsLab.RunInNamespace(t.B.Namespace, () => BoundSocket(t.Link.V4(2)));

        var before = SendGarbage(socket, target, random);
        t.PingOrFail(t.B, t.A.TunnelV4); // B initiates: A's handshake path still works
        var after = SendGarbage(socket, target, random);
        t.PingOrFail(t.A, t.B.TunnelV4, deadlineSeconds: 5);
        t.PingOrFail(t.B, t.A.TunnelV6, deadlineSeconds: 5);

        Assert.False(t.A.Process!.HasExited, $"seed {seed}\n{t.Describe()}");
        Console.WriteLine($"garbage: {before} + {after} datagrams (seed {seed})");
    }

    [InteropFact("wireguard-go", "wg", "ping")]
    public void HandshakeFloodFromManyPorts_CookieRepliesSentAndLegitimatePeerConnects()
    {
        using var lab = new NetnsLab();
        var t = WgTunnel.Create(lab, WgImpl.Sharptun, WgImpl.WireguardGo);

        // The flood comes from another host on B's link (its own address), from 256 source ports.
        var floodAddress = t.Link.V4(9);
        lab.AddAddress(t.B.Namespace, t.B.Veth, floodAddress + "/32");
        var sockets = NetnsLab.RunInNamespace(t.B.Namespace, () => Enumerable.Range(0, 256).Select(_ => BoundSocket(floodAddress)).ToArray());
        var target = new IPEndPoint(IPAddress.Parse(t.A.OuterAddress), t.A.ListenPort);
        var mac1Key = new byte[32];
        Noise.LabelKey(ProtocolConstants.LabelMac1, Convert.FromBase64String(t.A.PublicKey), mac1Key);
        using var stop = new CancellationTokenSource();
        var flood = Task.Run(() => Flood(sockets, target, mac1Key, stop.Token));
        try
        {
            Thread.Sleep(500);

            // wireguard-go initiates while A is flooded: it may get a cookie reply first and retry with mac2.
            var ping = t.Ping(t.B, t.A.TunnelV4, deadlineSeconds: 30);
            stop.Cancel();
            var (sent, validMac1, cookies) = flood.GetAwaiter().GetResult();
            Console.WriteLine($"flood: {sent} initiations ({validMac1} with a valid mac1), {cookies} cookie replies; legitimate ping: {ping.Success}");

            Assert.True(ping.Success, $"{ping}\n{t.Describe()}");
            Assert.True(sent >= 2000, $"only {sent} initiations sent");
            Assert.True(cookies > 0, $"no cookie reply to {validMac1} initiations with a valid mac1: never under load?\n{t.Describe()}");
            t.PingOrFail(t.A, t.B.TunnelV4, deadlineSeconds: 5);
        }
        finally
        {
            stop.Cancel();
            flood.Wait(TimeSpan.FromSeconds(10));
            foreach (var s in sockets)
            {
                s.Dispose();
            }
        }
    }

    /// <summary>
    /// The flood rate of <see cref="HandshakeFlood_StockClientConnectsWithinOneCookieRound_MemoryBounded"/>: 12 times the
    /// daemon's cookie-reply budget, yet leaving the daemon's receive thread some of a loaded 2-core machine (unpaced,
    /// the flooding thread takes a whole core and stalls the daemon long enough for its socket buffer to overflow).
    /// </summary>
    private const int FloodRate = 50_000;

    /// <summary>
    /// Whitepaper §5.3 under a flood: another host floods A with initiations that all carry a valid mac1 (each earns a
    /// cookie reply or a Diffie-Hellman), <see cref="FloodRate"/> a second; with <paramref name="alsoFromVictimAddress"/>,
    /// a second flooder shares the client's own IP address (another host behind the same NAT, or a spoofer) and sends
    /// 500 more a second (evenly, one every 2 ms), 25 times the per-address rate limit. A stock wireguard-go client must still connect within
    /// one cookie round: its first initiation gets a cookie reply, its retry after RekeyTimeout (5 s + up to 1/3 s of
    /// jitter) carries mac2 and is processed, so the ping answers within 7 s: 5.1–5.2 s on a quiet machine, plus what the
    /// retry and the first packets wait behind the flood in A's socket and handshake queue on a loaded one (CI once
    /// measured 6.11 s). A second cookie round would take 10 s. The daemon's memory stays bounded during the flood.
    /// </summary>
    [InteropTheory("wireguard-go", "wg", "ping")]
    [InlineData(false)]
    [InlineData(true)]
    public void HandshakeFlood_StockClientConnectsWithinOneCookieRound_MemoryBounded(bool alsoFromVictimAddress)
    {
        using var lab = new NetnsLab();
        var t = WgTunnel.Create(lab, WgImpl.Sharptun, WgImpl.WireguardGo);
        var daemon = t.A.Process!;
        var rssBefore = Rss(daemon);

        var floodAddress = t.Link.V4(9);
        lab.AddAddress(t.B.Namespace, t.B.Veth, floodAddress + "/32");
        var sockets = NetnsLab.RunInNamespace(t.B.Namespace, () => Enumerable.Range(0, 16).Select(_ => BoundSocket(floodAddress)).ToArray());
        var victimSockets = alsoFromVictimAddress
            ? NetnsLab.RunInNamespace(t.B.Namespace, () => Enumerable.Range(0, 4).Select(_ => BoundSocket(t.B.OuterAddress)).ToArray())
            : [];
        var target = new IPEndPoint(IPAddress.Parse(t.A.OuterAddress), t.A.ListenPort);
        var mac1Key = new byte[32];
        Noise.LabelKey(ProtocolConstants.LabelMac1, Convert.FromBase64String(t.A.PublicKey), mac1Key);
        var stats = new FloodStats();
        var victimStats = new FloodStats();
        using var stop = new CancellationTokenSource();
        var flood = Task.Factory.StartNew(() => FloodValidMac1(sockets, target, mac1Key, stats, FloodRate, batch: 256, stop.Token), TaskCreationOptions.LongRunning);
        var victimFlood = Task.Factory.StartNew(
            () => FloodValidMac1(victimSockets, target, mac1Key, victimStats, ratePerSecond: 500, batch: 1, stop.Token),
            TaskCreationOptions.LongRunning);
        long peakRss = 0;
        var sampling = true;
        var sampler = new Thread(() =>
        {
            while (Volatile.Read(ref sampling))
            {
                Interlocked.Exchange(ref peakRss, Math.Max(Interlocked.Read(ref peakRss), Rss(daemon)));
                Thread.Sleep(100);
            }
        });
        try
        {
            // A is under load once the flood gets cookie replies back; only then does the client start.
            lab.WaitFor(() => Interlocked.Read(ref stats.Cookies) > 1000 || flood.IsCompleted, TimeSpan.FromSeconds(30), "cookie replies to the flood");
            sampler.Start();
            var sentBefore = Interlocked.Read(ref stats.Sent);
            var cookiesBefore = Interlocked.Read(ref stats.Cookies);
            var victimSentBefore = Interlocked.Read(ref victimStats.Sent);
            var udpBefore = UdpReceiveErrors(lab, t.A.Namespace);
            daemon.Refresh();
            var cpuBefore = daemon.TotalProcessorTime;

            var started = Stopwatch.StartNew();
            var ping = t.Ping(t.B, t.A.TunnelV4, deadlineSeconds: 30);
            var elapsed = started.Elapsed;
            var seconds = Math.Max(elapsed.TotalSeconds, 0.001);
            var sent = (Interlocked.Read(ref stats.Sent) - sentBefore) / seconds;
            var cookies = (Interlocked.Read(ref stats.Cookies) - cookiesBefore) / seconds;
            var victimSent = (Interlocked.Read(ref victimStats.Sent) - victimSentBefore) / seconds;
            var udpErrors = UdpReceiveErrors(lab, t.A.Namespace) - udpBefore;
            daemon.Refresh();
            var cpu = (daemon.TotalProcessorTime - cpuBefore).TotalSeconds / seconds;
            Volatile.Write(ref sampling, false);
            sampler.Join();
            var clientGotCookie = lab.OutputOf(t.B.Process!).Contains("Receiving cookie response", StringComparison.Ordinal);
            Console.WriteLine(
                $"stock client connected after {elapsed.TotalSeconds:F2} s (cookie round: {clientGotCookie}) while the flood sent " +
                $"{sent:F0}/s valid-mac1 initiations (+{victimSent:F0}/s from the client's address) and got {cookies:F0}/s cookie replies; " +
                $"{udpErrors} datagrams dropped by A's socket buffer; daemon CPU {cpu:P0} of a core, RSS {rssBefore >> 20} MiB before, peak {Interlocked.Read(ref peakRss) >> 20} MiB during the flood");

            Assert.True(ping.Success, $"{ping}\n{t.Describe()}");
            Assert.True(cookies > 0 && clientGotCookie, $"A was not under load while the client connected ({cookies:F0}/s cookie replies to the flood, client cookie: {clientGotCookie}): the test proves nothing\n{t.Describe()}");
            Assert.True(sent > 2 * Sharptun.Device.Pipeline.WireGuardDevice.CookieRepliesPerSecond, $"the flood sent only {sent:F0}/s: not more than the daemon answers");
            Assert.True(!alsoFromVictimAddress || victimSent > 100, $"the flood from the client's address sent only {victimSent:F0}/s");
            Assert.True(elapsed <= TimeSpan.FromSeconds(7), $"the stock client needed {elapsed.TotalSeconds:F2} s (more than one cookie round) under the flood; {udpErrors} datagrams dropped by A's socket buffer, cookie round: {clientGotCookie}\n{t.Describe()}");
            Assert.True(Interlocked.Read(ref peakRss) < rssBefore + (128L << 20), $"daemon RSS grew from {rssBefore >> 20} MiB to {Interlocked.Read(ref peakRss) >> 20} MiB under the flood");
            Assert.False(daemon.HasExited);
        }
        finally
        {
            Volatile.Write(ref sampling, false);
            if (sampler.IsAlive)
            {
                sampler.Join();
            }

            stop.Cancel();
            flood.Wait(TimeSpan.FromSeconds(10));
            victimFlood.Wait(TimeSpan.FromSeconds(10));
            foreach (var s in sockets.Concat(victimSockets))
            {
                s.Dispose();
            }
        }
    }

    [InteropFact("wireguard-go", "wg")]
    public async Task InvalidUapiRequests_ErrorAndConfigurationUnchanged()
    {
        using var lab = new NetnsLab();
        var t = WgTunnel.Create(lab, WgImpl.Sharptun, WgImpl.WireguardGo, new WgTunnelOptions { PresharedKey = true, KeepaliveA = 25 });
        var ns = t.A.Namespace;
        var ifname = t.A.Interface;
        var before = lab.Check(ns, "wg", "showconf", ifname).Stdout;

        // wg refuses these itself ...
        Assert.False(lab.Exec(ns, "wg", "set", ifname, "peer", "not-a-key", "remove").Success);
        Assert.False(lab.Exec(ns, "wg", "set", ifname, "listen-port", "no-such-port").Success); // (wg wraps 70000 to 4464)

        // ... the daemon refuses a port another socket holds (EADDRINUSE through wg) ...
        using var holder = NetnsLab.RunInNamespace(ns, () =>
        {
            var s = new Socket(AddressFamily.InterNetworkV6, SocketType.Dgram, ProtocolType.Udp) { DualMode = true };
            s.Bind(new IPEndPoint(IPAddress.IPv6Any, 0));
            return s;
        });
        var busyPort = ((IPEndPoint)holder.LocalEndPoint!).Port.ToString(CultureInfo.InvariantCulture);
        var busy = lab.Exec(ns, "wg", "set", ifname, "listen-port", busyPort);
        Assert.False(busy.Success, $"{busy}\n{lab.Exec(ns, "ss", "-uanp")}\n{t.Describe()}");

        // ... and malformed raw requests.
        var socket = t.A.SocketPath;
        Assert.Equal(UapiErrno.Invalid, await UapiClient.SetAsync(socket, "public_key=zz\n"));
        Assert.Equal(UapiErrno.Invalid, await UapiClient.SetAsync(socket, "listen_port=70000\n"));
        Assert.Equal(UapiErrno.Invalid, await UapiClient.SetAsync(socket, "private_key=" + new string('a', 63) + "\n"));
        Assert.Equal(UapiErrno.Invalid, await UapiClient.SetAsync(socket, $"public_key={Convert.ToHexString(Convert.FromBase64String(t.B.PublicKey)).ToLowerInvariant()}\nendpoint=not-an-endpoint\n"));

        Assert.Equal(before, lab.Check(ns, "wg", "showconf", ifname).Stdout);
        t.PingOrFail(t.A, t.B.TunnelV4); // and the device still works
    }

    [InteropFact("wireguard-go", "wg", "ping")]
    public void InterfaceDeletedUnderRunningTunnel_DaemonExitsAndRemovesSocket()
    {
        using var lab = new NetnsLab();
        var t = WgTunnel.Create(lab, WgImpl.Sharptun, WgImpl.WireguardGo);
        t.PingOrFail(t.A, t.B.TunnelV4);
        var ping = lab.Start(t.B.Namespace, "ping", "-i", "0.05", t.A.TunnelV4); // traffic into A while it goes away
        Thread.Sleep(300);

        lab.Check(t.A.Namespace, "ip", "link", "del", t.A.Interface);

        Assert.True(t.A.Process!.WaitForExit(TimeSpan.FromSeconds(15)), $"daemon still running\n{t.Describe()}");
        Assert.False(File.Exists(t.A.SocketPath));
        lab.Kill(ping);
    }

    [InteropFact("wireguard-go", "wg", "ping")]
    public void KilledDaemon_NextStartReplacesStaleSocketAndTunnelWorks()
    {
        using var lab = new NetnsLab();
        var t = WgTunnel.Create(lab, WgImpl.Sharptun, WgImpl.WireguardGo);
        t.PingOrFail(t.A, t.B.TunnelV4);

        t.A.Process!.Kill();
        Assert.True(t.A.Process.WaitForExit(TimeSpan.FromSeconds(10)));
        Assert.True(File.Exists(t.A.SocketPath)); // SIGKILL leaves the socket file behind
        lab.WaitFor(() => !lab.Exec(t.A.Namespace, "ip", "link", "show", t.A.Interface).Success, TimeSpan.FromSeconds(10), "the TUN to vanish");

        WgTunnel.StartDaemon(lab, t.A);
        lab.WaitFor(() => lab.Exec(t.A.Namespace, "wg", "show", t.A.Interface).Success || t.A.Process.HasExited, WgTunnel.StartTimeout, "the new daemon to serve its socket");
        t.Configure(t.A, t.B, keepalive: null, withEndpoint: true);
        lab.AddAddress(t.A.Namespace, t.A.Interface, t.TunnelSubnet.V4Cidr(1));
        lab.SetUp(t.A.Namespace, t.A.Interface);

        t.PingOrFail(t.A, t.B.TunnelV4);
    }

    /// <summary>UDP datagrams the kernel dropped in <paramref name="ns"/> because a socket's receive buffer was full (RcvbufErrors).</summary>
    private static long UdpReceiveErrors(NetnsLab lab, string ns)
    {
        var lines = lab.Check(ns, "cat", "/proc/net/snmp").Stdout.Split('\n').Where(l => l.StartsWith("Udp:", StringComparison.Ordinal)).ToArray();
        var names = lines[0].Split(' ', StringSplitOptions.RemoveEmptyEntries);
        var values = lines[1].Split(' ', StringSplitOptions.RemoveEmptyEntries);
        return long.Parse(values[Array.IndexOf(names, "RcvbufErrors")], CultureInfo.InvariantCulture);
    }

    /// <summary>Resident set size of a live process (bytes; 0 once it exited).</summary>
    private static long Rss(Process process)
    {
        try
        {
            process.Refresh();
            return process.HasExited ? 0 : process.WorkingSet64;
        }
        catch (InvalidOperationException)
        {
            return 0;
        }
    }

    /// <summary>What <see cref="FloodValidMac1"/> has done so far (read while it runs).</summary>
    private sealed class FloodStats
    {
        public long Sent;
        public long Cookies;
    }

    /// <summary>
    /// Sends 148-byte initiations round-robin over <paramref name="sockets"/> at <paramref name="ratePerSecond"/> (or as
    /// fast as one thread can, if less) in bursts of <paramref name="batch"/>, until cancelled (at most 60 s): 256 precomputed random messages, every one with a valid mac1 for the target (so each must be
    /// answered with a cookie reply under load, or cost a Diffie-Hellman otherwise) and no mac2. Counts the cookie
    /// replies (type 3, 64 bytes) that come back.
    /// </summary>
    private static void FloodValidMac1(Socket[] sockets, IPEndPoint target, byte[] mac1Key, FloodStats stats, int ratePerSecond, int batch, CancellationToken stop)
    {
        if (sockets.Length == 0)
        {
            return;
        }

        var random = new Random(4321);
        var messages = new byte[256][];
        for (var i = 0; i < messages.Length; i++)
        {
            var m = new byte[HandshakeInitiationView.Size];
            random.NextBytes(m);
            m[0] = 1;
            m[1] = m[2] = m[3] = 0;
            m.AsSpan(HandshakeInitiationView.Mac2Offset, 16).Clear();
            Noise.Mac(mac1Key, m.AsSpan(0, HandshakeInitiationView.Mac1Offset), m.AsSpan(HandshakeInitiationView.Mac1Offset, 16));
            messages[i] = m;
        }

        var address = SocketAddressOf(target);
        var reply = new byte[256];
        var sw = Stopwatch.StartNew();
        var k = 0;
        long sent = 0;
        while (!stop.IsCancellationRequested && sw.Elapsed < TimeSpan.FromSeconds(60))
        {
            for (var i = 0; i < batch; i++)
            {
                try
                {
                    sockets[k % sockets.Length].SendTo(messages[k & 0xFF], SocketFlags.None, address);
                }
                catch (SocketException)
                {
                    // ENOBUFS under pressure: keep flooding
                }

                k++;
            }

            sent += batch;
            Interlocked.Exchange(ref stats.Sent, sent);
            foreach (var s in sockets)
            {
                while (s.Available > 0)
                {
                    if (s.Receive(reply) == 64 && reply[0] == 3)
                    {
                        Interlocked.Increment(ref stats.Cookies);
                    }
                }
            }

            while (sent > ratePerSecond * sw.Elapsed.TotalSeconds && !stop.IsCancellationRequested)
            {
                Thread.Sleep(1);
            }
        }
    }

    private static SocketAddress SocketAddressOf(IPEndPoint endpoint) => endpoint.Serialize();

    private static Socket BoundSocket(string address)
    {
        var s = new Socket(AddressFamily.InterNetwork, SocketType.Dgram, ProtocolType.Udp);
        s.Bind(new IPEndPoint(IPAddress.Parse(address), 0));
        return s;
    }

    /// <summary>Sends empty, truncated, oversized, wrong-reserved and random datagrams of every message type; returns the count.</summary>
    private static int SendGarbage(Socket socket, IPEndPoint target, Random random)
    {
        var count = 0;
        void Send(byte[] datagram)
        {
            socket.SendTo(datagram, target);
            count++;
        }

        Send([]);
        int[] sizes = [0, 148, 92, 64, 32]; // full sizes of types 1-3 and the smallest transport message (type 4)
        for (var type = 1; type <= 4; type++)
        {
            var full = sizes[type];
            foreach (var length in new[] { 1, 2, 3, 4, 5, 16, full / 2, full - 1, full, full + 1, full + 100 })
            {
                var d = new byte[length];
                random.NextBytes(d);
                d[0] = (byte)type;
                if (length >= 4 && random.Next(2) == 0)
                {
                    d[1] = d[2] = d[3] = 0; // valid header, random body
                }

                Send(d);
            }
        }

        for (var i = 0; i < 2000; i++)
        {
            var d = new byte[random.Next(0, 1500)];
            random.NextBytes(d);
            if (d.Length >= 4 && random.Next(2) == 0)
            {
                d[0] = (byte)random.Next(1, 5);
                d[1] = d[2] = d[3] = 0;
            }

            Send(d);
            if (i % 200 == 0)
            {
                Thread.Sleep(5); // keep the socket buffers from overflowing: the daemon should see them all
            }
        }

        return count;
    }

    /// <summary>
    /// Sends 148-byte initiations round-robin over <paramref name="sockets"/> until cancelled: random fields, half of them
    /// with a valid mac1 (they cost the handshake worker a Diffie-Hellman each, which is what fills its queue and puts the
    /// device under load), the rest with a random mac1 (dropped cheaply). Counts
    /// the cookie replies (type 3, 64 bytes) that come back.
    /// </summary>
    private static (long Sent, long ValidMac1, long Cookies) Flood(Socket[] sockets, IPEndPoint target, byte[] mac1Key, CancellationToken stop)
    {
        var random = new Random(1234);
        var message = new byte[HandshakeInitiationView.Size];
        var reply = new byte[256];
        long sent = 0, valid = 0, cookies = 0;
        var sw = Stopwatch.StartNew();
        while (!stop.IsCancellationRequested && sw.Elapsed < TimeSpan.FromSeconds(40))
        {
            foreach (var s in sockets)
            {
                random.NextBytes(message);
                message[0] = 1;
                message[1] = message[2] = message[3] = 0;
                message.AsSpan(HandshakeInitiationView.Mac2Offset, 16).Clear();
                if (random.Next(2) == 0)
                {
                    Noise.Mac(mac1Key, message.AsSpan(0, HandshakeInitiationView.Mac1Offset), message.AsSpan(HandshakeInitiationView.Mac1Offset, 16));
                    valid++;
                }

                try
                {
                    s.SendTo(message, target);
                    sent++;
                }
                catch (SocketException)
                {
                    // ENOBUFS under pressure: keep flooding
                }

                while (s.Available > 0)
                {
                    var n = s.Receive(reply);
                    if (n == 64 && reply[0] == 3)
                    {
                        cookies++;
                    }
                }
            }
        }

        return (sent, valid, cookies);
    }
}
