using Sharptun.NetStack.Tcp;

namespace Sharptun.NetStack.Tests.Tcp;

/// <summary>RACK loss detection (RFC 8985), PRR (RFC 6937), D-SACK (RFC 2883) and spurious-recovery undo.</summary>
public sealed class TcpRackTests
{
    private static readonly TimeSpan Limit = TimeSpan.FromSeconds(120);

    [Fact]
    public void Rack_ReorderingWithoutLoss_FewRetransmissionsAndWindowAdapts()
    {
        // Every packet gets 0–20 ms of random extra delay on a 5 ms link: heavy reordering, no loss. With DupThresh
        // alone this cost ~55 spurious retransmissions per 2 MB; RACK's D-SACK-adapted window and undo keep it low.
        var p = new TcpPair(41, configure: n =>
        {
            n.BaseDelay = TimeSpan.FromMilliseconds(5);
            n.Jitter = TimeSpan.FromMilliseconds(20);
        }).Connect();
        var t = new Transfer(p.C, p.S, Transfer.RandomData(2 << 20, 41));
        p.Net.RunUntil(() => t.Finished, Limit, () => t.Pump(p.Net.Now));
        Assert.True(t.HashMatches());
        Assert.Equal(0, p.C.Timeouts);
        Assert.True(p.C.RetransmittedSegments <= 20, $"{p.C.RetransmittedSegments} spurious retransmissions (seed {p.Net.Seed})");
        Assert.True(p.C.ReorderingSeen);
        Assert.True(p.C.DsacksReceived > 0);
        Assert.True(p.C.SpuriousRecoveries > 0);
    }

    [Fact]
    public void Rack_SingleLoss_RetransmittedWithinOneRttPlusReorderWindow()
    {
        var p = new TcpPair(42, configure: n => n.BaseDelay = TimeSpan.FromMilliseconds(10)).Connect();
        var rtt = TimeSpan.FromMilliseconds(20);
        uint target = 0;
        int dataIndex = 0;
        TimeSpan sentAt = default, resentAt = default;
        p.Net.Filter = pk =>
        {
            if (pk.From != p.Client || pk.PayloadLength == 0)
            {
                return false;
            }

            if (dataIndex++ == 40)
            {
                target = pk.Repr.Seq.Value;
                sentAt = p.Net.Now;
                return true;
            }

            if (target != 0 && pk.Repr.Seq.Value == target && resentAt == default)
            {
                resentAt = p.Net.Now;
            }

            return false;
        };
        var t = new Transfer(p.C, p.S, Transfer.RandomData(200 * 1448, 42), closeWhenDone: false);
        p.Net.RunUntil(() => t.Finished, Limit, () => t.Pump(p.Net.Now));
        Assert.True(t.HashMatches());
        Assert.NotEqual(default, resentAt);
        Assert.True(resentAt - sentAt <= rtt + (rtt / 4) + TimeSpan.FromMilliseconds(1), $"resent after {(resentAt - sentAt).TotalMilliseconds} ms");
        Assert.Equal(1, p.C.RetransmittedSegments);
        Assert.Equal(0, p.C.Timeouts);
    }

    [Fact]
    public void Prr_RecoveryWithSeveralLosses_InFlightEndsNearSsthresh()
    {
        // Buffers well above the flight, so cwnd/PRR and not the (32 KiB default) windows bound what is in flight.
        var big = new TcpOptions { SendBufferSize = 256 * 1024, ReceiveBufferSize = 256 * 1024 };
        var p = new TcpPair(43, big, big, configure: n => n.BaseDelay = TimeSpan.FromMilliseconds(10)).Connect();
        int dataIndex = 0;
        var drop = new HashSet<int> { 40, 42, 44, 50 };
        var seen = new HashSet<uint>();
        var samples = new List<(long Pipe, int Ssthresh)>();
        long entryPipe = -1;
        p.Net.Filter = pk =>
        {
            if (pk.From != p.Client || pk.PayloadLength == 0)
            {
                return false;
            }

            if (p.C.InRecovery)
            {
                long pipe = p.C.PipeBytes; // already includes this segment
                if (entryPipe < 0)
                {
                    entryPipe = pipe;
                }

                samples.Add((pipe, p.C.Ssthresh));
            }

            return seen.Add(pk.Repr.Seq.Value) && drop.Contains(dataIndex++);
        };
        var t = new Transfer(p.C, p.S, Transfer.RandomData(400 * 1448, 43), closeWhenDone: false);
        p.Net.RunUntil(() => t.Finished, Limit, () => t.Pump(p.Net.Now));
        Assert.True(t.HashMatches());
        Assert.Equal(1, p.C.FastRetransmits);
        Assert.Equal(0, p.C.Timeouts);
        Assert.True(samples.Count > 4);
        int smss = p.C.Smss;
        foreach (var (pipe, _) in samples)
        {
            Assert.True(pipe <= entryPipe + smss, $"pipe {pipe} above the entry flight {entryPipe}");
        }

        var last = samples[^1];
        Assert.True(last.Pipe >= last.Ssthresh - (2L * smss) && last.Pipe <= last.Ssthresh + smss,
            $"entry {entryPipe}; samples " + string.Join(" ", samples.Select(x => $"{x.Pipe}/{x.Ssthresh}")));
    }

