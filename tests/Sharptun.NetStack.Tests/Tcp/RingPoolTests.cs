using Sharptun.NetStack.Tcp;

namespace Sharptun.NetStack.Tests.Tcp;

/// <summary>The rings' arrays come from the layer's pool while they hold bytes and go back when they drain.</summary>
public sealed class RingPoolTests
{
    [Fact]
    public void Ring_TakesAnArrayOnFirstWrite_GivesItBackWhenDrained_AndTheNextRingReusesIt()
    {
        var pool = new RingPool();
        var ring = new ByteRing(16, pool);
        Assert.False(ring.HoldsArray);
        Assert.Equal(16, ring.Free); // the window does not depend on the array

        Assert.Equal(5, ring.Enqueue([1, 2, 3, 4, 5]));
        Assert.True(ring.HoldsArray);
        Assert.Equal(16, pool.RentedBytes);
        var two = new byte[2];
        ring.Dequeue(two);
        Assert.True(ring.HoldsArray); // three bytes left
        var three = new byte[3];
        ring.Dequeue(three);
        Assert.Equal(new byte[] { 3, 4, 5 }, three);
        Assert.False(ring.HoldsArray);
        Assert.Equal(0, pool.RentedBytes);

        var other = new ByteRing(16, pool);
        other.Enqueue([9]);
        Assert.Equal(16, pool.AllocatedBytes); // reused, not allocated again
    }

    [Fact]
    public void Ring_KeepsItsArrayWhileOutOfOrderBytesWait_PastTheReadableEnd()
    {
        var pool = new RingPool();
        var ring = new ByteRing(8, pool);
        ring.Enqueue([1, 2]);
        ring.WriteAt(3, [6, 7]); // out of order: bytes 3..4 past the readable end
        var two = new byte[2];
        ring.Dequeue(two);       // readable part drained, the out-of-order bytes must survive
        Assert.True(ring.HoldsArray);
        ring.WriteAt(0, [3, 4, 5]);
        ring.Commit(5);
        var five = new byte[5];
        Assert.Equal(5, ring.Dequeue(five));
        Assert.Equal(new byte[] { 3, 4, 5, 6, 7 }, five);
        Assert.False(ring.HoldsArray);
        Assert.Equal(0, pool.RentedBytes);
    }

    [Fact]
    public void Ring_WrapsAroundAcrossReleases_InOrder()
    {
        var pool = new RingPool();
        var ring = new ByteRing(10, pool);
        var rng = new Random(5);
        byte next = 0, expect = 0;
        for (var i = 0; i < 2000; i++)
        {
            var chunk = new byte[rng.Next(0, ring.Free + 1)];
            for (var j = 0; j < chunk.Length; j++)
            {
                chunk[j] = next++;
            }

            Assert.Equal(chunk.Length, ring.Enqueue(chunk));
            var take = new byte[rng.Next(0, ring.Count + 1)];
            ring.Dequeue(take);
            foreach (var b in take)
            {
                Assert.Equal(expect++, b);
            }

            Assert.Equal(ring.Count > 0, ring.HoldsArray);
        }

        Assert.Equal(10, pool.AllocatedBytes);
    }

