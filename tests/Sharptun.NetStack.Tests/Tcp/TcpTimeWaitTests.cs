using Sharptun.NetStack.Tcp;
using Sharptun.NetStack.Wire;

namespace Sharptun.NetStack.Tests.Tcp;

/// <summary>
/// Segments arriving for a TIME-WAIT 4-tuple (RFC 9293 §3.10.7.4, RFC 1337, RFC 5961 §7 throttle), on the virtual clock:
/// floods must neither grow the timer queue nor draw one ACK each, and only an acceptable retransmitted FIN restarts 2MSL.
/// </summary>
public sealed class TcpTimeWaitTests
{
    private const int AckLimitPerSecond = 10;
    private static readonly TimeSpan TwoMsl = TimeSpan.FromSeconds(60);
    private static readonly TimeSpan Limit = TimeSpan.FromSeconds(120);

    /// <summary>A closed connection whose client side sits in TIME-WAIT; the network drops everything from here on.</summary>
    private sealed class TimeWaitFixture
    {
        public TimeWaitFixture(int seed)
        {
            var o = new TcpOptions { TimeWaitDuration = TwoMsl, ChallengeAckLimitPerSecond = AckLimitPerSecond };
            Pair = new TcpPair(seed, o, null);

            // an older TIME-WAIT tuple first: its timer entry heads the queue, so nothing behind it drains early
            var older = Pair.Client.Tcp.Connect(Pair.Server.EndPoint(TcpPair.ServerPort), Pair.Client.EndPoint(39999));
            Net.RunUntil(() => older.State == TcpState.Established && Pair.Listener.PendingAccepts > 0, Limit);
            Assert.True(Pair.Listener.TryAccept(out var olderServer));
            Close(older, olderServer);
            Net.RunFor(TimeSpan.FromSeconds(1));
            Older = (older.Tuple, older.RcvNxt, older.SndMax, older.TsRecent);

            Pair.Connect();
            Entered = Close(Pair.C, Pair.S);
            RcvNxt = Pair.C.RcvNxt;
            SndNxt = Pair.C.SndMax;
            TsRecent = Pair.C.TsRecent;
            Net.Filter = _ => true; // nothing reaches the (closed) server any more: only what the client sends is observed
            Net.Tap = pk =>
            {
                if (pk.From == Pair.Client)
                {
                    Sent.Add(pk.Repr);
                }
            };
        }

        public TcpPair Pair { get; }

        /// <summary>The other TIME-WAIT tuple (client port 39999).</summary>
        public (FourTuple Tuple, SeqNumber RcvNxt, SeqNumber SndNxt, uint TsRecent) Older { get; }

        /// <summary>Closes client first (it ends in TIME-WAIT); returns when the client entered TIME-WAIT.</summary>
        private TimeSpan Close(TcpConnection client, TcpConnection server)
        {
            client.ShutdownWrite(Net.Now);
            Net.RunUntil(() => server.State == TcpState.CloseWait, Limit);
            server.ShutdownWrite(Net.Now);
            Net.RunUntil(() => client.State == TcpState.TimeWait, Limit);
            var entered = Net.Now;
            Net.RunUntil(() => server.State == TcpState.Closed, Limit);
            return entered;
        }
        public SimNetwork Net => Pair.Net;
        public TcpLayer Tcp => Pair.Client.Tcp;
        public TimeSpan Entered { get; }
        public SeqNumber RcvNxt { get; }
        public SeqNumber SndNxt { get; }
        public uint TsRecent { get; }
        public List<TcpRepr> Sent { get; } = [];
        public FourTuple Tuple => Pair.C.Tuple;

        /// <summary>Delivers a hand-made segment from the server's 4-tuple to the client, then runs the client's timers.</summary>
        public void Inject(TcpRepr repr, int payloadLength = 0, ushort? clientPort = null)
        {
            var payload = new byte[payloadLength];
            var buf = new byte[repr.HeaderLength + payloadLength];
            repr = repr with { SourcePort = TcpPair.ServerPort, DestinationPort = clientPort ?? Pair.C.Tuple.LocalPort };
            repr.Emit(buf, payload, Pair.Server.Address, Pair.Client.Address);
            lock (Net.Gate)
            {
                Tcp.OnSegment(Pair.Server.Address, Pair.Client.Address, buf);
                Tcp.Poll(Net.Now);
            }
        }

