using Sharptun.Transport;

namespace Sharptun.Device.Tests.Pipeline;

public sealed class DeviceTests
{
    [Fact]
    public void TwoDevices_Handshake_PacketsFlowBothWays()
    {
        using var pair = NodePair.InMemory(new InMemoryNetwork(1));
        pair.Ping(1);
        pair.Ping(10);
        var state = pair.A.PeerState(pair.B.PublicKey)!;
        Assert.NotEqual(0, state.LastHandshakeUnixNanoseconds);
        Assert.True(state.TxBytes > 0 && state.RxBytes > 0);
    }
}
