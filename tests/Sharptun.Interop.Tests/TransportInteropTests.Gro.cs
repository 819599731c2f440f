using System.Runtime.Versioning;
using Sharptun.Testing;
using Sharptun.Transport;
using Sharptun.Transport.Linux;

namespace Sharptun.Interop.Tests;

/// <summary>
/// Issue 12 item 2 (UDP half): UDP GRO on the Linux bind's receive side. Over loopback a sender's UDP GSO buffer reaches
/// a UDP_GRO socket unsegmented (udp_unexpected_gso is false for it), so the receiver really gets coalesced buffers and
/// must cut them into the original datagrams, in order, with the sender as source.
/// </summary>
[SupportedOSPlatform("linux")]
public sealed class GroTransportInteropTests
{
    /// <summary>Datagram i of a test stream: its index in the first 4 bytes, then a pattern of it, <paramref name="size"/> bytes in all.</summary>
    private static byte[] Datagram(int i, int size)
    {
        var d = new byte[size];
        for (var k = 0; k < size; k++)
        {
            d[k] = (byte)((i * 31) + k);
        }

        if (size >= 4)
        {
            BitConverter.TryWriteBytes(d, i);
        }

        return d;
    }

    /// <summary>Receives until <paramref name="expected"/> datagrams came (20 s limit), offering <paramref name="buffers"/> caller buffers per call.</summary>
    private static List<(byte[] Payload, UdpEndpoint Source)> ReceiveAll(LinuxUdpBind bind, int expected, int buffers, int bufferSize = 2048, List<int>? counts = null)
    {
        var result = new List<(byte[], UdpEndpoint)>();
        var own = Enumerable.Range(0, buffers).Select(_ => new byte[bufferSize]).ToArray();
        var sizes = new int[buffers];
        var endpoints = new UdpEndpoint[buffers];
        var task = Task.Run(() =>
        {
            while (result.Count < expected)
            {
                var array = (byte[][])own.Clone();
                var n = bind.Receive(array, sizes, endpoints);
                if (n == 0)
                {
                    break;
                }

                counts?.Add(n);
                for (var i = 0; i < n; i++)
                {
                    result.Add((array[i].AsSpan(0, sizes[i]).ToArray(), endpoints[i]));
                    if (!ReferenceEquals(array[i], own[i]))
                    {
                        bind.OversizePool!.Return(array[i]);
                    }
                }
            }
        });
        if (!task.Wait(TimeSpan.FromSeconds(20)))
        {
            bind.Dispose();
            task.Wait();
            throw new TimeoutException($"received {result.Count} of {expected} datagrams (dropped {bind.ReceiveDropped})");
        }

        return result;
    }

    /// <summary>
    /// Sends runs of equal sizes (each run cut by the sender's GSO into one buffer, a shorter last datagram ending it) and
    /// returns the datagrams in sending order.
    /// </summary>
    private static List<byte[]> SendRuns(LinuxUdpBind sender, UdpEndpoint destination, params (int Count, int Size, int LastSize)[] runs)
    {
        var all = new List<byte[]>();
        foreach (var (count, size, last) in runs)
        {
            var run = new byte[count][];
            var sizes = new int[count];
            for (var i = 0; i < count; i++)
            {
                sizes[i] = i == count - 1 ? last : size;
                run[i] = Datagram(all.Count, sizes[i]);
                all.Add(run[i]);
            }

            Assert.Equal(count, sender.Send(run, sizes, 0, count, destination));
        }

        return all;
    }

    private static void AssertSame(List<byte[]> sent, List<(byte[] Payload, UdpEndpoint Source)> received, UdpEndpoint source)
    {
        Assert.Equal(sent.Count, received.Count);
        for (var i = 0; i < sent.Count; i++)
        {
            Assert.True(sent[i].AsSpan().SequenceEqual(received[i].Payload), $"datagram {i}: {sent[i].Length} bytes sent, {received[i].Payload.Length} received");
            Assert.Equal(source, received[i].Source);
        }
    }

