namespace Sharptun.Protocol.Tests;

public sealed class CookieTests
{
    [Fact]
    public void UnderLoad_InitiationWithoutMac2_GetsCookieReplyInstead()
    {
        var pair = new TestPair();
        pair.B.UnderLoad = true;
        pair.A.Peer.RequestHandshake();
        pair.RunTimers(pair.A);

        var r = pair.Deliver(pair.B, pair.B.Inbox.Dequeue());

        Assert.Equal(ProtocolAction.WriteToNetwork, r.Action);
        Assert.Equal(ProtocolError.CookieRequired, r.Error);
        Assert.Equal(CookieReply.Length, r.Length);
        Assert.Null(pair.B.Peer.NextKeypair);
    }

    [Fact]
    public void CookieRoundTrip_UnderLoad_RetryWithMac2Completes()
    {
        var pair = new TestPair();
        pair.B.UnderLoad = true;
        pair.A.Peer.RequestHandshake();
        pair.RunTimers(pair.A);
        pair.Pump(); // initiation → cookie reply → stored by A

        Assert.True(pair.A.Peer.HasCookie(pair.Now));
        Assert.False(pair.A.Peer.HasSession(pair.Now));
        Assert.Equal(MessageType.CookieReply, TestPair.TypeOf(pair.B.Sent.Single()));

        pair.Advance(ProtocolConstants.RekeyTimeout + ProtocolConstants.RekeyTimeoutJitterMax, TimeSpan.FromMilliseconds(100));

        var retry = pair.A.Sent.First(d => TestPair.TypeOf(d) == MessageType.HandshakeInitiation && !ReferenceEquals(d, pair.A.Sent[0]));
        Assert.Contains(retry.AsSpan(HandshakeInitiationView.Mac2Offset, 16).ToArray(), b => b != 0);
        Assert.True(pair.A.Peer.HasSession(pair.Now));
        Assert.True(pair.B.Peer.HasSession(pair.Now));
    }

    [Fact]
    public void HasValidMac2_OnlyForRetryWithCookieFromSameAddress()
    {
        var pair = new TestPair();
        pair.B.UnderLoad = true;
        pair.A.Peer.RequestHandshake();
        pair.RunTimers(pair.A);
        var first = pair.B.Inbox.Peek().ToArray();
        Assert.False(pair.B.Device.HasValidMac2(pair.Now, first, pair.A.Source)); // no cookie yet: mac2 is zero
        pair.Pump(); // initiation → cookie reply → stored by A
        pair.Clock.Now += TimeSpan.FromSeconds(6);
        pair.RunTimers(pair.A); // retry carries mac2 bound to A's address
        var retry = pair.B.Inbox.Dequeue();

        Assert.True(pair.B.Device.HasValidMac2(pair.Now, retry, pair.A.Source));
        Assert.False(pair.B.Device.HasValidMac2(pair.Now, retry, [10, 9, 9, 9, 0x1F, 0x90])); // another address
        Assert.False(pair.B.Device.HasValidMac2(pair.Now, retry.AsSpan(0, 100), pair.A.Source)); // truncated
        retry[HandshakeInitiationView.Mac2Offset] ^= 1;
        Assert.False(pair.B.Device.HasValidMac2(pair.Now, retry, pair.A.Source)); // tampered
    }

    [Fact]
    public void HasValidMac1_OnlyForHandshakeMessagesToUs()
    {
        var pair = new TestPair();
        pair.A.Peer.RequestHandshake();
        pair.RunTimers(pair.A);
        var initiation = pair.B.Inbox.Dequeue();

        Assert.True(pair.B.Device.HasValidMac1(initiation));
        Assert.False(pair.A.Device.HasValidMac1(initiation)); // mac1 is keyed by the receiver's public key
        Assert.False(pair.B.Device.HasValidMac1(initiation.AsSpan(0, 147))); // truncated
        Assert.False(pair.B.Device.HasValidMac1([])); // empty
        var tampered = initiation.ToArray();
        tampered[8] ^= 1;
        Assert.False(pair.B.Device.HasValidMac1(tampered));

        var response = pair.Deliver(pair.B, initiation); // B answers: the response carries a mac1 for A
        Assert.Equal(ProtocolAction.WriteToNetwork, response.Action);
        var responseBytes = pair.A.Inbox.Dequeue();
        Assert.True(pair.A.Device.HasValidMac1(responseBytes));
        Assert.False(pair.B.Device.HasValidMac1(responseBytes));
    }

