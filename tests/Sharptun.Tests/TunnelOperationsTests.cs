using System.Collections.Concurrent;
using System.Net;
using System.Net.Sockets;
using Sharptun.Device.Uapi;
using Sharptun.Protocol;

namespace Sharptun.Tests;

/// <summary>Issue 10 item 6 / issue 11 item 3: the tunnel's UAPI socket, ping, statistics, and endpoint re-resolution.</summary>
[System.Runtime.Versioning.SupportedOSPlatform("linux")]
public sealed class TunnelOperationsTests : IDisposable
{
    private static readonly TimeSpan Limit = TimeSpan.FromSeconds(60);
    private readonly string _directory = Path.Combine(Path.GetTempPath(), "sharptun-ops-" + Guid.NewGuid().ToString("N")[..12]);

    public TunnelOperationsTests() => Directory.CreateDirectory(_directory);

    public void Dispose() => Directory.Delete(_directory, recursive: true);

    [Fact]
    public async Task UapiSocket_GetShowsThePeerAndHandshake_SetAddsAPeerAtRunTime_Private_RemovedOnDispose()
    {
        var socketPath = Path.Combine(_directory, "wg", "stp0.sock");
        using var aKey = Key.GeneratePrivateKey();
        using var bKey = Key.GeneratePrivateKey();
        using var cKey = Key.GeneratePrivateKey();
        var b = await new WireGuardTunnelBuilder()
            .WithPrivateKey(bKey.ToString())
            .AddAddress("10.9.0.2/24")
            .AddPeer(aKey.DerivePublicKey().ToString(), null, ["10.9.0.1/32"])
            .StartAsync(new WireGuardTunnelOptions { UapiSocketPath = socketPath });
        await using (b)
        {
            await using var a = await new WireGuardTunnelBuilder()
                .WithPrivateKey(aKey.ToString())
                .AddAddress("10.9.0.1/24")
                .AddPeer(bKey.DerivePublicKey().ToString(), new IPEndPoint(IPAddress.Loopback, b.ListenPort), ["10.9.0.0/24"])
                .StartAsync();
            Assert.Equal(socketPath, b.UapiSocketPath);
            Assert.Null(a.UapiSocketPath);
            Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite, File.GetUnixFileMode(socketPath));
            Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute, File.GetUnixFileMode(Path.GetDirectoryName(socketPath)!));

            using var cts = new CancellationTokenSource(Limit);
            Assert.NotNull(await a.PingAsync(IPAddress.Parse("10.9.0.2"), TimeSpan.FromSeconds(10), cts.Token)); // a handshake and traffic

            var get = await UapiClient.GetAsync(socketPath, cts.Token);
            Assert.Contains($"private_key={bKey.ToHex()}\n", get, StringComparison.Ordinal);
            Assert.Contains($"listen_port={b.ListenPort}\n", get, StringComparison.Ordinal);
            Assert.Contains($"public_key={aKey.DerivePublicKey().ToHex()}\n", get, StringComparison.Ordinal);
            Assert.DoesNotContain("last_handshake_time_sec=0\n", get, StringComparison.Ordinal);
            Assert.DoesNotContain("rx_bytes=0\n", get, StringComparison.Ordinal);
            Assert.EndsWith("errno=0\n\n", get, StringComparison.Ordinal);

