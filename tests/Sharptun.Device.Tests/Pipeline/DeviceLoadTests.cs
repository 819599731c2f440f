using Sharptun.Device.Pipeline;
using Sharptun.Protocol;
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

    [Fact]
    public void LoopbackUdp_TwoDevices_HandshakeAndOrderedBulk()
    {
        if (!OperatingSystem.IsLinux())
        {
            return;
        }

        var factory = Sharptun.Transport.Linux.LinuxUdpBind.Factory;
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
}
