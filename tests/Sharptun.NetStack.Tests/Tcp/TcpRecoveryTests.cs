using System.Net.Sockets;
using Sharptun.NetStack.Tcp;

namespace Sharptun.NetStack.Tests.Tcp;

/// <summary>Loss recovery and timers: fast retransmit, SACK recovery, RTO backoff, persist, keepalive, delayed ACK, Nagle.</summary>
public sealed class TcpRecoveryTests
{
    private static readonly TimeSpan Limit = TimeSpan.FromSeconds(300);

    private static Func<SimPacket, bool> DropFirstTransmissionOfDataSegments(SimHost from, params int[] indexes)
    {
        var seen = new HashSet<uint>();
        var drop = new HashSet<int>(indexes);
        int dataIndex = 0;
        return p =>
        {
            if (p.From != from || p.PayloadLength == 0)
            {
                return false;
            }

            if (!seen.Add(p.Repr.Seq.Value))
            {
                return false; // retransmission
            }

            return drop.Contains(dataIndex++);
        };
    }

    [Fact]
    public void Recovery_ThreeDupAcksWithoutSack_FastRetransmitBeforeRto()
    {
        var o = new TcpOptions { EnableSack = false, CongestionControl = TcpCongestionControl.NewReno };
        var p = new TcpPair(21, o, o).Connect();
        p.Net.Filter = DropFirstTransmissionOfDataSegments(p.Client, 5);
        var t = new Transfer(p.C, p.S, Transfer.RandomData(60 * 1448, 1), closeWhenDone: false);
        p.Net.RunUntil(() => t.Finished, Limit, () => t.Pump(p.Net.Now));
        Assert.True(t.HashMatches());
        Assert.Equal(1, p.C.FastRetransmits);
        Assert.Equal(0, p.C.Timeouts);
        Assert.Equal(1, p.C.RetransmittedSegments);
    }

    [Fact]
    public void Recovery_NewRenoPartialAcks_RetransmitsEachHoleWithoutRto()
    {
        var o = new TcpOptions { EnableSack = false, CongestionControl = TcpCongestionControl.NewReno };
        var p = new TcpPair(22, o, o).Connect();
        p.Net.Filter = DropFirstTransmissionOfDataSegments(p.Client, 12, 15, 18);
        var t = new Transfer(p.C, p.S, Transfer.RandomData(80 * 1448, 2), closeWhenDone: false);
        p.Net.RunUntil(() => t.Finished, Limit, () => t.Pump(p.Net.Now));
        Assert.True(t.HashMatches());
        Assert.Equal(1, p.C.FastRetransmits); // one recovery episode handles all three holes (RFC 6582)
        Assert.Equal(0, p.C.Timeouts);
        Assert.Equal(3, p.C.RetransmittedSegments);
    }

    [Fact]
    public void Recovery_SackWithMultipleHoles_RetransmitsOnlyTheHoles()
    {
        var p = new TcpPair(23).Connect();
        p.Net.Filter = DropFirstTransmissionOfDataSegments(p.Client, 12, 15, 18, 19);
        var t = new Transfer(p.C, p.S, Transfer.RandomData(80 * 1436, 3), closeWhenDone: false);
        p.Net.RunUntil(() => t.Finished, Limit, () => t.Pump(p.Net.Now));
        Assert.True(t.HashMatches());
        Assert.Equal(0, p.C.Timeouts);
        Assert.Equal(1, p.C.FastRetransmits);
        Assert.Equal(4, p.C.RetransmittedSegments);
        Assert.Equal(4L * p.C.Smss, p.C.RetransmittedBytes);
    }

    [Fact]
    public void Rto_NoAcknowledgments_IntervalsDoubleUpToTimeout()
    {
        var o = new TcpOptions { MaxRetransmissions = 5 };
        var p = new TcpPair(24, o, o).Connect();
        var sendTimes = new List<TimeSpan>();
        p.Net.Tap = pk =>
        {
            if (pk.From == p.Client && pk.PayloadLength > 0)
            {
                sendTimes.Add(p.Net.Now);
            }
        };
        p.Net.Filter = pk => pk.From == p.Server; // the peer goes silent
        p.C.Send(new byte[100], p.Net.Now);
        p.Net.RunUntil(() => p.C.State == TcpState.Closed, Limit);
        Assert.Equal(SocketError.TimedOut, p.C.Error);
        Assert.Equal(6, sendTimes.Count); // original + 5 retransmissions
        for (int i = 2; i < sendTimes.Count; i++)
        {
            var prev = sendTimes[i - 1] - sendTimes[i - 2];
            var cur = sendTimes[i] - sendTimes[i - 1];
            Assert.Equal(prev.TotalMilliseconds * 2, cur.TotalMilliseconds, 1.0);
        }
    }

