using Sharptun.NetStack.Tcp;

namespace Sharptun.NetStack.Tests.Tcp;

public sealed class TcpCongestionTests
{
    private const int Mss = 1000;
    private static readonly TimeSpan Rtt = TimeSpan.FromMilliseconds(100);

    /// <summary>Feeds one RTT worth of ACKs (one per segment of the current window).</summary>
    private static void OneRtt(CongestionController cc, ref TimeSpan now)
    {
        int segs = cc.Cwnd / Mss;
        for (int i = 0; i < segs; i++)
        {
            cc.OnAck(now, Mss, cc.Cwnd, Rtt, Rtt);
        }

        now += Rtt;
    }

    [Fact]
    public void Cubic_CongestionEvent_ReducesToBetaTimesFlight()
    {
        var cc = new CubicController(Mss);
        cc.SetCwnd(100 * Mss);
        cc.OnCongestionEvent(TimeSpan.Zero, 100 * Mss);
        Assert.Equal(70 * Mss, cc.Ssthresh); // RFC 9438 §4.6 beta_cubic = 0.7
        Assert.Equal(70 * Mss, cc.Cwnd);
    }

    [Fact]
    public void Cubic_AfterReduction_ReturnsToWmaxNearK()
    {
        var cc = new CubicController(Mss);
        cc.SetCwnd(100 * Mss);
        cc.OnCongestionEvent(TimeSpan.Zero, 100 * Mss);
        var now = TimeSpan.Zero;
        double k = Math.Cbrt((100 - 70) / 0.4); // RFC 9438 eqn 2: ~4.22 s
        while (now.TotalSeconds < k)
        {
            OneRtt(cc, ref now);
        }

        Assert.InRange(cc.Cwnd / (double)Mss, 95, 106);
        // concave then convex: growth right before K is slower than well after K
        int atK = cc.Cwnd;
        for (int i = 0; i < 40; i++)
        {
            OneRtt(cc, ref now);
        }

        // W_cubic(K + 4 s) = 0.4 * 4^3 + 100 = 125.6 segments
        Assert.InRange(cc.Cwnd / (double)Mss, 118, 132);
        Assert.True(cc.Cwnd > atK + (15 * Mss), "CUBIC probes beyond W_max in the convex region");
    }

    [Fact]
    public void NewReno_CongestionAvoidance_GrowsOneSegmentPerRtt()
    {
        var cc = new NewRenoController(Mss);
        cc.SetCwnd(40 * Mss);
        cc.OnCongestionEvent(TimeSpan.Zero, 40 * Mss); // ssthresh = cwnd = 20 segments
        Assert.Equal(20 * Mss, cc.Cwnd);
        var now = TimeSpan.Zero;
        for (int i = 0; i < 10; i++)
        {
            OneRtt(cc, ref now);
        }

        Assert.Equal(30 * Mss, cc.Cwnd);
    }

    [Fact]
    public void SlowStart_EachAck_GrowsBySegment()
    {
        var cc = new NewRenoController(Mss);
        int start = cc.Cwnd;
        cc.OnAck(TimeSpan.Zero, Mss, start, Rtt, Rtt);
        Assert.Equal(start + Mss, cc.Cwnd);
    }

    [Fact]
    public void RetransmissionTimeout_CollapsesWindowToOneSegment()
    {
        var cc = new CubicController(Mss);
        cc.OnRetransmissionTimeout(TimeSpan.Zero, 50 * Mss);
        Assert.Equal(Mss, cc.Cwnd);
        Assert.Equal(35 * Mss, cc.Ssthresh);
    }

    [Fact]
    public void RttEstimator_FirstSample_SetsRtoToSrttPlusFourRttvar()
    {
        var e = new RttEstimator(TimeSpan.FromMilliseconds(10));
        Assert.Equal(TimeSpan.FromSeconds(1), e.Rto); // RFC 6298 §2.1
        e.Sample(TimeSpan.FromMilliseconds(100));
        Assert.Equal(TimeSpan.FromMilliseconds(300), e.Rto); // 100 + 4 * 50
    }

    [Fact]
    public void RttEstimator_Backoff_DoublesAndCapsAtSixtySeconds()
    {
        var e = new RttEstimator(TimeSpan.FromMilliseconds(200));
        e.Sample(TimeSpan.FromMilliseconds(20)); // RTO clamps to the 200 ms floor
        Assert.Equal(TimeSpan.FromMilliseconds(200), e.Rto);
        e.OnTimeout();
        Assert.Equal(TimeSpan.FromMilliseconds(400), e.Rto);
        for (int i = 0; i < 20; i++)
        {
            e.OnTimeout();
        }

        Assert.Equal(TimeSpan.FromSeconds(60), e.Rto);
    }
}
