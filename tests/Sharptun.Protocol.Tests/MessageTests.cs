using System.Buffers.Binary;

namespace Sharptun.Protocol.Tests;

public sealed class MessageTests
{
    [Fact]
    public void Sizes_MatchWhitepaper()
    {
        Assert.Equal(148, HandshakeInitiation.Length);
        Assert.Equal(92, HandshakeResponse.Length);
        Assert.Equal(64, CookieReply.Length);
        Assert.Equal(16, TransportDataHeader.Length);
        Assert.Equal(32, TransportDataView.MinSize);
    }

    [Fact]
    public void HandshakeInitiation_EmitParse_RoundTrips()
    {
        var random = new Random(1);
        for (var i = 0; i < 100; i++)
        {
            var bytes = RandomMessage(random, MessageType.HandshakeInitiation, HandshakeInitiation.Length);
            Assert.True(HandshakeInitiation.TryParse(bytes, out var m));
            var emitted = new byte[HandshakeInitiation.Length];
            m.Emit(emitted);
            Assert.Equal(bytes, emitted);
            Assert.True(HandshakeInitiation.TryParse(emitted, out var again));
            Assert.Equal(m, again);
            Assert.Equal(BinaryPrimitives.ReadUInt32LittleEndian(bytes.AsSpan(4)), m.SenderIndex);
        }
    }

    [Fact]
    public void HandshakeResponse_EmitParse_RoundTrips()
    {
        var random = new Random(2);
        for (var i = 0; i < 100; i++)
        {
            var bytes = RandomMessage(random, MessageType.HandshakeResponse, HandshakeResponse.Length);
            Assert.True(HandshakeResponse.TryParse(bytes, out var m));
            var emitted = new byte[HandshakeResponse.Length];
            m.Emit(emitted);
            Assert.Equal(bytes, emitted);
            Assert.Equal(BinaryPrimitives.ReadUInt32LittleEndian(bytes.AsSpan(8)), m.ReceiverIndex);
        }
    }

    [Fact]
    public void CookieReply_EmitParse_RoundTrips()
    {
        var random = new Random(3);
        for (var i = 0; i < 100; i++)
        {
            var bytes = RandomMessage(random, MessageType.CookieReply, CookieReply.Length);
            Assert.True(CookieReply.TryParse(bytes, out var m));
            var emitted = new byte[CookieReply.Length];
            m.Emit(emitted);
            Assert.Equal(bytes, emitted);
        }
    }

    [Fact]
    public void TransportDataHeader_EmitParse_RoundTrips()
    {
        var header = new TransportDataHeader(0x01020304, 0x1122334455667788);
        var bytes = new byte[48];
        header.Emit(bytes);

        Assert.Equal([4, 0, 0, 0, 4, 3, 2, 1, 0x88, 0x77, 0x66, 0x55, 0x44, 0x33, 0x22, 0x11], bytes[..16]);
        Assert.True(TransportDataHeader.TryParse(bytes, out var parsed));
        Assert.Equal(header, parsed);
    }

    [Theory]
    [InlineData(new byte[] { 1, 0, 0 }, ProtocolError.Truncated)]
    [InlineData(new byte[] { 4, 0, 0, 0 }, ProtocolError.Truncated)]
    [InlineData(new byte[] { 9, 0, 0, 0 }, ProtocolError.UnknownMessageType)]
    [InlineData(new byte[] { 1, 0, 1, 0 }, ProtocolError.ReservedBytesNonZero)]
    [InlineData(new byte[] { 1, 0, 0, 0, 0 }, ProtocolError.Truncated)]
    public void TryGetType_BadHeaders_Rejected(byte[] bytes, ProtocolError expected)
    {
        Assert.Equal(expected, MessageHeader.TryGetType(bytes, out _));
    }

    [Fact]
    public void Views_WrongLength_TryCreateFails()
    {
        var bytes = new byte[149];
        bytes[0] = 1;
        Assert.False(HandshakeInitiationView.TryCreate(bytes, out _));
        Assert.False(HandshakeInitiationView.TryCreate(bytes.AsSpan(0, 147), out _));
        Assert.True(HandshakeInitiationView.TryCreate(bytes.AsSpan(0, 148), out _));
        Assert.False(HandshakeResponseView.TryCreate(bytes.AsSpan(0, 148), out _));
    }

    [Fact]
    public void Key_Base64AndHex_RoundTrip()
    {
        var key = TestPair.NewPrivateKey(new Random(9));
        Assert.True(Key.TryParse(key.ToString(), out var b));
        Assert.True(Key.TryParseHex(key.ToHex(), out var h));
        Assert.Equal(key, b);
        Assert.Equal(key, h);
        Assert.False(Key.TryParse("AAAA", out _));
        Assert.False(Key.TryParseHex("zz", out _));
    }

    [Fact]
    public void InnerPacket_DestinationAddress_ByVersionAndFixedHeader()
    {
        var v4 = new byte[20];
        v4[0] = 0x45;
        v4[16] = 10;
        v4[19] = 7;
        Assert.True(InnerPacket.TryGetDestinationAddress(v4, out var d4));
        Assert.Equal(new byte[] { 10, 0, 0, 7 }, d4.ToArray());
        Assert.False(InnerPacket.TryGetDestinationAddress(v4.AsSpan(0, 19), out _));

        var v6 = new byte[40];
        v6[0] = 0x60;
        v6[24] = 0xfd;
        v6[39] = 1;
        Assert.True(InnerPacket.TryGetDestinationAddress(v6, out var d6));
        Assert.Equal(v6.AsSpan(24, 16).ToArray(), d6.ToArray());
        Assert.False(InnerPacket.TryGetDestinationAddress(v6.AsSpan(0, 39), out _));

        Assert.False(InnerPacket.TryGetDestinationAddress([], out _));
        var v5 = new byte[40];
        v5[0] = 0x50;
        Assert.False(InnerPacket.TryGetDestinationAddress(v5, out _));
    }

    private static byte[] RandomMessage(Random random, MessageType type, int length)
    {
        var bytes = new byte[length];
        random.NextBytes(bytes);
        bytes[0] = (byte)type;
        bytes[1] = bytes[2] = bytes[3] = 0;
        return bytes;
    }
}
