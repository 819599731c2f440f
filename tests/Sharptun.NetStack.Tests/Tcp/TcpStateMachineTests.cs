using System.Net.Sockets;
using Sharptun.NetStack.Tcp;
using Sharptun.NetStack.Wire;

namespace Sharptun.NetStack.Tests.Tcp;

public sealed class TcpStateMachineTests
{
    private static readonly TimeSpan Limit = TimeSpan.FromSeconds(120);

    [Fact]
    public void ShutdownWrite_ClientHalfClose_ServerReadsEofAndCanStillSend()
    {
        var p = new TcpPair().Connect();
        var up = new Transfer(p.C, p.S, Transfer.RandomData(5000, 1), closeWhenDone: true);
        p.Net.RunUntil(() => up.Finished, Limit, () => up.Pump(p.Net.Now));
        Assert.True(p.S.ReceiveFinished);
        Assert.Equal(TcpState.CloseWait, p.S.State);
        p.Net.RunUntil(() => p.C.State == TcpState.FinWait2, Limit);

        // The server can still send after the client's FIN; the client still reads.
        var down = new Transfer(p.S, p.C, Transfer.RandomData(200_000, 2), closeWhenDone: true);
        p.Net.RunUntil(() => down.Finished, Limit, () => down.Pump(p.Net.Now));
        Assert.True(down.HashMatches());
        p.Net.RunUntil(() => p.S.State == TcpState.Closed, Limit);
        Assert.Equal(TcpState.TimeWait, p.C.State);
        Assert.Equal(1, p.Client.Tcp.TimeWaitCount);
    }

    [Fact]
    public void Receive_AfterPeerFin_ReturnsZeroAndReceiveFinished()
    {
        var p = new TcpPair().Connect();
        p.C.ShutdownWrite(p.Net.Now);
        p.Net.RunUntil(() => p.S.State == TcpState.CloseWait, Limit);
        Assert.Equal(0, p.S.Receive(new byte[10], p.Net.Now));
        Assert.True(p.S.ReceiveFinished);
    }

    [Fact]
    public void Connect_SimultaneousOpen_BothEstablished()
    {
        var net = new SimNetwork(3);
        var a = net.AddHost("10.0.0.1");
        var b = net.AddHost("10.0.0.2");
        var ca = a.Tcp.Connect(b.EndPoint(5000), a.EndPoint(6000));
        var cb = b.Tcp.Connect(a.EndPoint(6000), b.EndPoint(5000));
        bool sawSynReceived = false;
        net.RunUntil(() => ca.State == TcpState.Established && cb.State == TcpState.Established, Limit, () =>
            sawSynReceived |= ca.State == TcpState.SynReceived || cb.State == TcpState.SynReceived);
        Assert.True(sawSynReceived);
        var t = new Transfer(ca, cb, Transfer.RandomData(50_000, 4));
        net.RunUntil(() => t.Finished, Limit, () => t.Pump(net.Now));
        Assert.True(t.HashMatches());
    }

    [Fact]
    public void ShutdownWrite_SimultaneousClose_BothPassThroughClosingToTimeWait()
    {
        var p = new TcpPair().Connect();
        p.C.ShutdownWrite(p.Net.Now);
        p.S.ShutdownWrite(p.Net.Now);
        Assert.Equal(TcpState.FinWait1, p.C.State);
        Assert.Equal(TcpState.FinWait1, p.S.State);
        bool sawClosing = false;
        p.Net.RunUntil(() => p.C.State == TcpState.TimeWait && p.S.State == TcpState.TimeWait, Limit, () =>
            sawClosing |= p.C.State == TcpState.Closing || p.S.State == TcpState.Closing);
        Assert.True(sawClosing);
    }

    [Fact]
    public void ShutdownWrite_ServerClosesAfterClient_ServerGoesThroughLastAck()
    {
        var p = new TcpPair().Connect();
        p.C.ShutdownWrite(p.Net.Now);
        p.Net.RunUntil(() => p.S.State == TcpState.CloseWait, Limit);
        p.S.ShutdownWrite(p.Net.Now);
        Assert.Equal(TcpState.LastAck, p.S.State);
        p.Net.RunUntil(() => p.S.State == TcpState.Closed, Limit);
        Assert.Equal(SocketError.Success, p.S.Error);
        Assert.Equal(TcpState.TimeWait, p.C.State);
    }

    [Fact]
    public void Abort_EstablishedConnection_PeerSeesConnectionReset()
    {
        var p = new TcpPair().Connect();
        p.C.Abort(p.Net.Now);
        p.Net.RunUntil(() => p.S.State == TcpState.Closed, Limit);
        Assert.Equal(SocketError.ConnectionReset, p.S.Error);
        Assert.Equal(0, p.Server.Tcp.ConnectionCount);
    }

    [Fact]
    public void CloseByApplication_UnreadReceivedData_SendsRst()
    {
        var p = new TcpPair().Connect();
        p.S.Send(new byte[100], p.Net.Now);
        p.Net.RunUntil(() => p.C.ReadableBytes == 100, Limit);
        p.C.CloseByApplication(p.Net.Now); // RFC 1122 §4.2.2.13
        p.Net.RunUntil(() => p.S.State == TcpState.Closed, Limit);
        Assert.Equal(SocketError.ConnectionReset, p.S.Error);
    }

