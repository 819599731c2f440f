using System.Security.Cryptography;
using Sharptun.Crypto;

namespace Sharptun.Crypto.Tests;

/// <summary>Seeded random comparison against .NET's OpenSSL-backed ChaCha20Poly1305 on every ChaCha20 path.</summary>
public sealed class ChaChaPolyDifferentialTests
{
    private const int Seed = 0x5eed_c4a;

    [Theory]
    [MemberData(nameof(ChaChaTestVectors.Paths), MemberType = typeof(ChaChaTestVectors))]
    public void Seal_RandomLengths_MatchesSystemChaCha20Poly1305(int pathValue)
    {
        Assert.True(ChaCha20Poly1305.IsSupported, "System ChaCha20Poly1305 (OpenSSL) is required for the differential tests");
        var path = (ChaCha20Path)pathValue;
        var rng = new Random(Seed + pathValue);
        var lengths = new List<int>();
        for (int i = 0; i <= 2000; i += 1 + (i < 600 ? 0 : rng.Next(0, 9)))
        {
            lengths.Add(i);
        }

        lengths.Add(65535);
        lengths.Add(65535 - 17);
        foreach (int length in lengths)
        {
            byte[] key = RandomBytes(rng, 32), nonce = RandomBytes(rng, 12), pt = RandomBytes(rng, length);
            byte[] aad = RandomBytes(rng, rng.Next(0, 3) == 0 ? 0 : rng.Next(0, 80));

            var expectedCt = new byte[length];
            var expectedTag = new byte[16];
            using (var reference = new ChaCha20Poly1305(key))
            {
                reference.Encrypt(nonce, pt, expectedCt, expectedTag, aad);
            }

            ChaCha20.NonceWords(nonce, out uint n0, out uint n1, out uint n2);
            var ct = new byte[length];
            var tag = new byte[16];
            ChaChaPolyCore.Seal(key, n0, n1, n2, pt, ct, tag, aad, path);
            Assert.True(expectedCt.AsSpan().SequenceEqual(ct) && expectedTag.AsSpan().SequenceEqual(tag),
                $"seed {Seed + pathValue}, path {path}, length {length}, aad {aad.Length}");

            var back = new byte[length];
            Assert.True(ChaChaPolyCore.Open(key, n0, n1, n2, expectedCt, expectedTag, back, aad, path), $"seed {Seed + pathValue}, length {length}");
            Assert.True(pt.AsSpan().SequenceEqual(back), $"seed {Seed + pathValue}, path {path}, length {length}");
        }
    }

    [Fact]
    public void PublicApi_RandomLengths_MatchesSystemChaCha20Poly1305BothWays()
    {
        Assert.True(ChaCha20Poly1305.IsSupported, "System ChaCha20Poly1305 (OpenSSL) is required for the differential tests");
        var rng = new Random(Seed);
        for (int iteration = 0; iteration < 300; iteration++)
        {
            int length = iteration < 280 ? rng.Next(0, 2001) : 65535 - rng.Next(0, 64);
            byte[] key = RandomBytes(rng, 32), nonce = RandomBytes(rng, 12), pt = RandomBytes(rng, length), aad = RandomBytes(rng, rng.Next(0, 40));
            using var reference = new ChaCha20Poly1305(key);

            var ct = new byte[length];
            var tag = new byte[16];
            ChaChaPoly.Encrypt(key, nonce, pt, ct, tag, aad);
            var back = new byte[length];
            reference.Decrypt(nonce, ct, tag, back, aad); // throws if our tag is wrong
            Assert.True(pt.AsSpan().SequenceEqual(back), $"seed {Seed}, iteration {iteration}, length {length}");

            var refCt = new byte[length];
            var refTag = new byte[16];
            reference.Encrypt(nonce, pt, refCt, refTag, aad);
            Assert.True(ChaChaPoly.Decrypt(key, nonce, refCt, refTag, back, aad), $"seed {Seed}, iteration {iteration}, length {length}");
            Assert.True(pt.AsSpan().SequenceEqual(back), $"seed {Seed}, iteration {iteration}, length {length}");
        }
    }

