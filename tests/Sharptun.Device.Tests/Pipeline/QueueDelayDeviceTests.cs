using Sharptun.Device.Pipeline;
using Sharptun.Testing;
using Sharptun.Transport;

namespace Sharptun.Device.Tests.Pipeline;

/// <summary>
/// The queue delay limit (CoDel on each peer's ordered queues) in whole devices: a slow outer link or a slow packet
/// device makes packets stand in the queue; with the limit on, the device drops some early (counted as
/// <see cref="DropReason.QueueDelay"/>) and never reorders what it delivers; with it off, it drops none of them.
/// </summary>
[Collection(nameof(DeviceLoadTests))]
public sealed class QueueDelayDeviceTests
{
    private const int Packets = 3000;

    [Theory]
    [InlineData(true)]
    [InlineData(false)]
    public void SlowLink_OutboundQueueDelayBounded_DropsCountedAndOrderKept(bool limit)
    {
        var network = new InMemoryNetwork(31);
        var options = new WireGuardDeviceOptions
        {
            CryptoWorkers = 1,
            QueueDelayTarget = limit ? TimeSpan.FromMilliseconds(1) : TimeSpan.Zero,
            QueueDelayInterval = TimeSpan.FromMilliseconds(10),
        };
        var slowA = new SlowBindFactory(network.CreateFactory(UdpEndpoint.Parse("192.0.2.1:0")), sendDelayMs: 2);
        using var pair = new NodePair(slowA, network.CreateFactory(UdpEndpoint.Parse("192.0.2.2:0")), "192.0.2.1", "192.0.2.2", options);
        Handshake(pair);

        slowA.Enabled = true;
        var got = SendAndCollect(pair, out var sequences);
        var dropped = pair.A.Device.Counters[DropReason.QueueDelay];

        AssertIncreasing(sequences);
        if (limit)
        {
            Assert.True(dropped > 0, $"no queue-delay drops although packets waited behind a 2 ms-per-batch link ({got} of {Packets} arrived)");
            Assert.Equal(Packets, got + dropped + pair.B.Device.Counters[DropReason.BufferBudget]);
        }
        else
        {
            Assert.Equal(0, dropped);
        }
    }

    [Theory]
    [InlineData(true)]
    [InlineData(false)]
    public void SlowPacketDevice_InboundQueueDelayBounded_DropsCountedAndOrderKept(bool limit)
    {
        var network = new InMemoryNetwork(32);
        var options = new WireGuardDeviceOptions
        {
            CryptoWorkers = 1,
            QueueDelayTarget = limit ? TimeSpan.FromMilliseconds(1) : TimeSpan.Zero,
            QueueDelayInterval = TimeSpan.FromMilliseconds(10),
        };
        SlowWritePacketDevice? slowTun = null;
        var a = new TestNode("a", network.CreateFactory(UdpEndpoint.Parse("192.0.2.1:0")), options);
        var b = new TestNode("b", network.CreateFactory(UdpEndpoint.Parse("192.0.2.2:0")), options, wrapTun: tun => slowTun = new SlowWritePacketDevice(tun, writeDelayMs: 2));
        try
        {
            a.Set($"private_key={a.PrivateHex}\npublic_key={b.PublicHex}\nendpoint=192.0.2.2:{b.Port}\nallowed_ip=10.0.0.2/32\n");
            b.Set($"private_key={b.PrivateHex}\npublic_key={a.PublicHex}\nendpoint=192.0.2.1:{a.Port}\nallowed_ip=10.0.0.1/32\n");
            a.Send(TestPackets.Udp("10.0.0.1", "10.0.0.2", 0));
            Assert.Single(b.Receive(1, NodePair.Timeout));

            slowTun!.Enabled = true;
            var sequences = new List<uint>();
            for (uint s = 1; s <= Packets; s += 100)
            {
                var burst = Enumerable.Range(0, 100).Select(i => TestPackets.Udp("10.0.0.1", "10.0.0.2", s + (uint)i, 1200)).ToArray();
                a.Send(burst);
                Thread.Sleep(1);
            }

            var deadline = DateTime.UtcNow + NodePair.Timeout;
            while (DateTime.UtcNow < deadline)
            {
                var batch = b.Receive(Packets, TimeSpan.FromMilliseconds(500));
                sequences.AddRange(batch.Select(p => TestPackets.Sequence(p)));
                if (batch.Count == 0)
                {
                    break; // quiet for half a second: everything that will arrive has arrived
                }
            }

            AssertIncreasing(sequences);
            var dropped = b.Device.Counters[DropReason.QueueDelay];
            if (limit)
            {
                Assert.True(dropped > 0, $"no queue-delay drops although packets waited behind a 2 ms-per-batch TUN ({sequences.Count} of {Packets} arrived)");
            }
            else
            {
                Assert.Equal(0, dropped);
            }
        }
        finally
        {
            a.Dispose();
            b.Dispose();
        }
    }

