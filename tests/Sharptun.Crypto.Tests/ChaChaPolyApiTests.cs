using Sharptun.Crypto;

namespace Sharptun.Crypto.Tests;

public sealed class ChaChaPolyApiTests
{
    private static readonly byte[] Key = Enumerable.Range(0, 32).Select(i => (byte)(i * 7 + 1)).ToArray();
    private static readonly byte[] Nonce12 = Enumerable.Range(0, 12).Select(i => (byte)(i + 100)).ToArray();
    private static readonly byte[] Nonce24 = Enumerable.Range(0, 24).Select(i => (byte)(i + 50)).ToArray();
    private static readonly byte[] Aad = [1, 2, 3, 4, 5, 6, 7, 8, 9];

    private static byte[] Message(int length) => Enumerable.Range(0, length).Select(i => (byte)(i * 31 + 5)).ToArray();

    public static TheoryData<int> Lengths() => new() { 0, 1, 15, 16, 17, 63, 64, 65, 127, 128, 255, 256, 257, 511, 512, 513, 1420, 4097 };

    [Theory]
    [MemberData(nameof(Lengths))]
    public void Encrypt_InPlace_EqualsOutOfPlace(int length)
    {
        byte[] pt = Message(length);
        var ct = new byte[length];
        var tag = new byte[16];
        ChaChaPoly.Encrypt(Key, Nonce12, pt, ct, tag, Aad);

        var buffer = (byte[])pt.Clone();
        var tagInPlace = new byte[16];
        ChaChaPoly.Encrypt(Key, Nonce12, buffer, buffer, tagInPlace, Aad);
        Assert.Equal(ct, buffer);
        Assert.Equal(tag, tagInPlace);

        Assert.True(ChaChaPoly.Decrypt(Key, Nonce12, buffer, tagInPlace, buffer, Aad));
        Assert.Equal(pt, buffer);
    }

    [Theory]
    [MemberData(nameof(Lengths))]
    public void XChaChaEncrypt_InPlace_EqualsOutOfPlace(int length)
    {
        byte[] pt = Message(length);
        var ct = new byte[length];
        var tag = new byte[16];
        XChaChaPoly.Encrypt(Key, Nonce24, pt, ct, tag, Aad);

        var buffer = (byte[])pt.Clone();
        var tagInPlace = new byte[16];
        XChaChaPoly.Encrypt(Key, Nonce24, buffer, buffer, tagInPlace, Aad);
        Assert.Equal(ct, buffer);
        Assert.Equal(tag, tagInPlace);

        Assert.True(XChaChaPoly.Decrypt(Key, Nonce24, buffer, tagInPlace, buffer, Aad));
        Assert.Equal(pt, buffer);
    }

    [Theory]
    [InlineData(1)]
    [InlineData(64)]
    [InlineData(1420)]
    public void Decrypt_TamperedTag_ReturnsFalseAndZeroesPlaintext(int length)
    {
        (byte[] ct, byte[] tag) = Seal(length);
        for (int bit = 0; bit < 128; bit += 9)
        {
            var bad = (byte[])tag.Clone();
            bad[bit / 8] ^= (byte)(1 << (bit % 8));
            var pt = Enumerable.Repeat((byte)0xCC, length).ToArray();
            Assert.False(ChaChaPoly.Decrypt(Key, Nonce12, ct, bad, pt, Aad));
            Assert.All(pt, b => Assert.Equal(0, b));
        }
    }

    [Theory]
    [InlineData(1)]
    [InlineData(64)]
    [InlineData(1420)]
    public void Decrypt_TamperedCiphertext_ReturnsFalse(int length)
    {
        (byte[] ct, byte[] tag) = Seal(length);
        foreach (int index in new[] { 0, length / 2, length - 1 })
        {
            var bad = (byte[])ct.Clone();
            bad[index] ^= 0x80;
            Assert.False(ChaChaPoly.Decrypt(Key, Nonce12, bad, tag, new byte[length], Aad));
        }
    }

    [Fact]
    public void Decrypt_TamperedOrMissingAad_ReturnsFalse()
    {
        (byte[] ct, byte[] tag) = Seal(100);
        var bad = (byte[])Aad.Clone();
        bad[^1] ^= 1;
        Assert.False(ChaChaPoly.Decrypt(Key, Nonce12, ct, tag, new byte[100], bad));
        Assert.False(ChaChaPoly.Decrypt(Key, Nonce12, ct, tag, new byte[100], Aad.AsSpan(1)));
        Assert.False(ChaChaPoly.Decrypt(Key, Nonce12, ct, tag, new byte[100]));
    }

