using Sharptun.Device.Pipeline;
using System.Net;
using Sharptun.Device.Uapi;
using Sharptun.Protocol;
using Sharptun.Testing;
using Sharptun.Transport;

namespace Sharptun.Device.Tests.Pipeline;

public sealed class DeviceTests
{
    [Fact]
    public void TwoDevices_Handshake_PacketsFlowBothWays()
    {
        using var pair = NodePair.InMemory(new InMemoryNetwork(1));
        pair.Ping(1);
        pair.Ping(10);
        var state = pair.A.PeerState(pair.B.PublicKey)!;
        Assert.NotEqual(0, state.LastHandshakeUnixNanoseconds);
        Assert.True(state.TxBytes > 0 && state.RxBytes > 0);
    }

    /// <summary>
    /// Regression (CI flake in the MTU-change interop test): a packet that fits the device's read buffer but leaves no
    /// room for padding and tag was dropped as invalid — every time, so TCP retransmitting that segment stalled for
    /// seconds. Every length up to the buffer's end must now pass (through the large companion pool).
    /// </summary>
    [Fact]
    public void Send_PacketFillingTheReadBuffer_StillSent()
    {
        // B reads datagrams into 4 KiB buffers: the in-memory bind, unlike the Linux one, has no oversize spill.
        var options = new WireGuardDeviceOptions { CryptoWorkers = 2, BufferSize = 2048 };
        using var pair = NodePair.InMemory(new InMemoryNetwork(3), options, mtu: 2048, optionsB: options with { BufferSize = 4096 });
        pair.Ping(1);
        for (var length = 2048 - 16 - 40; length <= 2048 - 16; length++)
        {
            var packet = TestPackets.Udp("10.0.0.1", "10.0.0.2", (uint)length, payloadLength: length - 28);
            Assert.Equal(length, packet.Length);
            pair.A.Send(packet);
            var got = pair.B.Receive(1, NodePair.Timeout);
            Assert.True(got.Count == 1, $"a {length}-byte packet did not arrive; drops: {pair.A.Device.Counters[DropReason.InvalidOutboundPacket]} invalid");
            Assert.Equal(packet, got[0]);
        }

        Assert.Equal(0, pair.A.Device.Counters[DropReason.InvalidOutboundPacket]);
    }

    [Fact]
    public void TwoDevices_Ipv6Inner_PacketsFlowBothWays()
    {
        using var pair = NodePair.InMemory(new InMemoryNetwork(2));
        pair.Ping(1, ipv6: true);
    }

    [Fact]
    public void TwoDevices_PresharedKey_PacketsFlow()
    {
        using var pair = NodePair.InMemory(new InMemoryNetwork(3), psk: new string('5', 64));
        pair.Ping(1);
        Assert.NotNull(pair.A.PeerState(pair.B.PublicKey)!.PresharedKey);
    }

    [Fact]
    public void TwoDevices_MismatchedPresharedKey_NoPacketsFlow()
    {
        using var pair = NodePair.InMemory(new InMemoryNetwork(4));
        pair.A.Set($"public_key={pair.B.PublicHex}\npreshared_key={new string('1', 64)}\n");
        pair.A.Send(TestPackets.Udp("10.0.0.1", "10.0.0.2", 1));
        Assert.Empty(pair.B.Receive(1, TimeSpan.FromMilliseconds(500)));
        Assert.Equal(0, pair.A.PeerState(pair.B.PublicKey)!.LastHandshakeUnixNanoseconds);
    }

    [Fact]
    public void Send_BeforeHandshake_StagedPacketsFlushedInOrder()
    {
        using var pair = NodePair.InMemory(new InMemoryNetwork(5));
        var packets = new byte[20][];
        for (var i = 0; i < packets.Length; i++)
        {
            packets[i] = TestPackets.Udp("10.0.0.1", "10.0.0.2", (uint)i);
        }

        pair.A.Send(packets);
        var got = pair.B.Receive(packets.Length, NodePair.Timeout);
        Assert.Equal(packets.Length, got.Count);
        for (var i = 0; i < packets.Length; i++)
        {
            Assert.Equal(packets[i], got[i]);
        }
    }

