using Sharptun.Testing;

namespace Sharptun.Protocol.Tests;

public sealed class HandshakeTests
{
    [Fact]
    public void Handshake_InitiatorAndResponder_BothDeriveSession()
    {
        var pair = new TestPair();
        pair.Handshake(pair.A);

        Assert.Equal([MessageType.HandshakeInitiation, MessageType.TransportData], pair.A.Sent.Select(TestPair.TypeOf));
        Assert.Equal([MessageType.HandshakeResponse], pair.B.Sent.Select(TestPair.TypeOf));
        Assert.Equal(HandshakeInitiation.Length, pair.A.Sent[0].Length);
        Assert.Equal(HandshakeResponse.Length, pair.B.Sent[0].Length);
        Assert.True(pair.A.Peer.HasSession(pair.Now));

        // The initiator's keepalive confirmed the responder's next keypair (whitepaper §5.4.5).
        Assert.True(pair.B.Peer.HasSession(pair.Now));
        Assert.Null(pair.B.Peer.NextKeypair);
        var a = pair.A.Peer.CurrentKeypair!;
        var b = pair.B.Peer.CurrentKeypair!;
        Assert.Equal(a.LocalIndex, b.RemoteIndex);
        Assert.Equal(a.RemoteIndex, b.LocalIndex);
        Assert.True(a.IsInitiator);
        Assert.False(b.IsInitiator);
        Assert.NotNull(pair.A.Peer.LastHandshakeTime);
        Assert.NotNull(pair.B.Peer.LastHandshakeTime);
    }

    [Fact]
    public void Handshake_ResponderBeforeConfirmation_HoldsNextKeypairOnly()
    {
        var pair = new TestPair();
        pair.A.Peer.RequestHandshake();
        pair.RunTimers(pair.A);
        pair.Deliver(pair.B, pair.B.Inbox.Dequeue());

        Assert.NotNull(pair.B.Peer.NextKeypair);
        Assert.Null(pair.B.Peer.CurrentKeypair);
        Assert.False(pair.B.Peer.HasSession(pair.Now));
    }

    [Fact]
    public void Data_BothWays_IsDeliveredIntact()
    {
        var pair = new TestPair();
        pair.Handshake(pair.A);

        Assert.Equal(ProtocolAction.WriteToNetwork, pair.SendData(pair.A, 100, 0x11).Action);
        Assert.Equal(ProtocolAction.WriteToNetwork, pair.SendData(pair.B, 1400, 0x22).Action);
        pair.Pump();

        Assert.Equal(TestPair.Ip4Packet(100, 0x11), Assert.Single(pair.B.Delivered));
        Assert.Equal(TestPair.Ip4Packet(1400, 0x22), Assert.Single(pair.A.Delivered));
    }

    [Fact]
    public void Encapsulate_PadsToMultipleOf16()
    {
        var pair = new TestPair();
        pair.Handshake(pair.A);

        pair.SendData(pair.A, 1); // 21-byte IP packet → 32 bytes of ciphertext
        Assert.Equal(16 + 32 + 16, pair.A.Sent[^1].Length);
        pair.Pump();
        Assert.Equal(21, Assert.Single(pair.B.Delivered).Length);
    }

    [Fact]
    public void Encapsulate_WithoutSession_ReturnsNoSessionAndRequestsHandshake()
    {
        var pair = new TestPair();
        var r = pair.SendData(pair.A);

        Assert.Equal(ProtocolAction.Error, r.Action);
        Assert.Equal(ProtocolError.NoSession, r.Error);
        Assert.Equal(TimeSpan.Zero, pair.A.Peer.NextDeadline);
        pair.RunTimers(pair.A);
        Assert.Equal(MessageType.HandshakeInitiation, TestPair.TypeOf(pair.A.Sent.Single()));
    }

    [Fact]
    public void Handshake_ResponderInitiates_Works()
    {
        var pair = new TestPair();
        pair.Handshake(pair.B);
        pair.SendData(pair.A);
        pair.SendData(pair.B);
        pair.Pump();

        Assert.Single(pair.A.Delivered);
        Assert.Single(pair.B.Delivered);
    }

    [Fact]
    public void Handshake_MatchingPresharedKeys_Succeeds()
    {
        var psk = TestPair.NewPrivateKey(new Random(7));
        var pair = new TestPair(pskA: psk, pskB: psk);
        pair.Handshake(pair.A);

        Assert.True(pair.A.Peer.HasSession(pair.Now));
        Assert.True(pair.B.Peer.HasSession(pair.Now));
    }

