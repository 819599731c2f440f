using System.Text;

namespace Sharptun.Crypto.Tests;

public sealed class NoiseKdfTests
{
    private static byte[] Hmac(byte[] key, byte[] input)
    {
        byte[] output = new byte[32];
        HmacBlake2s.Compute(key, input, output);
        return output;
    }

    // Whitepaper §5.4: τ0 = Hmac(key, input), τ1 = Hmac(τ0, 0x1), τ2 = Hmac(τ0, τ1 ‖ 0x2), τ3 = Hmac(τ0, τ2 ‖ 0x3).
    private static (byte[] T1, byte[] T2, byte[] T3) Reference(byte[] key, byte[] input)
    {
        byte[] t0 = Hmac(key, input);
        byte[] t1 = Hmac(t0, [1]);
        byte[] t2 = Hmac(t0, [.. t1, 2]);
        byte[] t3 = Hmac(t0, [.. t2, 3]);
        return (t1, t2, t3);
    }

    [Fact]
    public void Kdf123_RandomInputs_MatchDirectHmacComposition()
    {
        const int seed = 54;
        var rng = new Random(seed);
        for (int iteration = 0; iteration < 50; iteration++)
        {
            byte[] key = new byte[32];
            byte[] input = new byte[rng.Next(0, 100)];
            rng.NextBytes(key);
            rng.NextBytes(input);
            (byte[] e1, byte[] e2, byte[] e3) = Reference(key, input);

            byte[] a1 = new byte[32], b1 = new byte[32], b2 = new byte[32], c1 = new byte[32], c2 = new byte[32], c3 = new byte[32];
            NoiseKdf.Kdf1(key, input, a1);
            NoiseKdf.Kdf2(key, input, b1, b2);
            NoiseKdf.Kdf3(key, input, c1, c2, c3);
            string context = $"seed {seed} iteration {iteration}";
            Assert.True(e1.AsSpan().SequenceEqual(a1), context);
            Assert.True(e1.AsSpan().SequenceEqual(b1) && e2.AsSpan().SequenceEqual(b2), context);
            Assert.True(e1.AsSpan().SequenceEqual(c1) && e2.AsSpan().SequenceEqual(c2) && e3.AsSpan().SequenceEqual(c3), context);
        }
    }

    [Fact]
    public void Kdf2_ChainingKeyIsAlsoFirstOutput_MatchesNonAliased()
    {
        // wireguard-go calls KDF2(&ck, &key, ck[:], dh[:]): the chaining key is input and output.
        byte[] ck = new byte[32];
        byte[] dh = new byte[32];
        new Random(11).NextBytes(ck);
        new Random(12).NextBytes(dh);
        (byte[] e1, byte[] e2, _) = Reference(ck, dh);

        byte[] key = new byte[32];
        NoiseKdf.Kdf2(ck, dh, ck, key);
        Assert.Equal(e1, ck);
        Assert.Equal(e2, key);
    }

    [Fact]
    public void Kdf1_WireGuardInitiatorEphemeralStep_MatchesHmacComposition()
    {
        // whitepaper §5.4.2: Ci := Kdf1(Ci, Ei^pub), starting from C = Hash(Construction).
        byte[] c = new byte[32];
        Blake2s.Hash(Encoding.ASCII.GetBytes("Noise_IKpsk2_25519_ChaChaPoly_BLAKE2s"), c);
        byte[] ephemeralPublic = new byte[32];
        X25519.PublicKey(Convert.FromHexString("77076d0a7318a57d3c16c17251b26645df4c2f87ebc0992ab177fba51db92c2a"), ephemeralPublic);
        byte[] expected = Hmac(Hmac(c, ephemeralPublic), [1]);
        NoiseKdf.Kdf1(c, ephemeralPublic, c);
        Assert.Equal(expected, c);
    }

    [Fact]
    public void Kdf3_WrongOutputLength_Throws()
    {
        Assert.Throws<ArgumentException>(() => NoiseKdf.Kdf3(new byte[32], [], new byte[32], new byte[32], new byte[16]));
        Assert.Throws<ArgumentException>(() => NoiseKdf.Kdf1(new byte[32], [], new byte[31]));
    }
}
