using System.Buffers.Binary;
using System.Collections.Concurrent;
using System.Security.Cryptography;
using Sharptun.Crypto;

namespace Sharptun.Protocol.Tests;

/// <summary>
/// Issue 7 item 1 (a retired keypair must never produce a datagram nor authenticate one, whatever the threads do) and
/// item 13 (no copy of a transport key outlives its retirement, the OpenSSL contexts included).
/// </summary>
public sealed class KeyRetirementTests
{
    private const int LargePacket = 9000; // over ChaChaPoly.OpenSslThreshold: the OpenSSL path

    private static readonly byte[] ZeroKey = new byte[32];

    [Fact]
    public void Encrypt_RacingRetire_EveryDatagramIsSealedUnderTheRealKey_NoneUnderAWipedOne()
    {
        const int rounds = 24;
        const int threads = 4;
        const int afterRetire = 300; // attempts each thread makes once Retire has returned
        var produced = 0;
        for (var round = 0; round < rounds; round++)
        {
            var (keypair, sendKey, _) = NewKeypair();
            var datagrams = new ConcurrentBag<byte[]>();
            var retired = 0;
            var total = 0;
            var retireAt = 200 + (round * 97 % 1500); // retire after a varying number of datagrams
            var workers = Enumerable.Range(0, threads).Select(t => Task.Factory.StartNew(() =>
            {
                var buffer = new byte[LargePacket + 64];
                ulong counter = (ulong)t << 40;
                var after = 0;
                for (var i = 0; after < afterRetire; i++)
                {
                    var seenRetired = Volatile.Read(ref retired) != 0;
                    var length = i % 16 == 5 ? LargePacket : 64 + (i % 200);
                    buffer.AsSpan(16, length).Fill((byte)(i + t));
                    var error = keypair.TryEncrypt(counter++, buffer, length, out var datagramLength);
                    if (error == ProtocolError.None)
                    {
                        datagrams.Add(buffer[..datagramLength]);
                        Interlocked.Increment(ref total);
                        Assert.False(seenRetired, "a datagram was produced after Retire returned");
                    }
                    else
                    {
                        Assert.Equal(ProtocolError.KeypairRetired, error);
                    }

                    if (seenRetired)
                    {
                        after++;
                    }
                }
            }, TaskCreationOptions.LongRunning)).ToArray();

            SpinWait.SpinUntil(() => Volatile.Read(ref total) >= retireAt || workers.Any(w => w.IsCompleted), TimeSpan.FromSeconds(60));
            keypair.Retire();
            Volatile.Write(ref retired, 1);
            Assert.True(Task.WaitAll(workers, TimeSpan.FromSeconds(120)), "workers did not finish");

            Assert.True(keypair.KeysAreZero); // the last user left, so the keys are wiped
            Assert.True(keypair.SendKeyForTest.IsWiped);
            Assert.Equal(0, keypair.SendKeyForTest.PooledContexts);
            foreach (var d in datagrams)
            {
                Assert.True(Opens(d, sendKey), "a datagram does not decrypt under the real key (sealed under a half-wiped one?)");
                Assert.False(Opens(d, ZeroKey), "a datagram decrypts under the all-zero key");
            }

            produced += datagrams.Count;
        }

        Assert.True(produced >= rounds * 200, $"only {produced} datagrams were produced");
    }

