using Org.BouncyCastle.Crypto.Digests;
using Org.BouncyCastle.Crypto.Macs;
using Org.BouncyCastle.Crypto.Parameters;

namespace Sharptun.Crypto.Tests;

public sealed class HmacBlake2sTests
{
    [Fact]
    public void Compute_RandomKeysAndMessages_MatchesBouncyCastleHmac()
    {
        const int seed = 2104;
        var rng = new Random(seed);
        for (int iteration = 0; iteration < 200; iteration++)
        {
            byte[] key = new byte[rng.Next(0, 130)]; // includes keys longer than the 64-byte block
            byte[] message = new byte[rng.Next(0, 300)];
            rng.NextBytes(key);
            rng.NextBytes(message);

            var hmac = new HMac(new Blake2sDigest(256));
            hmac.Init(new KeyParameter(key));
            hmac.BlockUpdate(message, 0, message.Length);
            byte[] expected = new byte[32];
            hmac.DoFinal(expected, 0);

            byte[] actual = new byte[32];
            HmacBlake2s.Compute(key, message, actual);
            Assert.True(expected.AsSpan().SequenceEqual(actual), $"seed {seed} iteration {iteration}");
        }
    }

    [Fact]
    public void Compute_ShortKey_MatchesRfc2104Definition()
    {
        // RFC 2104 §2 written out with one-shot hashes: H((K ^ opad) || H((K ^ ipad) || text)).
        var rng = new Random(5);
        byte[] key = new byte[32];
        byte[] message = new byte[100];
        rng.NextBytes(key);
        rng.NextBytes(message);

        byte[] innerInput = new byte[64 + message.Length];
        byte[] outerInput = new byte[64 + 32];
        for (int i = 0; i < 64; i++)
        {
            byte k = i < key.Length ? key[i] : (byte)0;
            innerInput[i] = (byte)(k ^ 0x36);
            outerInput[i] = (byte)(k ^ 0x5c);
        }

        message.CopyTo(innerInput, 64);
        Blake2s.Hash(innerInput, outerInput.AsSpan(64));
        byte[] expected = new byte[32];
        Blake2s.Hash(outerInput, expected);

        byte[] actual = new byte[32];
        HmacBlake2s.Compute(key, message, actual);
        Assert.Equal(expected, actual);
    }

    [Fact]
    public void Compute_OutputAliasesKey_GivesSameResult()
    {
        byte[] key = new byte[32];
        new Random(3).NextBytes(key);
        byte[] expected = new byte[32];
        HmacBlake2s.Compute(key, "x"u8, expected);
        HmacBlake2s.Compute(key, "x"u8, key);
        Assert.Equal(expected, key);
    }

    [Fact]
    public void Compute_WrongOutputLength_Throws()
    {
        Assert.Throws<ArgumentException>(() => HmacBlake2s.Compute(new byte[32], [1], new byte[16]));
    }
}
