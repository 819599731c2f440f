using Sharptun.Transport;

namespace Sharptun.Transport.Tests;

public sealed class InMemoryPacketDeviceTests
{
    private static byte[][] Buffers(int count, int size) => Enumerable.Range(0, count).Select(_ => new byte[size]).ToArray();

    private static int WriteOne(IPacketDevice device, byte tag, int length = 100, int offset = 16)
    {
        var buffer = new byte[offset + length];
        buffer.AsSpan(offset, length).Fill(tag);
        return device.Write([buffer], [length], offset, 1);
    }

    [Fact]
    public void Write_Batch_PeerReadsSamePacketsInOrder()
    {
        var (a, b) = InMemoryPacketDevice.CreatePair(mtu: 1420);
        var outgoing = Buffers(5, 16 + 1420);
        var outSizes = new int[5];
        for (var i = 0; i < 5; i++)
        {
            outSizes[i] = 100 + i;
            outgoing[i].AsSpan(16, outSizes[i]).Fill((byte)(i + 1));
        }

        Assert.Equal(5, a.Write(outgoing, outSizes, 16, 5));
        var incoming = Buffers(8, 32 + 1420);
        var sizes = new int[8];
        var n = b.Read(incoming, sizes, 32);

        Assert.Equal(5, n);
        for (var i = 0; i < 5; i++)
        {
            Assert.Equal(outSizes[i], sizes[i]);
            Assert.True(incoming[i].AsSpan(32, sizes[i]).IndexOfAnyExcept((byte)(i + 1)) < 0);
        }
    }

    [Fact]
    public void Read_MoreQueuedThanBatchSize_ReturnsAtMostBatchSize()
    {
        var (a, b) = InMemoryPacketDevice.CreatePair(mtu: 200, batchSize: 4);
        for (var i = 0; i < 10; i++)
        {
            WriteOne(a, (byte)i);
        }

        var n = b.Read(Buffers(16, 300), new int[16], 0);

        Assert.Equal(4, n);
        Assert.Equal(6, b.Pending);
    }

    [Fact]
    public void Write_PacketLargerThanMtu_IsDroppedAndCounted()
    {
        var (a, _) = InMemoryPacketDevice.CreatePair(mtu: 100);

        Assert.Equal(0, WriteOne(a, 1, length: 101));
        Assert.Equal(1, a.Dropped);
    }

    [Fact]
    public void Write_QueueFull_BlocksUntilPeerReads()
    {
        var (a, b) = InMemoryPacketDevice.CreatePair(mtu: 200, capacity: 2);
        WriteOne(a, 1);
        WriteOne(a, 2);

        var blocked = Task.Run(() => WriteOne(a, 3));
        Thread.Sleep(100);
        Assert.False(blocked.IsCompleted);

        var buffers = Buffers(1, 300);
        var sizes = new int[1];
        Assert.Equal(1, b.Read(buffers, sizes, 0));
        Assert.Equal(1, blocked.Wait(TimeSpan.FromSeconds(5)) ? blocked.Result : -1);
        Assert.Equal(0, a.Dropped);
    }

    [Fact]
    public void Write_QueueFullNonBlocking_Drops()
    {
        var (a, b) = InMemoryPacketDevice.CreatePair(mtu: 200, capacity: 2, blockWhenFull: false);
        WriteOne(a, 1);
        WriteOne(a, 2);

        Assert.Equal(0, WriteOne(a, 3));
        Assert.Equal(1, a.Dropped);
        Assert.Equal(2, b.Pending);
    }

    [Fact]
    public void Dispose_WhileReadBlocked_ReadReturnsZero()
    {
        var (a, _) = InMemoryPacketDevice.CreatePair(mtu: 200);
        var reader = Task.Run(() => a.Read(Buffers(1, 300), new int[1], 0));
        Thread.Sleep(50);

        a.Dispose();

        Assert.True(reader.Wait(TimeSpan.FromSeconds(5)));
        Assert.Equal(0, reader.Result);
    }

    [Fact]
    public void Dispose_Writer_PeerDrainsQueuedThenReadsZero()
    {
        var (a, b) = InMemoryPacketDevice.CreatePair(mtu: 200);
        WriteOne(a, 7);

        a.Dispose();

        var buffers = Buffers(4, 300);
        var sizes = new int[4];
        Assert.Equal(1, b.Read(buffers, sizes, 0));
        Assert.Equal(0, b.Read(buffers, sizes, 0));
        Assert.Equal(0, WriteOne(b, 1));
    }

    [Fact]
    public void Write_AfterDispose_Throws()
    {
        var (a, _) = InMemoryPacketDevice.CreatePair(mtu: 200);
        a.Dispose();

        Assert.Throws<ObjectDisposedException>(() => WriteOne(a, 1));
    }

    [Fact]
    public void Read_BufferTooSmall_PacketDroppedNextOneRead()
    {
        var (a, b) = InMemoryPacketDevice.CreatePair(mtu: 200);
        WriteOne(a, 1, length: 150);
        WriteOne(a, 2, length: 50);

        var buffers = Buffers(1, 100);
        var sizes = new int[1];

        Assert.Equal(1, b.Read(buffers, sizes, 0));
        Assert.Equal(50, sizes[0]);
        Assert.Equal(2, buffers[0][0]);
        Assert.Equal(1, b.Dropped);
    }
}