    [InteropFact]
    public void LinuxUdpBind_Gro_GsoTrainsOfMixedSizes_SplitIntactInOrderWithSource()
    {
        foreach (var loopback in new[] { "127.0.0.1", "[::1]" })
        {
            using var sender = LinuxUdpBind.Open(0);
            using var receiver = LinuxUdpBind.Open(0);
            receiver.SetBufferSizes(8 << 20);
            Assert.True(sender.SegmentationOffload, "kernel without UDP_SEGMENT");
            Assert.True(receiver.ReceiveOffload, "kernel without UDP_GRO");

            var sent = SendRuns(sender, UdpEndpoint.Parse($"{loopback}:{receiver.LocalPort}"),
                (40, 1200, 1200), (30, 1420, 77), (7, 100, 1), (1, 500, 500), (45, 1000, 999), (64, 32, 32), (3, 2000, 1500));
            var received = ReceiveAll(receiver, sent.Count, buffers: 128);

            AssertSame(sent, received, UdpEndpoint.Parse($"{loopback}:{sender.LocalPort}"));
            Assert.True(receiver.GroCoalescedReceives > 0, "loopback delivered no coalesced buffer");
            Assert.Equal(0, receiver.ReceiveDropped);
            Assert.True(sender.SegmentationOffload);
        }
    }

    [InteropFact]
    public void LinuxUdpBind_Gro_FewerBuffersThanSegments_RemainderKeptForNextReceive()
    {
        using var sender = LinuxUdpBind.Open(0);
        using var receiver = LinuxUdpBind.Open(0);
        receiver.SetBufferSizes(8 << 20);
        var destination = UdpEndpoint.Parse($"127.0.0.1:{receiver.LocalPort}");

        var sent = SendRuns(sender, destination, (50, 1300, 600), (20, 700, 700));
        var counts = new List<int>();
        var received = ReceiveAll(receiver, sent.Count, buffers: 3, counts: counts);

        AssertSame(sent, received, UdpEndpoint.Parse($"127.0.0.1:{sender.LocalPort}"));
        Assert.True(receiver.GroCoalescedReceives > 0);
        Assert.All(counts, n => Assert.InRange(n, 1, 3));
        Assert.Equal(0, receiver.ReceiveDropped);

        // Nothing is left over: a single datagram sent now is the next one received.
        var after = SendRuns(sender, destination, (1, 10, 10));
        Assert.Equal(after[0], ReceiveAll(receiver, 1, buffers: 3)[0].Payload);
    }

    [InteropFact]
    public void LinuxUdpBind_GroOff_SameDatagramsWithoutCoalescing()
    {
        using var sender = LinuxUdpBind.Open(0);
        using var receiver = (LinuxUdpBind)LinuxUdpBind.GetFactory(receiveOffload: false).Open(0);
        receiver.SetBufferSizes(8 << 20);
        Assert.False(receiver.ReceiveOffload);

        var sent = SendRuns(sender, UdpEndpoint.Parse($"[::1]:{receiver.LocalPort}"), (40, 1200, 1200), (30, 1420, 77), (5, 9, 9));
        var received = ReceiveAll(receiver, sent.Count, buffers: 128);

        AssertSame(sent, received, UdpEndpoint.Parse($"[::1]:{sender.LocalPort}"));
        Assert.Equal(0, receiver.GroCoalescedReceives);
        Assert.Equal(0, receiver.ReceiveDropped);
        Assert.True(LinuxUdpBind.GetFactory(receiveOffload: true) == LinuxUdpBind.Factory);
        Assert.Same(LinuxUdpBind.GetFactory(false), DatagramBinds.For(UdpBindKind.Auto, receiveOffload: false));
        Assert.Same(LinuxUdpBind.Factory, DatagramBinds.For(UdpBindKind.Linux, receiveOffload: true));
        Assert.Same(SocketUdpBind.Factory, DatagramBinds.For(UdpBindKind.Portable, receiveOffload: false));
    }

    [InteropFact]
    public void LinuxUdpBind_Gro_SegmentsLargerThanCallerBuffers_DeliveredInOversizeBuffers()
    {
        const int large = 65535;
        using var sender = LinuxUdpBind.Open(0);
        using var receiver = LinuxUdpBind.Open(0);
        receiver.SetBufferSizes(8 << 20);
        var oversize = new PacketBufferPool(16L * large, large);
        receiver.OversizePool = oversize;

        // Jumbo-sized datagrams (a 9000-byte MTU tunnel's) coalesced: every segment needs a buffer from the pool.
        var sent = SendRuns(sender, UdpEndpoint.Parse($"127.0.0.1:{receiver.LocalPort}"), (7, 9000, 5000), (3, 100, 100));
        var received = ReceiveAll(receiver, sent.Count, buffers: 16);

        AssertSame(sent, received, UdpEndpoint.Parse($"127.0.0.1:{sender.LocalPort}"));
        Assert.True(receiver.GroCoalescedReceives > 0);
        Assert.Equal(0, receiver.ReceiveDropped);
        Assert.Equal(0, oversize.InUse);
    }

