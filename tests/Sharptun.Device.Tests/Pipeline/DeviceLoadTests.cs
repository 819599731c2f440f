using Sharptun.Device.Pipeline;
using Sharptun.Protocol;
using Sharptun.Testing;
using Sharptun.Transport;

namespace Sharptun.Device.Tests.Pipeline;

/// <summary>CPU-heavy tests (a flood, a loopback bulk transfer) run alone, not beside the other test classes.</summary>
[CollectionDefinition(nameof(DeviceLoadTests), DisableParallelization = true)]
public sealed class DeviceLoadCollection;

[Collection(nameof(DeviceLoadTests))]
public sealed class DeviceLoadTests
{
    [Fact]
    public void HandshakeFlood_ManySources_CookieRepliesAndLegitimatePeerConnects()
    {
        var network = new InMemoryNetwork(21);
        var options = new WireGuardDeviceOptions { CryptoWorkers = 1, HandshakeQueueCapacity = 16, Clock = new DeviceClock(10) };
        using var pair = NodePair.InMemory(network, options);

        // An initiation with a valid mac1 for A from a key A does not know: A must do real work for each copy
        // unless it is under load (then a cookie reply is all it costs).
        var mallory = new ProtocolDevice(Key.GeneratePrivateKey());
        var toA = mallory.AddPeer(pair.A.PublicKey);
        toA.RequestHandshake();
        var initiation = new byte[2048];
        var result = toA.UpdateTimers(TimeSpan.FromSeconds(1), initiation);
        Assert.Equal(ProtocolAction.WriteToNetwork, result.Action);

        var sources = new List<InMemoryBind>();
        for (var i = 0; i < 32; i++)
        {
            sources.Add(network.CreateBind($"203.0.113.{i + 1}:0"));
        }

        var target = UdpEndpoint.Parse("192.0.2.1:" + pair.A.Port);
        var stop = false;
        long cookieReplies = 0;
        var flooder = new Thread(() =>
        {
            var buffers = new byte[16][];
            var sizes = new int[16];
            Array.Fill(buffers, initiation);
            Array.Fill(sizes, result.Length);
            while (!Volatile.Read(ref stop))
            {
                foreach (var s in sources)
                {
                    s.Send(buffers, sizes, 0, 4, target);
                }

                Thread.Sleep(1); // ~100k initiations/s: plenty to overload the worker without starving a 2-core box
            }
        });
        var listener = new Thread(() =>
        {
            var buffers = new byte[8][];
            for (var i = 0; i < buffers.Length; i++)
            {
                buffers[i] = new byte[256];
            }

            var sizes = new int[8];
            var endpoints = new UdpEndpoint[8];
            var n = sources[0].Receive(buffers, sizes, endpoints);
            for (var i = 0; i < n; i++)
            {
                if (sizes[i] == 64 && buffers[i][0] == 3)
                {
                    Interlocked.Increment(ref cookieReplies);
                }
            }
        });
        flooder.Start();
        listener.Start();
        try
        {
            DeviceTests.WaitFor(() => pair.A.Device.IsUnderLoad || Interlocked.Read(ref cookieReplies) > 0);

            // A flood may also cost datagrams at A's socket (as a kernel socket buffer would): like a real ping,
            // try again until answered; what must hold is that the legitimate peer gets a session and traffic flows.
            var deadline = System.Diagnostics.Stopwatch.StartNew();
            for (uint sequence = 1; ; sequence += 2)
            {
                try
                {
                    pair.Ping(sequence, ipv6: false, TimeSpan.FromSeconds(2));
                    break;
                }
                catch (Xunit.Sdk.XunitException) when (deadline.Elapsed < TimeSpan.FromSeconds(30))
                {
                }
            }
        }
        finally
        {
            Volatile.Write(ref stop, true);
            flooder.Join();
            foreach (var s in sources)
            {
                s.Dispose();
            }

            listener.Join();
        }

        Assert.True(Interlocked.Read(ref cookieReplies) > 0, "no cookie reply reached a flooding source");
        Assert.True(pair.A.Device.Counters[DropReason.HandshakeRateLimited] + pair.A.Device.Counters[DropReason.HandshakeQueueFull] > 0);
    }

