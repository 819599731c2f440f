using Sharptun.Device.Pipeline;

namespace Sharptun.Device.Tests.Pipeline;

/// <summary>The CoDel state machine (RFC 8289 §5) on a virtual clock: when it starts dropping, how fast, and when it stops.</summary>
public sealed class QueueDelayControllerTests
{
    private static readonly TimeSpan Target = TimeSpan.FromMilliseconds(2);
    private static readonly TimeSpan Interval = TimeSpan.FromMilliseconds(100);

    private static TimeSpan Ms(double ms) => TimeSpan.FromMilliseconds(ms);

    /// <summary>Feeds one packet per millisecond from <paramref name="fromMs"/> to <paramref name="toMs"/> with the given sojourn; returns the times of the drops.</summary>
    private static List<double> Run(QueueDelayController codel, double fromMs, double toMs, double sojournMs, int backlog = 10)
    {
        var drops = new List<double>();
        for (var t = fromMs; t < toMs; t++)
        {
            if (codel.ShouldDrop(Ms(t), Ms(sojournMs), backlog))
            {
                drops.Add(t);
            }
        }

        return drops;
    }

    [Fact]
    public void SojournBelowTarget_NeverDrops()
    {
        var codel = new QueueDelayController(Target, Interval);
        Assert.Empty(Run(codel, 1, 5000, 1.9));
        Assert.False(codel.Dropping);
    }

    [Fact]
    public void AboveTargetForLessThanAnInterval_NoDrop()
    {
        var codel = new QueueDelayController(Target, Interval);
        Assert.Empty(Run(codel, 1, 90, 50)); // 89 ms above target
        Assert.Empty(Run(codel, 90, 200, 1)); // back below: the timer restarts
        Assert.Empty(Run(codel, 200, 290, 50));
    }

    [Fact]
    public void AboveTargetForAnInterval_DropsThenAtIntervalOverSquareRootOfCount()
    {
        var codel = new QueueDelayController(Target, Interval);
        var drops = Run(codel, 1, 400, 10);

        // First above at t=1 → ok to drop from t=101 (count = 1, drop_next = 101 + 100); each later drop increments count
        // and sets drop_next = drop_next + 100/√count, so the gap after the k-th drop is 100/√k ms.
        Assert.Equal(101, drops[0]);
        Assert.True(codel.Dropping);
        var expected = 101.0;
        for (var k = 2; k <= drops.Count; k++)
        {
            expected += 100 / Math.Sqrt(k - 1);
            Assert.Equal(Math.Ceiling(expected - 1e-9), drops[k - 1]); // one packet per ms: the first at or after drop_next
        }

        Assert.True(drops.Count >= 4, $"only {drops.Count} drops in 300 ms above target");
    }

    [Fact]
    public void QueueOfOnePacket_IsNeverTheCause()
    {
        var codel = new QueueDelayController(Target, Interval);
        Assert.Empty(Run(codel, 1, 1000, 50, backlog: 0));
    }

    [Fact]
    public void SojournBelowTarget_LeavesDroppingState_AndQuickReentryResumesTheRate()
    {
        var codel = new QueueDelayController(Target, Interval);
        var first = Run(codel, 1, 600, 10);
        Assert.True(first.Count >= 6);
        Assert.Empty(Run(codel, 600, 650, 1));
        Assert.False(codel.Dropping);

        // Back above target within 16 intervals: after one more interval it drops again, and the spacing starts from the
        // previous episode's count (delta) instead of one drop per interval.
        var second = Run(codel, 650, 1000, 10);
        Assert.Equal(750, second[0]);
        Assert.True(second[1] - second[0] < 100 / Math.Sqrt(2), $"second episode restarted slowly: {second[0]}, {second[1]}");
    }
}
