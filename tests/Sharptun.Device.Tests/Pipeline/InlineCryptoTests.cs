using System.Collections.Concurrent;
using Sharptun.Device.Pipeline;
using Sharptun.Testing;
using Sharptun.Transport;

namespace Sharptun.Device.Tests.Pipeline;

/// <summary>
/// Packets of at most <see cref="WireGuardDevice.InlineCryptoMaxLength"/> bytes are decrypted by the UDP receiver that
/// read them (a pure TCP ACK is not worth a worker's wake-up); larger ones by the crypto workers, or by the receiver too
/// when there are none (the default on one or two cores). Either way each peer's packets reach the TUN in the order
/// they were sent.
/// </summary>
public sealed class InlineCryptoTests
{
    [Fact]
    public void SmallPackets_AreDecryptedByTheReceiver_LargeOnesByTheWorkers_AndAllArriveInOrder()
    {
        using var pair = new RecordingPair(seed: 7, cryptoWorkers: 2);

        // small: a 36-byte packet travels as an 80-byte datagram (header, padded to 48, tag)
        Assert.All(OneAtATime(pair, payloadLength: 8), thread => Assert.Equal("wg-udp-receiver", thread));

        // large: one at a time, so no small packet of the same read drains it first
        Assert.All(OneAtATime(pair, payloadLength: 1200), thread => Assert.StartsWith("wg-crypto-", thread));

        // mixed, in batches: every packet arrives, in order, whichever thread decrypted it and whichever drained it
        MixedStreamArrivesInOrder(pair);
    }

    [Fact]
    public void WithoutWorkers_TheReceiverDecryptsEveryPacket_AndAllArriveInOrder()
    {
        using var pair = new RecordingPair(seed: 8, cryptoWorkers: 0);

        Assert.All(OneAtATime(pair, payloadLength: 8), thread => Assert.Equal("wg-udp-receiver", thread));
        Assert.All(OneAtATime(pair, payloadLength: 1200), thread => Assert.Equal("wg-udp-receiver", thread));
        MixedStreamArrivesInOrder(pair);
        Assert.All(pair.Writers, w => Assert.Equal("wg-udp-receiver", w.Thread));
    }

    [Theory]
    [InlineData(1, 0)]
    [InlineData(2, 0)]
    [InlineData(3, 3)]
    [InlineData(4, 4)]
    [InlineData(64, 64)]
    public void DefaultCryptoWorkers_NoneOnOneOrTwoCores_OnePerCoreAbove(int cores, int workers)
    {
        Assert.Equal(workers, WireGuardDeviceOptions.DefaultCryptoWorkers(cores));
    }

    [Fact]
    public void DefaultOptions_FollowTheMachinesCoreCount()
    {
        Assert.Equal(WireGuardDeviceOptions.DefaultCryptoWorkers(Environment.ProcessorCount), new WireGuardDeviceOptions().CryptoWorkers);
    }

    /// <summary>256 packets, a third of them 1,200 bytes and the rest 8, sent in one batch: all arrive, in order.</summary>
    private static void MixedStreamArrivesInOrder(RecordingPair pair)
    {
        var (a, b) = (pair.A, pair.B);
        var packets = new List<byte[]>();
        for (uint i = 0; i < 256; i++)
        {
            packets.Add(TestPackets.Udp("10.0.0.1", "10.0.0.2", i, payloadLength: i % 3 == 0 ? 1200 : 8));
        }

        a.Send([.. packets]);
        var arrived = b.Receive(packets.Count, NodePair.Timeout);
        Assert.Equal(packets.Count, arrived.Count);
        for (var i = 0; i < packets.Count; i++)
        {
            Assert.Equal(packets[i], arrived[i]);
        }
    }

    /// <summary>Sends 40 packets from A to B, each after the last arrived, and returns the threads that wrote them to B's TUN.</summary>
    private static string[] OneAtATime(RecordingPair pair, int payloadLength)
    {
        const int count = 40;
        var (a, b, writers) = (pair.A, pair.B, pair.Writers);
        writers.Clear();
        for (uint i = 1; i <= count; i++)
        {
            a.Send(TestPackets.Udp("10.0.0.1", "10.0.0.2", i, payloadLength));
            Assert.Single(b.Receive(1, NodePair.Timeout));
        }

        var threads = writers.Select(w => w.Thread).ToArray();
        writers.Clear();
        Assert.Equal(count, threads.Length);
        return threads;
    }

    /// <summary>
    /// Two nodes on an in-memory network with <paramref name="cryptoWorkers"/> workers each, B's TUN writes recorded in
    /// <see cref="Writers"/>, the handshake done (its staged packet flushes from the handshake path, not from a read).
    /// </summary>
    private sealed class RecordingPair : IDisposable
    {
        public RecordingPair(int seed, int cryptoWorkers)
        {
            var network = new InMemoryNetwork(seed);
            var options = new WireGuardDeviceOptions { CryptoWorkers = cryptoWorkers };
            A = new TestNode("a", network.CreateFactory(UdpEndpoint.Parse("192.0.2.1:0")), options);
            B = new TestNode("b", network.CreateFactory(UdpEndpoint.Parse("192.0.2.2:0")), options, wrapTun: tun => new ThreadRecordingDevice(tun, Writers));
            A.Set($"private_key={A.PrivateHex}\npublic_key={B.PublicHex}\nendpoint=192.0.2.2:{B.Port}\nallowed_ip=10.0.0.2/32\n");
            B.Set($"private_key={B.PrivateHex}\npublic_key={A.PublicHex}\nendpoint=192.0.2.1:{A.Port}\nallowed_ip=10.0.0.1/32\n");
            A.Send(TestPackets.Udp("10.0.0.1", "10.0.0.2", 0, payloadLength: 8));
            Assert.Single(B.Receive(1, NodePair.Timeout));
            Writers.Clear();
        }

        public TestNode A { get; }

        public TestNode B { get; }

        public ConcurrentQueue<(int Size, string Thread)> Writers { get; } = new();

        public void Dispose()
        {
            A.Dispose();
            B.Dispose();
        }
    }

    /// <summary>Records the size of each packet written to the TUN and the name of the thread that wrote it.</summary>
    private sealed class ThreadRecordingDevice(IPacketDevice inner, ConcurrentQueue<(int Size, string Thread)> writers) : IPacketDevice
    {
        public string Name => inner.Name;

        public int Mtu => inner.Mtu;

        public int BatchSize => inner.BatchSize;

        public int Read(byte[][] buffers, Span<int> sizes, int offset) => inner.Read(buffers, sizes, offset);

        public int Write(byte[][] buffers, ReadOnlySpan<int> sizes, int offset, int count)
        {
            for (var i = 0; i < count; i++)
            {
                writers.Enqueue((sizes[i], Thread.CurrentThread.Name ?? "?"));
            }

            return inner.Write(buffers, sizes, offset, count);
        }

        public void Dispose() => inner.Dispose();
    }
}
