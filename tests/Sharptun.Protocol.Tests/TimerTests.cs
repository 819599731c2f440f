namespace Sharptun.Protocol.Tests;

public sealed class TimerTests
{
    private static readonly TimeSpan Step = TimeSpan.FromMilliseconds(100);

    [Fact]
    public void NextDeadline_FreshPeer_IsMaxValue()
    {
        var pair = new TestPair();
        Assert.Equal(TimeSpan.MaxValue, pair.A.Peer.NextDeadline);
    }

    [Fact]
    public void Rekey_AfterRekeyAfterTime_InitiatorStartsNewHandshakeOnSend()
    {
        var pair = new TestPair();
        pair.Handshake(pair.A);
        var first = pair.A.Peer.CurrentKeypair!;

        pair.Advance(ProtocolConstants.RekeyAfterTime - TimeSpan.FromSeconds(1), TimeSpan.FromSeconds(1));
        pair.SendData(pair.A);
        pair.RunTimers(pair.A);
        Assert.Same(first, pair.A.Peer.CurrentKeypair); // not yet

        pair.Advance(TimeSpan.FromSeconds(2), TimeSpan.FromSeconds(1));
        var before = pair.A.Sent.Count;
        pair.SendData(pair.A);
        pair.RunTimers(pair.A);

        Assert.Equal(MessageType.HandshakeInitiation, TestPair.TypeOf(pair.A.Sent[^1]));
        Assert.Equal(before + 2, pair.A.Sent.Count);
        pair.Pump();
        Assert.NotSame(first, pair.A.Peer.CurrentKeypair);
        Assert.Same(first, pair.A.Peer.PreviousKeypair);
    }

    [Fact]
    public void Rekey_ResponderAfterRekeyAfterTime_DoesNotInitiate()
    {
        var pair = new TestPair();
        pair.Handshake(pair.A);
        pair.Advance(ProtocolConstants.RekeyAfterTime + TimeSpan.FromSeconds(1), TimeSpan.FromSeconds(1));

        pair.SendData(pair.B);
        pair.RunTimers(pair.B);

        Assert.DoesNotContain(pair.B.Sent, d => TestPair.TypeOf(d) == MessageType.HandshakeInitiation);
    }

    [Fact]
    public void Rekey_InitiatorOnlyReceiving_RekeysBeforeRejectAfterTime()
    {
        var pair = new TestPair();
        pair.Handshake(pair.A);
        var limit = ProtocolConstants.RejectAfterTime - ProtocolConstants.KeepaliveTimeout - ProtocolConstants.RekeyTimeout;

        pair.Advance(limit - TimeSpan.FromSeconds(1), TimeSpan.FromSeconds(1));
        pair.SendData(pair.B);
        pair.Pump();
        pair.RunTimers(pair.A);
        Assert.DoesNotContain(pair.A.Sent.Skip(1), d => TestPair.TypeOf(d) == MessageType.HandshakeInitiation);

        pair.Advance(TimeSpan.FromSeconds(2), TimeSpan.FromSeconds(1));
        pair.SendData(pair.B);
        pair.Deliver(pair.A, pair.A.Inbox.Dequeue());
        pair.RunTimers(pair.A);

        Assert.Equal(MessageType.HandshakeInitiation, TestPair.TypeOf(pair.A.Sent[^1]));
    }

    [Fact]
    public void RejectAfterTime_ExpiredKeypair_CannotSendOrReceive()
    {
        var pair = new TestPair();
        pair.Handshake(pair.A);
        pair.SendData(pair.B);
        var late = pair.A.Inbox.Dequeue(); // encrypted now, delivered after RejectAfterTime

        pair.Advance(ProtocolConstants.RejectAfterTime, TimeSpan.FromSeconds(1), deliver: false);

        Assert.False(pair.A.Peer.HasSession(pair.Now));
        Assert.Equal(ProtocolError.NoSession, pair.SendData(pair.B).Error);
        Assert.Equal(ProtocolError.KeypairExpired, pair.Deliver(pair.A, late).Error);
    }

