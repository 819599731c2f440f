using Sharptun.NetStack.Tcp;
using Sharptun.NetStack.Wire;

namespace Sharptun.NetStack.Tests.Tcp;

/// <summary>
/// Duplicate ACKs for unacceptable segments on a synchronized connection (RFC 9293 §3.10.7.4 first, RFC 7323 §5.3,
/// SEG.ACK &gt; SND.NXT): a pure ACK is answered at most once per 500 ms (Linux tcp_invalid_ratelimit: it may be one
/// half of an ACK loop or a reflection flood), a segment with data or a FIN always (a retransmission after a lost ACK
/// needs the reply); an unacceptable SYN gets the equally throttled challenge ACK (TcpChallengeAckTests).
/// </summary>
public sealed class TcpOutOfWindowAckTests
{
    private static readonly TimeSpan Limit = TimeSpan.FromSeconds(120);

    private static (TcpPair Pair, List<TcpRepr> Sent) Established(int seed)
    {
        var p = new TcpPair(seed).Connect();
        p.Net.RunFor(TimeSpan.FromSeconds(1)); // settle: no delayed ACK pending
        var sent = new List<TcpRepr>();
        p.Net.Tap = pk =>
        {
            if (pk.From == p.Client)
            {
                sent.Add(pk.Repr);
            }
        };
        return (p, sent);
    }

    private static void Inject(TcpPair p, TcpRepr repr, int payloadLength = 0)
    {
        var buf = new byte[repr.HeaderLength + payloadLength];
        repr = repr with { SourcePort = TcpPair.ServerPort, DestinationPort = p.C.Tuple.LocalPort };
        repr.Emit(buf, new byte[payloadLength], p.Server.Address, p.Client.Address);
        lock (p.Net.Gate)
        {
            p.Client.Tcp.OnSegment(p.Server.Address, p.Client.Address, buf);
        }
    }

    [Theory]
    [InlineData(0)] // sequence number far outside the window
    [InlineData(1)] // PAWS: TSval older than TS.Recent
    [InlineData(2)] // acknowledges data never sent
    public void UnacceptablePureAck_Flood_AnsweredAtMostTwicePerSecond(int kind)
    {
        var (p, sent) = Established(70 + kind);
        var start = p.Net.Now;
        const int count = 20_000;
        for (int i = 0; i < count; i++)
        {
            p.Net.Now += TimeSpan.FromTicks(1000); // 100 µs apart: 2 virtual seconds
            var seg = new TcpRepr
            {
                Seq = p.C.RcvNxt, Ack = p.C.SndMax, Flags = TcpFlags.Ack, Window = 1000,
                HasTimestamp = true, TsVal = p.C.TsRecent + 1, TsEcr = 0,
            };
            seg = kind switch
            {
                0 => seg with { Seq = p.C.RcvNxt + 100_000_000 },
                1 => seg with { TsVal = p.C.TsRecent - 1000 },
                _ => seg with { Ack = p.C.SndMax + 100_000 },
            };
            Inject(p, seg);
        }

        double seconds = (p.Net.Now - start).TotalSeconds;
        Assert.InRange(sent.Count, 1, (int)Math.Ceiling(seconds * 2) + 1);
        Assert.All(sent, a => Assert.Equal(p.C.RcvNxt, a.Ack));
        Assert.Equal(TcpState.Established, p.C.State);

        // the connection still works
        var t = new Transfer(p.C, p.S, Transfer.RandomData(20_000, kind));
        p.Net.Tap = null;
        p.Net.RunUntil(() => t.Finished, Limit, () => t.Pump(p.Net.Now));
        Assert.True(t.HashMatches());
    }

    [Fact]
    public void OldDuplicateData_Repeated_EveryCopyAnswered()
    {
        var (p, sent) = Established(75);
        for (int i = 0; i < 5; i++)
        {
            p.Net.Now += TimeSpan.FromMilliseconds(1);
            Inject(p, new TcpRepr
            {
                Seq = p.C.RcvNxt - 100, Ack = p.C.SndMax, Flags = TcpFlags.Ack, Window = 1000,
                HasTimestamp = true, TsVal = p.C.TsRecent, TsEcr = 0,
            }, payloadLength: 100);
        }

        Assert.Equal(5, sent.Count);
        Assert.All(sent, a => Assert.Equal(p.C.RcvNxt, a.Ack));
    }
}
