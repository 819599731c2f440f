using Sharptun.Device.Pipeline;
using System.Diagnostics;
using Sharptun.Testing;
using Sharptun.Testing.Logging;
using Sharptun.Transport;

namespace Sharptun.Device.Tests.Pipeline;

/// <summary>
/// The pipeline's liveness rules (docs/architecture.md "Liveness"): the staged-packet count balances, no thread waits
/// with a peer's SendLock held, a drain releases its queue even when an exception passes through it, and a pipeline
/// thread that dies faults the device instead of leaving it running without a stage.
/// </summary>
public sealed class DeviceLivenessTests
{
    private static readonly TimeSpan Timeout = TimeSpan.FromSeconds(20);

    // ---- staged count (issue 7 item 5) ----

    [Fact]
    public void StagingOverflow_ManyTimes_StagedCountReturnsToZeroAndNewSessionGetsItsFirstPacket()
    {
        var network = new InMemoryNetwork(21) { DropRate = 1 }; // no handshake completes: everything is staged
        var options = new WireGuardDeviceOptions { CryptoWorkers = 0, BufferBudgetBytes = 64 * 2048, StagedPacketsPerPeer = 128, Clock = new DeviceClock(10) };
        using var pair = NodePair.InMemory(network, options);
        var cap = pair.A.Device.BufferPool.MaxBuffers / 4;
        const int Count = 400;

        // Every packet past the cap goes through the overflow path (the peer's oldest staged packet makes room).
        for (var i = 0; i < Count; i += 20)
        {
            var packets = new byte[20][];
            for (var j = 0; j < packets.Length; j++)
            {
                packets[j] = TestPackets.Udp("10.0.0.1", "10.0.0.2", (uint)(i + j));
            }

            pair.A.Send(packets);
        }

        DeviceTests.WaitFor(() => pair.A.Device.Counters[DropReason.StagedOverflow] == Count - cap);
        Assert.Equal(cap, pair.A.Device.StagedTotal);

        // The handshake completes: the newest `cap` packets go out and nothing counts as staged any more.
        network.DropRate = 0;
        var got = pair.B.Receive(cap, Timeout);
        Assert.Equal(cap, got.Count);
        Assert.Equal((uint)(Count - cap), TestPackets.Sequence(got[0]));
        DeviceTests.WaitFor(() => pair.A.Device.StagedTotal == 0);

        // A new session (the peer removed and added again) still gets its first packet through staging.
        pair.A.Set($"public_key={pair.B.PublicHex}\nremove=true\n");
        Assert.Equal(0, pair.A.Device.StagedTotal);
        pair.A.Set($"public_key={pair.B.PublicHex}\nendpoint=192.0.2.2:{pair.B.Port}\nallowed_ip=10.0.0.2/32\n");
        var first = TestPackets.Udp("10.0.0.1", "10.0.0.2", 100_000);
        pair.A.Send(first);
        var arrived = pair.B.Receive(1, Timeout);
        Assert.Single(arrived);
        Assert.Equal(first, arrived[0]);
        DeviceTests.WaitFor(() => pair.A.Device.StagedTotal == 0);
    }

