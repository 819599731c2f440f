using Xunit.Abstractions;
using System.Net.Sockets;
using Sharptun.NetStack.Tcp;

namespace Sharptun.NetStack.Tests.Tcp;

public sealed class TcpConnectionTests
{
    [Fact]
    public void Connect_ListeningPeer_BothEstablishedWithNegotiatedOptions()
    {
        var p = new TcpPair().Connect();
        Assert.Equal(TcpState.Established, p.C.State);
        Assert.Equal(TcpState.Established, p.S.State);
        Assert.True(p.C.SackEnabled && p.S.SackEnabled);
        Assert.True(p.C.TimestampsEnabled && p.S.TimestampsEnabled);
        Assert.True(p.C.WindowScalingEnabled && p.S.WindowScalingEnabled);
        Assert.Equal(1500 - 20 - 20 - 12, p.C.Smss); // MSS from the MTU, minus the timestamp option
    }

    [Fact]
    public void Connect_ClosedPort_FailsWithConnectionRefused()
    {
        var p = new TcpPair();
        var c = p.Client.Tcp.Connect(p.Server.EndPoint(81), null);
        p.Net.RunUntil(() => c.State == TcpState.Closed, TimeSpan.FromSeconds(5));
        Assert.Equal(SocketError.ConnectionRefused, c.Error);
    }

    [Fact]
    public void Send_SmallPayload_ArrivesAtPeer()
    {
        var p = new TcpPair().Connect();
        var t = new Transfer(p.C, p.S, Transfer.RandomData(1000, 1), closeWhenDone: false);
        p.Net.RunUntil(() => t.Finished, TimeSpan.FromSeconds(10), () => t.Pump(p.Net.Now));
        Assert.True(t.HashMatches());
    }
}

public sealed class TcpBulkTransferTests(ITestOutputHelper output)
{
    private const int TenMegabytes = 10 * 1024 * 1024;

    [Theory]
    [InlineData(0.00, 11)]
    [InlineData(0.01, 12)]
    [InlineData(0.05, 13)]
    [InlineData(0.10, 14)]
    [InlineData(0.02, 15, 100, 100)] // one-way delay 100–200 ms, reordered by the jitter
    public void Transfer_10MBBothDirectionsUnderLoss_ArrivesIntact(double loss, int seed, int delayMs = 5, int jitterMs = 20)
    {
        var p = new TcpPair(seed, configure: n =>
        {
            n.LossRate = loss;
            n.DuplicateRate = loss > 0 ? 0.01 : 0;
            n.BaseDelay = TimeSpan.FromMilliseconds(delayMs);
            n.Jitter = loss > 0 ? TimeSpan.FromMilliseconds(jitterMs) : TimeSpan.Zero; // jitter reorders
        }).Connect();
        var start = p.Net.Now;
        var up = new Transfer(p.C, p.S, Transfer.RandomData(TenMegabytes, seed));
        var down = new Transfer(p.S, p.C, Transfer.RandomData(TenMegabytes, seed + 100));
        try
        {
            p.Net.RunUntil(() => up.Finished && down.Finished, TimeSpan.FromHours(2), () =>
            {
                up.Pump(p.Net.Now);
                down.Pump(p.Net.Now);
            });
        }
        catch (TimeoutException e)
        {
            throw new TimeoutException(e.Message + "\nclient: " + p.C.DebugState() + "\nserver: " + p.S.DebugState(), e);
        }
        output.WriteLine($"virtual {(p.Net.Now - start).TotalSeconds:F2}s, sent {p.Net.PacketsSent} dropped {p.Net.PacketsDropped}; " +
            $"client rexmit {p.C.RetransmittedSegments} fr {p.C.FastRetransmits} rto {p.C.Timeouts}; server rexmit {p.S.RetransmittedSegments} fr {p.S.FastRetransmits} rto {p.S.Timeouts}");
        Assert.True(up.HashMatches(), $"upload corrupted (seed {seed})");
        Assert.True(down.HashMatches(), $"download corrupted (seed {seed})");
    }
}