        /// <summary>The peer's FIN again: the segment TIME-WAIT exists to acknowledge.</summary>
        public TcpRepr RetransmittedFin => new()
        {
            Seq = RcvNxt - 1,
            Ack = SndNxt,
            Flags = TcpFlags.Fin | TcpFlags.Ack,
            Window = 1000,
            HasTimestamp = true,
            TsVal = TsRecent,
            TsEcr = 1,
        };

        /// <summary>Virtual time until the tuple leaves TIME-WAIT, measured from <paramref name="from"/>.</summary>
        public TimeSpan RunToExpiry(TimeSpan from)
        {
            Net.RunUntil(() => !Tcp.IsInTimeWait(Tuple), TimeSpan.FromMinutes(10));
            return Net.Now - from;
        }
    }

    private static int AckBound(TimeSpan span) => AckLimitPerSecond * ((int)Math.Ceiling(span.TotalSeconds) + 1);

    [Fact]
    public void TimeWait_FloodOfRetransmittedFins_TimerQueueAndAcksBoundedAndExpiresTwoMslAfterLastFin()
    {
        var f = new TimeWaitFixture(61);
        const int count = 100_000;
        var step = TimeSpan.FromTicks(1000); // 100 µs: 100k FIN/s for 10 virtual seconds
        var start = f.Net.Now;
        int maxQueue = 0;
        for (int i = 0; i < count; i++)
        {
            f.Net.Now += step;
            f.Inject(f.RetransmittedFin);
            maxQueue = Math.Max(maxQueue, f.Tcp.TimeWaitQueueLength);
        }

        var lastFin = f.Net.Now;
        Assert.Equal(2, f.Tcp.TimeWaitCount);
        Assert.True(maxQueue <= 2, $"the TIME-WAIT timer queue grew to {maxQueue} entries for two tuples");
        Assert.True(f.Sent.Count <= AckBound(lastFin - start), $"{f.Sent.Count} ACKs for {count} FINs");
        Assert.True(f.Sent.Count >= AckLimitPerSecond, "retransmitted FINs must still be acknowledged");
        Assert.All(f.Sent, a =>
        {
            Assert.Equal(TcpFlags.Ack, a.Flags);
            Assert.Equal(f.RcvNxt, a.Ack);
            Assert.Equal(f.SndNxt, a.Seq);
        });

        // 2MSL restarted by each acceptable FIN: the tuple expires exactly 2MSL after the last one
        Assert.Equal(TwoMsl, f.RunToExpiry(lastFin));
        Assert.Equal(0, f.Tcp.TimeWaitQueueLength);
    }

