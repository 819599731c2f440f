using System.Buffers.Binary;

namespace Sharptun.Protocol.Tests;

public sealed class ConcurrencyTests
{
    [Fact]
    public void ReserveThenEncrypt_OnManyThreads_EveryPacketDecryptsOnceWithUniqueCounter()
    {
        var pair = new TestPair();
        pair.Handshake(pair.A);
        const int threads = 4;
        const int perThread = 500;
        var datagrams = new byte[threads * perThread][];
        var now = pair.Now;

        Parallel.For(0, threads, t =>
        {
            var packet = TestPair.Ip4Packet(100, (byte)t);
            for (var i = 0; i < perThread; i++)
            {
                var buffer = new byte[256];
                packet.CopyTo(buffer, 16);
                Assert.Equal(ProtocolError.None, pair.A.Peer.TryReserveSend(now, false, out var keypair, out var counter));
                Assert.Equal(ProtocolError.None, keypair!.TryEncrypt(counter, buffer, packet.Length, out var length));
                datagrams[(t * perThread) + i] = buffer[..length];
            }
        });

        var counters = new HashSet<ulong>();
        var accepted = 0;
        Parallel.ForEach(datagrams, d =>
        {
            var index = BinaryPrimitives.ReadUInt32LittleEndian(d.AsSpan(4));
            Assert.True(pair.B.Device.TryGetKeypair(index, out var keypair));
            var output = new byte[d.Length];
            Assert.Equal(ProtocolError.None, keypair.TryDecrypt(d, output, out var counter, out var length));
            Assert.Equal(ProtocolError.None, keypair.Peer.ReceiveTransport(now, keypair, counter, length));
            lock (counters)
            {
                Assert.True(counters.Add(counter));
                accepted++;
            }
        });

        Assert.Equal(threads * perThread, accepted);
    }
}
