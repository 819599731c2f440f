using Sharptun.NetStack.Tcp;

namespace Sharptun.NetStack.Tests.Tcp;

/// <summary>
/// The stack's driver thread is woken when a connection's deadline moves earlier (<c>TcpLayer.Schedule</c>), not for
/// every segment sent: a sent segment waits in the outbound queue, whose reader has its own signal. Waking the driver
/// per segment cost a driver round (a Poll under the gate, a context switch) for every ACK of a download.
/// </summary>
public sealed class DriverWakeTests
{
    [Fact]
    public void BulkTransfer_WakesTheDriverFarLessOftenThanItSendsSegments_AndEverythingArrives()
    {
        var o = new TcpOptions { SendBufferSize = 256 * 1024, ReceiveBufferSize = 256 * 1024 };
        var pair = new TcpPair(seed: 41, o, o).Connect();
        var clientWakes = pair.Client.Wakes;
        var serverWakes = pair.Server.Wakes;
        var dataSent = pair.Client.Tcp.Stats.SegmentsSent;
        var acksSent = pair.Server.Tcp.Stats.SegmentsSent;

        const int size = 4_000_000;
        var t = new Transfer(pair.ClientConn!, pair.ServerConn!, Transfer.RandomData(size, 5), closeWhenDone: false);
        pair.Net.RunUntil(() => t.Received == size, TimeSpan.FromSeconds(120), () => t.Pump(pair.Net.Now));
        Assert.True(t.HashMatches());

        dataSent = pair.Client.Tcp.Stats.SegmentsSent - dataSent;
        acksSent = pair.Server.Tcp.Stats.SegmentsSent - acksSent;
        clientWakes = pair.Client.Wakes - clientWakes;
        serverWakes = pair.Server.Wakes - serverWakes;
        Assert.True(dataSent >= size / 1460, $"{dataSent} data segments");
        Assert.True(acksSent >= dataSent / 4, $"{acksSent} ACKs for {dataSent} segments");
        // a wake-up per segment gave at least as many wake-ups as segments
        Assert.True(clientWakes <= dataSent / 10, $"sender: {clientWakes} wake-ups for {dataSent} segments");
        Assert.True(serverWakes <= acksSent / 10, $"receiver: {serverWakes} wake-ups for {acksSent} ACKs");
    }
}
