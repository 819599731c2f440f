using Sharptun.Transport;

namespace Sharptun.Transport.Tests;

/// <summary>The large companion pool (issue 7 item 4, jumbo MTUs): buffers of either size go back through the main pool.</summary>
public sealed class PacketBufferPoolLargeTests
{
    [Fact]
    public void Return_LargeBuffer_GoesToTheCompanion()
    {
        var large = new PacketBufferPool(4 * 4096, 4096);
        var pool = new PacketBufferPool(4 * 256, 256, large);
        Assert.True(large.TryRent(out var big));
        Assert.True(pool.TryRent(out var small));

        pool.Return(big);
        pool.Return(small);

        Assert.Equal(0, large.InUse);
        Assert.Equal(0, pool.InUse);
        Assert.True(large.TryRent(out var again));
        Assert.Same(big, again);
    }

    [Fact]
    public void ReturnBatch_MixedSizes_EachGoesToItsPoolAndSpanIsCleared()
    {
        var large = new PacketBufferPool(4 * 4096, 4096);
        var pool = new PacketBufferPool(4 * 256, 256, large);
        var batch = new byte[4][];
        Assert.True(pool.TryRent(out batch[0]));
        Assert.True(large.TryRent(out batch[1]));
        Assert.True(pool.TryRent(out batch[3]));

        pool.ReturnBatch(batch);

        Assert.All(batch, Assert.Null);
        Assert.Equal(0, pool.InUse);
        Assert.Equal(0, large.InUse);
    }

    [Fact]
    public void Return_BufferOfNeitherSize_Throws()
    {
        var pool = new PacketBufferPool(4 * 256, 256, new PacketBufferPool(4 * 4096, 4096));
        Assert.Throws<ArgumentException>(() => pool.Return(new byte[1000]));
    }

    [Fact]
    public void Constructor_CompanionNotLarger_Throws()
    {
        Assert.Throws<ArgumentException>(() => new PacketBufferPool(4 * 256, 256, new PacketBufferPool(4 * 256, 256)));
    }

    [Fact]
    public void RentAndReturn_ManyThreadsBothSizes_AccountingExactAndBudgetsHeld()
    {
        var large = new PacketBufferPool(16 * 4096, 4096);
        var pool = new PacketBufferPool(64 * 256, 256, large);
        const int threads = 8;
        const int iterations = 20_000;

        Parallel.For(0, threads, new ParallelOptions { MaxDegreeOfParallelism = threads }, t =>
        {
            var held = new List<byte[]>();
            var random = new Random(t);
            for (var i = 0; i < iterations; i++)
            {
                var source = random.Next(2) == 0 ? pool : large;
                if (source.TryRent(out var b))
                {
                    b[0] = (byte)t;
                    held.Add(b);
                }

                if (held.Count > 4 || (held.Count > 0 && random.Next(3) == 0))
                {
                    var k = random.Next(held.Count);
                    Assert.Equal((byte)t, held[k][0]); // nobody else got this buffer while we held it
                    pool.Return(held[k]); // both sizes through the main pool
                    held.RemoveAt(k);
                }
            }

            foreach (var b in held)
            {
                pool.Return(b);
            }
        });

        Assert.Equal(0, pool.InUse);
        Assert.Equal(0, large.InUse);
        Assert.True(pool.PeakInUse <= pool.MaxBuffers);
        Assert.True(large.PeakInUse <= large.MaxBuffers);
        Assert.True(large.AllocatedBytes <= large.BudgetBytes);
    }
}