    [Fact]
    public void Handshake_PresharedKeyMismatch_ResponseRejected()
    {
        var pair = new TestPair(pskA: TestPair.NewPrivateKey(new Random(7)), pskB: TestPair.NewPrivateKey(new Random(8)));
        pair.Handshake(pair.A);

        Assert.Equal(ProtocolError.DecryptionFailed, pair.A.Results.Last(r => r.Action == ProtocolAction.Error).Error);
        Assert.False(pair.A.Peer.HasSession(pair.Now));
        Assert.False(pair.B.Peer.HasSession(pair.Now));
    }

    [Fact]
    public void Initiation_Replayed_IsRejected()
    {
        var pair = new TestPair();
        pair.A.Peer.RequestHandshake();
        pair.RunTimers(pair.A);
        var initiation = pair.B.Inbox.Peek();
        pair.Pump();
        pair.Clock.Now += TimeSpan.FromSeconds(1);

        var r = pair.Deliver(pair.B, initiation);

        Assert.Equal(ProtocolAction.Error, r.Action);
        Assert.Equal(ProtocolError.ReplayedTimestamp, r.Error);
    }

    [Fact]
    public void Initiation_TwoWithin20Milliseconds_SecondIsFlood()
    {
        var pair = new TestPair();
        // A second device with A's identity makes a second, distinct initiation without A's own rate limit.
        var twin = new ProtocolDevice(pair.A.PrivateKey, pair.Clock, new Random(3));
        var twinPeer = twin.AddPeer(pair.B.Device.PublicKey);
        var buffer = new byte[TestPair.BufferSize];

        twinPeer.RequestHandshake();
        var first = twinPeer.UpdateTimers(pair.Now, buffer);
        Assert.Equal(ProtocolAction.WriteToNetwork, pair.Deliver(pair.B, buffer[..first.Length]).Action);

        pair.Clock.Now += TimeSpan.FromMilliseconds(18); // newer TAI64N (whitening granularity is ~16.8 ms) but < 1/50 s
        var twin2 = new ProtocolDevice(pair.A.PrivateKey, pair.Clock, new Random(4));
        var twin2Peer = twin2.AddPeer(pair.B.Device.PublicKey);
        twin2Peer.RequestHandshake();
        var second = twin2Peer.UpdateTimers(pair.Now, buffer);
        var r = pair.Deliver(pair.B, buffer[..second.Length]);

        Assert.Equal(ProtocolError.InitiationFlood, r.Error);
    }

    [Fact]
    public void Initiation_UnknownPeer_IsRejected()
    {
        var pair = new TestPair();
        var stranger = new ProtocolDevice(TestPair.NewPrivateKey(new Random(99)), pair.Clock);
        var peer = stranger.AddPeer(pair.B.Device.PublicKey);
        var buffer = new byte[TestPair.BufferSize];
        peer.RequestHandshake();
        var init = peer.UpdateTimers(pair.Now, buffer);

        var r = pair.Deliver(pair.B, buffer[..init.Length]);

        Assert.Equal(ProtocolError.UnknownPeer, r.Error);
    }

    [Fact]
    public void Rekey_SimultaneousInitiations_BothEndWithWorkingSession()
    {
        var pair = new TestPair();
        pair.A.Peer.RequestHandshake();
        pair.B.Peer.RequestHandshake();
        pair.RunTimers(pair.A);
        pair.RunTimers(pair.B);
        pair.Pump();

        // Both initiations cross and both are discarded by the other side's; the retries are jittered apart.
        pair.Advance(TimeSpan.FromSeconds(12), TimeSpan.FromMilliseconds(1));

        pair.SendData(pair.A);
        pair.SendData(pair.B);
        pair.Pump();
        pair.RunTimers(pair.A);
        pair.RunTimers(pair.B);
        pair.Pump();
        pair.SendData(pair.A);
        pair.SendData(pair.B);
        pair.Pump();

        Assert.True(pair.A.Delivered.Count > 0 && pair.B.Delivered.Count > 0, string.Join("\n", pair.A.Results.Select(r => "A " + r)) + "\n" + string.Join("\n", pair.B.Results.Select(r => "B " + r)) + "\nA sent " + string.Join(",", pair.A.Sent.Select(TestPair.TypeOf)) + "\nB sent " + string.Join(",", pair.B.Sent.Select(TestPair.TypeOf)));
    }

    [Fact]
    public void IndexTable_AfterHandshake_HoldsOnlyLiveKeypairs()
    {
        var pair = new TestPair();
        pair.Handshake(pair.A);

        Assert.Equal(1, pair.A.Device.ActiveIndexCount);
        Assert.Equal(1, pair.B.Device.ActiveIndexCount);
        Assert.True(pair.B.Device.TryGetKeypair(pair.B.Peer.CurrentKeypair!.LocalIndex, out var k));
        Assert.Same(pair.B.Peer, k.Peer);
    }

