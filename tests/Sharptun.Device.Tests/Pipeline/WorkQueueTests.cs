using Sharptun.Device.Pipeline;

namespace Sharptun.Device.Tests.Pipeline;

/// <summary>The crypto workers' queue moving elements in batches: every element taken exactly once under races, shares split, close wakes everyone.</summary>
public sealed class WorkQueueTests
{
    [Fact]
    public void TakeBatch_TakesAnEvenShareCappedByTheDestination()
    {
        var queue = new WorkQueue(256);
        var elements = Enumerable.Range(0, 100).Select(_ => new PacketElement()).ToArray();
        Assert.Equal(100, queue.TryAddRange(elements));
        var batch = new PacketElement[32];
        Assert.Equal(25, queue.TakeBatch(batch, workers: 4));
        Assert.Same(elements[0], batch[0]);
        Assert.Same(elements[24], batch[24]);
        Assert.Equal(32, queue.TakeBatch(batch, workers: 1));
        Assert.Same(elements[25], batch[0]);
        Assert.Equal(43, queue.Count);
    }

    [Fact]
    public void TryAddRange_TakesWhatFits_AndNothingOnceClosed()
    {
        var queue = new WorkQueue(10);
        var elements = Enumerable.Range(0, 16).Select(_ => new PacketElement()).ToArray();
        Assert.Equal(10, queue.TryAddRange(elements));
        Assert.Equal(0, queue.TryAddRange(elements.AsSpan(10)));
        queue.Close();
        var batch = new PacketElement[16];
        Assert.Equal(10, queue.TakeBatch(batch, 1)); // what was queued is still handed out
        Assert.Equal(0, queue.TakeBatch(batch, 1));
        Assert.False(queue.TryAdd(new PacketElement()));
    }

    [Fact]
    public void ProducersAndWorkersRace_EveryElementTakenExactlyOnce_CloseReleasesAllWorkers()
    {
        const int producers = 3, workers = 4, perProducer = 20000;
        var queue = new WorkQueue(producers * perProducer);
        var taken = new int[producers * perProducer];
        var all = Enumerable.Range(0, taken.Length).Select(i => new PacketElement { Length = i }).ToArray();
        var workerThreads = Enumerable.Range(0, workers).Select(_ => new Thread(() =>
        {
            var batch = new PacketElement[32];
            int n;
            while ((n = queue.TakeBatch(batch, workers)) > 0)
            {
                for (var i = 0; i < n; i++)
                {
                    Interlocked.Increment(ref taken[batch[i].Length]);
                }
            }
        })).ToArray();
        foreach (var t in workerThreads)
        {
            t.Start();
        }

        var producerThreads = Enumerable.Range(0, producers).Select(p => new Thread(() =>
        {
            var random = new Random(p);
            var offset = p * perProducer;
            var end = offset + perProducer;
            while (offset < end)
            {
                var n = Math.Min(end - offset, random.Next(1, 130)); // reads of 1..129 packets
                if (n == 1)
                {
                    Assert.True(queue.TryAdd(all[offset]));
                }
                else
                {
                    Assert.Equal(n, queue.TryAddRange(all.AsSpan(offset, n)));
                }

                offset += n;
                if (random.Next(8) == 0)
                {
                    Thread.Yield(); // let workers sleep now and then, so wake-ups are exercised too
                }
            }
        })).ToArray();
        foreach (var t in producerThreads)
        {
            t.Start();
        }

        foreach (var t in producerThreads)
        {
            Assert.True(t.Join(TimeSpan.FromSeconds(30)));
        }

        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(30);
        while (queue.Count > 0 && DateTime.UtcNow < deadline)
        {
            Thread.Sleep(1); // the workers, not the test, must empty the queue: a lost wake-up leaves elements here
        }

        Assert.Equal(0, queue.Count);
        queue.Close();
        foreach (var t in workerThreads)
        {
            Assert.True(t.Join(TimeSpan.FromSeconds(30)), "a worker did not wake up on Close");
        }

        Assert.All(taken, count => Assert.Equal(1, count));
    }
}
