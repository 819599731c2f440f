using Sharptun.NetStack.Tcp;
using Sharptun.NetStack.Wire;
using Sharptun.Transport;

namespace Sharptun.NetStack.Tests.Tcp;

/// <summary>
/// Segment sizing (RFC 6691 §2, RFC 9293 §3.7.1): data + options of a segment never exceed the effective send MSS,
/// so no packet exceeds the MTU, also when SACK blocks ride on data segments; and the IP layer drops (never throws on)
/// an oversize packet.
/// </summary>
public sealed class TcpSegmentSizeTests
{
    private static TcpRepr WithOptions(bool timestamps, int sackBlocks)
    {
        var r = new TcpRepr { Flags = TcpFlags.Ack, HasTimestamp = timestamps };
        for (int i = 0; i < sackBlocks; i++)
        {
            r = r.WithSack(i, new SackBlock(new SeqNumber((uint)(i * 100)), new SeqNumber((uint)(i * 100 + 50))));
        }

        return r with { SackCount = sackBlocks };
    }

    [Theory]
    [InlineData(false, 0, 1380)]
    [InlineData(true, 0, 1368)]   // timestamps: 12 option bytes
    [InlineData(true, 1, 1356)]   // + SACK with one block: 4 + 8
    [InlineData(true, 3, 1340)]   // the 40-byte option space full
    [InlineData(false, 4, 1344)]
    public void PayloadRoom_OptionsPresent_ReduceTheDataByTheirLength(bool timestamps, int sackBlocks, int expected)
    {
        Assert.Equal(expected, TcpConnection.PayloadRoom(1380, WithOptions(timestamps, sackBlocks)));
    }

    [Theory]
    [InlineData(1380, 12, 0, 1368, 3)]    // pure ACK with timestamps: the option space limits
    [InlineData(1380, 0, 1380, 1380, 4)]  // no timestamps: four blocks
    [InlineData(1380, 12, 1368, 1368, 3)] // full data segment: blocks still fit, the data shrinks instead
    [InlineData(64, 0, 64, 64, 3)]        // tiny MSS: half a segment of data is kept (64 - 28 = 36 >= 32)
    [InlineData(40, 0, 40, 40, 2)]        // 40 - 20 (kept) = 20 option bytes: two blocks (4 + 16)
    [InlineData(24, 0, 24, 24, 1)]        // 24 - 12 (kept) = 12: one block
    [InlineData(16, 0, 16, 16, 0)]        // 16 - 8 (kept) = 8: no room for a block
    public void SackBlocksThatFit_KnownSizes_MatchOptionSpaceAndKeptData(int sndMss, int otherOptions, int payload, int smss, int expected)
    {
        Assert.Equal(expected, TcpConnection.SackBlocksThatFit(sndMss, otherOptions, payload, smss));
    }

    [Fact]
    public void SackBlocksThatFit_AnySize_OptionsFitAndDataSegmentsKeepHalfASegment()
    {
        for (int sndMss = 16; sndMss <= 9000; sndMss += 7)
        {
            foreach (int other in new[] { 0, 12 })
            {
                int smss = Math.Max(sndMss - other, 1);
                foreach (int payload in new[] { 0, 1, smss / 2, smss })
                {
                    int n = TcpConnection.SackBlocksThatFit(sndMss, other, payload, smss);
                    int options = other + (n > 0 ? 4 + (8 * n) : 0);
                    Assert.InRange(n, 0, 4);
                    Assert.True(options <= 40, $"mss {sndMss} other {other} payload {payload}: {options} option bytes");
                    if (payload > 0 && n > 0)
                    {
                        Assert.True(sndMss - options >= Math.Min(payload, Math.Max(smss / 2, 1)),
                            $"mss {sndMss} other {other} payload {payload}: {n} blocks leave {sndMss - options} data bytes");
                    }
                }
            }
        }
    }

