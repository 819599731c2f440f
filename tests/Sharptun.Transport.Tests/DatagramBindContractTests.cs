using Sharptun.Testing;
using System.Net.Sockets;
using Sharptun.Transport;
using Sharptun.Transport.Linux;

namespace Sharptun.Transport.Tests;

/// <summary>
/// The <see cref="IDatagramBind"/> contract on loopback, run over every bind this OS has: the portable
/// <see cref="SocketUdpBind"/> everywhere and <see cref="LinuxUdpBind"/> on Linux.
/// </summary>
public sealed class DatagramBindContractTests
{
    public static TheoryData<UdpBindKind> Kinds()
    {
        var kinds = new TheoryData<UdpBindKind> { UdpBindKind.Portable };
        if (OperatingSystem.IsLinux())
        {
            kinds.Add(UdpBindKind.Linux);
        }

        return kinds;
    }

    private static IDatagramBind Open(UdpBindKind kind, ushort port = 0) => DatagramBinds.For(kind).Open(port);

    private static long ReceiveDropped(IDatagramBind bind) => bind switch
    {
        SocketUdpBind s => s.ReceiveDropped,
        LinuxUdpBind l when OperatingSystem.IsLinux() => l.ReceiveDropped,
        _ => throw new InvalidOperationException(),
    };

    private static long SendDropped(IDatagramBind bind) => bind switch
    {
        SocketUdpBind s => s.SendDropped,
        LinuxUdpBind l when OperatingSystem.IsLinux() => l.SendDropped,
        _ => throw new InvalidOperationException(),
    };

    private static void EnlargeBuffers(IDatagramBind bind)
    {
        if (bind is SocketUdpBind s)
        {
            s.SetBufferSizes(4 << 20);
        }
        else if (OperatingSystem.IsLinux() && bind is LinuxUdpBind l)
        {
            l.SetBufferSizes(4 << 20);
        }
    }

    [Theory]
    [MemberData(nameof(Kinds))]
    public void Loopback_IPv4AndIPv6_BatchArrivesInOrderWithSource(UdpBindKind kind)
    {
        foreach (var loopback in new[] { "127.0.0.1", "[::1]" })
        {
            using var sender = Open(kind);
            using var receiver = Open(kind);
            EnlargeBuffers(receiver);
            const int count = 200; // more than one batch
            var buffers = new byte[count][];
            var sizes = new int[count];
            for (var i = 0; i < count; i++)
            {
                sizes[i] = 1 + (i * 7 % 1400);
                buffers[i] = new byte[16 + sizes[i]];
                buffers[i].AsSpan(16).Fill((byte)i);
            }

            var destination = UdpEndpoint.Parse($"{loopback}:{receiver.LocalPort}");
            Assert.Equal(count, sender.Send(buffers, sizes, 16, count, destination));
            var received = DatagramReceiver.ReceiveAll(receiver, count);

            var expectedSource = UdpEndpoint.Parse($"{loopback}:{sender.LocalPort}");
            Assert.Equal(count, received.Count);
            for (var i = 0; i < count; i++)
            {
                Assert.Equal(buffers[i].AsSpan(16).ToArray(), received[i].Payload);
                Assert.Equal(expectedSource, received[i].Source);
                Assert.Equal(loopback == "127.0.0.1", received[i].Source.IsIPv4);
            }

            Assert.Equal(0, ReceiveDropped(receiver));
        }
    }

    [Theory]
    [MemberData(nameof(Kinds))]
    public void QueuedDatagrams_OneReceive_ReturnsMoreThanOne(UdpBindKind kind)
    {
        using var bind = Open(kind);
        var self = UdpEndpoint.Parse($"127.0.0.1:{bind.LocalPort}");
        Assert.Equal(8, bind.Send(DatagramReceiver.Buffers(8, 100), Enumerable.Repeat(100, 8).ToArray(), 0, 8, self));
        Thread.Sleep(50);

        var n = bind.Receive(DatagramReceiver.Buffers(16, 2048), new int[16], new UdpEndpoint[16]);

        Assert.Equal(8, n);
    }