    [Fact]
    public void StagingRacesPeerRemoval_ManyIterations_StagedCountAndBuffersBalance()
    {
        var network = new InMemoryNetwork(22) { DropRate = 1 };
        var options = new WireGuardDeviceOptions { CryptoWorkers = 2, BufferBudgetBytes = 128 * 2048, StagedPacketsPerPeer = 64, Clock = new DeviceClock(10) };
        using var pair = NodePair.InMemory(network, options);
        var device = pair.A.Device;

        pair.A.Send(TestPackets.Udp("10.0.0.1", "10.0.0.2", 0));
        DeviceTests.WaitFor(() => device.StagedTotal == 1);
        pair.A.Set($"public_key={pair.B.PublicHex}\nremove=true\n");
        DeviceTests.WaitFor(() => device.StagedTotal == 0);

        var stop = 0;
        var sender = new Thread(() =>
        {
            var seq = 0u;
            while (Volatile.Read(ref stop) == 0)
            {
                var packets = new byte[16][];
                for (var j = 0; j < packets.Length; j++)
                {
                    packets[j] = TestPackets.Udp("10.0.0.1", "10.0.0.2", seq++);
                }

                pair.A.Send(packets);
            }
        });
        sender.Start();
        try
        {
            // At least 300 rounds, and on until the staging ring has overflowed at least once (a loaded machine may not
            // schedule the sender inside the first rounds' windows: CI once ran all 300 in 40 ms without an overflow).
            var racing = Stopwatch.StartNew();
            for (var i = 0; i < 300 || (device.Counters[DropReason.StagedOverflow] == 0 && racing.Elapsed < Timeout); i++)
            {
                pair.A.Set($"public_key={pair.B.PublicHex}\nendpoint=192.0.2.2:{pair.B.Port}\nallowed_ip=10.0.0.2/32\n");
                Thread.Yield();
                pair.A.Set($"public_key={pair.B.PublicHex}\nremove=true\n");
            }
        }
        finally
        {
            Volatile.Write(ref stop, 1);
            sender.Join();
        }

        // Without the peer nothing can be staged: every staged packet was dropped.
        DeviceTests.WaitFor(() => pair.A.Tun.Pending == 0);
        var sw = Stopwatch.StartNew();
        while (device.StagedTotal != 0 && sw.Elapsed < Timeout)
        {
            Thread.Sleep(5);
        }

        Assert.True(device.StagedTotal == 0, $"staged count {device.StagedTotal} with no peer");
        Assert.True(device.Counters[DropReason.StagedOverflow] > 0, "the overflow path was not exercised");
        Assert.False(device.Completion.IsCompleted);

        // Once the threads stop (they return the buffers they hold), every buffer is back in the pool: none leaked
        // into the staging ring of a removed peer.
        pair.A.Dispose();
        sw.Restart();
        while (device.BufferPool.InUse != 0 && sw.Elapsed < Timeout)
        {
            Thread.Sleep(5);
        }

        Assert.True(device.BufferPool.InUse == 0, $"{device.BufferPool.InUse} buffers still in use after dispose");
    }

    // ---- no wait under SendLock (issue 7 item 6) ----

    [Fact]
    public void ResponderFlush_MoreStagedThanOutboundQueueHolds_SingleCryptoWorkerDoesNotStall()
    {
        var network = new InMemoryNetwork(23);
        var bindsA = new FaultyBindFactory(network.CreateFactory(UdpEndpoint.Parse("192.0.2.1:0")));
        var bindsB = new FaultyBindFactory(network.CreateFactory(UdpEndpoint.Parse("192.0.2.2:0")));

        // B has one crypto worker: it is also the only thread that can encrypt what fills B's Outbound queue (16
        // elements). A has default queues, so it takes B's burst.
        using var a = new TestNode("a", bindsA);
        using var b = new TestNode("b", bindsB, new WireGuardDeviceOptions { CryptoWorkers = 1, PeerQueueCapacity = 16, StagedPacketsPerPeer = 128 });
        Configure(a, b);
        const int Staged = 100;

        // A initiates; its transport data and B's own initiations are lost, so B stays a responder whose keypair
        // waits for A's first transport packet (whitepaper §5.4.7 note: the responder may not send first) and stages.
        bindsA.DropTypes = 1 << 4;
        bindsB.DropTypes = 1 << 1;
        a.Send(TestPackets.Udp("10.0.0.1", "10.0.0.2", 0));
        DeviceTests.WaitFor(() => a.PeerState(b.PublicKey)!.LastHandshakeUnixNanoseconds != 0);
        var packets = new byte[Staged][];
        for (var i = 0; i < Staged; i++)
        {
            packets[i] = TestPackets.Udp("10.0.0.2", "10.0.0.1", (uint)(1000 + i));
        }

        b.Send(packets);
        DeviceTests.WaitFor(() => b.Device.StagedTotal == Staged);

        // A's next packet confirms B's keypair on B's crypto worker, which then flushes 100 packets into a queue of 16.
        bindsA.DropTypes = 0;
        bindsB.DropTypes = 0;
        a.Send(TestPackets.Udp("10.0.0.1", "10.0.0.2", 1));
        var got = a.Receive(Staged, Timeout);

        var peerB = b.Device.FindPeer(a.PublicKey)!;
        Assert.True(Staged == got.Count, $"{got.Count} arrived; B: {b.Device.Counters}, staged {b.Device.StagedTotal}, outbound {peerB.Outbound.Count}");
        for (var i = 0; i < Staged; i++)
        {
            Assert.Equal((uint)(1000 + i), TestPackets.Sequence(got[i]));
        }

        Assert.Equal(0, b.Device.Counters[DropReason.BufferBudget]);
        Assert.Equal(0, b.Device.StagedTotal);
    }

