using System.Buffers.Binary;
using Sharptun.Testing;

namespace Sharptun.Protocol.Tests;

public sealed class MalformedInputTests
{
    /// <summary>One genuine message of every type, captured from a real exchange.</summary>
    private sealed class Capture
    {
        public Capture()
        {
            Pair = new TestPair(seed: 21);
            Pair.A.Peer.RequestHandshake();
            Pair.RunTimers(Pair.A);
            Initiation = Pair.B.Inbox.Peek();
            Pair.Deliver(Pair.B, Pair.B.Inbox.Dequeue());
            Response = Pair.A.Inbox.Peek();
            Pair.Pump();
            Pair.SendData(Pair.A);
            Transport = Pair.B.Inbox.Dequeue();

            Pair.B.UnderLoad = true;
            var other = new TestPair(seed: 22);
            other.B.UnderLoad = true;
            other.A.Peer.RequestHandshake();
            other.RunTimers(other.A);
            other.Deliver(other.B, other.B.Inbox.Dequeue());
            Cookie = other.A.Inbox.Dequeue();
            Pair.B.UnderLoad = false;
        }

        public TestPair Pair { get; }
        public byte[] Initiation { get; }
        public byte[] Response { get; }
        public byte[] Transport { get; }
        public byte[] Cookie { get; }

        public byte[] Of(MessageType t) => t switch
        {
            MessageType.HandshakeInitiation => Initiation,
            MessageType.HandshakeResponse => Response,
            MessageType.CookieReply => Cookie,
            _ => Transport,
        };
    }

    private static ProtocolError Feed(ProtocolDevice device, TimeSpan now, byte[] datagram)
    {
        var r = ProtocolPaths.Receive(device, now, datagram, new byte[Math.Max(2048, datagram.Length)], [1, 2, 3, 4, 0, 1]);
        Assert.Equal(ProtocolAction.Error, r.Action);
        return r.Error;
    }

    [Theory]
    [InlineData(MessageType.HandshakeInitiation)]
    [InlineData(MessageType.HandshakeResponse)]
    [InlineData(MessageType.CookieReply)]
    [InlineData(MessageType.TransportData)]
    public void Decapsulate_Truncated_Rejected(MessageType type)
    {
        var c = new Capture();
        var message = c.Of(type);
        var minimum = type == MessageType.TransportData ? TransportDataView.MinSize : message.Length;
        for (var length = 0; length < minimum; length++)
        {
            var error = Feed(c.Pair.B.Device, c.Pair.Now, message[..length]);
            Assert.True(error is ProtocolError.Truncated, $"length {length}: {error}");
        }
    }

    [Theory]
    [InlineData(MessageType.HandshakeInitiation)]
    [InlineData(MessageType.HandshakeResponse)]
    [InlineData(MessageType.CookieReply)]
    public void Decapsulate_Oversized_Rejected(MessageType type)
    {
        var c = new Capture();
        var message = c.Of(type);
        Assert.Equal(ProtocolError.Oversized, Feed(c.Pair.B.Device, c.Pair.Now, [.. message, 0]));
    }

    [Fact]
    public void Decapsulate_TransportLongerThanUdp_Rejected()
    {
        var c = new Capture();
        var big = new byte[ProtocolLimits.MaxDatagramLength + 1];
        c.Transport.CopyTo(big, 0);
        Assert.Equal(ProtocolError.Oversized, Feed(c.Pair.B.Device, c.Pair.Now, big));
    }

    [Theory]
    [InlineData(0)]
    [InlineData(5)]
    [InlineData(0xFF)]
    public void Decapsulate_WrongTypeByte_Rejected(byte type)
    {
        var c = new Capture();
        foreach (var message in new[] { c.Initiation, c.Response, c.Cookie, c.Transport })
        {
            var copy = (byte[])message.Clone();
            copy[0] = type;
            Assert.Equal(ProtocolError.UnknownMessageType, Feed(c.Pair.B.Device, c.Pair.Now, copy));
        }
    }

    [Theory]
    [InlineData(MessageType.HandshakeInitiation, 1)]
    [InlineData(MessageType.HandshakeResponse, 2)]
    [InlineData(MessageType.CookieReply, 3)]
    [InlineData(MessageType.TransportData, 1)]
    public void Decapsulate_ReservedByteNonZero_Rejected(MessageType type, int index)
    {
        var c = new Capture();
        var copy = (byte[])c.Of(type).Clone();
        copy[index] = 1;
        Assert.Equal(ProtocolError.ReservedBytesNonZero, Feed(c.Pair.B.Device, c.Pair.Now, copy));
    }