    [InteropFact]
    public void LinuxUdpBind_Gro_SegmentsLargerThanCallerBuffersWithoutPool_DroppedAndCountedRestDelivered()
    {
        using var sender = LinuxUdpBind.Open(0);
        using var receiver = LinuxUdpBind.Open(0);
        receiver.SetBufferSizes(8 << 20);
        var destination = UdpEndpoint.Parse($"127.0.0.1:{receiver.LocalPort}");

        SendRuns(sender, destination, (4, 3000, 3000));
        var small = SendRuns(sender, destination, (5, 300, 300));
        var received = ReceiveAll(receiver, small.Count, buffers: 8);

        AssertSame(small, received, UdpEndpoint.Parse($"127.0.0.1:{sender.LocalPort}"));

        Assert.Equal(4, receiver.ReceiveDropped);
    }

    [InteropFact]
    public void LinuxUdpBind_Gro_WithoutBatchingCalls_RecvmsgFallbackSplitsToo()
    {
        using var sender = LinuxUdpBind.Open(0);
        using var receiver = LinuxUdpBind.Open(0);
        receiver.SetBufferSizes(8 << 20);
        receiver.DisableBatching();

        var sent = SendRuns(sender, UdpEndpoint.Parse($"127.0.0.1:{receiver.LocalPort}"), (33, 1100, 50), (2, 10, 10));
        var received = ReceiveAll(receiver, sent.Count, buffers: 10);

        AssertSame(sent, received, UdpEndpoint.Parse($"127.0.0.1:{sender.LocalPort}"));
        Assert.True(receiver.GroCoalescedReceives > 0);
        Assert.False(receiver.BatchedReceive);
    }

    [InteropFact]
    public void LinuxUdpBind_Gro_DisposeWhileRemainderPending_ReceiveReturnsZero()
    {
        using var sender = LinuxUdpBind.Open(0);
        var receiver = LinuxUdpBind.Open(0);
        SendRuns(sender, UdpEndpoint.Parse($"127.0.0.1:{receiver.LocalPort}"), (30, 1000, 1000));
        var sizes = new int[2];
        Assert.Equal(2, receiver.Receive([new byte[2048], new byte[2048]], sizes, new UdpEndpoint[2]));

        receiver.Dispose();

        Assert.Equal(0, receiver.Receive([new byte[2048], new byte[2048]], sizes, new UdpEndpoint[2]));
    }

    [InteropFact]
    public void LinuxUdpBind_Gro_DisposeRacingReceiveWithRemainders_StopsCleanlyNeverReorders()
    {
        const int seed = 4711;
        var random = new Random(seed);
        for (var round = 0; round < 20; round++)
        {
            using var sender = LinuxUdpBind.Open(0);
            var receiver = LinuxUdpBind.Open(0);
            var destination = UdpEndpoint.Parse($"127.0.0.1:{receiver.LocalPort}");
            var last = -1;
            var disorder = 0;
            var receiving = Task.Run(() =>
            {
                var buffers = DatagramReceiver.Buffers(3, 2048); // fewer than a run: remainders are pending all the time
                var sizes = new int[3];
                var endpoints = new UdpEndpoint[3];
                int n;
                while ((n = receiver.Receive(buffers, sizes, endpoints)) > 0)
                {
                    for (var i = 0; i < n; i++)
                    {
                        var index = BitConverter.ToInt32(buffers[i], 0);
                        disorder += index <= last ? 1 : 0; // the socket may drop when full, never reorder or repeat
                        last = index;
                    }
                }
            });
            var sending = Task.Run(() =>
            {
                var buffers = DatagramReceiver.Buffers(20, 800);
                var sizes = Enumerable.Repeat(800, 20).ToArray();
                try
                {
                    for (var next = 0; ; next += 20)
                    {
                        for (var i = 0; i < 20; i++)
                        {
                            BitConverter.TryWriteBytes(buffers[i], next + i);
                        }

                        sender.Send(buffers, sizes, 0, 20, destination);
                    }
                }
                catch (ObjectDisposedException)
                {
                }
            });
            // Traffic is flowing (and coalescing) before Dispose lands at a random point of it: a loaded machine may take a while.
            var flowing = SpinWait.SpinUntil(() => receiver.GroCoalescedReceives > 0, TimeSpan.FromSeconds(10));
            Thread.Sleep(random.Next(0, 10));

            receiver.Dispose();
            sender.Dispose();

            Assert.True(Task.WaitAll([receiving, sending], TimeSpan.FromSeconds(10)), $"seed {seed} round {round}: a call did not return after Dispose");
            Assert.True(flowing, $"round {round}: no coalesced buffer arrived");
            Assert.Equal(0, disorder);
        }
    }
}