    [Theory]
    [MemberData(nameof(Kinds))]
    public void DatagramLargerThanBuffer_DroppedAndCounted_NeverTruncated(UdpBindKind kind)
    {
        using var sender = Open(kind);
        using var receiver = Open(kind);
        var destination = UdpEndpoint.Parse($"127.0.0.1:{receiver.LocalPort}");
        var small = new byte[10];
        small.AsSpan().Fill(7);
        sender.Send([new byte[3000], small], [3000, 10], 0, 2, destination);
        Thread.Sleep(50);
        var sizes = new int[2];
        var buffers = DatagramReceiver.Buffers(2, 2048);

        var n = receiver.Receive(buffers, sizes, new UdpEndpoint[2]);

        Assert.Equal(1, n);
        Assert.Equal(10, sizes[0]);
        Assert.Equal(small, buffers[0].AsSpan(0, 10).ToArray());
        Assert.Equal(1, ReceiveDropped(receiver));
    }

    [Theory]
    [MemberData(nameof(Kinds))]
    public void DisposeWhileReceiving_ReceiveReturnsZero_SendThrows(UdpBindKind kind)
    {
        var bind = Open(kind);
        var receiver = Task.Run(() => bind.Receive(DatagramReceiver.Buffers(4, 2048), new int[4], new UdpEndpoint[4]));
        Thread.Sleep(200);

        bind.Dispose();

        Assert.True(receiver.Wait(TimeSpan.FromSeconds(5)), "Receive did not return after Dispose");
        Assert.Equal(0, receiver.Result);
        Assert.Equal(0, bind.Receive(DatagramReceiver.Buffers(1, 100), new int[1], new UdpEndpoint[1]));
        Assert.Throws<ObjectDisposedException>(() => bind.Send([new byte[1]], [1], 0, 1, UdpEndpoint.Parse("127.0.0.1:9")));
        bind.Dispose(); // idempotent
    }

    [Theory]
    [MemberData(nameof(Kinds))]
    public void DisposeRacingBusySendAndReceive_BothStopCleanly(UdpBindKind kind)
    {
        const int seed = 9091;
        var random = new Random(seed);
        for (var round = 0; round < 20; round++)
        {
            var bind = Open(kind);
            var self = UdpEndpoint.Parse($"127.0.0.1:{bind.LocalPort}");
            var receiver = Task.Run(() =>
            {
                var buffers = DatagramReceiver.Buffers(16, 2048);
                while (bind.Receive(buffers, new int[16], new UdpEndpoint[16]) > 0)
                {
                }
            });
            var sender = Task.Run(() =>
            {
                var buffers = DatagramReceiver.Buffers(16, 600);
                var sizes = Enumerable.Repeat(500, 16).ToArray();
                try
                {
                    while (true)
                    {
                        bind.Send(buffers, sizes, 0, 16, self);
                    }
                }
                catch (ObjectDisposedException)
                {
                }
            });
            Thread.Sleep(random.Next(0, 20));

            bind.Dispose();

            Assert.True(Task.WaitAll([receiver, sender], TimeSpan.FromSeconds(10)), $"round {round} (seed {seed}): a call hung after Dispose");
        }
    }

    [Theory]
    [MemberData(nameof(Kinds))]
    public void PortZero_PicksFreePort_AndPortIsReusableAfterDispose(UdpBindKind kind)
    {
        var first = Open(kind);
        var port = first.LocalPort;
        Assert.NotEqual(0, port);
        Assert.Throws<IOException>(() => Open(kind, port)); // taken
        first.Dispose();

        using var again = Open(kind, port); // rebind: the port is free once the bind is closed
        Assert.Equal(port, again.LocalPort);
        using var other = Open(kind);
        Assert.NotEqual(port, other.LocalPort);
    }

