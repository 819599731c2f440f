using Sharptun.Hosting;

namespace Sharptun.Hosting.Tests;

public sealed class ConnectionGateTests
{
    [Fact]
    public void FullGate_RefusesAndCounts_ReleaseFreesOneSlot_DoubleDisposeFreesOnce()
    {
        var gate = new ConnectionGate(2);
        var a = gate.TryEnter();
        var b = gate.TryEnter();
        Assert.NotNull(a);
        Assert.NotNull(b);
        Assert.Null(gate.TryEnter());
        Assert.Equal(1, gate.Refused);

        a!.Dispose();
        a.Dispose();
        Assert.Equal(1, gate.Open);
        Assert.NotNull(gate.TryEnter());
        Assert.Null(gate.TryEnter());
        Assert.Equal(2, gate.Open);
        Assert.Equal(3, gate.Admitted);
    }

    [Fact]
    public void ManyThreadsRacingEnterAndRelease_NeverExceedCapacity_AndEndAtZero()
    {
        var gate = new ConnectionGate(8);
        var maxSeen = 0;
        long admitted = 0, refused = 0;
        Parallel.For(0, 8, new ParallelOptions { MaxDegreeOfParallelism = 8 }, _ =>
        {
            for (var i = 0; i < 20_000; i++)
            {
                var lease = gate.TryEnter();
                if (lease is null)
                {
                    Interlocked.Increment(ref refused);
                    continue;
                }

                Interlocked.Increment(ref admitted);
                var open = gate.Open;
                int seen;
                while ((seen = Volatile.Read(ref maxSeen)) < open && Interlocked.CompareExchange(ref maxSeen, open, seen) != seen)
                {
                }

                lease.Dispose();
                lease.Dispose();
            }
        });

        Assert.InRange(maxSeen, 1, 8);
        Assert.Equal(0, gate.Open);
        Assert.Equal(admitted, gate.Admitted);
        Assert.Equal(refused, gate.Refused);
        Assert.Equal(8 * 20_000, gate.Admitted + gate.Refused);
    }
}