    [Fact]
    public void Decrypt_RacingRetire_NeverAuthenticatesUnderAWipedOrHalfWipedKey()
    {
        const int rounds = 24;
        const int threads = 4;
        for (var round = 0; round < rounds; round++)
        {
            var (keypair, _, receiveKey) = NewKeypair();

            // Genuine datagrams, and forgeries under every key a byte-wise or vector-wise wipe can pass through
            // (the first 0, 8, 16, 24 or all 32 bytes zeroed): an attacker knows what a wiped key looks like.
            var genuine = new List<byte[]>();
            var forged = new List<byte[]>();
            for (var i = 0; i < 64; i++)
            {
                var length = i % 16 == 3 ? LargePacket : 80;
                genuine.Add(Seal(receiveKey, keypair.LocalIndex, (ulong)i, length));
                foreach (var zeroed in new[] { 8, 16, 24, 32 })
                {
                    var partial = receiveKey.ToArray();
                    partial.AsSpan(0, zeroed).Clear();
                    forged.Add(Seal(partial, keypair.LocalIndex, (ulong)(1000 + i), length));
                }
            }

            var retired = 0;
            var forgeriesAccepted = 0;
            var acceptedAfterRetire = 0;
            var workers = Enumerable.Range(0, threads).Select(t => Task.Factory.StartNew(() =>
            {
                var output = new byte[LargePacket + 64];
                var after = 0;
                for (var i = t; after < 200; i++)
                {
                    var seenRetired = Volatile.Read(ref retired) != 0;
                    var isForged = i % 3 == 0;
                    var list = isForged ? forged : genuine;
                    var d = list[i % list.Count];
                    var error = keypair.TryDecrypt(d, output, out _, out _);
                    if (error == ProtocolError.None)
                    {
                        if (isForged)
                        {
                            Interlocked.Increment(ref forgeriesAccepted);
                        }

                        if (seenRetired)
                        {
                            Interlocked.Increment(ref acceptedAfterRetire);
                        }
                    }

                    if (seenRetired)
                    {
                        after++;
                    }
                }
            }, TaskCreationOptions.LongRunning)).ToArray();

            Thread.Sleep(round % 4); // 0–3 ms of decryption before the retire
            keypair.Retire();
            Volatile.Write(ref retired, 1);
            Assert.True(Task.WaitAll(workers, TimeSpan.FromSeconds(120)), "workers did not finish");

            Assert.Equal(0, forgeriesAccepted);
            Assert.Equal(0, acceptedAfterRetire);
            Assert.True(keypair.KeysAreZero);
            Assert.Equal(ProtocolError.KeypairRetired, keypair.TryDecrypt(genuine[0], new byte[256], out _, out _));
        }
    }

    [Fact]
    public void Retire_WithAUserInside_RefusesAtOnce_AndWipesExactlyWhenTheLastUserLeaves()
    {
        var (keypair, _, _) = NewKeypair();
        Assert.True(keypair.TryEnterForTest());
        Assert.True(keypair.TryEnterForTest());

        keypair.Retire();
        keypair.Retire(); // idempotent

        Assert.True(keypair.IsRetired);
        Assert.False(keypair.TryEnterForTest());
        Assert.Equal(ProtocolError.KeypairRetired, keypair.TryEncrypt(0, new byte[128], 20, out var length));
        Assert.Equal(0, length);
        Assert.False(keypair.KeysAreZero); // two users are still inside: their keys must stay intact
        Assert.False(keypair.SendKeyForTest.IsWiped);

        keypair.LeaveForTest();
        Assert.False(keypair.KeysAreZero);
        keypair.LeaveForTest();
        Assert.True(keypair.KeysAreZero);
        Assert.True(keypair.SendKeyForTest.IsWiped);
        Assert.True(keypair.ReceiveKeyForTest.IsWiped);
    }

    [Fact]
    public void LargePackets_LeaveNoKeyInThePerThreadOpenSslCache_AndRetireFreesTheKeypairsContexts()
    {
        Assert.True(ChaChaPolyOpenSsl.IsSupported, "OpenSSL ChaCha20-Poly1305 is required for this test");
        var (keypair, sendKey, receiveKey) = NewKeypair();
        var buffer = new byte[LargePacket + 64];
        Assert.Equal(ProtocolError.None, keypair.TryEncrypt(7, buffer, LargePacket, out var length));
        Assert.True(Opens(buffer.AsSpan(0, length).ToArray(), sendKey));
        var incoming = Seal(receiveKey, keypair.LocalIndex, 9, LargePacket);
        Assert.Equal(ProtocolError.None, keypair.TryDecrypt(incoming, new byte[incoming.Length], out _, out _));

        // The keys' only OpenSSL copies belong to the keypair...
        Assert.False(ChaChaPolyOpenSsl.ThreadCacheHolds(sendKey), "the send key was left in the per-thread OpenSSL cache");
        Assert.False(ChaChaPolyOpenSsl.ThreadCacheHolds(receiveKey), "the receive key was left in the per-thread OpenSSL cache");
        Assert.True(keypair.SendKeyForTest.PooledContexts >= 1);
        Assert.True(keypair.ReceiveKeyForTest.PooledContexts >= 1);

        // ...and go with it.
        keypair.Retire();
        Assert.Equal(0, keypair.SendKeyForTest.PooledContexts);
        Assert.Equal(0, keypair.ReceiveKeyForTest.PooledContexts);
        Assert.True(keypair.SendKeyForTest.IsWiped);
        Assert.True(keypair.ReceiveKeyForTest.IsWiped);
    }

