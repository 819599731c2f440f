using Sharptun.Transport;

namespace Sharptun.Transport.Tests;

public sealed class PacketBufferPoolTests
{
    [Fact]
    public void TryRent_BudgetSpent_FailsAndCounts()
    {
        var pool = new PacketBufferPool(budgetBytes: 4 * 2048 + 100, bufferSize: 2048);
        var rented = new List<byte[]>();
        while (pool.TryRent(out var b))
        {
            rented.Add(b);
        }

        Assert.Equal(4, rented.Count);
        Assert.Equal(4, pool.MaxBuffers);
        Assert.Equal(1, pool.Failures);
        Assert.Equal(4 * 2048, pool.AllocatedBytes);
        Assert.True(pool.AllocatedBytes <= pool.BudgetBytes);
    }

    [Fact]
    public void Return_AfterBudgetSpent_BufferIsReused()
    {
        var pool = new PacketBufferPool(2 * 256, 256);
        Assert.True(pool.TryRent(out var a));
        Assert.True(pool.TryRent(out _));

        pool.Return(a);

        Assert.True(pool.TryRent(out var again));
        Assert.Same(a, again);
        Assert.Equal(2, pool.Allocated);
    }

    [Fact]
    public void Counters_RentAndReturn_TrackInUseAndPeak()
    {
        var pool = new PacketBufferPool(10 * 256, 256);
        var buffers = new byte[3][];
        Assert.Equal(3, pool.TryRentBatch(buffers, 3));
        pool.Return(buffers[0]);

        Assert.Equal(2, pool.InUse);
        Assert.Equal(3, pool.PeakInUse);

        pool.ReturnBatch(buffers.AsSpan(1));

        Assert.Equal(0, pool.InUse);
        Assert.Null(buffers[1]);
    }

    [Fact]
    public void TryRentBatch_MoreThanBudget_ReturnsWhatFits()
    {
        var pool = new PacketBufferPool(3 * 256, 256);
        var buffers = new byte[5][];

        Assert.Equal(3, pool.TryRentBatch(buffers, 5));
        Assert.Equal(1, pool.Failures);
    }

    [Fact]
    public void Rent_BudgetSpent_WaitsForReturn()
    {
        var pool = new PacketBufferPool(256, 256);
        var first = pool.Rent();
        using var started = new ManualResetEventSlim();
        var waiter = Task.Run(() =>
        {
            started.Set();
            return pool.Rent(TimeSpan.FromSeconds(10));
        });
        started.Wait();
        Thread.Sleep(50);
        Assert.False(waiter.IsCompleted);

        pool.Return(first);

        Assert.Same(first, waiter.Result);
    }

    [Fact]
    public void Rent_BudgetSpentPastTimeout_Throws()
    {
        var pool = new PacketBufferPool(256, 256);
        _ = pool.Rent();

        Assert.Throws<TimeoutException>(() => pool.Rent(TimeSpan.FromMilliseconds(30)));
        Assert.Equal(1, pool.Failures);
    }

    [Fact]
    public void Return_ForeignSize_Throws()
    {
        var pool = new PacketBufferPool(1024, 256);

        Assert.Throws<ArgumentException>(() => pool.Return(new byte[100]));
    }

    [Fact]
    public void Return_MoreThanRented_Throws()
    {
        var pool = new PacketBufferPool(1024, 256);

        Assert.Throws<InvalidOperationException>(() => pool.Return(new byte[256]));
    }

    [Fact]
    public void ConcurrentRentReturn_NeverExceedsBudget()
    {
        var pool = new PacketBufferPool(8 * 256, 256);
        Parallel.For(0, 4, _ =>
        {
            for (var i = 0; i < 5000; i++)
            {
                if (pool.TryRent(out var b))
                {
                    pool.Return(b);
                }
            }
        });

        Assert.Equal(0, pool.InUse);
        Assert.True(pool.Allocated <= 8);
        Assert.True(pool.PeakInUse <= 8);
    }
}
