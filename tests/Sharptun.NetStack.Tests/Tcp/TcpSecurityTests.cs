using System.Net.Sockets;
using Sharptun.NetStack.Tcp;
using Sharptun.NetStack.Wire;
using Sharptun.Transport;

namespace Sharptun.NetStack.Tests.Tcp;

/// <summary>RFC 5961 challenge ACKs, RFC 7323 PAWS, TIME-WAIT table bounds, RFC 6528 ISNs, RST generation.</summary>
public sealed class TcpSecurityTests
{
    private static readonly TimeSpan Limit = TimeSpan.FromSeconds(120);

    /// <summary>Delivers a hand-made segment from the server's 4-tuple to the client.</summary>
    private static void InjectToClient(TcpPair p, TcpRepr repr, byte[]? payload = null)
    {
        payload ??= [];
        var buf = new byte[repr.HeaderLength + payload.Length];
        repr = repr with { SourcePort = TcpPair.ServerPort, DestinationPort = p.C.Tuple.LocalPort };
        repr.Emit(buf, payload, p.Server.Address, p.Client.Address);
        lock (p.Net.Gate)
        {
            p.Client.Tcp.OnSegment(p.Server.Address, p.Client.Address, buf);
        }
    }

    private static List<SimPacket> CaptureFrom(TcpPair p, SimHost host)
    {
        var list = new List<SimPacket>();
        p.Net.Tap = pk =>
        {
            if (pk.From == host)
            {
                list.Add(pk);
            }
        };
        return list;
    }

    [Fact]
    public void Rst_InWindowButNotExactSequence_ChallengeAckAndConnectionSurvives()
    {
        var p = new TcpPair(41).Connect();
        var sent = CaptureFrom(p, p.Client);
        InjectToClient(p, new TcpRepr { Seq = p.C.RcvNxt + 1000, Flags = TcpFlags.Rst });
        Assert.Equal(TcpState.Established, p.C.State);
        var ack = Assert.Single(sent);
        Assert.Equal(TcpFlags.Ack, ack.Repr.Flags);
        Assert.Equal(p.C.RcvNxt, ack.Repr.Ack);
        Assert.Equal(1, p.Client.Tcp.Stats.ChallengeAcksSent);
    }

    [Fact]
    public void Rst_ExactSequence_ResetsConnection()
    {
        var p = new TcpPair(42).Connect();
        InjectToClient(p, new TcpRepr { Seq = p.C.RcvNxt, Flags = TcpFlags.Rst });
        Assert.Equal(TcpState.Closed, p.C.State);
        Assert.Equal(SocketError.ConnectionReset, p.C.Error);
    }

    [Fact]
    public void Rst_OutsideWindow_SilentlyDropped()
    {
        var p = new TcpPair(43).Connect();
        var sent = CaptureFrom(p, p.Client);
        InjectToClient(p, new TcpRepr { Seq = p.C.RcvNxt + 100_000_000, Flags = TcpFlags.Rst });
        Assert.Equal(TcpState.Established, p.C.State);
        Assert.Empty(sent);
    }

    [Fact]
    public void Syn_InEstablishedState_ChallengeAckNotReset()
    {
        var p = new TcpPair(44).Connect();
        var sent = CaptureFrom(p, p.Client);
        InjectToClient(p, new TcpRepr { Seq = p.C.RcvNxt + 5, Flags = TcpFlags.Syn });
        Assert.Equal(TcpState.Established, p.C.State);
        var ack = Assert.Single(sent);
        Assert.Equal(TcpFlags.Ack, ack.Repr.Flags);
        Assert.Equal(p.C.RcvNxt, ack.Repr.Ack);
    }

    [Fact]
    public void Ack_ForDataNeverSent_AnsweredWithAckAndDropped()
    {
        var p = new TcpPair(45).Connect();
        var sent = CaptureFrom(p, p.Client);
        var una = p.C.SndUna;
        InjectToClient(p, new TcpRepr { Seq = p.C.RcvNxt, Ack = p.C.SndMax + 50_000, Flags = TcpFlags.Ack, Window = 1000 });
        Assert.Equal(una, p.C.SndUna);
        Assert.Single(sent);
    }