    [Fact]
    public void ChunkedRing_RandomWritesAheadCommitsAndReads_MatchAByteModel_AndHoldOnlyTheChunksInUse()
    {
        // 10,000 bytes = two full 4 KiB chunks and a short third; out-of-order blocks land past the readable end and
        // become readable when the hole before them is written, as TCP's reassembly does
        const int capacity = 10_000;
        var pool = new RingPool();
        var ring = new ByteRing(capacity, pool);
        var rng = new Random(11);
        long next = 0, expect = 0, head = 0;
        for (var i = 0; i < 5_000; i++)
        {
            switch (rng.Next(3))
            {
                case 0:
                {
                    var data = Block(ref next, rng.Next(0, ring.Free + 1));
                    Assert.Equal(data.Length, ring.Enqueue(data));
                    break;
                }

                case 1 when ring.Free >= 2:
                {
                    int hole = rng.Next(1, ring.Free);
                    int ahead = rng.Next(1, ring.Free - hole + 1);
                    var holeBytes = Block(ref next, hole);
                    var aheadBytes = Block(ref next, ahead);
                    ring.WriteAt(hole, aheadBytes); // out of order first
                    ring.WriteAt(0, holeBytes);
                    ring.Commit(hole);
                    ring.Commit(ahead);
                    break;
                }

                default:
                {
                    var take = new byte[rng.Next(0, ring.Count + 1)];
                    Assert.Equal(take.Length, ring.Dequeue(take));
                    head = (head + take.Length) % capacity;
                    foreach (var b in take)
                    {
                        Assert.Equal((byte)(expect++ * 7), b);
                    }

                    break;
                }
            }

            // exactly the chunks the readable bytes run through (the model's head: it moves with every read and goes
            // back to 0 when the ring empties)
            head = ring.Count == 0 ? 0 : head;
            var inUse = new HashSet<int>();
            for (var k = 0; k < ring.Count; k++)
            {
                inUse.Add((int)((head + k) % capacity) / ByteRing.ChunkSize);
            }

            Assert.Equal(inUse.Count * ByteRing.ChunkSize, ring.HeldBytes);
            Assert.Equal(ring.HeldBytes, pool.RentedBytes);
        }

        var rest = new byte[ring.Count];
        ring.Dequeue(rest);
        Assert.Equal(0, ring.HeldBytes);
        Assert.Equal(0, pool.RentedBytes);
        Assert.InRange(pool.AllocatedBytes, 1, 3 * ByteRing.ChunkSize);
    }

    private static byte[] Block(ref long next, int length)
    {
        var data = new byte[length];
        for (var j = 0; j < length; j++)
        {
            data[j] = (byte)(next++ * 7);
        }

        return data;
    }

    [Fact]
    public void Release_ReturnsTheArrayWhateverTheRingHolds()
    {
        var pool = new RingPool();
        var ring = new ByteRing(8, pool);
        ring.Enqueue([1, 2, 3]);
        ring.Release();
        Assert.Equal(0, ring.Count);
        Assert.False(ring.HoldsArray);
        Assert.Equal(0, pool.RentedBytes);
        ring.Release(); // twice is harmless
        Assert.Equal(0, pool.RentedBytes);
    }

    [Fact]
    public void Commit_OfBytesNeverWritten_Throws()
    {
        var ring = new ByteRing(8, new RingPool());
        Assert.Throws<ArgumentOutOfRangeException>(() => ring.Commit(1));
    }

    [Fact]
    public void ManyConnections_IdleAfterTheirTransfers_HoldNoRingArrays_AndTakeTurnsWithTheSameFour()
    {
        // 20 connections on the virtual link, 64 KiB each way through 16 KiB rings, each transfer verified by hash.
        // Idle afterwards (all still open), the rings hold nothing.
        var o = new TcpOptions { SendBufferSize = 16 * 1024, ReceiveBufferSize = 16 * 1024 };
        var net = new SimNetwork(91);
        var a = net.AddHost("10.0.0.1", o);
        var b = net.AddHost("10.0.0.2", o);
        var listener = b.Tcp.Listen(b.EndPoint(80), 64);
        var pairs = new List<(TcpConnection C, TcpConnection S)>();
        for (var i = 0; i < 20; i++)
        {
            var c = a.Tcp.Connect(b.EndPoint(80), a.EndPoint((ushort)(41000 + i)));
            TcpConnection? s = null;
            net.RunUntil(() => s is not null && c.State == TcpState.Established, TimeSpan.FromSeconds(30), () =>
            {
                if (s is null && listener.TryAccept(out var x))
                {
                    s = x;
                }
            });
            pairs.Add((c, s!));
        }

        // one pair at a time, both directions at once: the arrays of the pair before are back in the pool and are
        // what the next pair's four rings use
        for (var i = 0; i < pairs.Count; i++)
        {
            var (c, s) = pairs[i];
            Transfer[] both = [new(c, s, Transfer.RandomData(64 * 1024, 100 + i), closeWhenDone: false), new(s, c, Transfer.RandomData(64 * 1024, 200 + i), closeWhenDone: false)];
            net.RunUntil(() => both.All(t => t.Received == 64 * 1024), TimeSpan.FromSeconds(60), () =>
            {
                foreach (var t in both)
                {
                    t.Pump(net.Now);
                }
            });
            net.RunFor(TimeSpan.FromSeconds(1)); // the last ACKs drain the send rings
            Assert.All(both, t => Assert.True(t.HashMatches()));
            Assert.Equal(0, a.Tcp.Rings.RentedBytes);
            Assert.Equal(0, b.Tcp.Rings.RentedBytes);
        }

        Assert.All(pairs, p => Assert.True(p.C.State == TcpState.Established && p.S.State == TcpState.Established));
        // 80 rings exist; the pool never made more than one pair's four rings' worth
        Assert.InRange(a.Tcp.Rings.AllocatedBytes, 1, 2 * 16 * 1024);
        Assert.InRange(b.Tcp.Rings.AllocatedBytes, 1, 2 * 16 * 1024);
    }
}

