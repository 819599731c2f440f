using System.Net;
using System.Security.Cryptography;
using Sharptun.NetStack.Tcp;

namespace Sharptun.NetStack.Tests.Tcp;

/// <summary>The send buffers of all connections share <see cref="TcpOptions.SendBufferBudget"/>.</summary>
public sealed class SendBufferBudgetTests
{
    [Theory]
    [InlineData(1, 48 * 1024)]     // alone: the full ring
    [InlineData(8, 64 * 1024 / 8)] // 8 connections share 64 KiB
    [InlineData(40, 4096)]         // never below 4 KiB
    public void StalledPeers_WritersHoldAtMostTheirShare_AndEverythingArrivesOnceThePeersRead(int connections, int share)
    {
        // the peers read nothing for a while and offer 16 KiB windows, so unsent data piles up in the senders' rings
        var sender = new TcpOptions { SendBufferBudget = 64 * 1024, SendBufferSize = 48 * 1024 };
        var receiver = new TcpOptions { ReceiveBufferSize = 16 * 1024 };
        var net = new SimNetwork(31 + connections);
        var a = net.AddHost("10.0.0.1", sender);
        var b = net.AddHost("10.0.0.2", receiver);
        var listener = b.Tcp.Listen(b.EndPoint(80), 64);
        var transfers = new List<(Transfer T, TcpConnection C)>();
        for (var i = 0; i < connections; i++)
        {
            var c = a.Tcp.Connect(b.EndPoint(80), a.EndPoint((ushort)(43000 + i)));
            TcpConnection? s = null;
            net.RunUntil(() => s is not null && c.State == TcpState.Established, TimeSpan.FromSeconds(30), () =>
            {
                if (s is null && listener.TryAccept(out var x))
                {
                    s = x;
                }
            });
            transfers.Add((new Transfer(c, s!, Transfer.RandomData(200_000, 7 + i), closeWhenDone: false) { ReaderPaused = true }, c));
        }

        Assert.Equal(connections, a.Tcp.WindowHolders);
        var most = new int[connections];
        net.RunFor(TimeSpan.FromSeconds(5), () =>
        {
            for (var i = 0; i < connections; i++)
            {
                transfers[i].T.Pump(net.Now);
                most[i] = Math.Max(most[i], transfers[i].C.SendBufferCount);
                Assert.True(transfers[i].C.SendBufferCount <= share, $"connection {i} holds {transfers[i].C.SendBufferCount} > share {share}");
            }
        });

        // every writer filled its share (the bound was reached, not just respected by writers that had little to say)
        Assert.All(most, m => Assert.Equal(share, m));
        Assert.All(transfers, x => Assert.Equal(0, x.C.SendBufferFree));

        foreach (var (t, _) in transfers)
        {
            t.ReaderPaused = false;
        }

        net.RunUntil(() => transfers.All(x => x.T.Received == 200_000), TimeSpan.FromSeconds(300), () =>
        {
            foreach (var (t, _) in transfers)
            {
                t.Pump(net.Now);
            }
        });
        Assert.All(transfers, x => Assert.True(x.T.HashMatches()));
    }

    [Fact]
    public void SendLog_StartsSmall_AndGrowsWithTheDataInFlight()
    {
        var o = new TcpOptions { SendBufferSize = 512 * 1024, ReceiveBufferSize = 512 * 1024 };
        var pair = new TcpPair(seed: 29, o, o).Connect();
        var log = pair.C.SendLogCapacityForTests;
        Assert.Equal(64, log);
        var t = new Transfer(pair.C, pair.S, Transfer.RandomData(2_000_000, 3), closeWhenDone: false);
        var most = 0;
        pair.Net.RunUntil(() => t.Received == 2_000_000, TimeSpan.FromSeconds(120), () =>
        {
            t.Pump(pair.Net.Now);
            most = Math.Max(most, pair.C.SendLogCapacityForTests);
        });
        Assert.True(t.HashMatches());
        Assert.True(most > 64, $"the log never grew ({most})");
        Assert.True(most <= (512 * 1024 / pair.C.Smss) + 32 + 64, $"the log grew past its cap ({most})");
    }
}

