using System.Text;
using System.Text.Json;
using Org.BouncyCastle.Crypto.Digests;

namespace Sharptun.Crypto.Tests;

public sealed class Blake2sTests
{
    private static JsonDocument LoadVectors(string name) =>
        JsonDocument.Parse(File.ReadAllText(Path.Combine(AppContext.BaseDirectory, "vectors", name)));

    [Fact]
    public void Hash_ReferenceKat_AllUnkeyedAndKeyedMatch()
    {
        using JsonDocument doc = LoadVectors("blake2s-kat.json");
        var failures = new List<string>();
        int unkeyed = 0, keyed = 0;
        byte[] output = new byte[32];
        foreach (JsonElement v in doc.RootElement.EnumerateArray())
        {
            Assert.Equal("blake2s", v.GetProperty("hash").GetString());
            byte[] input = Convert.FromHexString(v.GetProperty("in").GetString()!);
            byte[] key = Convert.FromHexString(v.GetProperty("key").GetString()!);
            if (key.Length == 0)
            {
                Blake2s.Hash(input, output);
                unkeyed++;
            }
            else
            {
                Blake2s.KeyedHash(key, input, output);
                keyed++;
            }

            if (!output.AsSpan().SequenceEqual(Convert.FromHexString(v.GetProperty("out").GetString()!)))
            {
                failures.Add($"in length {input.Length}, key length {key.Length}");
            }
        }

        Assert.Empty(failures);
        Assert.Equal(256, unkeyed);
        Assert.Equal(256, keyed);
    }

    [Fact]
    public void Hash_Rfc7693AppendixBAbc_MatchesExample()
    {
        // RFC 7693 Appendix B: BLAKE2s-256("abc").
        byte[] output = new byte[32];
        Blake2s.Hash("abc"u8, output);
        Assert.Equal("508c5e8c327c14e2e1a72ba34eeb452f37458b209ed63a294d999b4c86675982", Convert.ToHexStringLower(output));
    }

    [Fact]
    public void Hash_Rfc7693AppendixESelfTest_GrandHashMatches()
    {
        // RFC 7693 Appendix E: hash every keyed and unkeyed digest for outlen ∈ {16,20,28,32} and
        // inlen ∈ {0,3,64,65,255,1024} into one BLAKE2s-256 state and compare the result.
        int[] outputLengths = [16, 20, 28, 32];
        int[] inputLengths = [0, 3, 64, 65, 255, 1024];
        byte[] input = new byte[1024];
        byte[] key = new byte[32];
        byte[] md = new byte[32];
        var grand = new Blake2s(32);
        foreach (int outlen in outputLengths)
        {
            foreach (int inlen in inputLengths)
            {
                SelfTestSequence(input.AsSpan(0, inlen), (uint)inlen);
                Blake2s.Hash(input.AsSpan(0, inlen), md.AsSpan(0, outlen));
                grand.Update(md.AsSpan(0, outlen));

                SelfTestSequence(key.AsSpan(0, outlen), (uint)outlen);
                Blake2s.KeyedHash(key.AsSpan(0, outlen), input.AsSpan(0, inlen), md.AsSpan(0, outlen));
                grand.Update(md.AsSpan(0, outlen));
            }
        }

        byte[] result = new byte[32];
        grand.Final(result);
        Assert.Equal("6a411f08ce25adcdfb02aba641451cec53c598b24f4fc787fbdc88797f4c1dfe", Convert.ToHexStringLower(result));
    }

    // RFC 7693 Appendix E selftest_seq: a Fibonacci generator seeded with 0xDEAD4BAD * seed.
    private static void SelfTestSequence(Span<byte> output, uint seed)
    {
        uint a = unchecked(0xDEAD4BAD * seed);
        uint b = 1;
        for (int i = 0; i < output.Length; i++)
        {
            uint t = unchecked(a + b);
            a = b;
            b = t;
            output[i] = (byte)(t >> 24);
        }
    }

