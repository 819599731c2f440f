using System.Buffers.Binary;
using System.Runtime.Versioning;
using System.Text.RegularExpressions;
using Sharptun.Testing;
using Sharptun.Transport;
using Sharptun.Transport.Linux;

namespace Sharptun.Interop.Tests;

[SupportedOSPlatform("linux")]
public sealed class TransportInteropTests
{
    private static void SendAndReceiveBatch(string loopback, bool batching = true)
    {
        using var sender = LinuxUdpBind.Open(0);
        using var receiver = LinuxUdpBind.Open(0);
        if (!batching)
        {
            sender.DisableBatching();
            receiver.DisableBatching();
        }

        receiver.SetBufferSizes(4 << 20); // all 200 are queued before the first Receive
        Assert.True(receiver.ReceiveBufferSize >= 4 << 20);
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
        for (var i = 0; i < count; i++)
        {
            Assert.Equal(buffers[i].AsSpan(16).ToArray(), received[i].Payload);
            Assert.Equal(expectedSource, received[i].Source);
        }

        Assert.Equal(batching, sender.BatchedSend);
        Assert.Equal(batching, receiver.BatchedReceive);
        Assert.Equal(0, receiver.ReceiveDropped);
    }

    [InteropFact]
    public void LinuxUdpBind_IPv4Loopback_BatchArrivesInOrderWithIPv4Source()
    {
        SendAndReceiveBatch("127.0.0.1");
    }

    [InteropFact]
    public void LinuxUdpBind_IPv6Loopback_BatchArrivesInOrderWithIPv6Source()
    {
        SendAndReceiveBatch("[::1]");
    }

    /// <summary>Sends <paramref name="count"/> datagrams of <paramref name="size"/> bytes (the last one shorter) and checks they all arrive intact and in order.</summary>
    private static void SendEqualSizedRun(LinuxUdpBind sender, LinuxUdpBind receiver, UdpEndpoint destination, int count, int size)
    {
        var buffers = new byte[count][];
        var sizes = new int[count];
        for (var i = 0; i < count; i++)
        {
            sizes[i] = i == count - 1 ? size / 3 : size;
            buffers[i] = new byte[16 + size];
            buffers[i].AsSpan(16).Fill((byte)(i * 3));
        }

        Assert.Equal(count, sender.Send(buffers, sizes, 16, count, destination));
        var received = DatagramReceiver.ReceiveAll(receiver, count);

        for (var i = 0; i < count; i++)
        {
            Assert.Equal(buffers[i].AsSpan(16, sizes[i]).ToArray(), received[i].Payload);
        }
    }

    [InteropFact]
    public void LinuxUdpBind_EqualSizedRun_SentWithGsoArrivesAsSeparateDatagrams()
    {
        foreach (var loopback in new[] { "127.0.0.1", "[::1]" })
        {
            using var sender = LinuxUdpBind.Open(0);
            using var receiver = LinuxUdpBind.Open(0);
            receiver.SetBufferSizes(8 << 20);
            Assert.True(sender.SegmentationOffload, "kernel without UDP_SEGMENT");

            SendEqualSizedRun(sender, receiver, UdpEndpoint.Parse($"{loopback}:{receiver.LocalPort}"), count: 200, size: 1200);

            Assert.True(sender.SegmentationOffload, "GSO was refused on loopback");
            Assert.Equal(0, sender.SendDropped);
        }
    }

    [InteropFact]
    public void LinuxUdpBind_GsoSegmentLargerThanRouteMtu_FallsBackPerDatagram()
    {
        using var lab = new NetnsLab();
        var a = lab.AddNamespace();
        var b = lab.AddNamespace();
        var veth = lab.AddVeth(a, b);
        var net = lab.NewSubnet();
        lab.AddAddress(a, veth.InterfaceA, net.V4Cidr(1));
        lab.AddAddress(b, veth.InterfaceB, net.V4Cidr(2));
        lab.SetMtu(a, veth.InterfaceA, 1280);
        lab.SetMtu(b, veth.InterfaceB, 1280);
        using var sender = NetnsLab.RunInNamespace(a, () => LinuxUdpBind.Open(0));
        using var receiver = NetnsLab.RunInNamespace(b, () => LinuxUdpBind.Open(0));
        receiver.SetBufferSizes(8 << 20);

        // 1400-byte datagrams do not fit a 1280-byte link: GSO refuses the segment size, plain IPv4 fragments them.
        SendEqualSizedRun(sender, receiver, UdpEndpoint.Parse($"{net.V4(2)}:{receiver.LocalPort}"), count: 20, size: 1400);

        Assert.True(sender.GsoSizeLimit < 1400);
        Assert.True(sender.SegmentationOffload);
    }

    [InteropFact]
    public void LinuxUdpBind_WithoutBatchingCalls_FallbackDeliversSameBatch()
    {
        SendAndReceiveBatch("127.0.0.1", batching: false);
    }