    [Fact]
    public void ChallengeAck_ManyBogusRsts_OnePerConnectionPer500Ms()
    {
        var p = new TcpPair(46).Connect();
        for (int i = 0; i < 20; i++)
        {
            InjectToClient(p, new TcpRepr { Seq = p.C.RcvNxt + 10 + i, Flags = TcpFlags.Rst });
        }

        Assert.Equal(1, p.Client.Tcp.Stats.ChallengeAcksSent);
        Assert.Equal(19, p.Client.Tcp.Stats.ChallengeAcksSuppressed);

        p.Net.Now += TimeSpan.FromMilliseconds(499);
        InjectToClient(p, new TcpRepr { Seq = p.C.RcvNxt + 10, Flags = TcpFlags.Rst });
        Assert.Equal(1, p.Client.Tcp.Stats.ChallengeAcksSent);
        p.Net.Now += TimeSpan.FromMilliseconds(1);
        InjectToClient(p, new TcpRepr { Seq = p.C.RcvNxt + 10, Flags = TcpFlags.Rst });
        Assert.Equal(2, p.Client.Tcp.Stats.ChallengeAcksSent);
        Assert.Equal(TcpState.Established, p.C.State);
    }

    [Fact]
    public void Paws_SegmentWithOldTimestamp_Dropped()
    {
        var p = new TcpPair(47).Connect();
        var recent = p.C.TsRecent;
        var before = p.C.RcvNxt;
        InjectToClient(p, new TcpRepr
        {
            Seq = p.C.RcvNxt, Ack = p.C.SndUna, Flags = TcpFlags.Ack | TcpFlags.Psh, Window = 1000,
            HasTimestamp = true, TsVal = recent - 1000, TsEcr = 0,
        }, new byte[100]);
        Assert.Equal(before, p.C.RcvNxt);
        Assert.Equal(1, p.Client.Tcp.Stats.PawsRejected);
    }

    [Fact]
    public void Paws_SegmentWithNewerTimestamp_AcceptedAndTsRecentUpdated()
    {
        var p = new TcpPair(48).Connect();
        var recent = p.C.TsRecent;
        var before = p.C.RcvNxt;
        InjectToClient(p, new TcpRepr
        {
            Seq = p.C.RcvNxt, Ack = p.C.SndUna, Flags = TcpFlags.Ack | TcpFlags.Psh, Window = 1000,
            HasTimestamp = true, TsVal = recent + 5, TsEcr = 0,
        }, new byte[100]);
        Assert.Equal(before + 100, p.C.RcvNxt);
        Assert.Equal(recent + 5, p.C.TsRecent);
        Assert.Equal(0, p.Client.Tcp.Stats.PawsRejected);
    }

    [Fact]
    public void TimeWait_MoreClosesThanTableSize_OldestEvicted()
    {
        var o = new TcpOptions { MaxTimeWaitEntries = 3 };
        var net = new SimNetwork(49);
        var a = net.AddHost("10.0.0.1", o);
        var b = net.AddHost("10.0.0.2");
        using var l = b.Tcp.Listen(b.EndPoint(80), 16);
        for (int i = 0; i < 5; i++)
        {
            var c = a.Tcp.Connect(b.EndPoint(80), a.EndPoint(50000 + i));
            net.RunUntil(() => c.State == TcpState.Established && l.PendingAccepts > 0, Limit);
            Assert.True(l.TryAccept(out var s));
            net.CloseClientFirst(c, s, Limit);
        }

        Assert.Equal(3, a.Tcp.TimeWaitCount);
        Assert.Equal(2, a.Tcp.Stats.TimeWaitEvictions);
        Assert.False(a.Tcp.IsInTimeWait(new FourTuple(a.Address, 50000, b.Address, 80)));
        Assert.True(a.Tcp.IsInTimeWait(new FourTuple(a.Address, 50004, b.Address, 80)));
    }