    [Fact]
    public void RekeyTimeout_LostResponse_InitiationRetriedAfterRekeyTimeout()
    {
        var lossy = new TestPair(seed: 5);
        lossy.A.Peer.RequestHandshake();
        lossy.RunTimers(lossy.A);
        lossy.Deliver(lossy.B, lossy.B.Inbox.Dequeue());
        Assert.Equal(MessageType.HandshakeResponse, TestPair.TypeOf(lossy.A.Inbox.Dequeue())); // lost

        lossy.Clock.Now += ProtocolConstants.RekeyTimeout - TimeSpan.FromMilliseconds(1);
        lossy.RunTimers(lossy.A);
        Assert.Single(lossy.A.Sent); // no retry before RekeyTimeout

        lossy.Clock.Now += ProtocolConstants.RekeyTimeoutJitterMax;
        lossy.RunTimers(lossy.A);
        Assert.Equal(2, lossy.A.Sent.Count);
        Assert.Equal(MessageType.HandshakeInitiation, TestPair.TypeOf(lossy.A.Sent[1]));
        Assert.Equal(1, lossy.A.Peer.HandshakeAttempts);

        lossy.Pump();
        Assert.True(lossy.A.Peer.HasSession(lossy.Now));
        Assert.True(lossy.B.Peer.HasSession(lossy.Now));
    }

    [Fact]
    public void RekeyTimeout_Jitter_IsDeterministicPerSeed()
    {
        static TimeSpan RetryDeadline(int seed)
        {
            var pair = new TestPair(seed);
            pair.A.Peer.RequestHandshake();
            pair.RunTimers(pair.A);
            return pair.A.Peer.NextDeadline - pair.Now;
        }

        var d = RetryDeadline(11);
        Assert.Equal(d, RetryDeadline(11));
        Assert.InRange(d, ProtocolConstants.RekeyTimeout, ProtocolConstants.RekeyTimeout + ProtocolConstants.RekeyTimeoutJitterMax);
    }

    [Fact]
    public void RekeyAttemptTime_NoAnswer_GivesUpAndZeroesLater()
    {
        var pair = new TestPair();
        pair.A.Peer.RequestHandshake();
        pair.Advance(ProtocolConstants.RekeyAttemptTime + TimeSpan.FromSeconds(30), TimeSpan.FromMilliseconds(100), deliver: false);

        var initiations = pair.A.Sent.Count(d => TestPair.TypeOf(d) == MessageType.HandshakeInitiation);
        // The first initiation plus retries until the attempt count exceeds MaxTimerHandshakes (as wireguard-go counts).
        Assert.Equal(ProtocolConstants.MaxTimerHandshakes + 2, initiations);
        Assert.Contains(pair.A.Results, r => r.Error == ProtocolError.HandshakeTimedOut);

        var sent = pair.A.Sent.Count;
        pair.Advance(TimeSpan.FromSeconds(30), TimeSpan.FromSeconds(1), deliver: false);
        Assert.Equal(sent, pair.A.Sent.Count);
    }

    [Fact]
    public void KeepaliveTimeout_DataReceivedNothingSent_SendsKeepalive()
    {
        var pair = new TestPair();
        pair.Handshake(pair.A);
        pair.SendData(pair.A);
        pair.Pump();
        var sent = pair.B.Sent.Count;

        pair.Advance(ProtocolConstants.KeepaliveTimeout - Step, Step);
        Assert.Equal(sent, pair.B.Sent.Count);

        pair.Advance(Step, Step);
        Assert.Equal(sent + 1, pair.B.Sent.Count);
        Assert.Equal(32, pair.B.Sent[^1].Length); // empty payload: header + tag
        Assert.Contains(pair.A.Results, r => r.Action == ProtocolAction.Done && r.Peer == pair.A.Peer);
    }

    [Fact]
    public void KeepaliveTimeout_ReplySentInTime_NoKeepalive()
    {
        var pair = new TestPair();
        pair.Handshake(pair.A);
        pair.SendData(pair.A);
        pair.Pump();
        pair.Advance(TimeSpan.FromSeconds(5), Step);
        pair.SendData(pair.B);
        pair.Pump();
        var sent = pair.B.Sent.Count;

        pair.Advance(TimeSpan.FromSeconds(6), Step);

        Assert.Equal(sent, pair.B.Sent.Count);
    }

    [Fact]
    public void NewHandshake_DataSentNoReply_InitiatesAfterKeepalivePlusRekeyTimeout()
    {
        var pair = new TestPair();
        pair.Handshake(pair.A);
        pair.Advance(TimeSpan.FromSeconds(1));
        pair.SendData(pair.A);
        pair.B.Inbox.Clear(); // B never hears it, so never answers

        pair.Advance(ProtocolConstants.KeepaliveTimeout + ProtocolConstants.RekeyTimeout - Step, Step, deliver: false);
        Assert.DoesNotContain(pair.A.Sent.Skip(1), d => TestPair.TypeOf(d) == MessageType.HandshakeInitiation);

        pair.Advance(ProtocolConstants.RekeyTimeoutJitterMax + Step, Step, deliver: false);
        Assert.Equal(MessageType.HandshakeInitiation, TestPair.TypeOf(pair.A.Sent[^1]));
    }