    [Fact]
    public void WriteCookieReply_InitiatorAcceptsIt_RetryCarriesValidMac2()
    {
        var pair = new TestPair();
        pair.A.Peer.RequestHandshake();
        pair.RunTimers(pair.A);
        var initiation = pair.B.Inbox.Dequeue();
        var reply = new byte[CookieReplyView.Size];

        Assert.Equal(0, pair.B.Device.WriteCookieReply(pair.Now, initiation, pair.A.Source, reply.AsSpan(0, 63))); // too small
        var tampered = initiation.ToArray();
        tampered[HandshakeInitiationView.Mac1Offset] ^= 1;
        Assert.Equal(0, pair.B.Device.WriteCookieReply(pair.Now, tampered, pair.A.Source, reply)); // no cookie for a bad mac1
        Assert.Equal(CookieReplyView.Size, pair.B.Device.WriteCookieReply(pair.Now, initiation, pair.A.Source, reply));

        pair.Deliver(pair.A, reply);
        Assert.True(pair.A.Peer.HasCookie(pair.Now));
        pair.Clock.Now += TimeSpan.FromSeconds(6);
        pair.RunTimers(pair.A); // the retry carries mac2 bound to A's address
        var retry = pair.B.Inbox.Dequeue();
        Assert.True(pair.B.Device.HasValidMac2(pair.Now, retry, pair.A.Source));
        Assert.False(pair.B.Device.HasValidMac2(pair.Now, retry, pair.B.Source));
    }

    [Fact]
    public void UnderLoad_Mac2FromOtherSourceAddress_GetsCookieReply()
    {
        var pair = new TestPair();
        pair.B.UnderLoad = true;
        pair.A.Peer.RequestHandshake();
        pair.RunTimers(pair.A);
        pair.Pump();
        pair.Clock.Now += TimeSpan.FromSeconds(6);
        pair.RunTimers(pair.A); // retry carries mac2 bound to A's address
        var retry = pair.B.Inbox.Dequeue();

        var r = pair.B.Device.Decapsulate(pair.Now, retry, new byte[2048], [10, 9, 9, 9, 0x1F, 0x90], underLoad: true);

        Assert.Equal(ProtocolError.CookieRequired, r.Error);
    }

    [Fact]
    public void CookieReply_NotForOurLastMessage_Rejected()
    {
        var pair = new TestPair();
        pair.B.UnderLoad = true;
        pair.A.Peer.RequestHandshake();
        pair.RunTimers(pair.A);
        pair.Deliver(pair.B, pair.B.Inbox.Dequeue());
        var cookie = pair.A.Inbox.Dequeue();
        cookie[CookieReplyView.CookieOffset] ^= 1;

        var r = pair.Deliver(pair.A, cookie);

        Assert.Equal(ProtocolError.DecryptionFailed, r.Error);
        Assert.False(pair.A.Peer.HasCookie(pair.Now));
    }

    [Fact]
    public void Cookie_OlderThanCookieRefreshTime_NotUsed()
    {
        var pair = new TestPair();
        pair.B.UnderLoad = true;
        pair.A.Peer.RequestHandshake();
        pair.RunTimers(pair.A);
        pair.Pump();
        Assert.True(pair.A.Peer.HasCookie(pair.Now));

        pair.Clock.Now += ProtocolConstants.CookieRefreshTime + TimeSpan.FromSeconds(1);

        Assert.False(pair.A.Peer.HasCookie(pair.Now));
    }

    [Fact]
    public void UnderLoad_ResponseWithoutMac2_CookieReplyThenRetrySucceeds()
    {
        var pair = new TestPair();
        pair.A.UnderLoad = true;
        pair.A.Peer.RequestHandshake();
        pair.RunTimers(pair.A);
        pair.Pump(); // initiation → response (no mac2) → cookie reply from A → stored by B

        Assert.Contains(pair.A.Results, r => r.Error == ProtocolError.CookieRequired);
        Assert.True(pair.B.Peer.HasCookie(pair.Now));
        Assert.False(pair.A.Peer.HasSession(pair.Now));

        pair.Advance(ProtocolConstants.RekeyTimeout + ProtocolConstants.RekeyTimeoutJitterMax, TimeSpan.FromMilliseconds(100));

        Assert.True(pair.A.Peer.HasSession(pair.Now));
        Assert.True(pair.B.Peer.HasSession(pair.Now));
    }
}