    [Theory]
    [InlineData(1000, 2)] // encrypted and sent by the crypto workers: the queue fills and the TUN reader waits for room
    [InlineData(8, 2)]    // small enough for the TUN reader to encrypt and send itself: it blocks in the send
    [InlineData(1000, 0)] // no workers (the default on two cores): the TUN reader encrypts and sends all, and blocks in the send
    public void OutboundQueueFull_TunReaderWaitsForRoom_WithoutHoldingSendLock(int payloadLength, int cryptoWorkers)
    {
        // The peer's sends block (a full socket buffer): its Outbound queue fills and the TUN reader waits for room, or
        // (small packets, WireGuardDevice.InlineCryptoMaxLength, or no workers) the reader is the sender and waits in the send, as
        // every sender on that socket would. Either way it must wait without the peer's SendLock, which UAPI (peer
        // removal) and crypto workers (flushing staged packets after a handshake) take: they would stall behind the
        // reader for a second per packet.
        var inline = cryptoWorkers == 0 || payloadLength + 28 <= WireGuardDevice.InlineCryptoMaxLength;
        var network = new InMemoryNetwork(24);
        var blocking = new BlockingBindFactory(network.CreateFactory(UdpEndpoint.Parse("192.0.2.1:0")));
        var options = new WireGuardDeviceOptions { CryptoWorkers = cryptoWorkers, PeerQueueCapacity = 16 };
        using var pair = new NodePair(blocking, network.CreateFactory(UdpEndpoint.Parse("192.0.2.2:0")), "192.0.2.1", "192.0.2.2", options);
        pair.Ping(0);
        var peer = pair.A.Device.FindPeer(pair.B.PublicKey)!;

        blocking.Block();
        try
        {
            var packets = new byte[64][];
            for (var i = 0; i < packets.Length; i++)
            {
                packets[i] = TestPackets.Udp("10.0.0.1", "10.0.0.2", (uint)(10 + i), payloadLength);
            }

            pair.A.Send(packets);
            if (inline)
            {
                DeviceTests.WaitFor(() => blocking.Blocked > 0);
            }
            else
            {
                DeviceTests.WaitFor(() => peer.Outbound.Count == 16 && peer.Outbound.Waiters > 0);
            }

            for (var i = 0; i < 10; i++)
            {
                Assert.True(peer.SendLock.TryEnter(TimeSpan.FromMilliseconds(300)), "the TUN reader waits with SendLock held");
                peer.SendLock.Exit();
                Assert.True(inline || peer.Outbound.Waiters > 0 || peer.Outbound.Count < 16);
            }
        }
        finally
        {
            blocking.Unblock();
        }

        // The queued packets go out, then the tunnel works as before.
        DeviceTests.WaitFor(() => pair.A.Tun.Pending == 0 && peer.Outbound.Count == 0);
        Thread.Sleep(100);
        pair.B.ReceivePending();
        pair.Ping(1000);
    }

    // ---- drains release in finally; send/write errors are counted drops (issue 7 item 8) ----

    [Fact]
    public void BindSendThrowsIOException_InsideOutboundDrain_PeerQueueKeepsFlowing()
    {
        var network = new InMemoryNetwork(25);
        var bindsA = new FaultyBindFactory(network.CreateFactory(UdpEndpoint.Parse("192.0.2.1:0")));
        using var pair = new NodePair(bindsA, network.CreateFactory(UdpEndpoint.Parse("192.0.2.2:0")), "192.0.2.1", "192.0.2.2");
        pair.Ping(0);

        bindsA.SendFault = new IOException("sendmmsg failed: errno 105");
        pair.A.Send(TestPackets.Udp("10.0.0.1", "10.0.0.2", 1)); // its batch is lost to the fault
        DeviceTests.WaitFor(() => !bindsA.SendFaultPending);

        for (var i = 2u; i < 12; i++)
        {
            var p = TestPackets.Udp("10.0.0.1", "10.0.0.2", i);
            pair.A.Send(p);
            var got = pair.B.Receive(1, Timeout);
            Assert.True(got.Count == 1, $"packet {i} never arrived: the peer's outbound queue is wedged");
            Assert.Equal(p, got[0]);
        }

        Assert.True(pair.A.Device.Counters[DropReason.SendFailed] >= 1);
        Assert.False(pair.A.Device.Completion.IsCompleted);
    }