    [Fact]
    public void ZeroWindow_ReaderStops_SenderProbesThenRecoversWhenReaderResumes()
    {
        var small = new TcpOptions { ReceiveBufferSize = 16 * 1024 };
        var p = new TcpPair(25, null, small).Connect();
        var t = new Transfer(p.C, p.S, Transfer.RandomData(300_000, 4), closeWhenDone: true) { ReaderPaused = true };
        int probes = 0;
        p.Net.Tap = pk =>
        {
            if (pk.From == p.Client && pk.PayloadLength == 0 && pk.Repr.Seq == p.C.SndUna - 1)
            {
                probes++;
            }
        };
        p.Net.RunFor(TimeSpan.FromSeconds(30), () => t.Pump(p.Net.Now));
        Assert.Equal(0, p.S.AdvertisedWindow);     // backpressure: the window closed
        Assert.Equal(16 * 1024, p.S.ReadableBytes); // never more than the receive buffer
        Assert.Equal(0, p.C.SndWnd);
        Assert.True(probes >= 3, $"expected persist probes, saw {probes}");
        Assert.True(p.C.SendBufferCount > 0);

        t.ReaderPaused = false;
        p.Net.RunUntil(() => t.Finished, Limit, () => t.Pump(p.Net.Now));
        Assert.True(t.HashMatches());
    }

    [Fact]
    public void Send_BufferFull_AcceptsOnlyFreeSpace()
    {
        var o = new TcpOptions { SendBufferSize = 8192 };
        var p = new TcpPair(26, o, null).Connect();
        int n = p.C.Send(new byte[20_000], p.Net.Now);
        Assert.Equal(8192, n);
        Assert.Equal(0, p.C.Send(new byte[10], p.Net.Now));
    }

    [Fact]
    public void KeepAlive_PeerSilent_ConnectionTimesOutAfterProbes()
    {
        var o = new TcpOptions
        {
            KeepAlive = true, KeepAliveIdle = TimeSpan.FromSeconds(10), KeepAliveInterval = TimeSpan.FromSeconds(1), KeepAliveCount = 3,
        };
        var p = new TcpPair(27, o, null).Connect();
        var start = p.Net.Now;
        p.Net.Filter = pk => pk.From == p.Server;
        p.Net.RunUntil(() => p.C.State == TcpState.Closed, Limit);
        Assert.Equal(SocketError.TimedOut, p.C.Error);
        Assert.Equal(3, p.Client.Tcp.Stats.KeepAlivesSent);
        Assert.InRange((p.Net.Now - start).TotalSeconds, 12.9, 13.1);
    }

    [Fact]
    public void KeepAlive_PeerAnswers_ConnectionStaysOpen()
    {
        var o = new TcpOptions { KeepAlive = true, KeepAliveIdle = TimeSpan.FromSeconds(10), KeepAliveInterval = TimeSpan.FromSeconds(1) };
        var p = new TcpPair(28, o, null).Connect();
        p.Net.RunFor(TimeSpan.FromSeconds(100));
        Assert.Equal(TcpState.Established, p.C.State);
        Assert.InRange(p.Client.Tcp.Stats.KeepAlivesSent, 9, 11);
    }

    [Fact]
    public void DelayedAck_SingleSmallSegment_AckedAfterTimeout()
    {
        var p = new TcpPair(29).Connect();
        TimeSpan dataAt = default, ackAt = default;
        p.Net.Tap = pk =>
        {
            if (pk.From == p.Client && pk.PayloadLength > 0)
            {
                dataAt = p.Net.Now;
            }
            else if (pk.From == p.Server && pk.PayloadLength == 0 && ackAt == default)
            {
                ackAt = p.Net.Now;
            }
        };
        p.C.Send(new byte[100], p.Net.Now);
        p.Net.RunFor(TimeSpan.FromSeconds(1));
        Assert.Equal(10 + 40, (ackAt - dataAt).TotalMilliseconds, 0.5); // link delay + delayed-ACK timeout
    }