    [Fact]
    public void BulkBothWays_ManyConnectionsWithLossAndSack_EveryPacketFitsTheMtu()
    {
        const int Connections = 24;
        const int Bytes = 96 * 1024;
        var net = new SimNetwork(seed: 77) { Mtu = 1420, LossRate = 0.02, Jitter = TimeSpan.FromMilliseconds(2) };
        var client = net.AddHost("10.0.0.1");
        var server = net.AddHost("10.0.0.2");
        var listener = server.Tcp.Listen(server.EndPoint(80), Connections);
        long largest = 0;
        long dataSegmentsWithSack = 0;
        long fullDataSegmentsWithSack = 0;
        net.Tap = p =>
        {
            int packet = TcpConstants.Ipv4HeaderLength + p.Segment.Length;
            Assert.True(packet <= net.Mtu, $"{packet}-byte packet exceeds the {net.Mtu}-byte MTU (seed {net.Seed})");
            largest = Math.Max(largest, packet);
            if (p.PayloadLength > 0 && p.Repr.SackCount > 0)
            {
                dataSegmentsWithSack++;
                if (packet == net.Mtu)
                {
                    fullDataSegmentsWithSack++;
                }
            }
        };

        var clients = new TcpConnection[Connections];
        var servers = new List<TcpConnection>();
        for (int i = 0; i < Connections; i++)
        {
            clients[i] = client.Tcp.Connect(server.EndPoint(80), client.EndPoint(40000 + i));
        }

        net.RunUntil(() => servers.Count == Connections, TimeSpan.FromSeconds(60), () =>
        {
            while (listener.TryAccept(out var c))
            {
                servers.Add(c);
            }
        });

        var transfers = new List<Transfer>();
        for (int i = 0; i < Connections; i++)
        {
            var s = servers.Find(c => c.Tuple.RemotePort == 40000 + i)!;
            transfers.Add(new Transfer(clients[i], s, Transfer.RandomData(Bytes, i), closeWhenDone: false));
            transfers.Add(new Transfer(s, clients[i], Transfer.RandomData(Bytes, 1000 + i), closeWhenDone: false));
        }

        net.RunUntil(() => transfers.TrueForAll(t => t.Finished), TimeSpan.FromSeconds(600), () =>
        {
            foreach (var t in transfers)
            {
                t.Pump(net.Now);
            }
        });

        Assert.All(transfers, t => Assert.True(t.HashMatches()));
        Assert.True(dataSegmentsWithSack > 0, "no data segment carried SACK blocks: the test did not exercise the case");
        Assert.True(fullDataSegmentsWithSack > 0, "no SACK-carrying data segment filled the MTU");
        Assert.Equal(net.Mtu, largest);
    }

    [Fact]
    public void TrySendIp_SegmentOverMtu_DroppedAndCountedWithoutThrowing()
    {
        using var stack = TestPackets.Stack(o => o.Mtu = 1420, "10.0.0.1");
        var src = IpAddr.Parse("10.0.0.1");
        var dst = IpAddr.Parse("10.0.0.2");
        bool taken;
        lock (stack.Gate)
        {
            taken = stack.TrySendIp(src, dst, TcpConstants.IpProtocol, new byte[1401]);
        }

        Assert.True(taken); // reported as taken (a drop), not as backpressure that the caller would retry
        Assert.Equal(1, stack.Statistics.OutboundOversize);
        Assert.Equal(0, stack.Statistics.Sent);
        Assert.Empty(TestPackets.Drain(stack));
    }

    [Fact]
    public void TrySendIp_SegmentExactlyMtu_IsSent()
    {
        using var stack = TestPackets.Stack(o => o.Mtu = 1420, "10.0.0.1");
        lock (stack.Gate)
        {
            Assert.True(stack.TrySendIp(IpAddr.Parse("10.0.0.1"), IpAddr.Parse("10.0.0.2"), TcpConstants.IpProtocol, new byte[1400]));
        }

        Assert.Equal(0, stack.Statistics.OutboundOversize);
        var packet = Assert.Single(TestPackets.Drain(stack));
        Assert.Equal(1420, packet.Length);
    }
}
