using Sharptun.NetStack.Tcp;
using Xunit.Abstractions;

namespace Sharptun.NetStack.Tests.Tcp;

/// <summary>
/// Opt-in measurement (SHARPTUN_TCP_MEASURE=1): virtual time to move 4 MB one way under loss/reordering (one-way delay SHARPTUN_TCP_MEASURE_DELAY_MS, default 5 ms; jitter 4× that reorders). Prints figures;
/// asserts only integrity. Not part of the regular suite's timing budget.
/// </summary>
public sealed class TcpLossMeasurement(ITestOutputHelper output)
{
    [Fact]
    public void Measure_LossAndReorderMatrix_PrintsVirtualTimes()
    {
        if (Environment.GetEnvironmentVariable("SHARPTUN_TCP_MEASURE") != "1")
        {
            return;
        }

        var delayMs = double.TryParse(Environment.GetEnvironmentVariable("SHARPTUN_TCP_MEASURE_DELAY_MS"), System.Globalization.CultureInfo.InvariantCulture, out var d) ? d : 5;
        foreach (var (loss, jitterMs) in new[] { (0.0, 0.0), (0.0, 4 * delayMs), (0.01, 0.0), (0.01, 4 * delayMs), (0.02, 0.0), (0.02, 4 * delayMs), (0.05, 0.0), (0.05, 4 * delayMs) })
        {
            for (int seed = 1; seed <= 3; seed++)
            {
                var p = new TcpPair(seed, configure: n =>
                {
                    n.LossRate = loss;
                    n.BaseDelay = TimeSpan.FromMilliseconds(delayMs);
                    n.Jitter = TimeSpan.FromMilliseconds(jitterMs);
                }).Connect();
                var start = p.Net.Now;
                var up = new Transfer(p.C, p.S, Transfer.RandomData(4 * 1024 * 1024, seed));
                p.Net.RunUntil(() => up.Finished, TimeSpan.FromHours(2), () => up.Pump(p.Net.Now));
                Assert.True(up.HashMatches());
                output.WriteLine($"delay {delayMs}ms loss {loss:P0} jitter {jitterMs}ms seed {seed}: {(p.Net.Now - start).TotalSeconds:F2}s; " +
                    $"rexmit {p.C.RetransmittedSegments} fr {p.C.FastRetransmits} rto {p.C.Timeouts} tlp {p.C.TailLossProbes} lostrx {p.C.LostRetransmits} dsack {p.C.DsacksReceived} undo {p.C.SpuriousRecoveries} reo {p.C.ReorderingSeen}");
            }
        }
    }
}