    [Fact]
    public void CloseByApplication_PeerNeverCloses_FinWait2TimesOut()
    {
        var o = new TcpOptions { FinWait2Timeout = TimeSpan.FromSeconds(30) };
        var p = new TcpPair(8, o, null).Connect();
        p.C.CloseByApplication(p.Net.Now);
        p.Net.RunUntil(() => p.C.State == TcpState.FinWait2, Limit);
        var start = p.Net.Now;
        p.Net.RunUntil(() => p.C.State == TcpState.Closed, Limit);
        Assert.InRange((p.Net.Now - start).TotalSeconds, 29, 31);
        Assert.Equal(TcpState.CloseWait, p.S.State);
    }

    [Fact]
    public void OnSegment_AckToClosedPort_AnsweredWithRst()
    {
        var p = new TcpPair();
        var rsts = 0;
        p.Net.Tap = pk => rsts += pk.Repr.Has(TcpFlags.Rst) ? 1 : 0;
        var c = p.Client.Tcp.Connect(p.Server.EndPoint(9), p.Client.EndPoint(41000));
        p.Net.RunUntil(() => c.State == TcpState.Closed, Limit);
        Assert.Equal(1, rsts);
        Assert.Equal(1, p.Server.Tcp.Stats.ResetsSent);
    }

    [Fact]
    public void Connect_ThousandConcurrentShortConnections_AllComplete()
    {
        var options = new TcpOptions { ReceiveBufferSize = 4096, SendBufferSize = 4096, MaxTimeWaitEntries = 10_000 };
        const int count = 1000;
        var p = new TcpPair(5, options, options, n => n.Jitter = TimeSpan.FromMilliseconds(5), backlog: count);
        var clients = new List<TcpConnection>();
        for (int i = 0; i < count; i++)
        {
            clients.Add(p.Client.Tcp.Connect(p.Server.EndPoint(TcpPair.ServerPort), null));
        }

        var payload = Transfer.RandomData(300, 6);
        var servers = new List<TcpConnection>();
        var buf = new byte[1000];
        int closed = 0;
        long received = 0;
        var pendingClients = new List<TcpConnection>(clients);
        p.Net.RunUntil(() => closed == count, Limit, () =>
        {
            while (p.Listener.TryAccept(out var s))
            {
                servers.Add(s);
            }

            pendingClients.RemoveAll(c =>
            {
                if (c.State != TcpState.Established)
                {
                    return false;
                }

                c.Send(payload, p.Net.Now);
                c.ShutdownWrite(p.Net.Now);
                return true;
            });

            servers.RemoveAll(s =>
            {
                int n;
                while ((n = s.Receive(buf, p.Net.Now)) > 0)
                {
                    received += n;
                }

                if (s.ReceiveFinished && !s.SendShutdown)
                {
                    s.ShutdownWrite(p.Net.Now);
                }

                if (s.State == TcpState.Closed)
                {
                    closed++;
                    return true;
                }

                return false;
            });
        });
        Assert.Equal(count * payload.Length, received);
        Assert.All(clients, c => Assert.Equal(TcpState.TimeWait, c.State));
        Assert.Equal(count, p.Client.Tcp.TimeWaitCount);
        Assert.Equal(0, p.Server.Tcp.ConnectionCount);
    }

    [Fact]
    public void Listen_BacklogFull_ExtraSynsDroppedUntilAccepted()
    {
        var net = new SimNetwork(7);
        var a = net.AddHost("10.0.0.1");
        var b = net.AddHost("10.0.0.2");
        using var l = b.Tcp.Listen(b.EndPoint(80), 2);
        var conns = new TcpConnection[4];
        for (int i = 0; i < 4; i++)
        {
            conns[i] = a.Tcp.Connect(b.EndPoint(80), null);
        }

        net.RunFor(TimeSpan.FromMilliseconds(500));
        Assert.Equal(2, l.PendingAccepts);
        Assert.True(b.Tcp.Stats.SynsDropped >= 2);
        Assert.True(l.TryAccept(out _));
        Assert.True(l.TryAccept(out _));
        net.RunUntil(() => l.PendingAccepts == 2, Limit); // the dropped SYNs are retransmitted and now accepted
        Assert.All(conns, c => Assert.Equal(TcpState.Established, c.State));
    }
}

public sealed class TcpLayerShutdownTests
{
    [Fact]
    public void AbortAll_OpenConnectionsAndListener_PeersResetAndListenerStops()
    {
        var p = new TcpPair(9).Connect();
        p.Server.Tcp.AbortAll();
        Assert.Equal(0, p.Server.Tcp.ConnectionCount);
        Assert.Equal(TcpState.Closed, p.S.State);
        p.Net.RunUntil(() => p.C.State == TcpState.Closed, TimeSpan.FromSeconds(10));
        Assert.Equal(System.Net.Sockets.SocketError.ConnectionReset, p.C.Error);
        Assert.Throws<ObjectDisposedException>(() => p.Listener.AcceptAsync().AsTask().GetAwaiter().GetResult());
    }
}
