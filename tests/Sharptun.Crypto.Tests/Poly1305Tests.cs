using Sharptun.Crypto;

namespace Sharptun.Crypto.Tests;

public sealed class Poly1305Tests
{
    private const int Seed = 0x1305;

    [Fact]
    public void Update_SimdAndScalar_AgreeOnRandomMessages()
    {
        var rng = new Random(Seed);
        for (int iteration = 0; iteration < 400; iteration++)
        {
            int length = iteration < 380 ? rng.Next(0, 3000) : rng.Next(60000, 70000);
            var key = new byte[32];
            var msg = new byte[length];
            rng.NextBytes(key);
            rng.NextBytes(msg);
            if (iteration % 5 == 0)
            {
                // Extreme limbs: all-ones message and r with every unclamped bit set exercise the carry bounds.
                msg.AsSpan().Fill(0xFF);
                key.AsSpan(0, 16).Fill(0xFF);
            }

            var fast = new byte[16];
            var slow = new byte[16];
            var mac = new Poly1305(key);
            mac.Update(msg);
            mac.Finish(fast);
            var reference = new Poly1305(key, scalarOnly: true);
            reference.Update(msg);
            reference.Finish(slow);
            Assert.True(fast.AsSpan().SequenceEqual(slow), $"seed {Seed}, iteration {iteration}, length {length}");
        }
    }

    [Fact]
    public void Update_AgainstBigIntegerModel_MatchesOnRandomMessages()
    {
        // Naive model: h = sum (m_i + 2^(8·len_i)) · r^(n-i+1) mod 2^130-5, tag = (h + s) mod 2^128 (RFC 8439 §2.5.1).
        var rng = new Random(Seed + 1);
        System.Numerics.BigInteger p = (System.Numerics.BigInteger.One << 130) - 5;
        for (int iteration = 0; iteration < 60; iteration++)
        {
            int length = rng.Next(0, 1500);
            var key = new byte[32];
            var msg = new byte[length];
            rng.NextBytes(key);
            rng.NextBytes(msg);
            if (iteration % 4 == 0)
            {
                msg.AsSpan().Fill(0xFF);
            }

            var rBytes = key[..16];
            rBytes[3] &= 15; rBytes[7] &= 15; rBytes[11] &= 15; rBytes[15] &= 15;
            rBytes[4] &= 252; rBytes[8] &= 252; rBytes[12] &= 252;
            var r = new System.Numerics.BigInteger(rBytes, isUnsigned: true);
            var s = new System.Numerics.BigInteger(key.AsSpan(16, 16), isUnsigned: true);
            System.Numerics.BigInteger h = 0;
            for (int i = 0; i < length; i += 16)
            {
                int n = Math.Min(16, length - i);
                var block = new byte[n + 1];
                msg.AsSpan(i, n).CopyTo(block);
                block[n] = 1;
                h = (h + new System.Numerics.BigInteger(block, isUnsigned: true)) * r % p;
            }

            byte[] expected = new byte[16];
            ((h + s) & ((System.Numerics.BigInteger.One << 128) - 1)).TryWriteBytes(expected, out _, isUnsigned: true);
            var tag = new byte[16];
            Poly1305.Compute(key, msg, tag);
            Assert.True(expected.AsSpan().SequenceEqual(tag), $"seed {Seed + 1}, iteration {iteration}, length {length}");
        }
    }
}