    [Fact]
    public void TimeWait_FloodOfUnacceptableSegments_NoRestartNoQueueGrowthAcksThrottled()
    {
        var f = new TimeWaitFixture(62);
        var rnd = new Random(62);
        const int count = 100_000;
        var step = TimeSpan.FromTicks(1000);
        var start = f.Net.Now;
        int maxQueue = 0;
        for (int i = 0; i < count; i++)
        {
            f.Net.Now += step;
            var fin = f.RetransmittedFin;
            var seg = (i % 6) switch
            {
                0 => fin with { Seq = f.RcvNxt + rnd.Next(1, int.MaxValue) }, // FIN at a wrong (future) sequence number
                1 => fin with { Seq = f.RcvNxt - rnd.Next(2, 1 << 30) }, // an old FIN
                2 => fin with { TsVal = f.TsRecent - (uint)rnd.Next(1, 1 << 20) }, // right sequence, PAWS-rejected
                3 => fin with { Ack = f.SndNxt + rnd.Next(1, 1 << 20) }, // acknowledges data never sent
                4 => fin with { Flags = TcpFlags.Ack, Seq = f.RcvNxt + rnd.Next(-1 << 20, 1 << 20) }, // stray data
                _ => fin with { Flags = TcpFlags.Fin }, // FIN without ACK
            };
            f.Inject(seg, payloadLength: (i % 6) == 4 ? 100 : 0);
            maxQueue = Math.Max(maxQueue, f.Tcp.TimeWaitQueueLength);
        }

        var end = f.Net.Now;
        Assert.Equal(2, f.Tcp.TimeWaitCount);
        Assert.True(maxQueue <= 2, $"the TIME-WAIT timer queue grew to {maxQueue} entries for two tuples");
        Assert.True(f.Sent.Count <= AckBound(end - start), $"{f.Sent.Count} ACKs for {count} unacceptable segments");
        Assert.True(f.Tcp.Stats.ChallengeAcksSuppressed > 0);
        Assert.All(f.Sent, a => Assert.Equal(TcpFlags.Ack, a.Flags));

        // none of them restarted 2MSL
        Assert.Equal(TwoMsl, f.RunToExpiry(f.Entered));
    }

    [Fact]
    public void TimeWait_FloodAtOneTuple_OtherTupleStillGetsItsAck()
    {
        var f = new TimeWaitFixture(66);
        var start = f.Net.Now;
        for (int i = 0; i < 5000; i++)
        {
            f.Net.Now += TimeSpan.FromTicks(1000); // 100 µs apart: half a virtual second
            f.Inject(f.RetransmittedFin with { Seq = f.RcvNxt + 1000 + i }); // unacceptable: answered, throttled
        }

        // at most one ACK per 500 ms for the flooded tuple (Linux: tw_last_oow_ack_time, tcp_invalid_ratelimit)
        Assert.InRange(f.Sent.Count, 1, (int)Math.Ceiling((f.Net.Now - start).TotalSeconds / 0.5) + 1);

        // the other TIME-WAIT tuple's retransmitted FIN, in the same second, is still acknowledged
        f.Sent.Clear();
        var older = f.Older;
        f.Inject(new TcpRepr
        {
            Seq = older.RcvNxt - 1, Ack = older.SndNxt, Flags = TcpFlags.Fin | TcpFlags.Ack, Window = 1000,
            HasTimestamp = true, TsVal = older.TsRecent, TsEcr = 1,
        }, clientPort: older.Tuple.LocalPort);
        var ack = Assert.Single(f.Sent);
        Assert.Equal(older.Tuple.LocalPort, ack.SourcePort);
        Assert.Equal(older.RcvNxt, ack.Ack);
        Assert.Equal(older.SndNxt, ack.Seq);
    }

    [Fact]
    public void TimeWait_Rst_IgnoredWithoutAckOrRestart()
    {
        var f = new TimeWaitFixture(63);
        f.Net.Now += TimeSpan.FromSeconds(1);
        f.Inject(new TcpRepr { Seq = f.RcvNxt, Flags = TcpFlags.Rst }); // exact: RFC 1337 §3, no assassination
        f.Inject(new TcpRepr { Seq = f.RcvNxt + 5, Flags = TcpFlags.Rst });
        f.Inject(new TcpRepr { Seq = f.RcvNxt - 1, Ack = f.SndNxt, Flags = TcpFlags.Rst | TcpFlags.Ack | TcpFlags.Fin });
        Assert.True(f.Tcp.IsInTimeWait(f.Tuple));
        Assert.Empty(f.Sent); // never answer a RST (RFC 9293 §3.10.7.4)
        Assert.Equal(TwoMsl, f.RunToExpiry(f.Entered));
    }