    [Fact]
    public void Decrypt_TruncatedCiphertext_ReturnsFalse()
    {
        (byte[] ct, byte[] tag) = Seal(100);
        Assert.False(ChaChaPoly.Decrypt(Key, Nonce12, ct.AsSpan(0, 99), tag, new byte[99], Aad));
    }

    [Fact]
    public void XChaChaDecrypt_TamperedInputs_ReturnFalse()
    {
        byte[] pt = Message(200);
        var ct = new byte[200];
        var tag = new byte[16];
        XChaChaPoly.Encrypt(Key, Nonce24, pt, ct, tag, Aad);
        var badCt = (byte[])ct.Clone();
        badCt[7] ^= 4;
        var badTag = (byte[])tag.Clone();
        badTag[15] ^= 0x40;
        var badNonce = (byte[])Nonce24.Clone();
        badNonce[3] ^= 1; // a bit in the HChaCha20 part of the nonce
        Assert.False(XChaChaPoly.Decrypt(Key, Nonce24, badCt, tag, new byte[200], Aad));
        Assert.False(XChaChaPoly.Decrypt(Key, Nonce24, ct, badTag, new byte[200], Aad));
        Assert.False(XChaChaPoly.Decrypt(Key, badNonce, ct, tag, new byte[200], Aad));
        Assert.False(XChaChaPoly.Decrypt(Key, Nonce24, ct, tag, new byte[200]));
    }

    [Theory]
    [InlineData(31)]
    [InlineData(33)]
    [InlineData(0)]
    public void Encrypt_WrongKeyLength_Throws(int keyLength)
    {
        Assert.Throws<ArgumentException>(() => ChaChaPoly.Encrypt(new byte[keyLength], Nonce12, new byte[4], new byte[4], new byte[16]));
        Assert.Throws<ArgumentException>(() => ChaChaPoly.Decrypt(new byte[keyLength], 1UL, new byte[4], new byte[16], new byte[4]));
        Assert.Throws<ArgumentException>(() => XChaChaPoly.Encrypt(new byte[keyLength], Nonce24, new byte[4], new byte[4], new byte[16]));
    }

    [Theory]
    [InlineData(15)]
    [InlineData(17)]
    public void Encrypt_WrongTagLength_Throws(int tagLength)
    {
        Assert.Throws<ArgumentException>(() => ChaChaPoly.Encrypt(Key, Nonce12, new byte[4], new byte[4], new byte[tagLength]));
        Assert.Throws<ArgumentException>(() => ChaChaPoly.Decrypt(Key, Nonce12, new byte[4], new byte[tagLength], new byte[4]));
        Assert.Throws<ArgumentException>(() => XChaChaPoly.Decrypt(Key, Nonce24, new byte[4], new byte[tagLength], new byte[4]));
    }

    [Theory]
    [InlineData(3)]
    [InlineData(5)]
    public void Encrypt_WrongOutputLength_Throws(int outputLength)
    {
        Assert.Throws<ArgumentException>(() => ChaChaPoly.Encrypt(Key, 7UL, new byte[4], new byte[outputLength], new byte[16]));
        Assert.Throws<ArgumentException>(() => ChaChaPoly.Decrypt(Key, Nonce12, new byte[4], new byte[16], new byte[outputLength]));
        Assert.Throws<ArgumentException>(() => XChaChaPoly.Encrypt(Key, Nonce24, new byte[4], new byte[outputLength], new byte[16]));
    }

    [Fact]
    public void Encrypt_WrongNonceLength_Throws()
    {
        Assert.Throws<ArgumentException>(() => ChaChaPoly.Encrypt(Key, Nonce24, new byte[4], new byte[4], new byte[16]));
        Assert.Throws<ArgumentException>(() => XChaChaPoly.Encrypt(Key, Nonce12, new byte[4], new byte[4], new byte[16]));
    }

    [Fact]
    public void Encrypt_PartiallyOverlappingBuffers_Throws()
    {
        var buffer = new byte[100];
        Assert.Throws<ArgumentException>(() => ChaChaPoly.Encrypt(Key, Nonce12, buffer.AsSpan(0, 50), buffer.AsSpan(10, 50), new byte[16]));
        Assert.Throws<ArgumentException>(() => ChaChaPoly.Decrypt(Key, Nonce12, buffer.AsSpan(10, 50), new byte[16], buffer.AsSpan(0, 50)));
    }