    [Fact]
    public void BindSendThrowsIOException_OnHandshakeInitiation_TimerThreadLivesAndRetries()
    {
        var network = new InMemoryNetwork(31);
        var bindsA = new FaultyBindFactory(network.CreateFactory(UdpEndpoint.Parse("192.0.2.1:0")));
        var options = new WireGuardDeviceOptions { CryptoWorkers = 2, Clock = new DeviceClock(10) };
        using var pair = new NodePair(bindsA, network.CreateFactory(UdpEndpoint.Parse("192.0.2.2:0")), "192.0.2.1", "192.0.2.2", options);

        // The first datagram A sends is its initiation (sent by the timer thread): it fails; the retry (RekeyTimeout) goes.
        bindsA.SendFault = new IOException("sendmmsg failed: errno 105");
        var p = TestPackets.Udp("10.0.0.1", "10.0.0.2", 1);
        pair.A.Send(p);
        var got = pair.B.Receive(1, Timeout);

        Assert.False(bindsA.SendFaultPending);
        Assert.True(got.Count == 1, "the staged packet never went out: the handshake was not retried");
        Assert.Equal(p, got[0]);
        Assert.True(pair.A.Device.Counters[DropReason.SendFailed] >= 1);
        Assert.False(pair.A.Device.Completion.IsCompleted);
    }

    [Fact]
    public void PacketDeviceWriteThrowsIOException_InsideInboundDrain_PeerQueueKeepsFlowing()
    {
        var network = new InMemoryNetwork(26);
        FaultyPacketDevice? faultyB = null;
        using var a = new TestNode("a", network.CreateFactory(UdpEndpoint.Parse("192.0.2.1:0")));
        using var b = new TestNode("b", network.CreateFactory(UdpEndpoint.Parse("192.0.2.2:0")), wrapTun: t => faultyB = new FaultyPacketDevice(t));
        Configure(a, b);
        var first = TestPackets.Udp("10.0.0.1", "10.0.0.2", 0);
        a.Send(first);
        Assert.Single(b.Receive(1, Timeout));

        faultyB!.WriteFault = new IOException("write to tun failed: errno 105");
        a.Send(TestPackets.Udp("10.0.0.1", "10.0.0.2", 1)); // its batch is lost to the fault
        DeviceTests.WaitFor(() => !faultyB.WriteFaultPending);

        for (var i = 2u; i < 12; i++)
        {
            var p = TestPackets.Udp("10.0.0.1", "10.0.0.2", i);
            a.Send(p);
            var got = b.Receive(1, Timeout);
            Assert.True(got.Count == 1, $"packet {i} never arrived: the peer's inbound queue is wedged");
            Assert.Equal(p, got[0]);
        }

        Assert.True(b.Device.Counters[DropReason.TunWriteFailed] >= 1);
        Assert.False(b.Device.Completion.IsCompleted);
    }

    // ---- a dead stage faults the device (issue 7 item 8) ----

    [Fact]
    public void PacketDeviceReadThrows_DeviceCompletesFaultedAndLogsError()
    {
        var (tun, host) = InMemoryPacketDevice.CreatePair(1420);
        using var _ = host;
        var fault = new IOException("read from tun failed: errno 1234");
        var faulty = new FaultyPacketDevice(tun) { ReadFault = fault };
        var log = new CapturingLogger { MinimumLevel = Microsoft.Extensions.Logging.LogLevel.Error };
        using var device = new WireGuardDevice(faulty, new InMemoryNetwork(27).CreateFactory(UdpEndpoint.Parse("192.0.2.1:0")), new WireGuardDeviceOptions { CryptoWorkers = 1 }, log);

        AssertFaulted(device, fault);
        var entry = Assert.Single(log.Entries, e => e.Message.EndsWith("failed, the device stops", StringComparison.Ordinal));
        Assert.Same(fault, entry.Exception);
        Assert.Contains("errno 1234", entry.AllText, StringComparison.Ordinal);
        tun.Dispose();
    }