/// <summary>
/// A connection held back by a full outbound queue sends again as soon as the device reads packets out of it, without
/// waiting for a timer (the stack here is never polled, so its virtual clock never moves).
/// </summary>
public sealed class OutboundQueueRetryTests
{
    [Theory]
    [InlineData("10.0.0.2")]
    [InlineData("fd00::2")]
    public void FullQueue_SenderResumesWhenTheReaderMakesRoom_WithoutAnyPoll(string server)
    {
        using var pair = new StackPair(o => o.OutboundQueueCapacity = 8);
        using var listener = pair.B.ListenTcp(new IPEndPoint(IPAddress.IPv6Any, 8080));
        var accept = listener.AcceptAsync().AsTask();
        using var client = pair.Run(pair.A.ConnectTcpAsync(new IPEndPoint(IPAddress.Parse(server), 8080)).AsTask());
        using var accepted = pair.Run(accept);

        var data = new byte[1_000_000];
        new Random(5).NextBytes(data);
        var received = pair.SendAndClose(client, accepted, data);
        Assert.Equal(SHA256.HashData(data), SHA256.HashData(received));
        Assert.Equal(TimeSpan.Zero, pair.Now);
        Assert.True(pair.A.Statistics.OutboundFull > 0, "the 8-packet queue never filled: the test did not block the sender");
    }

    [Fact]
    public void FullQueue_BatchRead_SendsTheHeldBackSegmentsIntoTheRoomItMade()
    {
        using var pair = new StackPair(o => o.OutboundQueueCapacity = 8);
        using var listener = pair.B.ListenTcp(new IPEndPoint(IPAddress.Any, 8080));
        var accept = listener.AcceptAsync().AsTask();
        using var client = pair.Run(pair.A.ConnectTcpAsync(new IPEndPoint(IPAddress.Parse("10.0.0.2"), 8080)).AsTask());
        using var accepted = pair.Run(accept);

        var data = new byte[100_000];
        Assert.True(client.WriteAsync(data).IsCompletedSuccessfully); // taken whole into the 512 KiB send ring
        Assert.Equal(8, pair.A.OutboundQueued); // the initial window (10 segments) is wider: the queue holds the sender back

        var buffers = Enumerable.Range(0, 8).Select(_ => new byte[2048]).ToArray();
        var sizes = new int[8];
        Assert.Equal(8, pair.A.Read(buffers, sizes, 0));
        // refilled by the read itself, at the same instant: the 2 segments the initial window (RFC 6928, 10) still allows
        Assert.Equal(2, pair.A.OutboundQueued);
    }
}

/// <summary>A batch of segments written at once (NetworkStack.Write) draws one ACK for its in-order data.</summary>
public sealed class BatchAckTests
{
    [Theory]
    [InlineData(true, 1)]    // one batch: one ACK for all 20 segments
    [InlineData(false, 10)]  // one at a time: an ACK for every second full segment (RFC 5681 §4.2)
    public void TwentySegments_InOrder_DrawOneAckPerBatch(bool batch, int acks)
    {
        var (pair, segments) = TwentySegments();
        using (pair)
        {
            Deliver(pair.B, segments, batch);
            var answers = Drain(pair.B);
            Assert.Equal(acks, answers.Count);
            Assert.All(answers, p => Assert.Equal(40 + 12, p.Length)); // pure ACKs with timestamps, no data
        }
    }

    [Fact]
    public void TwentySegments_WithAHole_EverySegmentPastItIsAnsweredAtOnce_EvenInABatch()
    {
        var (pair, segments) = TwentySegments();
        using (pair)
        {
            segments.RemoveAt(5);
            Deliver(pair.B, segments, batch: true);
            var answers = Drain(pair.B);
            // 5 in order (deferred to the batch's end: at most 1), then 14 past the hole: one duplicate ACK each
            Assert.InRange(answers.Count, 14, 15);
        }
    }

