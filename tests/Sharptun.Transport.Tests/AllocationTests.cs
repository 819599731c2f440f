using Sharptun.Testing;
using Sharptun.Transport;

namespace Sharptun.Transport.Tests;

/// <summary>The in-memory transports carry packets without allocating once warmed up (the device pipeline's benchmarks rely on it).</summary>
public sealed class AllocationTests
{
    private static long AllocatedBy(Action action, int warmup = 50, int iterations = 200)
    {
        for (var i = 0; i < warmup; i++)
        {
            action();
        }

        var before = GC.GetAllocatedBytesForCurrentThread();
        for (var i = 0; i < iterations; i++)
        {
            action();
        }

        return GC.GetAllocatedBytesForCurrentThread() - before;
    }

    [Fact]
    public void InMemoryPacketDevice_WriteThenRead_AllocatesNothing()
    {
        var (a, b) = InMemoryPacketDevice.CreatePair(mtu: 1420, capacity: 64);
        var buffers = Enumerable.Range(0, 32).Select(_ => new byte[2048]).ToArray();
        var sizes = new int[32];

        var allocated = AllocatedBy(() =>
        {
            sizes.AsSpan().Fill(1400);
            a.Write(buffers, sizes, 16, 32);
            var n = 0;
            while (n < 32)
            {
                n += b.Read(buffers, sizes, 16);
            }
        });

        Assert.Equal(0, allocated);
    }

    [Fact]
    public void InMemoryBind_SendThenReceive_AllocatesNothing()
    {
        var network = new InMemoryNetwork(5);
        using var a = network.CreateBind("10.0.0.1:1");
        using var b = network.CreateBind("10.0.0.2:2");
        var buffers = Enumerable.Range(0, 32).Select(_ => new byte[2048]).ToArray();
        var sizes = new int[32];
        var endpoints = new UdpEndpoint[32];

        var allocated = AllocatedBy(() =>
        {
            sizes.AsSpan().Fill(1400);
            a.Send(buffers, sizes, 0, 32, b.LocalEndpoint);
            var n = 0;
            while (n < 32)
            {
                n += b.Receive(buffers, sizes, endpoints);
            }
        });

        Assert.Equal(0, allocated);
    }

    [Fact]
    public void PacketBufferPool_RentReturn_AllocatesNothingOnceWarm()
    {
        var pool = new PacketBufferPool(64 * 2048);
        var batch = new byte[32][];

        var allocated = AllocatedBy(() =>
        {
            var n = pool.TryRentBatch(batch, 32);
            pool.ReturnBatch(batch.AsSpan(0, n));
        });

        Assert.Equal(0, allocated);
    }
}