    [Fact]
    public void PersistentKeepalive_Idle_SendsKeepaliveEveryInterval()
    {
        var interval = TimeSpan.FromSeconds(25);
        var pair = new TestPair(persistentKeepaliveB: interval);
        pair.Handshake(pair.A);
        var sent = pair.B.Sent.Count;

        pair.Advance(interval - Step, Step);
        Assert.Equal(sent, pair.B.Sent.Count);
        pair.Advance(Step, Step);
        Assert.Equal(sent + 1, pair.B.Sent.Count);
        Assert.Equal(32, pair.B.Sent[^1].Length);

        pair.Advance(interval, Step);
        Assert.Equal(sent + 2, pair.B.Sent.Count);
    }

    [Fact]
    public void PersistentKeepalive_SetWithoutSession_StartsHandshake()
    {
        var pair = new TestPair();
        pair.A.Peer.SetPersistentKeepalive(TimeSpan.FromSeconds(25), pair.Now);
        Assert.Equal(pair.Now, pair.A.Peer.NextDeadline);

        pair.RunTimers(pair.A);

        Assert.Equal(MessageType.HandshakeInitiation, TestPair.TypeOf(pair.A.Sent.Single()));
    }

    [Fact]
    public void ZeroKeyMaterial_After3xRejectAfterTime_AllKeysWiped()
    {
        var pair = new TestPair();
        pair.Handshake(pair.A);
        var a = pair.A.Peer.CurrentKeypair!;
        var b = pair.B.Peer.CurrentKeypair!;

        pair.Advance((3 * ProtocolConstants.RejectAfterTime) - TimeSpan.FromSeconds(1), TimeSpan.FromSeconds(1));
        Assert.False(a.KeysAreZero);

        pair.Advance(TimeSpan.FromSeconds(2), TimeSpan.FromSeconds(1));

        Assert.True(a.KeysAreZero);
        Assert.True(b.KeysAreZero);
        Assert.Null(pair.A.Peer.CurrentKeypair);
        Assert.Null(pair.B.Peer.CurrentKeypair);
        Assert.Equal(0, pair.A.Device.ActiveIndexCount);
        Assert.Equal(0, pair.B.Device.ActiveIndexCount);
        Assert.Equal(TimeSpan.MaxValue, pair.A.Peer.NextDeadline);
    }

    [Fact]
    public void RejectAfterMessages_SendCounterAtLimit_NoSession()
    {
        var pair = new TestPair();
        pair.Handshake(pair.A);
        pair.A.Peer.CurrentKeypair!.SetSendCounterForTest(ProtocolConstants.RejectAfterMessages - 1);

        Assert.Equal(ProtocolAction.WriteToNetwork, pair.SendData(pair.A).Action);
        Assert.Equal(ProtocolError.NoSession, pair.SendData(pair.A).Error);
        Assert.False(pair.A.Peer.HasSession(pair.Now));
    }

    [Fact]
    public void RejectAfterMessages_ReceivedCounterAtLimit_Rejected()
    {
        var pair = new TestPair();
        pair.Handshake(pair.A);
        var keypair = pair.A.Peer.CurrentKeypair!;
        var packet = TestPair.Ip4Packet(10);
        var buffer = new byte[128];
        packet.CopyTo(buffer, 16);
        Assert.Equal(ProtocolError.None, keypair.TryEncrypt(ProtocolConstants.RejectAfterMessages, buffer, packet.Length, out var length));

        var r = pair.Deliver(pair.B, buffer[..length]);

        Assert.Equal(ProtocolError.CounterLimitReached, r.Error);
    }

    [Fact]
    public void RekeyAfterMessages_CounterPastLimit_RequestsHandshake()
    {
        var pair = new TestPair();
        pair.Handshake(pair.B); // B is initiator here but the message rule applies to both; use the responder A
        pair.A.Peer.CurrentKeypair!.SetSendCounterForTest(ProtocolConstants.RekeyAfterMessages + 1);

        pair.SendData(pair.A);

        Assert.Equal(TimeSpan.Zero, pair.A.Peer.NextDeadline);
        pair.RunTimers(pair.A);
        Assert.Equal(MessageType.HandshakeInitiation, TestPair.TypeOf(pair.A.Sent[^1]));
    }
}