    [Fact]
    public void TimeWait_AfterTwoMsl_EntryExpires()
    {
        var o = new TcpOptions { TimeWaitDuration = TimeSpan.FromSeconds(30) };
        var p = new TcpPair(50, o, null).Connect();
        p.C.ShutdownWrite(p.Net.Now);
        p.Net.RunUntil(() => p.S.State == TcpState.CloseWait, Limit);
        p.S.ShutdownWrite(p.Net.Now);
        p.Net.RunUntil(() => p.C.State == TcpState.TimeWait, Limit);
        var entered = p.Net.Now;
        Assert.Equal(1, p.Client.Tcp.TimeWaitCount);
        p.Net.RunUntil(() => p.Client.Tcp.TimeWaitCount == 0, TimeSpan.FromMinutes(5));
        Assert.InRange((p.Net.Now - entered).TotalSeconds, 29, 31);
    }

    [Fact]
    public void TimeWait_RetransmittedFin_ReAcked()
    {
        var p = new TcpPair(51).Connect();
        p.C.ShutdownWrite(p.Net.Now);
        p.Net.RunUntil(() => p.S.State == TcpState.CloseWait, Limit);
        p.S.ShutdownWrite(p.Net.Now);
        p.Net.RunUntil(() => p.C.State == TcpState.TimeWait, Limit);
        var sent = CaptureFrom(p, p.Client);
        InjectToClient(p, new TcpRepr { Seq = p.C.RcvNxt - 1, Ack = p.C.SndMax, Flags = TcpFlags.Fin | TcpFlags.Ack, Window = 1000 });
        var ack = Assert.Single(sent);
        Assert.Equal(TcpFlags.Ack, ack.Repr.Flags);
        Assert.Equal(p.C.RcvNxt, ack.Repr.Ack);
    }

    [Fact]
    public void Listen_SynFloodOfHalfOpenConnections_AllocatesNoConnectionBuffers()
    {
        var net = new SimNetwork(53);
        var server = net.AddHost("10.0.0.2");
        using var l = server.Tcp.Listen(server.EndPoint(80), 1000);
        var attacker = IpAddr.Parse("10.9.9.9");
        net.Filter = _ => true; // SYN-ACKs go nowhere
        var buf = new byte[64];
        long before = GC.GetAllocatedBytesForCurrentThread();
        for (int i = 0; i < 200; i++)
        {
            var syn = new TcpRepr { SourcePort = (ushort)(20000 + i), DestinationPort = 80, Seq = new SeqNumber((uint)i * 7919), Flags = TcpFlags.Syn, Window = 65535, Mss = 1460 };
            int n = syn.Emit(buf, ReadOnlySpan<byte>.Empty, attacker, server.Address);
            lock (net.Gate)
            {
                server.Tcp.OnSegment(attacker, server.Address, buf.AsSpan(0, n));
            }
        }

        long perConnection = (GC.GetAllocatedBytesForCurrentThread() - before) / 200;
        Assert.Equal(200, l.HalfOpen);
        Assert.True(perConnection < 8192, $"a half-open connection allocated {perConnection} bytes");
    }

    [Fact]
    public void GenerateIss_SameTupleLater_AdvancesWithClockAndDiffersAcrossTuples()
    {
        var net = new SimNetwork(52);
        var a = net.AddHost("10.0.0.1");
        var t1 = new FourTuple(a.Address, 1000, IpAddr.Parse("10.0.0.9"), 80);
        var t2 = t1 with { LocalPort = 1001 };
        var now = TimeSpan.FromSeconds(10);
        var i1 = a.Tcp.GenerateIss(t1, now);
        var i1Later = a.Tcp.GenerateIss(t1, now + TimeSpan.FromMilliseconds(4));
        Assert.Equal(1000, i1Later - i1); // 4 ms of 4 µs ticks (RFC 6528 M)
        Assert.NotEqual(i1, a.Tcp.GenerateIss(t2, now));
        var other = new SimNetwork(53).AddHost("10.0.0.1");
        Assert.NotEqual(i1, other.Tcp.GenerateIss(t1, now)); // a fresh random secret key per layer
    }
}
