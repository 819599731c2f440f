using System.Security.Cryptography;
using Sharptun.Crypto;

namespace Sharptun.Crypto.Tests;

public sealed class ChaChaPolyKeyTests
{
    [Theory]
    [InlineData(0)]
    [InlineData(1)]
    [InlineData(1420)]
    [InlineData(ChaChaPoly.OpenSslThreshold - 1)]
    [InlineData(ChaChaPoly.OpenSslThreshold)]
    [InlineData(65535)]
    public void EncryptAndDecrypt_MatchTheStaticWireGuardNonceApi(int length)
    {
        var keyBytes = RandomNumberGenerator.GetBytes(32);
        var plaintext = RandomNumberGenerator.GetBytes(length);
        const ulong counter = 0x0102030405060708;
        var expected = new byte[length];
        var expectedTag = new byte[16];
        ChaChaPoly.Encrypt(keyBytes, counter, plaintext, expected, expectedTag);
        ChaChaPolyOpenSsl.ClearThreadCache();

        using var key = new ChaChaPolyKey(keyBytes);
        var ciphertext = new byte[length];
        var tag = new byte[16];
        key.Encrypt(counter, plaintext, ciphertext, tag);
        Assert.Equal(expected, ciphertext);
        Assert.Equal(expectedTag, tag);

        var opened = new byte[length];
        Assert.True(key.Decrypt(counter, ciphertext, tag, opened));
        Assert.Equal(plaintext, opened);

        tag[0] ^= 1;
        Assert.False(key.Decrypt(counter, ciphertext, tag, opened));
        Assert.True(opened.AsSpan().IndexOfAnyExcept((byte)0) < 0); // zeroed on failure
        Assert.False(ChaChaPolyOpenSsl.ThreadCacheHolds(keyBytes)); // never through the per-thread cache
    }

    [Fact]
    public void LargeMessages_OnManyThreadsAtOnce_AllRoundTrip()
    {
        Assert.True(ChaChaPolyOpenSsl.IsSupported, "OpenSSL ChaCha20-Poly1305 is required for this test");
        var keyBytes = RandomNumberGenerator.GetBytes(32);
        using var key = new ChaChaPolyKey(keyBytes);
        Parallel.For(0, 8, new ParallelOptions { MaxDegreeOfParallelism = 8 }, t =>
        {
            var plaintext = new byte[ChaChaPoly.OpenSslThreshold + (t * 100)];
            var ciphertext = new byte[plaintext.Length];
            var opened = new byte[plaintext.Length];
            var tag = new byte[16];
            for (var i = 0; i < 200; i++)
            {
                plaintext.AsSpan().Fill((byte)(i + t));
                var counter = ((ulong)t << 32) | (uint)i;
                key.Encrypt(counter, plaintext, ciphertext, tag);
                Assert.True(key.Decrypt(counter, ciphertext, tag, opened));
                Assert.Equal(plaintext, opened);
            }
        });

        Assert.InRange(key.PooledContexts, 1, ChaChaPolyKey.PoolSize);
    }

    [Fact]
    public void Dispose_WipesTheKeyAndFreesEveryContext_ThenRefusesUse()
    {
        Assert.True(ChaChaPolyOpenSsl.IsSupported, "OpenSSL ChaCha20-Poly1305 is required for this test");
        var key = new ChaChaPolyKey(RandomNumberGenerator.GetBytes(32));
        var buffer = new byte[ChaChaPoly.OpenSslThreshold];
        var tag = new byte[16];
        key.Encrypt(1, buffer, buffer, tag);
        Assert.Equal(1, key.PooledContexts);
        Assert.False(key.IsWiped);

        key.Dispose();
        key.Dispose(); // idempotent

        Assert.True(key.IsDisposed);
        Assert.True(key.IsWiped);
        Assert.Equal(0, key.PooledContexts);
        Assert.Throws<ObjectDisposedException>(() => key.Encrypt(2, buffer, buffer, tag));
        Assert.Throws<ObjectDisposedException>(() => key.Decrypt(2, new byte[16], tag, new byte[16]));
    }
}