    [Theory]
    [MemberData(nameof(Kinds))]
    public void RefusedDatagram_DroppedAndCounted_OthersSent(UdpBindKind kind)
    {
        using var bind = Open(kind);
        using var receiver = Open(kind);
        var destination = UdpEndpoint.Parse($"127.0.0.1:{receiver.LocalPort}");

        // 70000 bytes cannot be one UDP datagram: refused, counted, the next one still goes.
        var sent = bind.Send([new byte[70_000], new byte[20]], [70_000, 20], 0, 2, destination);

        Assert.Equal(1, sent);
        Assert.Equal(1, SendDropped(bind));
        var sizes = new int[2];
        Assert.Equal(1, receiver.Receive(DatagramReceiver.Buffers(2, 2048), sizes, new UdpEndpoint[2]));
        Assert.Equal(20, sizes[0]);
    }

    [Theory]
    [MemberData(nameof(Kinds))]
    public void SendToUnreachablePort_ThenReceive_KeepsWorking(UdpBindKind kind)
    {
        using var bind = Open(kind);
        int closedPort;
        using (var probe = Open(kind))
        {
            closedPort = probe.LocalPort;
        }

        // An ICMP port unreachable comes back for the first send; it must not break the next receive.
        bind.Send([new byte[10]], [10], 0, 1, UdpEndpoint.Parse($"127.0.0.1:{closedPort}"));
        Thread.Sleep(50);
        var self = UdpEndpoint.Parse($"127.0.0.1:{bind.LocalPort}");
        Assert.Equal(1, bind.Send([new byte[5]], [5], 0, 1, self));
        var sizes = new int[1];

        Assert.Equal(1, bind.Receive(DatagramReceiver.Buffers(1, 100), sizes, new UdpEndpoint[1]));
        Assert.Equal(5, sizes[0]);
    }

    [Fact]
    public void SocketBind_SteadyStateSendReceive_AllocatesNothing()
    {
        using var bind = SocketUdpBind.Open(0);
        bind.SetBufferSizes(1 << 20);
        var selves = new[] { UdpEndpoint.Parse($"[::1]:{bind.LocalPort}"), UdpEndpoint.Parse($"127.0.0.1:{bind.LocalPort}") };
        var buffers = DatagramReceiver.Buffers(32, 2048);
        var sizes = new int[32];
        var endpoints = new UdpEndpoint[32];
        void RoundTrip(UdpEndpoint self)
        {
            sizes.AsSpan().Fill(1200);
            var sent = bind.Send(buffers, sizes, 0, 32, self);
            var received = 0;
            while (received < sent)
            {
                received += bind.Receive(buffers, sizes, endpoints);
            }
        }

        for (var i = 0; i < 20; i++)
        {
            RoundTrip(selves[i % 2]); // warm up
        }

        var before = GC.GetAllocatedBytesForCurrentThread();
        for (var i = 0; i < 50; i++)
        {
            RoundTrip(selves[i % 2]);
        }

        Assert.Equal(0, GC.GetAllocatedBytesForCurrentThread() - before);
    }

    [Fact]
    public void DatagramBinds_ChoosesByKindAndParses()
    {
        Assert.Same(SocketUdpBind.Factory, DatagramBinds.For(UdpBindKind.Portable));
        Assert.Same(OperatingSystem.IsLinux() ? LinuxUdpBind.Factory : SocketUdpBind.Factory, DatagramBinds.Default);
        if (!OperatingSystem.IsLinux())
        {
            Assert.Throws<PlatformNotSupportedException>(() => DatagramBinds.For(UdpBindKind.Linux));
        }

        Assert.True(DatagramBinds.TryParseKind("Portable", out var kind));
        Assert.Equal(UdpBindKind.Portable, kind);
        Assert.True(DatagramBinds.TryParseKind(null, out kind));
        Assert.Equal(UdpBindKind.Auto, kind);
        Assert.True(DatagramBinds.TryParseKind("linux", out kind));
        Assert.Equal(UdpBindKind.Linux, kind);
        Assert.False(DatagramBinds.TryParseKind("kernel", out _));
        Assert.Throws<ArgumentOutOfRangeException>(() => DatagramBinds.For((UdpBindKind)7));
    }