    [Fact]
    public void Send_MoreThanStagingCapacity_OldestDroppedAndCounted()
    {
        var network = new InMemoryNetwork(6) { DropRate = 1 }; // no handshake can complete
        using var pair = NodePair.InMemory(network, new WireGuardDeviceOptions { CryptoWorkers = 0, StagedPacketsPerPeer = 8, Clock = new DeviceClock(10) });
        var packets = new byte[20][];
        for (var i = 0; i < packets.Length; i++)
        {
            packets[i] = TestPackets.Udp("10.0.0.1", "10.0.0.2", (uint)i);
        }

        pair.A.Send(packets);
        WaitFor(() => pair.A.Device.Counters[DropReason.StagedOverflow] == 12);
        network.DropRate = 0;

        // The 8 newest are delivered once the handshake completes (its retry comes after RekeyTimeout = 5 s, 0.5 s on the 10x clock).
        var got = pair.B.Receive(8, TimeSpan.FromSeconds(15));
        Assert.Equal(8, got.Count);
        Assert.Equal(12u, TestPackets.Sequence(got[0]));
        Assert.Equal(19u, TestPackets.Sequence(got[7]));
    }

    [Fact]
    public void Send_UnknownDestination_DroppedAndCounted()
    {
        using var pair = NodePair.InMemory(new InMemoryNetwork(7));
        pair.A.Send(TestPackets.Udp("10.0.0.1", "10.0.0.77", 1));
        WaitFor(() => pair.A.Device.Counters[DropReason.NoRoute] == 1);
        pair.Ping(2);
        Assert.Equal(1, pair.A.Device.Counters[DropReason.NoRoute]);
        Assert.Contains(new DropCount(nameof(DropReason.NoRoute), 1), pair.A.Device.GetSnapshot().Drops);
    }

    [Fact]
    public void Receive_InnerSourceNotInAllowedIps_DroppedAndCounted()
    {
        using var pair = NodePair.InMemory(new InMemoryNetwork(8));
        pair.Ping(1);
        pair.B.Send(TestPackets.Udp("10.0.0.99", "10.0.0.1", 7)); // B routes by destination; A checks the source
        WaitFor(() => pair.A.Device.Counters[DropReason.SourceNotAllowed] == 1);
        Assert.Empty(pair.A.Receive(1, TimeSpan.FromMilliseconds(200)));
        pair.Ping(3);
    }

    [Fact]
    public void Roaming_PeerChangesAddress_EndpointFollows()
    {
        var network = new InMemoryNetwork(9);
        using var pair = NodePair.InMemory(network);
        pair.Ping(1);
        var bindB = (InMemoryBind)((CapturingBindFactory)pair.B.Binds).Last!;
        bindB.ChangeLocalEndpoint(UdpEndpoint.Parse("198.51.100.7:40000"));

        // B speaks first from its new address; A learns it from the authenticated packet and answers there.
        pair.B.Send(TestPackets.Udp("10.0.0.2", "10.0.0.1", 5));
        Assert.Single(pair.A.Receive(1, NodePair.Timeout));
        Assert.Equal(new IPEndPoint(IPAddress.Parse("198.51.100.7"), 40000), pair.A.PeerState(pair.B.PublicKey)!.Endpoint);
        pair.A.Send(TestPackets.Udp("10.0.0.1", "10.0.0.2", 6));
        Assert.Single(pair.B.Receive(1, NodePair.Timeout));
    }