    [Fact]
    public void Dsack_DuplicateSegmentArrives_ReceiverReportsItAndSenderCountsIt()
    {
        var p = new TcpPair(44).Connect();
        SimPacket? first = null;
        SimPacket? answer = null;
        p.Net.Tap = pk =>
        {
            if (first is null && pk.From == p.Client && pk.PayloadLength > 0)
            {
                first = pk;
            }
        };
        var t = new Transfer(p.C, p.S, Transfer.RandomData(20 * 1448, 44), closeWhenDone: false);
        p.Net.RunUntil(() => t.Finished, Limit, () => t.Pump(p.Net.Now));
        Assert.NotNull(first);
        p.Net.Tap = pk => answer ??= pk.From == p.Server ? pk : null;
        lock (p.Net.Gate)
        {
            p.Server.Tcp.OnSegment(first.Source, first.Destination, first.Segment);
        }

        p.Net.RunFor(TimeSpan.FromMilliseconds(100));
        Assert.NotNull(answer);
        var r = answer.Repr;
        Assert.True(r.SackCount >= 1);
        Assert.Equal(first.Repr.Seq, r.Sack0.Left);
        Assert.Equal(first.Repr.Seq + first.PayloadLength, r.Sack0.Right);
        Assert.True(r.Sack0.Right <= r.Ack); // RFC 2883 §4.1: below the cumulative ACK
        Assert.Equal(1, p.C.DsacksReceived);
        Assert.Equal(0, p.C.RetransmittedSegments);
    }

    [Fact]
    public void Undo_OriginalArrivesAfterFastRetransmit_CwndReductionUndone()
    {
        // The "lost" segment was only delayed: it fills the hole first, the retransmission arrives as a duplicate and
        // is D-SACKed, so the sender restores the congestion window (RFC 8985 §8).
        var p = new TcpPair(45, configure: n => n.BaseDelay = TimeSpan.FromMilliseconds(10)).Connect();
        int dataIndex = 0;
        SimPacket? held = null;
        bool release = false;
        int cwndBefore = 0;
        p.Net.Filter = pk =>
        {
            if (pk.From != p.Client || pk.PayloadLength == 0)
            {
                return false;
            }

            if (held is null && dataIndex++ == 60)
            {
                held = pk;
                cwndBefore = p.C.Cwnd;
                return true;
            }

            if (held is not null && !release && pk.Repr.Seq == held.Repr.Seq)
            {
                release = true; // the fast retransmission: let the original in just before it
            }

            return false;
        };
        bool released = false;
        var t = new Transfer(p.C, p.S, Transfer.RandomData(300 * 1448, 45), closeWhenDone: false);
        p.Net.RunUntil(() => t.Finished, Limit, () =>
        {
            t.Pump(p.Net.Now);
            if (release && !released)
            {
                released = true;
                lock (p.Net.Gate)
                {
                    p.Server.Tcp.OnSegment(held!.Source, held.Destination, held.Segment);
                }
            }
        });
        Assert.True(t.HashMatches());
        Assert.Equal(1, p.C.FastRetransmits);
        Assert.Equal(1, p.C.DsacksReceived);
        Assert.Equal(1, p.C.SpuriousRecoveries);
        Assert.True(p.C.Cwnd >= cwndBefore, $"cwnd {p.C.Cwnd} < {cwndBefore} before the spurious recovery");
    }
}