    [Fact]
    public void TimeWait_RetransmittedFinAfterQuietPeriod_AckedAndTwoMslRestarted()
    {
        var f = new TimeWaitFixture(64);
        f.Net.RunFor(TimeSpan.FromSeconds(59));
        Assert.True(f.Tcp.IsInTimeWait(f.Tuple));
        f.Inject(f.RetransmittedFin);
        var finAt = f.Net.Now;
        var ack = Assert.Single(f.Sent);
        Assert.Equal(f.RcvNxt, ack.Ack);
        Assert.Equal(f.TsRecent, ack.TsEcr);
        f.Inject(f.RetransmittedFin with { Flags = TcpFlags.Ack, Seq = f.RcvNxt }); // a bare in-window ACK: no reply, no restart
        Assert.Single(f.Sent);
        Assert.Equal(TwoMsl, f.RunToExpiry(finAt));
    }

    [Fact]
    public void TimeWait_ManyTuplesRestartedAndReopened_TimerQueueBoundedByTupleCount()
    {
        var o = new TcpOptions { TimeWaitDuration = TwoMsl, MaxTimeWaitEntries = 64, ChallengeAckLimitPerSecond = AckLimitPerSecond };
        var net = new SimNetwork(65);
        var a = net.AddHost("10.0.0.1", o);
        var b = net.AddHost("10.0.0.2");
        using var l = b.Tcp.Listen(b.EndPoint(80), 16);
        using var la = a.Tcp.Listen(a.EndPoint(0), 16); // lets a newer SYN reopen a TIME-WAIT tuple (RFC 6191)
        var tuples = new List<(FourTuple Tuple, SeqNumber RcvNxt, SeqNumber SndNxt)>();
        for (int i = 0; i < 80; i++)
        {
            var c = a.Tcp.Connect(b.EndPoint(80), a.EndPoint(50000 + i));
            net.RunUntil(() => c.State == TcpState.Established && l.PendingAccepts > 0, Limit);
            Assert.True(l.TryAccept(out var s));
            net.CloseClientFirst(c, s, Limit);
            tuples.Add((c.Tuple, c.RcvNxt, c.SndMax));
        }

        Assert.Equal(64, a.Tcp.TimeWaitCount); // the bound evicted the 16 oldest
        net.Filter = _ => true;
        var buf = new byte[64];
        for (int round = 0; round < 200; round++)
        {
            net.Now += TimeSpan.FromMilliseconds(10);
            foreach (var (tuple, rcvNxt, sndNxt) in tuples)
            {
                var fin = new TcpRepr { SourcePort = tuple.RemotePort, DestinationPort = tuple.LocalPort, Seq = rcvNxt - 1, Ack = sndNxt, Flags = TcpFlags.Fin | TcpFlags.Ack, Window = 100 };
                int n = fin.Emit(buf, ReadOnlySpan<byte>.Empty, tuple.RemoteAddress, tuple.LocalAddress);
                lock (net.Gate)
                {
                    a.Tcp.OnSegment(tuple.RemoteAddress, tuple.LocalAddress, buf.AsSpan(0, n));
                    a.Tcp.Poll(net.Now);
                }
            }

            Assert.True(a.Tcp.TimeWaitQueueLength <= a.Tcp.TimeWaitCount, $"{a.Tcp.TimeWaitQueueLength} timer entries for {a.Tcp.TimeWaitCount} tuples");
        }

        // newer SYNs reopen (and so remove) TIME-WAIT tuples mid-queue: stale timer entries stay bounded too
        foreach (var (tuple, rcvNxt, _) in tuples)
        {
            var syn = new TcpRepr { SourcePort = tuple.RemotePort, DestinationPort = tuple.LocalPort, Seq = rcvNxt + 100_000, Flags = TcpFlags.Syn, Window = 100 };
            int n = syn.Emit(buf, ReadOnlySpan<byte>.Empty, tuple.RemoteAddress, tuple.LocalAddress);
            lock (net.Gate)
            {
                a.Tcp.OnSegment(tuple.RemoteAddress, tuple.LocalAddress, buf.AsSpan(0, n));
            }

            Assert.True(a.Tcp.TimeWaitQueueLength <= (2 * a.Tcp.TimeWaitCount) + 64);
        }

        Assert.Equal(0, a.Tcp.TimeWaitCount);
    }
}