    [Fact]
    public void Receive_GarbageDatagrams_CountedAndDeviceKeepsWorking()
    {
        var network = new InMemoryNetwork(10);
        using var pair = NodePair.InMemory(network);
        using var attacker = network.CreateBind("203.0.113.9:0");
        var target = UdpEndpoint.Parse("192.0.2.1:" + pair.A.Port);
        var random = new Random(10);
        var datagrams = new List<byte[]>
        {
            Array.Empty<byte>(),
            new byte[] { 1 },
            new byte[] { 1, 0, 0, 0 },                 // initiation, truncated
            new byte[] { 4, 0, 0, 0, 1, 2, 3, 4 },     // transport, truncated
            new byte[] { 9, 0, 0, 0, 0, 0, 0, 0 },     // unknown type
            new byte[] { 1, 1, 0, 0 },                 // reserved bytes set
        };
        var init = new byte[148];
        init[0] = 1;
        datagrams.Add(init);                           // bad mac1
        var transport = new byte[64];
        transport[0] = 4;
        datagrams.Add(transport);                      // unknown receiver index
        for (var i = 0; i < 200; i++)
        {
            var d = new byte[random.Next(0, 300)];
            random.NextBytes(d);
            if (d.Length > 0)
            {
                d[0] = (byte)random.Next(0, 6);
            }

            datagrams.Add(d);
        }

        foreach (var d in datagrams)
        {
            var buffer = new byte[Math.Max(1, d.Length)];
            d.CopyTo(buffer, 0);
            attacker.Send([buffer], [d.Length], 0, 1, target);
        }

        WaitFor(() => pair.A.Device.Counters.TotalDrops >= datagrams.Count - 2);
        Assert.True(pair.A.Device.Counters[DropReason.MalformedDatagram] > 0);
        Assert.True(pair.A.Device.Counters[DropReason.UnknownReceiver] > 0);
        Assert.True(pair.A.Device.Counters[DropReason.HandshakeRejected] > 0);
        pair.Ping(1);
    }

    [Fact]
    public void ParallelEncryption_ManyPackets_PerPeerOrderPreserved()
    {
        // Every packet must arrive: the queue delay limit (which drops on purpose when a loaded machine stalls the
        // pipeline; QueueDelayDeviceTests) is off.
        using var pair = NodePair.InMemory(new InMemoryNetwork(11), new WireGuardDeviceOptions { CryptoWorkers = 4, QueueDelayTarget = TimeSpan.Zero });
        pair.Ping(1);
        const int count = 4000;
        var seqs = NodePair.Stream(pair.A, pair.B, "10.0.0.1", "10.0.0.2", count);
        Assert.True(count == seqs.Count, $"got {seqs.Count}; A drops: {pair.A.Device.Counters}; B drops: {pair.B.Device.Counters}");
        for (var i = 0; i < count; i++)
        {
            Assert.Equal((uint)i, seqs[i]);
        }
    }

    [Fact]
    public void SmallBufferBudget_BulkTransfer_NoLossAndBudgetRespected()
    {
        // Lossless backpressure is what this checks, so the queue delay limit (which drops on purpose; QueueDelayDeviceTests) is off.
        var options = new WireGuardDeviceOptions { CryptoWorkers = 2, BufferBudgetBytes = 48 * 2048, QueueDelayTarget = TimeSpan.Zero };
        using var pair = NodePair.InMemory(new InMemoryNetwork(12), options);
        pair.Ping(1);
        const int count = 3000;
        var seqs = NodePair.Stream(pair.A, pair.B, "10.0.0.1", "10.0.0.2", count);
        Assert.True(count == seqs.Count, $"got {seqs.Count}; A drops: {pair.A.Device.Counters}; B drops: {pair.B.Device.Counters}");
        foreach (var node in new[] { pair.A, pair.B })
        {
            Assert.True(node.Device.BufferPool.PeakInUse <= 48);
            Assert.True(node.Device.BufferPool.AllocatedBytes <= options.BufferBudgetBytes);
        }
    }

    [Fact]
    public void UapiSet_ListenPortInUse_ErrnoAndNothingChanged()
    {
        var network = new InMemoryNetwork(13);
        using var pair = NodePair.InMemory(network);
        using var squatter = network.CreateBind("192.0.2.1:5555");
        var before = Render(pair.A.Device.GetSnapshot());
        var otherKey = Config_Key();
        var error = pair.A.TrySet($"private_key={new string('7', 64)}\nlisten_port=5555\nreplace_peers=true\npublic_key={otherKey}\nallowed_ip=10.9.0.0/16\n");
        Assert.NotNull(error);
        Assert.Equal(UapiErrno.PortInUse, error!.Errno);
        Assert.Equal(before, Render(pair.A.Device.GetSnapshot()));
        pair.Ping(1);
    }

