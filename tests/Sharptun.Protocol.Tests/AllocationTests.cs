using Sharptun.Testing;

namespace Sharptun.Protocol.Tests;

public sealed class AllocationTests
{
    [Fact]
    public void EncapsulateDecapsulate_SteadyState_AllocatesNothing()
    {
        var pair = new TestPair();
        pair.Handshake(pair.A);
        var packet = TestPair.Ip4Packet(1400);
        var buffer = new byte[2048];
        var now = pair.Now;
        var sender = pair.A.Peer;
        var receiver = pair.B.Device;

        void RoundTrip()
        {
            packet.CopyTo(buffer, 16);
            var e = ProtocolPaths.Encrypt(sender, now, buffer, packet.Length);
            var d = ProtocolPaths.Receive(receiver, now, buffer.AsSpan(0, e.Length), buffer);
            if (d.Action != ProtocolAction.WriteToTunnel)
            {
                throw new InvalidOperationException(d.ToString());
            }
        }

        for (var i = 0; i < 200; i++)
        {
            RoundTrip();
        }

        var before = GC.GetAllocatedBytesForCurrentThread();
        for (var i = 0; i < 1000; i++)
        {
            RoundTrip();
        }

        var allocated = GC.GetAllocatedBytesForCurrentThread() - before;
        Assert.Equal(0, allocated);
    }
}
