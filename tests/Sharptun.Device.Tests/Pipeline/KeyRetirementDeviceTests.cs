using Sharptun.Device.Pipeline;
using Sharptun.Protocol;
using System.Buffers.Binary;
using System.Diagnostics;
using Sharptun.Crypto;
using Sharptun.Testing;
using Sharptun.Transport;

namespace Sharptun.Device.Tests.Pipeline;

/// <summary>
/// Issue 7 item 1 at device level: packets that wait in the outbound and crypto queues when their keypair is retired
/// (peer removal, replace_peers, a new private key) are dropped and counted — never sent sealed under a wiped key.
/// </summary>
public sealed class KeyRetirementDeviceTests
{
    private static readonly byte[] ZeroKey = new byte[ChaChaPoly.KeySize];

    /// <summary>
    /// Each trigger with one crypto worker (the crypto stage is the bottleneck, so packets wait in its queue) and with none
    /// (the default on one or two cores: the TUN reader encrypts its read while the UAPI thread retires the keypair).
    /// </summary>
    public static TheoryData<string, int> Triggers => new()
    {
        { "remove", 1 }, { "replace_peers", 1 }, { "private_key", 1 },
        { "remove", 0 }, { "replace_peers", 0 }, { "private_key", 0 },
    };

    [Theory]
    [MemberData(nameof(Triggers))]
    public void KeyChange_WhileTrafficFlows_NoDatagramLeavesSealedUnderAZeroKey(string trigger, int cryptoWorkers)
    {
        // At least 4 rounds; more (up to 24) while no round has caught a packet waiting on the retiring keypair: on a
        // loaded machine the scheduler can let the crypto stage drain the queue just before the change.
        const int rounds = 4;
        const int maxRounds = 24;
        long retiredDrops = 0;
        long transportDatagrams = 0;
        for (var round = 0; round < rounds || (retiredDrops == 0 && round < maxRounds); round++)
        {
            var network = new InMemoryNetwork(seed: round);
            var recorder = new RecordingBindFactory(network.CreateFactory(UdpEndpoint.Parse("192.0.2.1:0")));
            using var pair = new NodePair(recorder, network.CreateFactory(UdpEndpoint.Parse("192.0.2.2:0")), "192.0.2.1", "192.0.2.2",
                new WireGuardDeviceOptions { CryptoWorkers = cryptoWorkers });
            pair.Ping(1);

            // Flood A → B so the outbound and crypto queues stay full, then change the keys under the traffic.
            var stop = 0;
            var flood = new Thread(() =>
            {
                uint seq = 100;
                while (Volatile.Read(ref stop) == 0)
                {
                    var packets = new byte[64][];
                    for (var i = 0; i < packets.Length; i++)
                    {
                        packets[i] = TestPackets.Udp("10.0.0.1", "10.0.0.2", seq++, 1300);
                    }

                    pair.A.Send(packets);
                    pair.B.ReceivePending(); // keep B's host side drained
                }
            });
            flood.Start();
            SpinWait.SpinUntil(() => recorder.TransportCount > 500, TimeSpan.FromSeconds(30));
            switch (trigger)
            {
                case "remove":
                    pair.A.Set($"public_key={pair.B.PublicHex}\nremove=true\n");
                    break;
                case "replace_peers":
                    pair.A.Set($"replace_peers=true\npublic_key={Key.GeneratePrivateKey().DerivePublicKey().ToHex()}\nallowed_ip=10.9.0.0/16\n");
                    break;
                default:
                    pair.A.Set($"private_key={Key.GeneratePrivateKey().ToHex()}\n");
                    break;
            }

            Thread.Sleep(100); // traffic keeps coming after the change (it has no route or no session now)
            Volatile.Write(ref stop, 1);
            flood.Join();
            WaitForQuiet(recorder);

            Assert.True(recorder.TransportCount > 500, "the flood never got going");
            Assert.Equal(0, recorder.ZeroKeyCount); // transport datagrams that left sealed under the all-zero key

            retiredDrops += pair.A.Device.Counters[DropReason.KeypairRetired];
            transportDatagrams += recorder.TransportCount;
        }

        // The flood keeps the queues full, so packets holding the old keypair are always waiting when it retires: they
        // must have been dropped (and counted), which also shows the race was exercised.
        Console.WriteLine($"{trigger}, {cryptoWorkers} workers: {transportDatagrams} transport datagrams, {retiredDrops} dropped as KeypairRetired");
        Assert.True(retiredDrops > 0, "no packet was waiting when the keypair retired: the race was not exercised");
    }

    [Fact]
    public void ClearingThePrivateKey_WipesItInsideTheProtocolCore()
    {
        var network = new InMemoryNetwork();
        using var pair = NodePair.InMemory(network);
        pair.Ping(1);
        var core = pair.A.Device.ProtocolForTest;
        Assert.True(core.HasPrivateKey);

        pair.A.Set($"private_key={new string('0', 64)}\n");

        Assert.False(core.HasPrivateKey);
        Assert.True(core.PrivateKey.IsZero, "the cleared private key is still inside the protocol core");
        Assert.Null(pair.A.Device.PublicKey);
        Assert.Equal(0, core.ActiveIndexCount);
    }

    private static void WaitForQuiet(RecordingBindFactory recorder)
    {
        var last = -1L;
        var sw = Stopwatch.StartNew();
        while (sw.Elapsed < TimeSpan.FromSeconds(10))
        {
            Thread.Sleep(100);
            var now = recorder.TransportCount;
            if (now == last)
            {
                return;
            }

            last = now;
        }
    }

    private static bool OpensUnderZeroKey(ReadOnlySpan<byte> datagram)
    {
        var counter = BinaryPrimitives.ReadUInt64LittleEndian(datagram[8..]);
        var body = datagram.Slice(16, datagram.Length - 32);
        var plaintext = new byte[body.Length];
        return ChaChaPoly.Decrypt(ZeroKey, counter, body, datagram[^16..], plaintext);
    }

    /// <summary>Wraps a bind factory; every bind it opens records a copy of each transport datagram it sends.</summary>
    private sealed class RecordingBindFactory(IDatagramBindFactory inner) : IDatagramBindFactory
    {
        private long _transportCount;
        private long _zeroKeyCount;

        public long TransportCount => Interlocked.Read(ref _transportCount);

        public long ZeroKeyCount => Interlocked.Read(ref _zeroKeyCount);

        public IDatagramBind Open(ushort port) => new RecordingBind(inner.Open(port), this);

        private sealed class RecordingBind(IDatagramBind inner, RecordingBindFactory owner) : IDatagramBind
        {
            public ushort LocalPort => inner.LocalPort;

            public int BatchSize => inner.BatchSize;

            public int Receive(byte[][] buffers, Span<int> sizes, Span<UdpEndpoint> endpoints) => inner.Receive(buffers, sizes, endpoints);

            public int Send(byte[][] buffers, ReadOnlySpan<int> sizes, int offset, int count, in UdpEndpoint destination)
            {
                for (var i = 0; i < count; i++)
                {
                    var d = buffers[i].AsSpan(offset, sizes[i]);
                    if (d.Length >= 32 && d[0] == 4)
                    {
                        Interlocked.Increment(ref owner._transportCount);
                        if (OpensUnderZeroKey(d))
                        {
                            Interlocked.Increment(ref owner._zeroKeyCount);
                        }
                    }
                }

                return inner.Send(buffers, sizes, offset, count, destination);
            }

            public void SetMark(uint fwmark) => inner.SetMark(fwmark);

            public void Dispose() => inner.Dispose();
        }
    }
}