/// <summary>The receive windows of all connections share <see cref="TcpOptions.ReceiveWindowBudget"/>.</summary>
public sealed class ReceiveWindowBudgetTests
{
    [Theory]
    [InlineData(1, 32 * 1024)]     // alone: the full ring
    [InlineData(8, 64 * 1024 / 8)] // 8 connections share 64 KiB
    [InlineData(40, 4096)]         // never below 4 KiB
    public void StalledReaders_HoldAtMostTheirShare_AndEverythingArrivesOnceTheyRead(int connections, int share)
    {
        var o = new TcpOptions { ReceiveWindowBudget = 64 * 1024, ReceiveBufferSize = 32 * 1024 };
        var net = new SimNetwork(17 + connections);
        var a = net.AddHost("10.0.0.1", o);
        var b = net.AddHost("10.0.0.2", o);
        var listener = b.Tcp.Listen(b.EndPoint(80), 64);
        var transfers = new List<(Transfer T, TcpConnection S)>();
        for (var i = 0; i < connections; i++)
        {
            var c = a.Tcp.Connect(b.EndPoint(80), a.EndPoint((ushort)(42000 + i)));
            TcpConnection? s = null;
            net.RunUntil(() => s is not null && c.State == TcpState.Established, TimeSpan.FromSeconds(30), () =>
            {
                if (s is null && listener.TryAccept(out var x))
                {
                    s = x;
                }
            });
            transfers.Add((new Transfer(c, s!, Transfer.RandomData(400_000, i), closeWhenDone: false) { ReaderPaused = true }, s!));
        }

        Assert.Equal(connections, b.Tcp.WindowHolders);

        // windows never shrink: the first connections offered more in their SYNs, before the others shared the
        // budget; after 64 KiB each way the right edges have moved on under the current shares
        net.RunUntil(() => transfers.All(x => x.T.Received >= 64 * 1024), TimeSpan.FromSeconds(120), () =>
        {
            foreach (var (t, _) in transfers)
            {
                t.ReaderPaused = t.Received >= 64 * 1024;
                t.Pump(net.Now);
            }
        });
        foreach (var (t, _) in transfers)
        {
            t.ReaderPaused = true;
        }

        net.RunFor(TimeSpan.FromSeconds(5), () =>
        {
            foreach (var (t, _) in transfers)
            {
                t.Pump(net.Now);
            }
        });
        foreach (var (_, s) in transfers)
        {
            Assert.True(s.ReadableBytes > 0 && s.ReadableBytes <= share, $"held {s.ReadableBytes}, offered {s.AdvertisedWindow}, share {b.Tcp.ReceiveWindowShare}, {s.DebugState()}");
            Assert.True(s.ReadableBytes + s.AdvertisedWindow <= share, $"held {s.ReadableBytes} + offered {s.AdvertisedWindow} > {share}");
        }

        foreach (var (t, _) in transfers)
        {
            t.ReaderPaused = false;
        }

        net.RunUntil(() => transfers.All(x => x.T.Received == 400_000), TimeSpan.FromSeconds(120), () =>
        {
            foreach (var (t, _) in transfers)
            {
                t.Pump(net.Now);
            }
        });
        Assert.All(transfers, x => Assert.True(x.T.HashMatches()));
    }

    [Fact]
    public void ClosedConnections_GiveTheirShareBack()
    {
        var pair = new TcpPair(seed: 23).Connect();
        Assert.Equal(1, pair.Server.Tcp.WindowHolders);
        pair.Net.CloseClientFirst(pair.C, pair.S, TimeSpan.FromSeconds(30));
        Assert.Equal(0, pair.Client.Tcp.WindowHolders); // TIME-WAIT
        Assert.Equal(1, pair.Server.Tcp.WindowHolders); // closed, but its application may still read
        pair.S.CloseByApplication(pair.Net.Now);
        Assert.Equal(0, pair.Server.Tcp.WindowHolders);
    }
}