    [Fact]
    public void BindReceiveThrows_DeviceCompletesFaulted()
    {
        var (tun, host) = InMemoryPacketDevice.CreatePair(1420);
        using var _ = host;
        var fault = new IOException("recvmmsg failed: errno 1234");
        var binds = new FaultyBindFactory(new InMemoryNetwork(28).CreateFactory(UdpEndpoint.Parse("192.0.2.1:0"))) { ReceiveFault = fault };
        using var device = new WireGuardDevice(tun, binds, new WireGuardDeviceOptions { CryptoWorkers = 1 });

        AssertFaulted(device, fault);
        tun.Dispose();
    }

    [Fact]
    public void BindSendThrowsUnexpectedException_InsideDrain_DeviceCompletesFaulted()
    {
        var network = new InMemoryNetwork(29);
        var bindsA = new FaultyBindFactory(network.CreateFactory(UdpEndpoint.Parse("192.0.2.1:0")));
        using var pair = new NodePair(bindsA, network.CreateFactory(UdpEndpoint.Parse("192.0.2.2:0")), "192.0.2.1", "192.0.2.2");
        pair.Ping(0);
        var fault = new InvalidOperationException("a bug in the send path");

        bindsA.SendFault = fault;
        pair.A.Send(TestPackets.Udp("10.0.0.1", "10.0.0.2", 1));

        AssertFaulted(pair.A.Device, fault);
    }

    [Fact]
    public void PacketDeviceClosed_DeviceCompletesWithoutFault()
    {
        var (tun, host) = InMemoryPacketDevice.CreatePair(1420);
        using var _ = host;
        using var device = new WireGuardDevice(tun, new InMemoryNetwork(30).CreateFactory(UdpEndpoint.Parse("192.0.2.1:0")), new WireGuardDeviceOptions { CryptoWorkers = 1 });
        Assert.False(device.Completion.IsCompleted);

        tun.Dispose();

        Assert.True(device.Completion.Wait(Timeout));
        Assert.Null(device.Fault);
    }

    private static void AssertFaulted(WireGuardDevice device, Exception fault)
    {
        Assert.True(((IAsyncResult)device.Completion).AsyncWaitHandle.WaitOne(Timeout), "the device did not report the dead stage");
        Assert.True(device.Completion.IsFaulted);
        Assert.Same(fault, device.Fault);
    }

    /// <summary>Configures two nodes as <see cref="NodePair"/> does (A = 10.0.0.1, B = 10.0.0.2, in-memory addresses .1/.2).</summary>
    private static void Configure(TestNode a, TestNode b)
    {
        a.Set($"private_key={a.PrivateHex}\npublic_key={b.PublicHex}\nendpoint=192.0.2.2:{b.Port}\nallowed_ip=10.0.0.2/32\n");
        b.Set($"private_key={b.PrivateHex}\npublic_key={a.PublicHex}\nendpoint=192.0.2.1:{a.Port}\nallowed_ip=10.0.0.1/32\n");
    }
}

/// <summary>Binds whose transport-data sends block while <see cref="Block"/> is in force (a full socket send buffer).</summary>
internal sealed class BlockingBindFactory(IDatagramBindFactory inner) : IDatagramBindFactory
{
    private readonly ManualResetEventSlim _open = new(true);
    private int _blocked;

    public int Blocked => Volatile.Read(ref _blocked);

    public void Block() => _open.Reset();

    public void Unblock() => _open.Set();

    public IDatagramBind Open(ushort port) => new Bind(this, inner.Open(port));

    private sealed class Bind(BlockingBindFactory owner, IDatagramBind inner) : IDatagramBind
    {
        public ushort LocalPort => inner.LocalPort;

        public int BatchSize => inner.BatchSize;

        public int Receive(byte[][] buffers, Span<int> sizes, Span<UdpEndpoint> endpoints) => inner.Receive(buffers, sizes, endpoints);

        public int Send(byte[][] buffers, ReadOnlySpan<int> sizes, int offset, int count, in UdpEndpoint destination)
        {
            if (count > 0 && buffers[0][offset] == 4 && !owner._open.IsSet)
            {
                Interlocked.Increment(ref owner._blocked);
                owner._open.Wait();
            }

            return inner.Send(buffers, sizes, offset, count, destination);
        }

        public void SetMark(uint fwmark) => inner.SetMark(fwmark);

        public void Dispose() => inner.Dispose();
    }
}
