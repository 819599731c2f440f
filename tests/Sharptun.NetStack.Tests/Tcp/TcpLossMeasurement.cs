using Sharptun.NetStack.Tcp;
using Xunit.Abstractions;

namespace Sharptun.NetStack.Tests.Tcp;

/// <summary>
/// Opt-in measurement (SHARPTUN_TCP_MEASURE=1): virtual time to move 4 MB one way under loss/reordering. Prints figures;
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

        foreach (var (loss, jitterMs) in new[] { (0.0, 0), (0.0, 20), (0.01, 0), (0.01, 20), (0.02, 0), (0.02, 20), (0.05, 0), (0.05, 20) })
        {
            for (int seed = 1; seed <= 3; seed++)
            {
                var p = new TcpPair(seed, configure: n =>
                {
                    n.LossRate = loss;
                    n.BaseDelay = TimeSpan.FromMilliseconds(5);
                    n.Jitter = TimeSpan.FromMilliseconds(jitterMs);
                }).Connect();
                var start = p.Net.Now;
                var up = new Transfer(p.C, p.S, Transfer.RandomData(4 * 1024 * 1024, seed));
                p.Net.RunUntil(() => up.Finished, TimeSpan.FromHours(2), () => up.Pump(p.Net.Now));
                Assert.True(up.HashMatches());
                output.WriteLine($"loss {loss:P0} jitter {jitterMs}ms seed {seed}: {(p.Net.Now - start).TotalSeconds:F2}s; " +
                    $"rexmit {p.C.RetransmittedSegments} fr {p.C.FastRetransmits} rto {p.C.Timeouts} tlp {p.C.TailLossProbes} lostrx {p.C.LostRetransmits} dsack {p.C.DsacksReceived} undo {p.C.SpuriousRecoveries} reo {p.C.ReorderingSeen}");
            }
        }
    }
}