    [Fact]
    public void Decapsulate_InitiationBadMac1_Rejected()
    {
        var c = new TestPair(seed: 23);
        c.A.Peer.RequestHandshake();
        c.RunTimers(c.A);
        var initiation = c.B.Inbox.Dequeue();
        initiation[HandshakeInitiationView.Mac1Offset] ^= 0x80;

        Assert.Equal(ProtocolError.InvalidMac1, Feed(c.B.Device, c.Now, initiation));
    }

    [Fact]
    public void Decapsulate_InitiationForAnotherResponder_BadMac1()
    {
        var c = new Capture();
        var stranger = new ProtocolDevice(TestPair.NewPrivateKey(new Random(5)), c.Pair.Clock);
        Assert.Equal(ProtocolError.InvalidMac1, Feed(stranger, c.Pair.Now, c.Initiation));
    }

    [Fact]
    public void Decapsulate_ResponseBadMac1_Rejected()
    {
        var c = new TestPair(seed: 24);
        c.A.Peer.RequestHandshake();
        c.RunTimers(c.A);
        c.Deliver(c.B, c.B.Inbox.Dequeue());
        var response = c.A.Inbox.Dequeue();
        response[HandshakeResponseView.Mac1Offset + 3] ^= 1;

        Assert.Equal(ProtocolError.InvalidMac1, Feed(c.A.Device, c.Now, response));
    }

    [Fact]
    public void Decapsulate_TransportUnknownReceiverIndex_Rejected()
    {
        var c = new Capture();
        var copy = (byte[])c.Transport.Clone();
        BinaryPrimitives.WriteUInt32LittleEndian(copy.AsSpan(4), BinaryPrimitives.ReadUInt32LittleEndian(copy.AsSpan(4)) ^ 0x5A5A5A5A);
        Assert.Equal(ProtocolError.UnknownReceiverIndex, Feed(c.Pair.B.Device, c.Pair.Now, copy));
    }

    [Fact]
    public void Decapsulate_ResponseUnknownReceiverIndex_Rejected()
    {
        var c = new TestPair(seed: 25);
        c.A.Peer.RequestHandshake();
        c.RunTimers(c.A);
        c.Deliver(c.B, c.B.Inbox.Dequeue());
        var response = c.A.Inbox.Dequeue();
        BinaryPrimitives.WriteUInt32LittleEndian(response.AsSpan(HandshakeResponseView.ReceiverOffset), 0xDEADBEEF ^ BinaryPrimitives.ReadUInt32LittleEndian(response.AsSpan(HandshakeResponseView.ReceiverOffset)));
        TestPair.FixMac1(response, HandshakeResponseView.Mac1Offset, c.A.Device.PublicKey);

        Assert.Equal(ProtocolError.UnknownReceiverIndex, Feed(c.A.Device, c.Now, response));
    }

    [Fact]
    public void Decapsulate_CookieReplyUnknownReceiverIndex_Rejected()
    {
        var c = new Capture();
        Assert.Equal(ProtocolError.UnknownReceiverIndex, Feed(c.Pair.B.Device, c.Pair.Now, c.Cookie));
    }

    [Fact]
    public void Decapsulate_ResponseReplayed_UnexpectedOrUnknown()
    {
        var c = new Capture();
        // The handshake index was swapped for the keypair: a second response for it is not accepted.
        var error = Feed(c.Pair.A.Device, c.Pair.Now, c.Response);
        Assert.True(error is ProtocolError.UnknownReceiverIndex or ProtocolError.UnexpectedMessage, error.ToString());
    }

    public static TheoryData<string> LowOrderPoints() => new()
    {
        "0000000000000000000000000000000000000000000000000000000000000000", // 0
        "0100000000000000000000000000000000000000000000000000000000000000", // 1
        "e0eb7a7c3b41b8ae1656e3faf19fc46ada098deb9c32b1fd866205165f49b800", // order 8
        "5f9c95bca3508c24b1d0b1559c83ef5b04445cc4581c8e86d8224eddd09f1157", // order 8
        "ecffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f", // p − 1
    };