    [Fact]
    public void RemovePeer_WipesKeysAndFreesIndices()
    {
        var pair = new TestPair();
        pair.Handshake(pair.A);
        var keypair = pair.A.Peer.CurrentKeypair!;

        Assert.True(pair.A.Device.RemovePeer(pair.B.Device.PublicKey));

        Assert.True(keypair.KeysAreZero);
        Assert.Equal(0, pair.A.Device.ActiveIndexCount);
        Assert.False(pair.A.Device.TryGetPeer(pair.B.Device.PublicKey, out _));
    }

    [Fact]
    public void Initiation_TamperedEncryptedStaticWithValidMac1_DecryptionFailed()
    {
        var pair = new TestPair();
        pair.A.Peer.RequestHandshake();
        pair.RunTimers(pair.A);
        var initiation = pair.B.Inbox.Dequeue();
        initiation[HandshakeInitiationView.StaticOffset + 5] ^= 0x10;
        TestPair.FixMac1(initiation, HandshakeInitiationView.Mac1Offset, pair.B.Device.PublicKey);

        Assert.Equal(ProtocolError.DecryptionFailed, pair.Deliver(pair.B, initiation).Error);
    }

    [Fact]
    public void Initiation_TamperedTimestampWithValidMac1_DecryptionFailed()
    {
        var pair = new TestPair();
        pair.A.Peer.RequestHandshake();
        pair.RunTimers(pair.A);
        var initiation = pair.B.Inbox.Dequeue();
        initiation[HandshakeInitiationView.TimestampOffset] ^= 0x01;
        TestPair.FixMac1(initiation, HandshakeInitiationView.Mac1Offset, pair.B.Device.PublicKey);

        Assert.Equal(ProtocolError.DecryptionFailed, pair.Deliver(pair.B, initiation).Error);
        Assert.Null(pair.B.Peer.NextKeypair);
    }

    [Fact]
    public void SetPrivateKey_DropsSessionsAndNewHandshakeUsesNewKey()
    {
        var pair = new TestPair();
        pair.Handshake(pair.A);
        var old = pair.A.Peer.CurrentKeypair!;

        var newKey = TestPair.NewPrivateKey(new Random(77));
        pair.A.Device.SetPrivateKey(newKey);

        Assert.True(old.KeysAreZero);
        Assert.False(pair.A.Peer.HasSession(pair.Now));
        Assert.Equal(TestPair.PublicOf(newKey), pair.A.Device.PublicKey);

        // B still knows A by the old key, so A's next initiation names an unknown peer.
        pair.Advance(TimeSpan.FromSeconds(6));
        pair.A.Peer.RequestHandshake();
        pair.RunTimers(pair.A);
        Assert.Equal(ProtocolError.UnknownPeer, pair.Deliver(pair.B, pair.B.Inbox.Dequeue()).Error);
    }

    [Fact]
    public void Handshake_ProcessedInPlace_Completes()
    {
        var pair = new TestPair();
        pair.A.Peer.RequestHandshake();
        pair.RunTimers(pair.A);

        var buffer = new byte[TestPair.BufferSize];
        var initiation = pair.B.Inbox.Dequeue();
        initiation.CopyTo(buffer, 0);
        var response = pair.B.Device.Decapsulate(pair.Now, buffer.AsSpan(0, initiation.Length), buffer);
        Assert.Equal(ProtocolAction.WriteToNetwork, response.Action);

        var keepalive = pair.A.Device.Decapsulate(pair.Now, buffer.AsSpan(0, response.Length), buffer);
        Assert.Equal(ProtocolAction.WriteToNetwork, keepalive.Action);

        var done = ProtocolPaths.Receive(pair.B.Device, pair.Now, buffer.AsSpan(0, keepalive.Length), buffer);
        Assert.Equal(ProtocolAction.Done, done.Action);
        Assert.True(pair.A.Peer.HasSession(pair.Now));
        Assert.True(pair.B.Peer.HasSession(pair.Now));
    }

    [Fact]
    public void SetPrivateKey_SameKey_KeepsSessions()
    {
        var pair = new TestPair();
        pair.Handshake(pair.A);
        var keypair = pair.A.Peer.CurrentKeypair;

        pair.A.Device.SetPrivateKey(pair.A.PrivateKey);

        Assert.Same(keypair, pair.A.Peer.CurrentKeypair);
        Assert.True(pair.A.Peer.HasSession(pair.Now));
    }
}
