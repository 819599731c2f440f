using Sharptun.NetStack.Tcp;

namespace Sharptun.NetStack.Tests.Tcp;

/// <summary>
/// IP-layer backpressure (the stack's outbound queue full: TrySendIp returns false). A segment that could not be
/// emitted must be emitted once room returns; in particular an ACK (a window update) is owed until it went out, since
/// building it already advanced the advertised right edge.
/// </summary>
public sealed class TcpBackpressureTests
{
    private static readonly TimeSpan Limit = TimeSpan.FromSeconds(300);

    /// <summary>
    /// The stall of WireGuardTunnelTests.HundredConcurrentConnections_EachEchoesItsData: the receiver's window was
    /// closed, the application read, and the window update met a full outbound queue. Before the fix the retry found
    /// nothing to send (the ACK was not owed any more and the right edge had already moved, so later reads did not
    /// send it either), and the sender only learned of the window from a persist probe, whose backoff reaches a minute.
    /// Persist probes are dropped here, so only the window update can reopen the window.
    /// </summary>
    [Theory]
    [InlineData(1)]
    [InlineData(40)]
    public void WindowUpdate_MetFullOutboundQueue_IsSentWhenRoomReturns(int connections)
    {
        var small = new TcpOptions { ReceiveBufferSize = 16 * 1024 };
        var net = new SimNetwork(61);
        var client = net.AddHost("10.0.0.1");
        var server = net.AddHost("10.0.0.2", small);
        var listener = server.Tcp.Listen(server.EndPoint(TcpPair.ServerPort), 128);
        var pairs = new List<(TcpConnection C, TcpConnection S, Transfer T)>();
        for (int i = 0; i < connections; i++)
        {
            var c = client.Tcp.Connect(server.EndPoint(TcpPair.ServerPort), client.EndPoint(40000 + i));
            TcpConnection? s = null;
            net.RunUntil(() => s is not null && c.State == TcpState.Established, Limit, () =>
            {
                if (s is null && listener.TryAccept(out var a))
                {
                    s = a;
                }
            });
            pairs.Add((c, s!, new Transfer(c, s!, Transfer.RandomData(100_000, i), closeWhenDone: true) { ReaderPaused = true }));
        }

        // Fill every receive window to zero; the senders fall back to persist probes (with backoff).
        net.RunFor(TimeSpan.FromSeconds(30), () => pairs.ForEach(p => p.T.Pump(net.Now)));
        foreach (var (c, s, _) in pairs)
        {
            Assert.Equal(0, s.AdvertisedWindow);
            Assert.Equal(0, c.SndWnd);
        }

        // From here on persist probes (and their answers) are lost: only the window updates can reopen the windows.
        net.Filter = p => p.From == client && p.PayloadLength == 0 && pairs.Any(x => p.Repr.Seq == x.C.SndUna - 1);

        // Every application reads while the server's outbound queue is full.
        server.Blocked = true;
        foreach (var (_, _, t) in pairs)
        {
            t.ReaderPaused = false;
            t.Pump(net.Now);
            Assert.Equal(16 * 1024, t.Received);
        }

        Assert.All(pairs, p => Assert.True(p.S.AdvertisedWindow > 0)); // already advanced for the failed ACK
        net.RunFor(TimeSpan.FromMilliseconds(20));
        server.Blocked = false;

        // Room returned: within a few milliseconds (the retry timer), not a persist interval, every sender sees the window.
        net.RunFor(TimeSpan.FromMilliseconds(50));
        Assert.All(pairs, p => Assert.True(p.C.SndWnd > 0, $"sender still sees a zero window: {p.C.DebugState()}"));

        // And every transfer completes.
        net.Filter = null;
        net.RunUntil(() => pairs.All(p => p.T.Finished), Limit, () => pairs.ForEach(p => p.T.Pump(net.Now)));
        Assert.All(pairs, p => Assert.True(p.T.HashMatches()));
    }
}