    [Fact]
    public void XChaChaPoly_RandomLengths_MatchesHChaChaSubkeyPlusSystemChaCha20Poly1305()
    {
        Assert.True(ChaCha20Poly1305.IsSupported, "System ChaCha20Poly1305 (OpenSSL) is required for the differential tests");
        var rng = new Random(Seed + 100);
        for (int iteration = 0; iteration < 100; iteration++)
        {
            int length = rng.Next(0, 2001);
            byte[] key = RandomBytes(rng, 32), nonce = RandomBytes(rng, 24), pt = RandomBytes(rng, length), aad = RandomBytes(rng, rng.Next(0, 40));

            // draft-irtf-cfrg-xchacha-03 §2.3: subkey = HChaCha20(key, nonce[0..16]); inner nonce = 0^4 || nonce[16..24]
            var subkey = new byte[32];
            ChaCha20.HChaCha20(key, nonce.AsSpan(0, 16), subkey);
            var innerNonce = new byte[12];
            nonce.AsSpan(16).CopyTo(innerNonce.AsSpan(4));
            var expectedCt = new byte[length];
            var expectedTag = new byte[16];
            using (var reference = new ChaCha20Poly1305(subkey))
            {
                reference.Encrypt(innerNonce, pt, expectedCt, expectedTag, aad);
            }

            var ct = new byte[length];
            var tag = new byte[16];
            XChaChaPoly.Encrypt(key, nonce, pt, ct, tag, aad);
            Assert.True(expectedCt.AsSpan().SequenceEqual(ct) && expectedTag.AsSpan().SequenceEqual(tag), $"seed {Seed + 100}, iteration {iteration}");
        }
    }

    [Theory]
    [MemberData(nameof(ChaChaTestVectors.Paths), MemberType = typeof(ChaChaTestVectors))]
    public void ChaCha20Xor_EveryPath_MatchesScalarAtCounterWrap(int pathValue)
    {
        // Crossing the 32-bit block counter boundary must wrap identically on every path (RFC 8439 §2.4 counter is 32 bits).
        var rng = new Random(Seed + 7);
        byte[] key = RandomBytes(rng, 32), nonce = RandomBytes(rng, 12), input = RandomBytes(rng, 1500);
        var expected = new byte[input.Length];
        var actual = new byte[input.Length];
        ChaCha20.Xor(key, nonce, uint.MaxValue - 3, input, expected, ChaCha20Path.Scalar);
        ChaCha20.Xor(key, nonce, uint.MaxValue - 3, input, actual, (ChaCha20Path)pathValue);
        Assert.Equal(expected, actual);
    }

    [Theory]
    [InlineData((int)ChaCha20Path.Vector128)]
    [InlineData((int)ChaCha20Path.Vector256)]
    public void ChaCha20Xor_PortableRotations_MatchScalar(int pathValue)
    {
        // The rotations used on CPUs without AVX-512VL (AVX2 byte shuffles, shift/or), reached here on any machine.
        var path = (ChaCha20Path)pathValue;
        if (ChaCha20.Supported(path) != path)
        {
            return; // this machine lacks the path altogether; ChaCha20Xor_EveryPath_* covers what it has
        }

        var rng = new Random(Seed + 11);
        for (int length = 0; length <= 1100; length += 1 + rng.Next(0, 7))
        {
            byte[] key = RandomBytes(rng, 32), input = RandomBytes(rng, length);
            uint counter = (uint)rng.Next();
            var expected = new byte[length];
            var actual = new byte[length];
            ChaCha20.Xor(key, counter, 1, 2, 3, input, expected, ChaCha20Path.Scalar);
            ChaCha20.Xor(key, counter, 1, 2, 3, input, actual, path, avx512Rotate: false);
            Assert.True(expected.AsSpan().SequenceEqual(actual), $"seed {Seed + 11}, path {path}, length {length}");
        }
    }

    private static byte[] RandomBytes(Random rng, int length)
    {
        var bytes = new byte[length];
        rng.NextBytes(bytes);
        return bytes;
    }
}