    [InteropFact]
    public void LinuxUdpBind_SteadyStateSendReceive_AllocatesNothing()
    {
        using var bind = LinuxUdpBind.Open(0);
        bind.SetBufferSizes(1 << 20);
        var self = UdpEndpoint.Parse($"[::1]:{bind.LocalPort}");
        var buffers = DatagramReceiver.Buffers(32, 2048);
        var sizes = new int[32];
        var endpoints = new UdpEndpoint[32];
        void RoundTrip()
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
            RoundTrip(); // warm up: JIT, tiering, lazily created statics
        }

        var before = GC.GetAllocatedBytesForCurrentThread();
        for (var i = 0; i < 50; i++)
        {
            RoundTrip();
        }

        Assert.Equal(0, GC.GetAllocatedBytesForCurrentThread() - before);
    }

    [InteropFact]
    public void LinuxUdpBind_DatagramLargerThanBuffer_DroppedAndCounted()
    {
        using var sender = LinuxUdpBind.Open(0);
        using var receiver = LinuxUdpBind.Open(0);
        var destination = UdpEndpoint.Parse($"127.0.0.1:{receiver.LocalPort}");
        sender.Send([new byte[3000], new byte[10]], [3000, 10], 0, 2, destination);
        var sizes = new int[2];

        var n = receiver.Receive(DatagramReceiver.Buffers(2, 2048), sizes, new UdpEndpoint[2]);

        Assert.Equal(1, n);
        Assert.Equal(10, sizes[0]);
        Assert.Equal(1, receiver.ReceiveDropped);
    }

    [InteropFact]
    public void LinuxUdpBind_DisposeWhileReceiving_ReceiveReturnsZero()
    {
        var bind = LinuxUdpBind.Open(0);
        var receiver = Task.Run(() => bind.Receive(DatagramReceiver.Buffers(4, 2048), new int[4], new UdpEndpoint[4]));
        Thread.Sleep(100);

        bind.Dispose();

        Assert.True(receiver.Wait(TimeSpan.FromSeconds(5)), "Receive did not return after Dispose");
        Assert.Equal(0, receiver.Result);
        Assert.Throws<ObjectDisposedException>(() => bind.Send([new byte[1]], [1], 0, 1, UdpEndpoint.Parse("127.0.0.1:9")));
    }

    [InteropFact]
    public void LinuxUdpBind_DisposeRacingBusySendAndReceive_BothStopCleanly()
    {
        const int seed = 1122;
        var random = new Random(seed);
        for (var round = 0; round < 20; round++)
        {
            var bind = LinuxUdpBind.Open(0);
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

            Assert.True(Task.WaitAll([receiver, sender], TimeSpan.FromSeconds(10)), $"seed {seed} round {round}: a call did not return after Dispose");
        }
    }

    [InteropFact]
    public void LinuxUdpBind_BoundToLoopbackAddress_ReceivesOnlyThere()
    {
        using var lab = new NetnsLab();
        var ns = lab.AddNamespace();
        var veth = lab.AddVeth(ns, null);
        var net = lab.NewSubnet();
        lab.AddAddress(ns, veth.InterfaceA, net.V4Cidr(1));
        using var bind = NetnsLab.RunInNamespace(ns, () => LinuxUdpBind.Open(UdpEndpoint.Parse("127.0.0.1:0")));
        using var sender = NetnsLab.RunInNamespace(ns, () => LinuxUdpBind.Open(0));

        sender.Send([new byte[4]], [4], 0, 1, UdpEndpoint.Parse($"{net.V4(1)}:{bind.LocalPort}"));   // not bound there
        sender.Send([new byte[5]], [5], 0, 1, UdpEndpoint.Parse($"127.0.0.1:{bind.LocalPort}"));
        var sizes = new int[4];
        var endpoints = new UdpEndpoint[4];
        var n = bind.Receive(DatagramReceiver.Buffers(4, 64), sizes, endpoints);

        Assert.Equal(1, n);
        Assert.Equal(5, sizes[0]);
        Assert.Equal(UdpEndpoint.Parse($"127.0.0.1:{sender.LocalPort}"), endpoints[0]);
        Assert.Throws<IOException>(() => NetnsLab.RunInNamespace(ns, () => LinuxUdpBind.Open(UdpEndpoint.Parse("192.0.2.1:0"))));
    }

    [InteropFact]
    public void LinuxUdpBind_PortInUse_OpenThrowsAndRebindAfterDisposeWorks()
    {
        var first = LinuxUdpBind.Open(0);
        var port = first.LocalPort;

        Assert.Throws<IOException>(() => LinuxUdpBind.Open(port));
        first.Dispose();
        using var again = LinuxUdpBind.Factory.Open(port);

        Assert.Equal(port, again.LocalPort);
    }

    [InteropFact("nft")]
    public void LinuxUdpBind_SetMark_OutgoingDatagramsCarryMark()
    {
        using var lab = new NetnsLab();
        var ns = lab.AddNamespace();
        lab.Check(ns, "nft", "add table inet marktest");
        lab.Check(ns, "nft", "add chain inet marktest out { type filter hook output priority 0 ; }");
        lab.Check(ns, "nft", "add rule inet marktest out meta mark 0x5354 udp dport 9 counter");
        using var bind = NetnsLab.RunInNamespace(ns, () => LinuxUdpBind.Open(0));

        bind.SetMark(0x5354);
        // Distinct sizes: a GSO train would pass the output hook as one packet.
        var sent = bind.Send(DatagramReceiver.Buffers(3, 16), [10, 11, 12], 0, 3, UdpEndpoint.Parse("127.0.0.1:9"));

        Assert.Equal(0x5354u, bind.GetMark());
        Assert.Equal(3, sent);
        var rules = lab.Check(ns, "nft", "list chain inet marktest out").Stdout;
        Assert.Matches(new Regex(@"counter packets 3 "), rules);
    }

    [InteropFact("ping")]
    public void LinuxTun_KernelPingsPeerRoutedIntoTun_HandBuiltEchoReplyCompletesPing()
    {
        using var lab = new NetnsLab();
        var ns = lab.AddNamespace();
        var name = lab.NewInterfaceName();
        var net = lab.NewSubnet();
        using var tun = NetnsLab.RunInNamespace(ns, () => LinuxTun.Create(name, mtu: 1420, up: true));
        lab.AddAddress(ns, name, net.V4Cidr(1));
        Assert.Equal(name, tun.Name);
        Assert.Contains("mtu 1420", lab.Check(ns, "ip", "link", "show", name).Stdout);

        var ping = lab.Start(ns, "ping", "-c1", "-W5", net.V4(2));
        var buffers = DatagramReceiver.Buffers(tun.BatchSize, 16 + 2048);
        var sizes = new int[tun.BatchSize];
        var answered = false;
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(10);
        while (!answered && DateTime.UtcNow < deadline)
        {
            var read = Task.Run(() => tun.Read(buffers, sizes, 16));
            Assert.True(read.Wait(TimeSpan.FromSeconds(10)), "no packet from the TUN\n" + lab.DescribeProcesses());
            for (var i = 0; i < read.Result && !answered; i++)
            {
                var packet = buffers[i].AsSpan(16, sizes[i]);
                if (PacketBuilder.TryMakeIcmpEchoReply(packet))
                {
                    Assert.Equal(1, tun.Write([buffers[i]], [sizes[i]], 16, 1));
                    answered = true;
                }
            }
        }

        Assert.True(answered, "the echo request never came out of the TUN");
        Assert.True(ping.WaitForExit(10_000), lab.DescribeProcesses());
        ping.WaitForExit();
        Assert.True(ping.ExitCode == 0, lab.DescribeProcesses());
    }

    [InteropFact]
    public void LinuxTun_PacketLargerThanReadBuffer_DroppedNotTruncated()
    {
        using var lab = new NetnsLab();
        var ns = lab.AddNamespace();
        var name = lab.NewInterfaceName();
        var net = lab.NewSubnet();
        lab.Sysctl(ns, "net.ipv6.conf.default.disable_ipv6", "1"); // no neighbour discovery noise in the TUN
        using var tun = NetnsLab.RunInNamespace(ns, () => LinuxTun.Create(name));
        lab.AddAddress(ns, name, net.V4Cidr(1));
        var big = new string('x', 500);
        lab.Check(ns, "bash", "-c", $"echo -n {big} > /dev/udp/{net.V4(2)}/5000; echo -n small > /dev/udp/{net.V4(2)}/5000");
        var buffers = DatagramReceiver.Buffers(4, 200);
        var sizes = new int[4];

        var read = Task.Run(() => tun.Read(buffers, sizes, 0));

        Assert.True(read.Wait(TimeSpan.FromSeconds(5)));
        Assert.True(read.Result == 1, $"read {read.Result}: sizes {string.Join(",", sizes)} first bytes {buffers[0][0]:x2} {buffers[1][0]:x2}");
        Assert.Equal(20 + 8 + 5, sizes[0]);
        Assert.Equal(1, tun.ReadDropped);
    }

    [InteropFact]
    public void LinuxTun_WriteNotAnIPPacket_DroppedAndCounted()
    {
        using var lab = new NetnsLab();
        var ns = lab.AddNamespace();
        using var tun = NetnsLab.RunInNamespace(ns, () => LinuxTun.Create(lab.NewInterfaceName()));
        var garbage = new byte[40];
        garbage[0] = 0x10; // IP version 1

        var accepted = tun.Write([garbage], [garbage.Length], 0, 1);

        Assert.Equal(0, accepted);
        Assert.Equal(1, tun.WriteDropped);
    }

    [InteropFact]
    public void LinuxTun_InterfaceDeleted_ReadReturnsZero()
    {
        using var lab = new NetnsLab();
        var ns = lab.AddNamespace();
        var name = lab.NewInterfaceName();
        using var tun = NetnsLab.RunInNamespace(ns, () => LinuxTun.Create(name));
        var reader = Task.Run(() => ReadUntilClosed(tun));
        Thread.Sleep(100);

        lab.Check(ns, "ip", "link", "del", name);

        Assert.True(reader.Wait(TimeSpan.FromSeconds(5)), "Read did not return after the interface was deleted");
        Assert.Equal(0, reader.Result);
        Assert.True(tun.IsClosed);
    }

    [InteropFact]
    public void LinuxTun_MovedToAnotherNamespace_ProbeSeesItAttachedUntilDeletedThere()
    {
        using var lab = new NetnsLab();
        var ns = lab.AddNamespace();
        var other = lab.AddNamespace();
        var name = lab.NewInterfaceName();
        using var tun = NetnsLab.RunInNamespace(ns, () => LinuxTun.Create(name));

        lab.Check(ns, "ip", "link", "set", name, "netns", other);

        // Gone by name where it was created, yet attached: no reader is needed to tell (nothing reads here).
        Assert.Equal(-1, NetnsLab.RunInNamespace(ns, () => LinuxTun.GetInterfaceIndex(name)));
        Assert.False(tun.ProbeClosed());
        Assert.False(tun.IsClosed);

        lab.Check(other, "ip", "link", "del", name);

        NetnsLab.WaitUntil(tun.ProbeClosed, TimeSpan.FromSeconds(5), "the probe to see the deletion");
        Assert.True(tun.IsClosed);
    }

    [InteropFact]
    public void LinuxTun_DisposeWhileReading_ReadReturnsZeroAndInterfaceGoes()
    {
        using var lab = new NetnsLab();
        var ns = lab.AddNamespace();
        var name = lab.NewInterfaceName();
        var tun = NetnsLab.RunInNamespace(ns, () => LinuxTun.Create(name));
        var reader = Task.Run(() => ReadUntilClosed(tun));
        Thread.Sleep(100);

        tun.Dispose();

        Assert.True(reader.Wait(TimeSpan.FromSeconds(5)), "Read did not return after Dispose");
        Assert.Equal(0, reader.Result);
        NetnsLab.WaitUntil(() => !lab.Exec(ns, "ip", "link", "show", name).Success, TimeSpan.FromSeconds(5), "the interface to disappear");
    }

    [InteropFact]
    public void LinuxTun_FromFileDescriptor_ReadsWhatTheKernelRoutes()
    {
        using var lab = new NetnsLab();
        var ns = lab.AddNamespace();
        var name = lab.NewInterfaceName();
        var net = lab.NewSubnet();
        using var created = NetnsLab.RunInNamespace(ns, () => LinuxTun.Create(name));
        lab.AddAddress(ns, name, net.V4Cidr(1));
        using var wrapped = LinuxTun.FromFileDescriptor(created.FileDescriptor, name, 1420, ownsDescriptor: false);

        lab.Check(ns, "bash", "-c", $"echo -n hello > /dev/udp/{net.V4(2)}/5000");
        var buffers = DatagramReceiver.Buffers(4, 2048);
        var sizes = new int[4];
        var read = Task.Run(() =>
        {
            // The kernel may also send IPv6 neighbour-discovery/MLD packets into the TUN: skip to the IPv4 one.
            while (true)
            {
                var n = wrapped.Read(buffers, sizes, 0);
                for (var i = 0; i < n; i++)
                {
                    if (buffers[i][0] >> 4 == 4)
                    {
                        return buffers[i].AsSpan(0, sizes[i]).ToArray();
                    }
                }

                if (n == 0)
                {
                    return [];
                }
            }
        });

        Assert.True(read.Wait(TimeSpan.FromSeconds(5)));
        var packet = read.Result;
        Assert.Equal(20 + 8 + 5, packet.Length);
        Assert.Equal(0x45, packet[0]);          // IPv4, 20-byte header
        Assert.Equal(17, packet[9]);            // UDP
        Assert.Equal("hello"u8.ToArray(), packet[28..]);
    }

    /// <summary>Reads (and discards) packets until Read returns 0; returns 0 then.</summary>
    private static int ReadUntilClosed(LinuxTun tun)
    {
        var buffers = DatagramReceiver.Buffers(4, 2048);
        var sizes = new int[4];
        while (true)
        {
            var n = tun.Read(buffers, sizes, 0);
            if (n == 0)
            {
                return 0;
            }
        }
    }
}