    [Fact]
    public void Update_RandomChunkSplits_EqualsOneShot()
    {
        const int seed = 7693;
        var rng = new Random(seed);
        for (int iteration = 0; iteration < 200; iteration++)
        {
            byte[] input = new byte[rng.Next(0, 700)];
            rng.NextBytes(input);
            byte[] key = new byte[rng.Next(0, 2) == 0 ? 0 : rng.Next(1, 33)];
            rng.NextBytes(key);
            int outputLength = rng.Next(1, 33);

            byte[] expected = new byte[outputLength];
            Blake2s.KeyedHash(key, input, expected);

            var state = new Blake2s(outputLength, key);
            int offset = 0;
            while (offset < input.Length)
            {
                int chunk = rng.Next(0, Math.Min(input.Length - offset, 150) + 1);
                state.Update(input.AsSpan(offset, chunk));
                offset += chunk;
            }

            byte[] actual = new byte[outputLength];
            state.Final(actual);
            Assert.True(expected.AsSpan().SequenceEqual(actual), $"seed {seed} iteration {iteration}");
        }
    }

    [Fact]
    public void KeyedHash_RandomLengths_MatchesBouncyCastle()
    {
        // Covers output lengths other than 32 (the parameter block changes, e.g. WireGuard's 16-byte MAC).
        const int seed = 2104;
        var rng = new Random(seed);
        for (int iteration = 0; iteration < 200; iteration++)
        {
            byte[] input = new byte[rng.Next(0, 300)];
            rng.NextBytes(input);
            byte[] key = new byte[rng.Next(0, 33)];
            rng.NextBytes(key);
            int outputLength = rng.Next(1, 33);

            var reference = new Blake2sDigest(key.Length == 0 ? null : key, outputLength, null, null);
            reference.BlockUpdate(input, 0, input.Length);
            byte[] expected = new byte[outputLength];
            reference.DoFinal(expected, 0);

            byte[] actual = new byte[outputLength];
            Blake2s.KeyedHash(key, input, actual);
            Assert.True(expected.AsSpan().SequenceEqual(actual), $"seed {seed} iteration {iteration}");
        }
    }

    [Fact]
    public void KeyedHash_SixteenByteOutput_IsNotATruncationOfThirtyTwo()
    {
        byte[] key = new byte[32];
        byte[] mac16 = new byte[16];
        byte[] mac32 = new byte[32];
        Blake2s.KeyedHash(key, "mac1"u8, mac16);
        Blake2s.KeyedHash(key, "mac1"u8, mac32);
        Assert.False(mac16.AsSpan().SequenceEqual(mac32.AsSpan(0, 16)));
    }

    [Theory]
    [InlineData(0, 0)]
    [InlineData(33, 0)]
    [InlineData(32, 33)]
    public void Constructor_InvalidLengths_Throws(int outputLength, int keyLength)
    {
        Assert.Throws<ArgumentException>(() => new Blake2s(outputLength, new byte[keyLength]));
    }

    [Fact]
    public void Hash_InvalidOutputLength_Throws()
    {
        Assert.Throws<ArgumentException>(() => Blake2s.Hash([1, 2, 3], new byte[33]));
        Assert.Throws<ArgumentException>(() => Blake2s.Hash([1, 2, 3], []));
        Assert.Throws<ArgumentException>(() => Blake2s.KeyedHash(new byte[33], [1], new byte[16]));
    }

    [Fact]
    public void Final_OutputLengthDiffersFromConstructor_Throws()
    {
        var state = new Blake2s(16);
        Assert.Throws<ArgumentException>(() => state.Final(new byte[32]));
    }

    [Fact]
    public void Update_DefaultOrFinalisedState_Throws()
    {
        Blake2s state = default;
        Assert.Throws<InvalidOperationException>(() => state.Update([1]));
        var used = new Blake2s(32);
        used.Final(new byte[32]);
        Assert.Throws<InvalidOperationException>(() => used.Update([1]));
        Assert.Throws<InvalidOperationException>(() => used.Final(new byte[32]));
    }

    [Fact]
    public void Hash_WireGuardConstruction_IsTheInitialChainingKey()
    {
        // C := Hash(Construction) (whitepaper §5.4.1); the same constant appears in wireguard-go/Linux/wireguard-rs.
        byte[] ck = new byte[32];
        Blake2s.Hash(Encoding.ASCII.GetBytes("Noise_IKpsk2_25519_ChaChaPoly_BLAKE2s"), ck);
        Assert.Equal("60e26daef327efc02ec335e2a025d2d016eb4206f87277f52d38d1988b78cd36", Convert.ToHexStringLower(ck));
    }
}