            // wg set stp0 peer C allowed-ips 10.9.0.3/32: a peer added at run time, seen by the tunnel and its routing.
            var errno = await UapiClient.SetAsync(socketPath, $"public_key={cKey.DerivePublicKey().ToHex()}\nallowed_ip=10.9.0.3/32\n", cts.Token);
            Assert.Equal(0, errno);
            Assert.Contains(b.Peers, p => p.PublicKey == cKey.DerivePublicKey().ToString() && p.AllowedIps.Contains(IPNetwork.Parse("10.9.0.3/32")));
            Assert.True(b.IsRouted(IPAddress.Parse("10.9.0.3")));
            Assert.NotEqual(0, await UapiClient.SetAsync(socketPath, "public_key=zz\n", cts.Token)); // a bad request is an errno, not a crash
            Assert.Equal(2, b.Peers.Count);
        }

        Assert.False(File.Exists(socketPath));
    }

    [Fact]
    public async Task UapiSocket_StaleFileIsReplaced_LiveOneRefused_SharedDirectoryRefusedAndUnchanged_NothingLeaks()
    {
        var socketPath = Path.Combine(_directory, "s", "stale.sock");
        using (var dead = UapiServer.CreateListener(socketPath))
        {
            // .NET deletes a socket file when its socket is disposed: moved away first, it stays behind, as the file
            // of a daemon that was killed does
            File.Move(socketPath, socketPath + ".moved");
        }

        File.Move(socketPath + ".moved", socketPath);

        Assert.True(File.Exists(socketPath));
        await using (var first = await StartSingleAsync(socketPath))
        {
            Assert.True(UapiServer.IsAlive(socketPath));
            var inUse = await Assert.ThrowsAsync<UapiSocketException>(() => StartSingleAsync(socketPath));
            Assert.Contains("in use", inUse.Message, StringComparison.Ordinal);
            Assert.Equal(0, (await UapiClient.SetAsync(socketPath, "listen_port=0\n")));
        }

        foreach (var mode in new[] { (UnixFileMode)0b1_111_111_111, (UnixFileMode)0b111_101_101, (UnixFileMode)0b111_000_000 | UnixFileMode.GroupExecute })
        {
            // /tmp-like (sticky 1777), a home-like 0755, a 0710: refused and left as they were
            var shared = Path.Combine(_directory, "shared-" + (int)mode);
            Directory.CreateDirectory(shared);
            File.SetUnixFileMode(shared, mode);
            var refused = await Assert.ThrowsAsync<UapiSocketException>(() => StartSingleAsync(Path.Combine(shared, "x.sock")));
            Assert.Contains("must be private to the tunnel's user (mode 0700, it is " + Convert.ToString((int)mode, 8), refused.Message, StringComparison.Ordinal);
            Assert.Equal(mode, File.GetUnixFileMode(shared));
            Assert.Empty(Directory.GetFiles(shared));
        }
    }

    [Fact]
    public async Task UapiSetsRacingStatisticsAndRouting_NeverFail_AndEndConsistent()
    {
        var socketPath = Path.Combine(_directory, "race", "r.sock");
        using var key = Key.GeneratePrivateKey();
        await using var tunnel = await new WireGuardTunnelBuilder().WithPrivateKey(key.ToString()).AddAddress("10.9.0.1/24")
            .StartAsync(new WireGuardTunnelOptions { UapiSocketPath = socketPath, StatusPollInterval = TimeSpan.FromMilliseconds(5) });
        var keys = Enumerable.Range(0, 8).Select(_ => Key.GeneratePrivateKey().DerivePublicKey()).ToArray();
        using var stop = new CancellationTokenSource();
        // The readers spin until the writes end: on threads of their own, so they never hold the thread pool the UAPI
        // server and this test's awaits need (spinning pool threads stalled the Hosting tests' process for seconds).
        var readers = Enumerable.Range(0, 3).Select(r => Task.Factory.StartNew(() =>
        {
            var reads = 0;
            while (!stop.IsCancellationRequested)
            {
                var stats = tunnel.GetStatistics();
                Assert.InRange(stats.Peers.Count, 0, keys.Length);
                Assert.All(stats.Peers, p => Assert.Single(p.AllowedIps));
                _ = tunnel.IsRouted(IPAddress.Parse("10.8.0." + (1 + (reads % keys.Length))));
                reads++;
            }

            return reads;
        }, CancellationToken.None, TaskCreationOptions.LongRunning, TaskScheduler.Default)).ToArray();

        using var cts = new CancellationTokenSource(Limit);
        for (var round = 0; round < 25; round++)
        {
            var add = string.Concat(keys.Select((k, i) => $"public_key={k.ToHex()}\nreplace_allowed_ips=true\nallowed_ip=10.8.0.{i + 1}/32\n"));
            Assert.Equal(0, await UapiClient.SetAsync(socketPath, add, cts.Token));
            var remove = string.Concat(keys.Where((_, i) => i % 2 == round % 2).Select(k => $"public_key={k.ToHex()}\nremove=true\n"));
            Assert.Equal(0, await UapiClient.SetAsync(socketPath, remove, cts.Token));
        }

        await stop.CancelAsync();
        Assert.All(await Task.WhenAll(readers), n => Assert.True(n > 0));
        var final = tunnel.Peers;
        Assert.Equal(keys.Length / 2, final.Count); // round 24 removed the even ones
        Assert.True(tunnel.IsRouted(IPAddress.Parse("10.8.0.2")));
        var deadline = DateTime.UtcNow + Limit;
        while (tunnel.IsRouted(IPAddress.Parse("10.8.0.1")) && DateTime.UtcNow < deadline)
        {
            await Task.Delay(10); // a removed peer's routes leave the cache at the next status poll
        }

        Assert.False(tunnel.IsRouted(IPAddress.Parse("10.8.0.1")));
        Assert.Contains($"public_key={keys[1].ToHex()}", await UapiClient.GetAsync(socketPath, cts.Token), StringComparison.Ordinal);
    }

    [Fact]
    public async Task Ping_AnswersThroughTheTunnel_UnroutedFailsAtOnce_SilenceIsNull_StatisticsCountIt()
    {
        await using var pair = await TunnelPair.StartAsync();
        using var cts = new CancellationTokenSource(Limit);

        var rtt = await pair.Client.PingAsync(TunnelPair.ServerAddress, TimeSpan.FromSeconds(10), cts.Token);
        var unrouted = await Assert.ThrowsAsync<SocketException>(async () => await pair.Client.PingAsync(IPAddress.Parse("10.99.0.1"), TimeSpan.FromSeconds(1), cts.Token));
        var silent = await pair.Server.PingAsync(IPAddress.Parse("10.77.0.1"), TimeSpan.FromSeconds(10), cts.Token);

        Assert.NotNull(rtt);
        Assert.True(rtt < TimeSpan.FromSeconds(10));
        Assert.Equal(SocketError.NetworkUnreachable, unrouted.SocketErrorCode);
        Assert.NotNull(silent); // the client answers too

        var stats = pair.Client.GetStatistics();
        var peer = Assert.Single(stats.Peers);
        Assert.True(peer.SentBytes > 0 && peer.ReceivedBytes > 0 && peer.LastHandshake is not null);
        Assert.Equal(Enum.GetValues<Sharptun.Device.Pipeline.DropReason>().Length, stats.Drops.Count);
        Assert.Contains(stats.Drops, d => d.Reason == "NoRoute");
        Assert.Equal(stats.Drops.Sum(d => d.Count), stats.TotalDrops);
    }

    [Fact]
    public async Task Ping_ARoutedAddressNobodyHas_IsNullAfterTheTimeout()
    {
        using var aKey = Key.GeneratePrivateKey();
        using var bKey = Key.GeneratePrivateKey();
        await using var b = await new WireGuardTunnelBuilder().WithPrivateKey(bKey.ToString()).AddAddress("10.9.0.2/24")
            .AddPeer(aKey.DerivePublicKey().ToString(), null, ["10.9.0.1/32"]).StartAsync();
        await using var a = await new WireGuardTunnelBuilder().WithPrivateKey(aKey.ToString()).AddAddress("10.9.0.1/24")
            .AddPeer(bKey.DerivePublicKey().ToString(), new IPEndPoint(IPAddress.Loopback, b.ListenPort), ["10.9.0.0/24"]).StartAsync();

        Assert.Null(await a.PingAsync(IPAddress.Parse("10.9.0.77"), TimeSpan.FromMilliseconds(500)));
        Assert.NotNull(await a.PingAsync(IPAddress.Parse("10.9.0.2"), TimeSpan.FromSeconds(10)));
        await a.DisposeAsync();
        await Assert.ThrowsAsync<IOException>(async () => await a.PingAsync(IPAddress.Parse("10.9.0.2"), TimeSpan.FromSeconds(1)));
    }

    [Fact]
    public async Task Reresolution_FollowsReresolveDnsRule_OnAVirtualClock()
    {
        var names = new ConcurrentDictionary<string, IPAddress> { ["server.test"] = IPAddress.Loopback };
        var lookups = 0;
        var options = new WireGuardTunnelOptions
        {
            EndpointReresolveInterval = Timeout.InfiniteTimeSpan, // the test calls the check itself
            EndpointResolver = (host, _) =>
            {
                Interlocked.Increment(ref lookups);
                return names.TryGetValue(host, out var a) ? Task.FromResult<IPAddress[]>([a]) : Task.FromException<IPAddress[]>(new SocketException((int)SocketError.HostNotFound));
            },
        };
        using var aKey = Key.GeneratePrivateKey();
        using var bKey = Key.GeneratePrivateKey();
        using var ipPeer = Key.GeneratePrivateKey();
        await using var b = await WireGuardTunnel.StartAsync($"""
            [Interface]
            PrivateKey = {bKey}
            Address = 10.9.0.2/24
            [Peer]
            PublicKey = {aKey.DerivePublicKey()}
            AllowedIPs = 10.9.0.1/32
            """);
        var start = DateTimeOffset.UtcNow;
        await using var a = await WireGuardTunnel.StartAsync($"""
            [Interface]
            PrivateKey = {aKey}
            Address = 10.9.0.1/24
            [Peer]
            PublicKey = {bKey.DerivePublicKey()}
            Endpoint = server.test:{b.ListenPort}
            AllowedIPs = 10.9.0.2/32
            [Peer]
            PublicKey = {ipPeer.DerivePublicKey()}
            Endpoint = 192.0.2.1:51820
            AllowedIPs = 10.9.0.3/32
            """, options);
        Assert.Equal(1, lookups); // at start, through the same resolver
        var reresolver = a.Reresolver!;
        Assert.Equal(new IPEndPoint(IPAddress.Loopback, b.ListenPort), Peer(a, bKey).Endpoint);

        // No handshake yet: stale only 135 s after the start (reresolve-dns.sh: handshake older than 135 s).
        names["server.test"] = IPAddress.Parse("127.0.0.2");
        await reresolver.CheckAsync(start.AddSeconds(100), CancellationToken.None);
        Assert.Equal(0, reresolver.Lookups);
        await reresolver.CheckAsync(start.AddSeconds(140), CancellationToken.None);
        Assert.Equal(1, reresolver.Lookups); // only the named peer; the IP peer is never looked up
        Assert.Equal(1, reresolver.Changes);
        Assert.Equal(new IPEndPoint(IPAddress.Parse("127.0.0.2"), b.ListenPort), Peer(a, bKey).Endpoint);
        Assert.Equal(new IPEndPoint(IPAddress.Parse("192.0.2.1"), 51820), Peer(a, ipPeer).Endpoint);

        // The same answer again: looked up, not changed. A failing lookup keeps the endpoint.
        await reresolver.CheckAsync(start.AddSeconds(200), CancellationToken.None);
        Assert.Equal((2, 1L), (reresolver.Lookups, reresolver.Changes));
        names.TryRemove("server.test", out _);
        await reresolver.CheckAsync(start.AddSeconds(300), CancellationToken.None);
        Assert.Equal((3, 1L), (reresolver.Lookups, reresolver.Changes));
        Assert.Equal(new IPEndPoint(IPAddress.Parse("127.0.0.2"), b.ListenPort), Peer(a, bKey).Endpoint);

        // After a handshake: fresh for 135 s from it, stale after.
        names["server.test"] = IPAddress.Loopback;
        await reresolver.CheckAsync(start.AddSeconds(400), CancellationToken.None);
        using var cts = new CancellationTokenSource(Limit);
        Assert.NotNull(await a.PingAsync(IPAddress.Parse("10.9.0.2"), TimeSpan.FromSeconds(10), cts.Token));
        var handshake = Peer(a, bKey).LastHandshake!.Value;
        var before = reresolver.Lookups;
        await reresolver.CheckAsync(handshake.AddSeconds(130), CancellationToken.None);
        Assert.Equal(before, reresolver.Lookups);
        await reresolver.CheckAsync(handshake.AddSeconds(136), CancellationToken.None);
        Assert.Equal(before + 1, reresolver.Lookups);
    }

    [Fact]
    public async Task Reresolution_OnATimer_MovesAPeerWhoseNameNowPointsElsewhere_AndTrafficFlows()
    {
        // The name first points at an address where nobody answers; once it points at the server, the timer (short
        // interval, 1 s stale rule) picks up the new address and the handshake completes.
        var target = IPAddress.Parse("192.0.2.1");
        var options = new WireGuardTunnelOptions
        {
            EndpointReresolveInterval = TimeSpan.FromMilliseconds(100),
            EndpointStaleAfter = TimeSpan.FromSeconds(1),
            EndpointResolver = (_, _) => Task.FromResult<IPAddress[]>([Volatile.Read(ref target)]),
        };
        using var aKey = Key.GeneratePrivateKey();
        using var bKey = Key.GeneratePrivateKey();
        await using var b = await new WireGuardTunnelBuilder().WithPrivateKey(bKey.ToString()).AddAddress("10.9.0.2/24")
            .AddPeer(aKey.DerivePublicKey().ToString(), null, ["10.9.0.1/32"]).StartAsync();
        await using var a = await new WireGuardTunnelBuilder().WithPrivateKey(aKey.ToString()).AddAddress("10.9.0.1/24")
            .AddPeerWithHostName(bKey.DerivePublicKey().ToString(), "server.test", b.ListenPort, ["10.9.0.0/24"])
            .StartAsync(options);
        Assert.Equal(new IPEndPoint(target, b.ListenPort), Assert.Single(a.Peers).Endpoint);
        Assert.Null(await a.PingAsync(IPAddress.Parse("10.9.0.2"), TimeSpan.FromSeconds(1)));

        Volatile.Write(ref target, IPAddress.Loopback);
        using var cts = new CancellationTokenSource(Limit);
        TimeSpan? rtt = null;
        while (rtt is null)
        {
            rtt = await a.PingAsync(IPAddress.Parse("10.9.0.2"), TimeSpan.FromSeconds(2), cts.Token);
        }

        Assert.Equal(new IPEndPoint(IPAddress.Loopback, b.ListenPort), Assert.Single(a.Peers).Endpoint);
        Assert.True(a.Reresolver!.Changes >= 1);
        Assert.Throws<FormatException>(() => new WireGuardTunnelBuilder().AddPeerWithHostName(bKey.DerivePublicKey().ToString(), "bad name!", 1, []));
    }

    private static TunnelPeer Peer(WireGuardTunnel tunnel, Key key) =>
        tunnel.Peers.Single(p => p.PublicKey == key.DerivePublicKey().ToString());

    private async Task<WireGuardTunnel> StartSingleAsync(string socketPath)
    {
        using var key = Key.GeneratePrivateKey();
        return await new WireGuardTunnelBuilder().WithPrivateKey(key.ToString()).AddAddress("10.9.0.9/24")
            .StartAsync(new WireGuardTunnelOptions { UapiSocketPath = socketPath });
    }
}