    /// <summary>
    /// Spoofed handshake floods must not keep a legitimate peer from getting a cookie (whitepaper §5.3, §5.4.7): the
    /// responder A is kept under load by initiations with a valid mac1 that claim either the victim's own IP address
    /// (far over the 20/s per-address budget) or 65,536 other addresses (as many as the rate limiter may track). The
    /// victim B must still get a cookie reply, retry with mac2 and complete its handshake, and A's rate limiter must
    /// track only addresses that proved themselves with mac2 (the flood's never do).
    /// </summary>
    /// <remarks>The flood stays below A's cookie-reply budget: past it, messages from addresses indistinguishable from
    /// the victim's (its own, or a uniformly spread spoofed flood) are answered only in proportion, which no responder
    /// can avoid before mac2; what must not happen is that the victim gets no cookie at any flood rate.</remarks>
    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void SpoofedHandshakeFlood_VictimStillGetsCookieAndCompletesHandshake(bool manySources)
    {
        var network = new InMemoryNetwork(31);

        // A's clock runs at 1/40 of real speed, so the 65,536 sources recur within the rate limiter's one-second idle
        // window at a flood rate below A's cookie budget; its small handshake queue is "under load" from 2 messages.
        // B's clock runs 5x fast, so its retry after a cookie reply (RekeyTimeout = 5 s) comes after a second.
        using var a = new TestNode("a", network.CreateFactory(UdpEndpoint.Parse("192.0.2.1:0")), new WireGuardDeviceOptions { CryptoWorkers = 1, HandshakeQueueCapacity = 16, Clock = new DeviceClock(0.025) });
        using var b = new TestNode("b", network.CreateFactory(UdpEndpoint.Parse("192.0.2.2:0")), new WireGuardDeviceOptions { CryptoWorkers = 1, Clock = new DeviceClock(5) });
        a.Set($"private_key={a.PrivateHex}\npublic_key={b.PublicHex}\nallowed_ip=10.0.0.2/32\n");
        b.Set($"private_key={b.PrivateHex}\npublic_key={a.PublicHex}\nendpoint=192.0.2.1:{a.Port}\nallowed_ip=10.0.0.1/32\n");

        // The flood: one initiation with a valid mac1 for A (from a key A does not know), replayed from spoofed sources.
        var mallory = new ProtocolDevice(Key.GeneratePrivateKey());
        var toA = mallory.AddPeer(a.PublicKey);
        toA.RequestHandshake();
        var initiation = new byte[2048];
        var result = toA.UpdateTimers(TimeSpan.FromSeconds(1), initiation);
        Assert.Equal(ProtocolAction.WriteToNetwork, result.Action);
        var message = initiation.AsSpan(0, result.Length).ToArray();

        var sources = manySources
            ? Enumerable.Range(0, HandshakeRateLimiter.MaxEntries).Select(i => UdpEndpoint.Parse($"198.18.{i >> 8}.{i & 0xFF}:{1024 + (i & 0x3FFF)}")).ToArray()
            : [UdpEndpoint.Parse("192.0.2.2:7")]; // the victim's IP address (another port)
        var target = UdpEndpoint.Parse("192.0.2.1:" + a.Port);
        var stop = false;
        long sent = 0;
        // Bursts of 16 (they fill A's queue: under load); many sources: ~3k/s in all, 65,536 per 1/40 s of A's clock;
        // the victim's address: ~1k/s, 2,000 times its per-address budget in A's clock. Both below A's cookie budget.
        Assert.True(WireGuardDevice.CookieRepliesPerSecond >= 4000);
        var pause = manySources ? 5 : 15;
        var flooder = new Thread(() =>
        {
            var i = 0;
            while (!Volatile.Read(ref stop))
            {
                for (var k = 0; k < 16; k++)
                {
                    network.SendSpoofed(sources[i], message, target);
                    i = (i + 1) % sources.Length;
                }

                Interlocked.Add(ref sent, 16);
                Thread.Sleep(pause);
            }
        });
        flooder.Start();
        try
        {
            // Let the flood put A under load and, with many sources, go round all of them at least once.
            DeviceTests.WaitFor(() => a.Device.IsUnderLoad && Interlocked.Read(ref sent) > sources.Length + 500, timeoutMs: 90_000);

            var started = System.Diagnostics.Stopwatch.StartNew();
            var packet = TestPackets.Udp("10.0.0.2", "10.0.0.1", 1);
            b.Send(packet); // B stages it and initiates; A answers with a cookie, B retries with mac2
            var got = a.Receive(1, TimeSpan.FromSeconds(30));
            var elapsed = started.Elapsed;
            Console.WriteLine($"{(manySources ? "65,536 sources" : "victim's address")}: handshake after {elapsed.TotalSeconds:F1} s, flood {Interlocked.Read(ref sent)} datagrams, A drops: {a.Device.Counters}");

            Assert.True(got.Count == 1, $"no handshake within 30 s of flood ({Interlocked.Read(ref sent)} datagrams); A drops: {a.Device.Counters}; B drops: {b.Device.Counters}");
            Assert.Equal(packet, got[0]);
            Assert.True(a.Device.IsUnderLoad, "the flood no longer holds A under load: the test proves nothing");
            Assert.True(a.Device.RateLimitedSources <= 1, $"the rate limiter tracks {a.Device.RateLimitedSources} sources: only proven ones (B) belong there");
        }
        finally
        {
            Volatile.Write(ref stop, true);
            flooder.Join();
        }
    }

    [Fact]
    public void LoopbackUdp_TwoDevices_HandshakeAndOrderedBulk()
    {
        if (!OperatingSystem.IsLinux())
        {
            return;
        }

        HandshakeAndOrderedBulkOverLoopback(Sharptun.Transport.Linux.LinuxUdpBind.Factory);
    }

    [Fact]
    public void LoopbackUdp_PortableBind_TwoDevices_HandshakeAndOrderedBulk()
    {
        // The portable bind (System.Net.Sockets) on both ends, on any OS: the same exchange as over the Linux bind.
        HandshakeAndOrderedBulkOverLoopback(Sharptun.Transport.SocketUdpBind.Factory);
    }

    private static void HandshakeAndOrderedBulkOverLoopback(IDatagramBindFactory factory)
    {
        using var pair = new NodePair(factory, factory, "127.0.0.1", "127.0.0.1");
        pair.Ping(1);
        pair.Ping(5, ipv6: true);
        const int count = 3000;
        var seqs = NodePair.Stream(pair.A, pair.B, "10.0.0.1", "10.0.0.2", count, window: 256);

        // Loopback UDP may drop under a burst (socket buffer), never reorder: what arrives is in order.
        Assert.True(seqs.Count > count * 9 / 10, $"only {seqs.Count} of {count} arrived");
        for (var i = 1; i < seqs.Count; i++)
        {
            Assert.True(seqs[i] > seqs[i - 1], $"packet {seqs[i]} after {seqs[i - 1]}");
        }
    }

    [Fact]
    public void LoopbackUdp_PortableAgainstLinuxBind_HandshakeAndPing()
    {
        if (!OperatingSystem.IsLinux())
        {
            return;
        }

        using var pair = new NodePair(Sharptun.Transport.SocketUdpBind.Factory, Sharptun.Transport.Linux.LinuxUdpBind.Factory, "127.0.0.1", "[::1]");
        pair.Ping(3);
        pair.Ping(3, ipv6: true);
    }
}