    [Fact]
    public void Encrypt_SteadyState_AllocatesNothing()
    {
        byte[] buffer = Message(1420);
        var tag = new byte[16];
        ChaChaPoly.Encrypt(Key, 1UL, buffer, buffer, tag, Aad);
        ChaChaPoly.Decrypt(Key, 1UL, buffer, tag, buffer, Aad);
        long before = GC.GetAllocatedBytesForCurrentThread();
        for (ulong i = 0; i < 100; i++)
        {
            ChaChaPoly.Encrypt(Key, i, buffer, buffer, tag, Aad);
            ChaChaPoly.Decrypt(Key, i, buffer, tag, buffer, Aad);
            XChaChaPoly.Encrypt(Key, Nonce24, buffer, buffer, tag, Aad);
            XChaChaPoly.Decrypt(Key, Nonce24, buffer, tag, buffer, Aad);
        }

        Assert.Equal(0, GC.GetAllocatedBytesForCurrentThread() - before);
    }

    [Theory]
    [InlineData(ChaChaPoly.OpenSslThreshold - 1)]
    [InlineData(ChaChaPoly.OpenSslThreshold)]
    [InlineData(65535)]
    public void Encrypt_AroundOpenSslThreshold_InPlaceMatchesManagedCore(int length)
    {
        byte[] pt = Message(length);
        var expectedCt = new byte[length];
        var expectedTag = new byte[16];
        ChaChaPolyCore.Seal(Key, 0, 5, 0, pt, expectedCt, expectedTag, Aad, ChaCha20Path.Scalar);

        var buffer = (byte[])pt.Clone();
        var tag = new byte[16];
        ChaChaPoly.Encrypt(Key, 5UL, buffer, buffer, tag, Aad);
        Assert.Equal(expectedCt, buffer);
        Assert.Equal(expectedTag, tag);

        Assert.True(ChaChaPoly.Decrypt(Key, 5UL, buffer, tag, buffer, Aad));
        Assert.Equal(pt, buffer);
    }

    [Fact]
    public void Decrypt_LargeTamperedTag_ReturnsFalseAndZeroesPlaintext()
    {
        int length = ChaChaPoly.OpenSslThreshold * 2;
        var ct = new byte[length];
        var tag = new byte[16];
        ChaChaPoly.Encrypt(Key, Nonce12, Message(length), ct, tag, Aad);
        tag[0] ^= 1;
        var pt = Enumerable.Repeat((byte)0xCC, length).ToArray();
        Assert.False(ChaChaPoly.Decrypt(Key, Nonce12, ct, tag, pt, Aad));
        Assert.All(pt, b => Assert.Equal(0, b));
    }

    [Fact]
    public void Encrypt_LargeMessagesUnderMoreKeysThanTheCacheHolds_RoundTrip()
    {
        byte[] pt = Message(ChaChaPoly.OpenSslThreshold + 100);
        var keys = Enumerable.Range(0, ChaChaPolyOpenSsl.CacheSize + 2).Select(i => Enumerable.Repeat((byte)(i + 1), 32).ToArray()).ToArray();
        for (int round = 0; round < 3; round++)
        {
            foreach (byte[] key in keys)
            {
                var ct = new byte[pt.Length];
                var tag = new byte[16];
                ChaChaPoly.Encrypt(key, (ulong)round, pt, ct, tag);
                var expectedCt = new byte[pt.Length];
                var expectedTag = new byte[16];
                ChaChaPolyCore.Seal(key, 0, (uint)round, 0, pt, expectedCt, expectedTag, default, ChaCha20.BestPath);
                Assert.Equal(expectedCt, ct);
                Assert.Equal(expectedTag, tag);
            }
        }

        ChaChaPolyOpenSsl.ClearThreadCache();
    }

    [Fact]
    public void Encrypt_LargeSteadyState_AllocatesNothing()
    {
        byte[] buffer = Message(65535);
        var tag = new byte[16];
        ChaChaPoly.Encrypt(Key, 1UL, buffer, buffer, tag, Aad);
        ChaChaPoly.Decrypt(Key, 1UL, buffer, tag, buffer, Aad);
        long before = GC.GetAllocatedBytesForCurrentThread();
        for (ulong i = 0; i < 20; i++)
        {
            ChaChaPoly.Encrypt(Key, i, buffer, buffer, tag, Aad);
            Assert.True(ChaChaPoly.Decrypt(Key, i, buffer, tag, buffer, Aad));
        }

        Assert.Equal(0, GC.GetAllocatedBytesForCurrentThread() - before);
    }

    private static (byte[] Ct, byte[] Tag) Seal(int length)
    {
        var ct = new byte[length];
        var tag = new byte[16];
        ChaChaPoly.Encrypt(Key, Nonce12, Message(length), ct, tag, Aad);
        return (ct, tag);
    }
}