    [Fact]
    public void DelayedAck_TwoFullSegments_AckedImmediately()
    {
        var p = new TcpPair(30).Connect();
        var dataTimes = new List<TimeSpan>();
        TimeSpan ackAt = default;
        p.Net.Tap = pk =>
        {
            if (pk.From == p.Client && pk.PayloadLength > 0)
            {
                dataTimes.Add(p.Net.Now);
            }
            else if (pk.From == p.Server && pk.PayloadLength == 0 && ackAt == default)
            {
                ackAt = p.Net.Now;
            }
        };
        p.C.Send(new byte[2 * p.C.Smss], p.Net.Now);
        p.Net.RunFor(TimeSpan.FromSeconds(1));
        Assert.Equal(2, dataTimes.Count);
        Assert.Equal(10, (ackAt - dataTimes[1]).TotalMilliseconds, 0.5);
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void Nagle_ManySmallWrites_CoalescedUnlessNoDelay(bool noDelay)
    {
        var p = new TcpPair(31).Connect();
        p.C.NoDelay = noDelay;
        int segments = 0;
        p.Net.Tap = pk => segments += pk.From == p.Client && pk.PayloadLength > 0 ? 1 : 0;
        for (int i = 0; i < 100; i++)
        {
            p.C.Send(new byte[10], p.Net.Now);
        }

        p.Net.RunFor(TimeSpan.FromSeconds(1));
        Assert.Equal(1000, p.S.ReadableBytes);
        if (noDelay)
        {
            Assert.Equal(100, segments);
        }
        else
        {
            Assert.Equal(2, segments); // the first write, then everything queued behind the outstanding one
        }
    }

    [Fact]
    public void TailLossProbe_LastSegmentsLost_RecoveredWithoutRto()
    {
        var p = new TcpPair(33).Connect();
        var warm = new Transfer(p.C, p.S, Transfer.RandomData(20_000, 7), closeWhenDone: false);
        p.Net.RunUntil(() => warm.Finished, Limit, () => warm.Pump(p.Net.Now)); // RTT samples exist
        p.Net.Filter = DropFirstTransmissionOfDataSegments(p.Client, 17, 18, 19);
        var t = new Transfer(p.C, p.S, Transfer.RandomData(20 * p.C.Smss, 8), closeWhenDone: false);
        p.Net.RunUntil(() => t.Finished, Limit, () => t.Pump(p.Net.Now));
        Assert.True(t.HashMatches());
        Assert.Equal(0, p.C.Timeouts);
        Assert.Equal(1, p.C.TailLossProbes);
    }

    [Fact]
    public void Recovery_RetransmissionAlsoLost_ResentWithoutRto()
    {
        var p = new TcpPair(34).Connect();
        int timesSeen = 0;
        uint target = 0;
        int dataIndex = 0;
        p.Net.Filter = pk =>
        {
            if (pk.From != p.Client || pk.PayloadLength == 0)
            {
                return false;
            }

            if (dataIndex++ == 10)
            {
                target = pk.Repr.Seq.Value;
            }

            if (target != 0 && pk.Repr.Seq.Value == target && timesSeen < 2)
            {
                timesSeen++;
                return true; // the original and the first retransmission
            }

            return false;
        };
        var t = new Transfer(p.C, p.S, Transfer.RandomData(200 * p.C.Smss, 9), closeWhenDone: false);
        p.Net.RunUntil(() => t.Finished, Limit, () => t.Pump(p.Net.Now));
        Assert.True(t.HashMatches());
        Assert.Equal(2, timesSeen);
        Assert.Equal(0, p.C.Timeouts);
        Assert.Equal(1, p.C.LostRetransmits);
    }

    [Fact]
    public void Cwnd_InitialWindow_TenSegments()
    {
        var p = new TcpPair(32).Connect();
        Assert.Equal(Math.Min(10 * p.C.Smss, Math.Max(2 * p.C.Smss, 14600)), p.C.Cwnd);
        int burst = 0;
        p.Net.Tap = pk => burst += pk.From == p.Client && pk.PayloadLength > 0 ? 1 : 0;
        p.C.Send(new byte[100 * 1448], p.Net.Now);
        Assert.Equal(10, burst); // RFC 6928: ten segments before the first ACK
    }
}