    [Fact]
    public void UapiSet_ListenPortChange_RebindsAndPeerStillReachable()
    {
        using var pair = NodePair.InMemory(new InMemoryNetwork(14));
        pair.Ping(1);
        pair.A.Set("listen_port=6000\n");
        Assert.Equal(6000, pair.A.Port);
        pair.B.Set($"public_key={pair.A.PublicHex}\nendpoint=192.0.2.1:6000\n");
        pair.Ping(3);
    }

    [Fact]
    public void UapiSet_RemovePeer_TrafficStops()
    {
        using var pair = NodePair.InMemory(new InMemoryNetwork(15));
        pair.Ping(1);
        pair.A.Set($"public_key={pair.B.PublicHex}\nremove=true\n");
        Assert.Empty(pair.A.Device.GetSnapshot().Peers);
        pair.A.Send(TestPackets.Udp("10.0.0.1", "10.0.0.2", 9));
        WaitFor(() => pair.A.Device.Counters[DropReason.NoRoute] == 1);
        pair.B.Send(TestPackets.Udp("10.0.0.2", "10.0.0.1", 9));
        Assert.Empty(pair.A.Receive(1, TimeSpan.FromMilliseconds(300)));
    }

    [Fact]
    public void Rekey_OnFastClock_ContinuousTrafficNoLoss()
    {
        // 60x clock: RekeyAfterTime (120 s) passes every 2 s of real time, RejectAfterTime (180 s) every 3 s.
        // No loss across rekeys is what this checks; the queue delay limit (which drops on purpose when a loaded machine
        // stalls the pipeline; QueueDelayDeviceTests) is off.
        var options = new WireGuardDeviceOptions { CryptoWorkers = 2, Clock = new DeviceClock(60), QueueDelayTarget = TimeSpan.Zero };
        using var pair = NodePair.InMemory(new InMemoryNetwork(16), options);
        pair.Ping(1);
        var firstHandshake = pair.A.PeerState(pair.B.PublicKey)!.LastHandshakeUnixNanoseconds;
        var count = 0;
        var received = new List<uint>();
        var sw = System.Diagnostics.Stopwatch.StartNew();
        while (sw.Elapsed < TimeSpan.FromSeconds(5))
        {
            var batch = new byte[8][];
            for (var j = 0; j < batch.Length; j++)
            {
                batch[j] = TestPackets.Udp("10.0.0.1", "10.0.0.2", (uint)count++, 100);
            }

            pair.A.Send(batch);
            foreach (var p in pair.B.ReceivePending())
            {
                received.Add(TestPackets.Sequence(p));
            }

            Thread.Sleep(2);
        }

        foreach (var p in pair.B.Receive(count - received.Count, NodePair.Timeout))
        {
            received.Add(TestPackets.Sequence(p));
        }

        Assert.Equal(count, received.Count);
        for (var i = 0; i < count; i++)
        {
            Assert.Equal((uint)i, received[i]);
        }

        Assert.NotEqual(firstHandshake, pair.A.PeerState(pair.B.PublicKey)!.LastHandshakeUnixNanoseconds);
        Assert.Equal(0, pair.B.Device.Counters[DropReason.Replayed]);
    }

    private static string Config_Key() => Key.GeneratePrivateKey().DerivePublicKey().ToHex();

    private static string Render(DeviceSnapshot snapshot) => UapiFormatter.FormatGetResponse(snapshot);

    internal static void WaitFor(Func<bool> condition, int timeoutMs = 10_000)
    {
        var sw = System.Diagnostics.Stopwatch.StartNew();
        while (!condition())
        {
            Assert.True(sw.ElapsedMilliseconds < timeoutMs, "condition not met in time");
            Thread.Sleep(5);
        }
    }
}
