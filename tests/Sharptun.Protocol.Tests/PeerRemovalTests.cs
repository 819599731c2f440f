using System.Diagnostics;

namespace Sharptun.Protocol.Tests;

/// <summary>
/// Issue 7 item 9 (a removed peer must never gain index entries or keypairs, even when a handshake that looked it up
/// before the removal finishes afterwards) and item 13 (removal and private-key changes wipe every derived secret).
/// </summary>
public sealed class PeerRemovalTests
{
    [Fact]
    public void RemovePeer_RacingHandshakeInitiations_LeavesNoIndexEntryOrLiveKeypairForTheRemovedPeer()
    {
        var pair = new TestPair();
        var initiation = Initiation(pair);
        var device = pair.B.Device;
        var initiatorKey = pair.A.Device.PublicKey;

        // How long one initiation takes on this machine; the removal is swept across that span.
        var span = Stopwatch.StartNew();
        for (var i = 0; i < 5; i++)
        {
            device.RemovePeer(initiatorKey);
            device.AddPeer(initiatorKey);
            Assert.Equal(ProtocolAction.WriteToNetwork, device.Decapsulate(pair.Now, initiation, new byte[TestPair.BufferSize]).Action);
        }

        var ticksPerInitiation = span.ElapsedTicks / 5;
        device.RemovePeer(initiatorKey);

        const int iterations = 3000;
        var random = new Random(7);
        var leaked = 0;
        var accepted = 0;
        using var start = new Barrier(2);
        for (var i = 0; i < iterations; i++)
        {
            var peer = device.AddPeer(initiatorKey); // a new peer object: its timestamp and flood state are fresh
            var delay = (long)(random.NextDouble() * ticksPerInitiation * 1.2);
            ProtocolResult result = default;
            var handshake = new Thread(() =>
            {
                var output = new byte[TestPair.BufferSize];
                start.SignalAndWait();
                result = device.Decapsulate(pair.Now, initiation, output);
            });
            handshake.Start();
            start.SignalAndWait();
            var wait = Stopwatch.StartNew();
            while (wait.ElapsedTicks < delay)
            {
                Thread.SpinWait(20);
            }

            Assert.True(device.RemovePeer(initiatorKey));
            handshake.Join();
            accepted += result.Action == ProtocolAction.WriteToNetwork ? 1 : 0;
            if (device.IndexEntriesOf(peer) != 0 || !peer.SecretsAreZero)
            {
                leaked++;
            }
        }

        Assert.Equal(0, leaked);
        Assert.Equal(0, device.ActiveIndexCount);
        Assert.True(accepted > 0, "no initiation ever completed before its removal: the race was not exercised");
    }

    [Fact]
    public void RemovedPeer_HeldByAnotherThread_NeverTakesAnIndexAgain()
    {
        // A device's timer thread may still hold the peer after removal and ask it for a handshake.
        var pair = new TestPair();
        pair.Handshake(pair.A);
        var peer = pair.A.Peer;
        Assert.True(pair.A.Device.RemovePeer(pair.B.Device.PublicKey));

        peer.RequestHandshake();
        var encapsulated = peer.Encapsulate(pair.Now, new byte[256], 40);
        var timers = peer.UpdateTimers(pair.Now, new byte[TestPair.BufferSize]);

        Assert.NotEqual(ProtocolAction.WriteToNetwork, encapsulated.Action);
        Assert.NotEqual(ProtocolAction.WriteToNetwork, timers.Action);
        Assert.Equal(0, pair.A.Device.IndexEntriesOf(peer));
        Assert.Equal(0, pair.A.Device.ActiveIndexCount);
        Assert.True(peer.SecretsAreZero);
    }

    [Fact]
    public void RemovePeer_WipesPresharedKeyStaticStaticSecretAndSessions()
    {
        var psk = KeyRetirementTests.PresharedKey();
        var pair = new TestPair(pskA: psk, pskB: psk);
        pair.Handshake(pair.A);
        var peer = pair.A.Peer;
        var keypair = peer.CurrentKeypair!;
        Assert.False(peer.SecretsAreZero);

        Assert.True(pair.A.Device.RemovePeer(pair.B.Device.PublicKey));

        Assert.True(peer.SecretsAreZero); // preshared key, static-static secret, handshake state, keypairs
        Assert.True(peer.StaticStaticIsZero);
        Assert.True(peer.PresharedKey.IsZero);
        Assert.True(keypair.KeysAreZero);
        Assert.Equal(0, pair.A.Device.ActiveIndexCount);

        peer.SetPresharedKey(psk); // a late config write cannot bring a secret back
        Assert.True(peer.PresharedKey.IsZero);
    }

    [Fact]
    public void ClearPrivateKey_WipesTheKeyAndEveryStaticStaticSecret()
    {
        var pair = new TestPair();
        pair.Handshake(pair.A);
        var old = pair.A.Device.Keys;
        var keypair = pair.A.Peer.CurrentKeypair!;

        pair.A.Device.SetPrivateKey(new Key(new byte[32])); // UAPI private_key=000…0 clears the key

        Assert.False(pair.A.Device.HasPrivateKey);
        Assert.True(old.Private.AsSpan().IndexOfAnyExcept((byte)0) < 0, "the old private key is still in memory");
        Assert.True(pair.A.Device.PrivateKey.IsZero);
        Assert.True(pair.A.Peer.StaticStaticIsZero);
        Assert.True(keypair.KeysAreZero);
        Assert.Equal(0, pair.A.Device.ActiveIndexCount);

        // No handshake until a key is set again; then everything works.
        pair.Clock.Now += ProtocolConstants.RekeyTimeout;
        pair.A.Peer.RequestHandshake();
        var r = pair.A.Peer.UpdateTimers(pair.Now, new byte[TestPair.BufferSize]);
        Assert.Equal(ProtocolAction.Error, r.Action);
        Assert.Equal(ProtocolError.NoPrivateKey, r.Error);
        pair.A.Device.SetPrivateKey(pair.A.PrivateKey);
        Assert.True(pair.A.Device.HasPrivateKey);
        pair.Clock.Now += ProtocolConstants.RekeyTimeout;
        pair.Handshake(pair.A);
        Assert.NotNull(pair.A.Peer.CurrentKeypair);
    }

    [Fact]
    public void SetPrivateKey_NewKey_WipesTheOldOne()
    {
        var pair = new TestPair();
        var old = pair.A.Device.Keys;
        Assert.True(old.Private.AsSpan().IndexOfAnyExcept((byte)0) >= 0);

        pair.A.Device.SetPrivateKey(TestPair.NewPrivateKey(new Random(99)));

        Assert.True(old.Private.AsSpan().IndexOfAnyExcept((byte)0) < 0, "the old private key is still in memory");
        Assert.False(pair.A.Peer.StaticStaticIsZero); // recomputed for the new key
    }

    /// <summary>One handshake initiation from A to B (B's peer object may be replaced and still accept it once).</summary>
    private static byte[] Initiation(TestPair pair)
    {
        var buffer = new byte[TestPair.BufferSize];
        pair.A.Peer.RequestHandshake();
        var r = pair.A.Peer.UpdateTimers(pair.Now, buffer);
        Assert.Equal(ProtocolAction.WriteToNetwork, r.Action);
        return buffer.AsSpan(r.Offset, r.Length).ToArray();
    }
}
