using Sharptun.Testing;
using Sharptun.Transport;

namespace Sharptun.NetStack.Tests;

public sealed class FaultInjectingPacketDeviceTests
{
    private static byte[] Numbered(int i) => [(byte)(i >> 8), (byte)i, 0x45];

    private static List<int> SendAndCollect(FaultOptions options, int count)
    {
        var (a, b) = InMemoryPacketDevice.CreatePair(1500, capacity: 4096);
        using var faulty = new FaultInjectingPacketDevice(a, options);
        var received = new List<int>();
        var reader = new Thread(() =>
        {
            var buffers = new[] { new byte[100] };
            var sizes = new int[1];
            while (b.Read(buffers, sizes, 0) > 0)
            {
                lock (received)
                {
                    received.Add(buffers[0][0] << 8 | buffers[0][1]);
                }
            }
        });
        reader.Start();
        for (var i = 0; i < count; i++)
        {
            var p = Numbered(i);
            faulty.Write([p], [p.Length], 0, 1);
        }

        // Wait until deliveries stop (the fault injector's pump runs on its own thread).
        var last = -1;
        while (true)
        {
            Thread.Sleep(300 + (int)(options.Delay + options.Jitter).TotalMilliseconds);
            lock (received)
            {
                if (received.Count == last)
                {
                    break;
                }

                last = received.Count;
            }
        }

        b.Dispose();
        reader.Join(TimeSpan.FromSeconds(5));
        lock (received)
        {
            return [.. received];
        }
    }

    [Fact]
    public void Write_TwentyPercentLoss_DropsAboutThatMany()
    {
        var received = SendAndCollect(new FaultOptions { LossRate = 0.2, Seed = 3 }, 2000);
        Assert.InRange(received.Count, 1500, 1700);
        Assert.Equal(received.Order().ToList(), received);   // no reordering asked for
    }

    [Fact]
    public void Write_SameSeed_DropsSamePackets()
    {
        var first = SendAndCollect(new FaultOptions { LossRate = 0.1, Seed = 9 }, 500);
        var second = SendAndCollect(new FaultOptions { LossRate = 0.1, Seed = 9 }, 500);
        Assert.Equal(first, second);
    }

    [Fact]
    public void Write_Duplication_DeliversSomePacketsTwice()
    {
        var received = SendAndCollect(new FaultOptions { DuplicateRate = 0.1, Seed = 4 }, 1000);
        Assert.InRange(received.Count, 1050, 1150);
        Assert.Equal(1000, received.Distinct().Count());
    }

    [Fact]
    public void Write_Reordering_SwapsNeighbours()
    {
        var received = SendAndCollect(new FaultOptions { ReorderRate = 0.1, ReorderHold = TimeSpan.FromMilliseconds(50), Seed = 5 }, 1000);
        Assert.Equal(1000, received.Count);
        Assert.NotEqual(received.Order().ToList(), received);
        Assert.Equal(Enumerable.Range(0, 1000), received.Order());
    }

    [Fact]
    public void Write_Delay_HoldsPacketsBack()
    {
        var (a, b) = InMemoryPacketDevice.CreatePair(1500);
        using var faulty = new FaultInjectingPacketDevice(a, new FaultOptions { Delay = TimeSpan.FromMilliseconds(200) });
        using var _ = b;
        var p = Numbered(1);
        var sw = System.Diagnostics.Stopwatch.StartNew();
        faulty.Write([p], [p.Length], 0, 1);
        Assert.Equal(1, b.Read([new byte[100]], new int[1], 0));
        Assert.True(sw.ElapsedMilliseconds >= 190, $"delivered after {sw.ElapsedMilliseconds} ms");
    }

    [Fact]
    public void Read_FromInner_AlsoPassesFaultModel()
    {
        var (a, b) = InMemoryPacketDevice.CreatePair(1500);
        using var faulty = new FaultInjectingPacketDevice(a, new FaultOptions { LossRate = 0.5, Seed = 6 });
        using var _ = b;
        for (var i = 0; i < 400; i++)
        {
            var p = Numbered(i);
            b.Write([p], [p.Length], 0, 1);
        }

        var count = 0;
        var buffers = new[] { new byte[100] };
        var reader = Task.Run(() =>
        {
            while (faulty.Read(buffers, new int[1], 0) > 0)
            {
                Interlocked.Increment(ref count);
            }
        });
        Thread.Sleep(300);
        faulty.Dispose();
        Assert.True(reader.Wait(TimeSpan.FromSeconds(5)));
        Assert.InRange(count, 150, 250);
        Assert.Equal(400 - count, faulty.Dropped);
    }
}