    [Fact]
    public void PeerRemoval_RetiresEveryKeypair_AndLaterSendsFailWithKeypairRetired()
    {
        var pair = new TestPair(pskA: PresharedKey(), pskB: PresharedKey());
        pair.Handshake(pair.A);
        Assert.Equal(ProtocolError.None, pair.A.Peer.TryReserveSend(pair.Now, false, out var keypair, out var counter));

        Assert.True(pair.A.Device.RemovePeer(pair.B.Device.PublicKey));

        // A packet reserved before the removal (as in a device's queue) is refused, not sealed under a wiped key.
        var buffer = new byte[256];
        Assert.Equal(ProtocolError.KeypairRetired, keypair!.TryEncrypt(counter, buffer, 40, out _));
        Assert.True(keypair.KeysAreZero);
    }

    internal static Key PresharedKey()
    {
        var k = new byte[32];
        k.AsSpan().Fill(0x5A);
        return new Key(k);
    }

    private static (Keypair Keypair, byte[] SendKey, byte[] ReceiveKey) NewKeypair()
    {
        var pair = new TestPair();
        var sendKey = RandomNumberGenerator.GetBytes(32);
        var receiveKey = RandomNumberGenerator.GetBytes(32);
        var keypair = new Keypair(pair.A.Peer, sendKey, receiveKey, true, 0x1234, 0x5678, pair.Now);
        return (keypair, sendKey, receiveKey);
    }

    /// <summary>True when the transport datagram's tag verifies under <paramref name="key"/>.</summary>
    private static bool Opens(byte[] datagram, byte[] key)
    {
        var counter = BinaryPrimitives.ReadUInt64LittleEndian(datagram.AsSpan(TransportDataView.CounterOffset));
        var body = datagram.AsSpan(TransportDataView.HeaderSize, datagram.Length - TransportDataView.HeaderSize - TransportDataView.TagSize);
        var tag = datagram.AsSpan(datagram.Length - TransportDataView.TagSize);
        var plaintext = new byte[body.Length];
        using var k = new ChaChaPolyKey(key); // not the static API: it would leave the key in this thread's OpenSSL cache
        return k.Decrypt(counter, body, tag, plaintext);
    }

    /// <summary>A transport datagram to <paramref name="receiverIndex"/> sealed under <paramref name="key"/>.</summary>
    private static byte[] Seal(byte[] key, uint receiverIndex, ulong counter, int length)
    {
        var padded = (length + 15) & ~15;
        var datagram = new byte[TransportDataView.HeaderSize + padded + TransportDataView.TagSize];
        BinaryPrimitives.WriteUInt32LittleEndian(datagram, (uint)MessageType.TransportData);
        BinaryPrimitives.WriteUInt32LittleEndian(datagram.AsSpan(TransportDataView.ReceiverOffset), receiverIndex);
        BinaryPrimitives.WriteUInt64LittleEndian(datagram.AsSpan(TransportDataView.CounterOffset), counter);
        var body = datagram.AsSpan(TransportDataView.HeaderSize, padded);
        body[..length].Fill(0x45);
        using var k = new ChaChaPolyKey(key);
        k.Encrypt(counter, body, body, datagram.AsSpan(TransportDataView.HeaderSize + padded, TransportDataView.TagSize));
        return datagram;
    }
}