    [Fact]
    public void DatagramBinds_ReceiveOffloadSwitch_ParsesAndChoosesFactory()
    {
        foreach (var (text, expected) in new (string?, bool)[] { (null, true), ("", true), ("1", true), (" ON ", true), ("true", true), ("yes", true), ("0", false), ("off", false), ("False", false), ("no", false) })
        {
            Assert.True(DatagramBinds.TryParseSwitch(text, out var on), text);
            Assert.Equal(expected, on);
        }

        Assert.False(DatagramBinds.TryParseSwitch("maybe", out _));
        Assert.False(DatagramBinds.TryParseSwitch("2", out _));
        Assert.Same(SocketUdpBind.Factory, DatagramBinds.For(UdpBindKind.Portable, receiveOffload: false));
        Assert.Same(DatagramBinds.Default, DatagramBinds.For(UdpBindKind.Auto, receiveOffload: true));
        if (OperatingSystem.IsLinux())
        {
            var withoutGro = DatagramBinds.For(UdpBindKind.Auto, receiveOffload: false);
            Assert.Same(LinuxUdpBind.GetFactory(receiveOffload: false), withoutGro);
            Assert.NotSame(LinuxUdpBind.Factory, withoutGro);
            using var bind = (LinuxUdpBind)withoutGro.Open(0);
            Assert.False(bind.ReceiveOffload);
            using var withGro = (LinuxUdpBind)LinuxUdpBind.Factory.Open(0);
            Assert.True(withGro.ReceiveOffload || Environment.OSVersion.Version < new Version(5, 0)); // UDP_GRO: Linux 5.0+
        }
    }

    [Fact]
    public void SocketBind_SetMark_OnLinuxSetsOrRefusesWithIOException()
    {
        using var bind = SocketUdpBind.Open(0);
        if (OperatingSystem.IsLinux())
        {
            // Root (CAP_NET_ADMIN) may set a mark (0 too); anyone else gets the kernel's EPERM as an IOException.
            foreach (var mark in new uint[] { 0x51820, 0 })
            {
                try
                {
                    bind.SetMark(mark);
                }
                catch (IOException e)
                {
                    Assert.Equal(SocketError.AccessDenied, Assert.IsType<SocketException>(e.InnerException).SocketErrorCode);
                }
            }
        }
        else
        {
            bind.SetMark(0);
            Assert.Throws<IOException>(() => bind.SetMark(1));
        }

        bind.Dispose();
        Assert.Throws<ObjectDisposedException>(() => bind.SetMark(0));
    }

    [Theory]
    [MemberData(nameof(Kinds))]
    public void ConcurrentSenders_EveryDatagramArrivesIntact(UdpBindKind kind)
    {
        using var sender = Open(kind);
        using var receiver = Open(kind);
        EnlargeBuffers(receiver);
        var destination = UdpEndpoint.Parse($"127.0.0.1:{receiver.LocalPort}");
        const int threads = 4;
        const int perThread = 100;
        var receiving = Task.Run(() => DatagramReceiver.ReceiveAll(receiver, threads * perThread));

        Parallel.For(0, threads, t =>
        {
            for (var i = 0; i < perThread; i += 10)
            {
                var buffers = Enumerable.Range(i, 10).Select(k => new byte[] { (byte)t, (byte)k, (byte)(t ^ k) }).ToArray();
                Assert.Equal(10, sender.Send(buffers, Enumerable.Repeat(3, 10).ToArray(), 0, 10, destination));
            }
        });

        var received = receiving.Result;
        Assert.Equal(threads * perThread, received.Count);
        Assert.All(received, r => Assert.Equal(r.Payload[0] ^ r.Payload[1], r.Payload[2]));
        Assert.Equal(threads * perThread, received.Select(r => (r.Payload[0] << 8) | r.Payload[1]).Distinct().Count());
    }
}
