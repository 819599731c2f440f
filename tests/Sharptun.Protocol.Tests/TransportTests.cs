using Sharptun.Testing;

namespace Sharptun.Protocol.Tests;

public sealed class TransportTests
{
    [Fact]
    public void Decapsulate_ReplayedDataPacket_IsRejected()
    {
        var pair = new TestPair();
        pair.Handshake(pair.A);
        pair.SendData(pair.A);
        var datagram = pair.B.Inbox.Peek();
        pair.Pump();

        var r = pair.Deliver(pair.B, datagram);

        Assert.Equal(ProtocolError.ReplayedCounter, r.Error);
        Assert.Single(pair.B.Delivered);
    }

    [Fact]
    public void Decapsulate_ReorderedInsideWindow_AllAccepted()
    {
        var pair = new TestPair();
        pair.Handshake(pair.A);
        for (var i = 0; i < 200; i++)
        {
            pair.SendData(pair.A, 10, (byte)i);
        }

        var datagrams = pair.B.Inbox.ToArray();
        pair.B.Inbox.Clear();
        var order = Enumerable.Range(0, datagrams.Length).ToArray();
        new Random(42).Shuffle(order);
        foreach (var i in order)
        {
            Assert.Equal(ProtocolAction.WriteToTunnel, pair.Deliver(pair.B, datagrams[i]).Action);
        }

        Assert.Equal(200, pair.B.Delivered.Count);
    }

    [Fact]
    public void Decapsulate_OlderThanWindow_IsRejected()
    {
        var pair = new TestPair();
        pair.Handshake(pair.A);
        pair.SendData(pair.A);
        var oldest = pair.B.Inbox.Dequeue();
        var keypair = pair.A.Peer.CurrentKeypair!;

        // Jump the counter far ahead and deliver one packet: the window moves past the oldest.
        keypair.SetSendCounterForTest(keypair.NextSendCounter + ReplayWindow.WindowSize + 1);
        pair.SendData(pair.A);
        Assert.Equal(ProtocolAction.WriteToTunnel, pair.Deliver(pair.B, pair.B.Inbox.Dequeue()).Action);

        Assert.Equal(ProtocolError.ReplayedCounter, pair.Deliver(pair.B, oldest).Error);
    }

    [Fact]
    public void Decapsulate_AtWindowEdge_IsAccepted()
    {
        var pair = new TestPair();
        pair.Handshake(pair.A);
        var keypair = pair.A.Peer.CurrentKeypair!;
        pair.SendData(pair.A);
        var edge = pair.B.Inbox.Dequeue(); // counter 1 (0 was the keepalive)
        keypair.SetSendCounterForTest(1 + ReplayWindow.WindowSize);
        pair.SendData(pair.A);
        pair.Pump();

        Assert.Equal(ProtocolAction.WriteToTunnel, pair.Deliver(pair.B, edge).Action);
    }

    [Fact]
    public void Decapsulate_TamperedCiphertext_DecryptionFailed()
    {
        var pair = new TestPair();
        pair.Handshake(pair.A);
        pair.SendData(pair.A);
        var datagram = pair.B.Inbox.Dequeue();
        datagram[20] ^= 1;

        Assert.Equal(ProtocolError.DecryptionFailed, pair.Deliver(pair.B, datagram).Error);
    }

    [Fact]
    public void Decapsulate_InPlace_DeliversPacketAtOffset16()
    {
        var pair = new TestPair();
        pair.Handshake(pair.A);
        pair.SendData(pair.A, 33, 0x5A);
        var datagram = pair.B.Inbox.Dequeue();

        var r = ProtocolPaths.Receive(pair.B.Device, pair.Now, datagram, datagram);

        Assert.Equal(ProtocolAction.WriteToTunnel, r.Action);
        Assert.Equal(16, r.Offset);
        Assert.Equal(TestPair.Ip4Packet(33, 0x5A), datagram.AsSpan(r.Offset, r.Length).ToArray());
    }

    [Fact]
    public void MultiThreadedPath_ReserveEncryptDecryptAccept_Works()
    {
        var pair = new TestPair();
        pair.Handshake(pair.A);
        var packet = TestPair.Ip4Packet(100);
        var buffer = new byte[256];
        packet.CopyTo(buffer, 16);

        Assert.Equal(ProtocolError.None, pair.A.Peer.TryReserveSend(pair.Now, false, out var sendKeypair, out var counter));
        Assert.Equal(ProtocolError.None, sendKeypair!.TryEncrypt(counter, buffer, packet.Length, out var length));

        var receiverIndex = BitConverter.ToUInt32(buffer, 4);
        Assert.True(pair.B.Device.TryGetKeypair(receiverIndex, out var receiveKeypair));
        Assert.Equal(ProtocolError.None, receiveKeypair.TryDecrypt(buffer.AsSpan(0, length), buffer, out var rxCounter, out var plaintextLength));
        Assert.Equal(counter, rxCounter);
        Assert.Equal(ProtocolError.None, receiveKeypair.Peer.ReceiveTransport(pair.Now, receiveKeypair, rxCounter, plaintextLength));
        Assert.Equal(packet, buffer.AsSpan(16, packet.Length).ToArray());
        Assert.Equal(ProtocolError.ReplayedCounter, receiveKeypair.Peer.ReceiveTransport(pair.Now, receiveKeypair, rxCounter, plaintextLength));
    }

    [Fact]
    public void Keypair_PaddingWithMtu_CappedAtMtu()
    {
        Assert.Equal(0, Keypair.PaddingLength(1420, 1420));
        Assert.Equal(4, Keypair.PaddingLength(1420));
        Assert.Equal(15, Keypair.PaddingLength(1));
        Assert.Equal(0, Keypair.PaddingLength(0));
    }
}