    private static void Handshake(NodePair pair)
    {
        pair.A.Send(TestPackets.Udp("10.0.0.1", "10.0.0.2", 0));
        Assert.Single(pair.B.Receive(1, NodePair.Timeout));
    }

    /// <summary>Sends <see cref="Packets"/> numbered 1200-byte packets A → B in bursts of 100; returns how many arrived.</summary>
    private static int SendAndCollect(NodePair pair, out List<uint> sequences)
    {
        sequences = [];
        for (uint s = 1; s <= Packets; s += 100)
        {
            var burst = Enumerable.Range(0, 100).Select(i => TestPackets.Udp("10.0.0.1", "10.0.0.2", s + (uint)i, 1200)).ToArray();
            pair.A.Send(burst);
        }

        var deadline = DateTime.UtcNow + NodePair.Timeout;
        while (DateTime.UtcNow < deadline)
        {
            var batch = pair.B.Receive(Packets, TimeSpan.FromMilliseconds(500));
            sequences.AddRange(batch.Select(p => TestPackets.Sequence(p)));
            if (batch.Count == 0)
            {
                break;
            }
        }

        return sequences.Count;
    }

    private static void AssertIncreasing(List<uint> sequences)
    {
        Assert.NotEmpty(sequences);
        for (var i = 1; i < sequences.Count; i++)
        {
            Assert.True(sequences[i] > sequences[i - 1], $"reordered at {i}: {sequences[i - 1]} then {sequences[i]}");
        }
    }

    /// <summary>A bind whose sends take <c>sendDelayMs</c> per call once <see cref="Enabled"/>: a slow outer link.</summary>
    private sealed class SlowBindFactory(IDatagramBindFactory inner, int sendDelayMs) : IDatagramBindFactory
    {
        public volatile bool Enabled;

        public int SendDelayMs => sendDelayMs;

        public IDatagramBind Open(ushort port) => new SlowBind(this, inner.Open(port));

        private sealed class SlowBind(SlowBindFactory owner, IDatagramBind inner) : IDatagramBind
        {
            public ushort LocalPort => inner.LocalPort;

            public int BatchSize => inner.BatchSize;

            public int Receive(byte[][] buffers, Span<int> sizes, Span<UdpEndpoint> endpoints) => inner.Receive(buffers, sizes, endpoints);

            public int Send(byte[][] buffers, ReadOnlySpan<int> sizes, int offset, int count, in UdpEndpoint destination)
            {
                if (owner.Enabled)
                {
                    Thread.Sleep(owner.SendDelayMs);
                }

                return inner.Send(buffers, sizes, offset, count, destination);
            }

            public void SetMark(uint fwmark) => inner.SetMark(fwmark);

            public void Dispose() => inner.Dispose();
        }
    }

    /// <summary>A packet device whose writes take <c>writeDelayMs</c> per call once <see cref="Enabled"/>: a slow consumer of decrypted packets.</summary>
    private sealed class SlowWritePacketDevice(IPacketDevice inner, int writeDelayMs) : IPacketDevice
    {
        public volatile bool Enabled;

        public string Name => inner.Name;

        public int Mtu => inner.Mtu;

        public int BatchSize => inner.BatchSize;

        public int Read(byte[][] buffers, Span<int> sizes, int offset) => inner.Read(buffers, sizes, offset);

        public int Write(byte[][] buffers, ReadOnlySpan<int> sizes, int offset, int count)
        {
            if (Enabled)
            {
                Thread.Sleep(writeDelayMs);
            }

            return inner.Write(buffers, sizes, offset, count);
        }

        public void Dispose() => inner.Dispose();
    }
}