    [Fact]
    public async Task InOrderData_ThatLeavesAHoleBeyond_StillWakesTheReader_WhenTheBatchEnds()
    {
        // batch 1: segments 11..20 (out of order); batch 2: segments 1..9, in order but the hole at 10 remains, so
        // they are answered at once; the reader waiting on the stream must still be woken for their data
        var (pair, segments, server) = TwentySegmentsWithServer();
        using (pair)
        {
            var buffer = new byte[64 * 1024];
            var read = server.ReadAsync(buffer).AsTask();
            Deliver(pair.B, segments.GetRange(10, 10), batch: true);
            Assert.False(read.IsCompleted);
            Deliver(pair.B, segments.GetRange(0, 9), batch: true);
            var n = await read.WaitAsync(TimeSpan.FromSeconds(10));
            Assert.True(n > 0);
        }
    }

    private static (StackPair Pair, List<byte[]> Segments) TwentySegments()
    {
        var (pair, segments, _) = TwentySegmentsWithServer();
        return (pair, segments);
    }

    private static (StackPair Pair, List<byte[]> Segments, NetStack.Tcp.TcpStream Server) TwentySegmentsWithServer()
    {
        var pair = new StackPair();
        using var listener = pair.B.ListenTcp(new IPEndPoint(IPAddress.Any, 8080));
        var accept = listener.AcceptAsync().AsTask();
        var client = pair.Run(pair.A.ConnectTcpAsync(new IPEndPoint(IPAddress.Parse("10.0.0.2"), 8080)).AsTask());
        var server = pair.Run(accept);

        // open the congestion window with 1 MB first, read at the far end
        var warm = new byte[1_000_000];
        var read = Task.Run(async () =>
        {
            var buffer = new byte[65536];
            var total = 0;
            while (total < warm.Length)
            {
                total += await server.ReadAsync(buffer);
            }

            return total;
        });
        // no Nagle: the clock never moves here, so a short tail held back for a delayed ACK would wait forever
        client.NoDelay = true;
        pair.Run(Task.Run(async () => { await client.WriteAsync(warm); return 0; }));
        Assert.Equal(warm.Length, pair.Run(read));
        pair.Pump(); // the window updates of the last reads

        Assert.True(client.WriteAsync(new byte[30 * 1500]).IsCompletedSuccessfully);
        var sent = Drain(pair.A);
        var full = sent.Max(p => p.Length);
        var segments = sent.Where(p => p.Length == full).Take(20).ToList(); // full-sized segments, in order
        Assert.Equal(20, segments.Count);
        Assert.Equal(segments, sent.Take(20));
        return (pair, segments, (NetStack.Tcp.TcpStream)server);
    }

    private static void Deliver(NetworkStack stack, List<byte[]> packets, bool batch)
    {
        if (batch)
        {
            stack.Write([.. packets], packets.Select(p => p.Length).ToArray(), 0, packets.Count);
            return;
        }

        foreach (var p in packets)
        {
            stack.WritePacket(p);
        }
    }

    private static List<byte[]> Drain(NetworkStack stack)
    {
        var list = new List<byte[]>();
        var buffer = new byte[65536];
        while (stack.TryReadPacket(buffer, out var n))
        {
            list.Add(buffer.AsSpan(0, n).ToArray());
        }

        return list;
    }
}

/// <summary>A writer waiting for send space is woken once a quarter of what it may hold is free, not on every ACK.</summary>
public sealed class WriterWakeTests
{
    [Fact]
    public void WaitingWriter_IsWokenOnceAQuarterIsFree_NotByTheFirstAcks()
    {
        var client = new TcpOptions { SendBufferSize = 64 * 1024 };
        var pair = new TcpPair(seed: 41, client).Connect();
        var c = pair.C;
        var data = Transfer.RandomData(64 * 1024, 1);
        Assert.Equal(64 * 1024, c.Send(data, pair.Net.Now)); // the ring is full
        Assert.Equal(0, c.SendBufferFree);
        var wait = c.WriteSignal.Arm(CancellationToken.None);

        var mostFreeWhileWaiting = 0;
        pair.Net.RunUntil(() => wait.IsCompleted, TimeSpan.FromSeconds(30), () =>
        {
            if (!wait.IsCompleted)
            {
                mostFreeWhileWaiting = Math.Max(mostFreeWhileWaiting, c.SendBufferFree);
            }
        });

        Assert.True(c.SendBufferFree >= 16 * 1024, $"woken with {c.SendBufferFree} bytes free");
        Assert.InRange(mostFreeWhileWaiting, 1, 16 * 1024 - 1); // ACKs freed space before, without a wake-up
    }
}