    [Theory]
    [MemberData(nameof(LowOrderPoints))]
    public void Decapsulate_InitiationWithLowOrderEphemeral_LowOrderPoint(string pointHex)
    {
        var point = Convert.FromHexString(pointHex);
        var c = new TestPair(seed: 26);
        c.A.Peer.RequestHandshake();
        c.RunTimers(c.A);
        var initiation = c.B.Inbox.Dequeue();
        point.CopyTo(initiation, HandshakeInitiationView.EphemeralOffset);
        TestPair.FixMac1(initiation, HandshakeInitiationView.Mac1Offset, c.B.Device.PublicKey);

        Assert.Equal(ProtocolError.LowOrderPoint, Feed(c.B.Device, c.Now, initiation));
    }

    [Theory]
    [MemberData(nameof(LowOrderPoints))]
    public void Decapsulate_ResponseWithLowOrderEphemeral_LowOrderPoint(string pointHex)
    {
        var point = Convert.FromHexString(pointHex);
        var c = new TestPair(seed: 27);
        c.A.Peer.RequestHandshake();
        c.RunTimers(c.A);
        c.Deliver(c.B, c.B.Inbox.Dequeue());
        var response = c.A.Inbox.Dequeue();
        point.CopyTo(response, HandshakeResponseView.EphemeralOffset);
        TestPair.FixMac1(response, HandshakeResponseView.Mac1Offset, c.A.Device.PublicKey);

        Assert.Equal(ProtocolError.LowOrderPoint, Feed(c.A.Device, c.Now, response));
    }

    [Fact]
    public void AddPeer_LowOrderStaticKey_CannotHandshake()
    {
        var device = new ProtocolDevice(TestPair.NewPrivateKey(new Random(1)), new VirtualClock());
        var peer = device.AddPeer(new Key(new byte[32]));
        var buffer = new byte[256];
        peer.RequestHandshake();

        var r = peer.UpdateTimers(TimeSpan.FromSeconds(1), buffer);

        Assert.False(peer.HasValidStaticKey);
        Assert.Equal(ProtocolError.InvalidPeerKey, r.Error);
    }

    [Fact]
    public void Decapsulate_TransportWithGarbageInnerPacket_InvalidInnerPacket()
    {
        var c = new Capture();
        var keypair = c.Pair.A.Peer.CurrentKeypair!;
        Assert.True(keypair.TryAllocateCounter(out var counter));
        var buffer = new byte[16 + 32 + 16];
        buffer[16] = 0x99; // IP version 9
        Assert.Equal(ProtocolError.None, keypair.TryEncrypt(counter, buffer, 24, out var length));

        Assert.Equal(ProtocolError.InvalidInnerPacket, Feed(c.Pair.B.Device, c.Pair.Now, buffer[..length]));
    }

    [Fact]
    public void Decapsulate_RandomBytes_NeverThrows()
    {
        var c = new Capture();
        var random = new Random(1234);
        for (var i = 0; i < 20_000; i++)
        {
            var template = c.Of((MessageType)random.Next(1, 5));
            var message = (byte[])template.Clone();
            if (random.Next(4) == 0)
            {
                message = new byte[random.Next(0, 200)];
                random.NextBytes(message);
            }
            else
            {
                for (var flips = random.Next(1, 4); flips > 0; flips--)
                {
                    message[random.Next(message.Length)] ^= (byte)(1 << random.Next(8));
                }

                // Half the time re-seal mac1 so the mutation reaches the Noise code behind the mac1 check.
                if (random.Next(2) == 0 && message.Length == HandshakeInitiation.Length && message[0] == 1)
                {
                    TestPair.FixMac1(message, HandshakeInitiationView.Mac1Offset, c.Pair.B.Device.PublicKey);
                }
                else if (random.Next(2) == 0 && message.Length == HandshakeResponse.Length && message[0] == 2)
                {
                    TestPair.FixMac1(message, HandshakeResponseView.Mac1Offset, c.Pair.B.Device.PublicKey);
                }
            }

            var r = ProtocolPaths.Receive(c.Pair.B.Device, c.Pair.Now, message, new byte[2048], [1, 2, 3, 4, 0, 1], underLoad: random.Next(2) == 0);
            Assert.True(r.Action is ProtocolAction.Error or ProtocolAction.WriteToNetwork or ProtocolAction.Done or ProtocolAction.WriteToTunnel, $"seed 1234 step {i}");
        }
    }
}
