using System.Numerics;
using System.Text.Json;

namespace Sharptun.Crypto.Tests;

public sealed class X25519Tests
{
    private static JsonDocument LoadVectors(string name) =>
        JsonDocument.Parse(File.ReadAllText(Path.Combine(AppContext.BaseDirectory, "vectors", name)));

    private static byte[] Hex(JsonElement e, string property) => Convert.FromHexString(e.GetProperty(property).GetString()!);

    [Fact]
    public void ScalarMult_WycheproofValidAndAcceptable_MatchesExpected()
    {
        using JsonDocument doc = LoadVectors("x25519_test.json");
        var failures = new List<string>();
        int count = 0;
        foreach (JsonElement group in doc.RootElement.GetProperty("testGroups").EnumerateArray())
        {
            Assert.Equal("curve25519", group.GetProperty("curve").GetString());
            foreach (JsonElement test in group.GetProperty("tests").EnumerateArray())
            {
                string result = test.GetProperty("result").GetString()!;
                Assert.True(result is "valid" or "acceptable", $"unexpected result {result}");
                byte[] output = new byte[32];
                X25519.ScalarMult(Hex(test, "private"), Hex(test, "public"), output);
                if (!output.AsSpan().SequenceEqual(Hex(test, "shared")))
                {
                    failures.Add($"tcId {test.GetProperty("tcId").GetInt32()}: got {Convert.ToHexStringLower(output)}");
                }

                count++;
            }
        }

        Assert.Equal(doc.RootElement.GetProperty("numberOfTests").GetInt32(), count);
        Assert.Empty(failures);
    }

    [Fact]
    public void TrySharedSecret_Wycheproof_RejectsExactlyTheAllZeroResults()
    {
        using JsonDocument doc = LoadVectors("x25519_test.json");
        var failures = new List<string>();
        int rejected = 0;
        foreach (JsonElement group in doc.RootElement.GetProperty("testGroups").EnumerateArray())
        {
            foreach (JsonElement test in group.GetProperty("tests").EnumerateArray())
            {
                byte[] expected = Hex(test, "shared");
                bool expectZero = expected.All(b => b == 0);
                byte[] output = new byte[32];
                output.AsSpan().Fill(0xAA);
                bool ok = X25519.TrySharedSecret(Hex(test, "private"), Hex(test, "public"), output);
                if (ok == expectZero || !output.AsSpan().SequenceEqual(expected))
                {
                    failures.Add($"tcId {test.GetProperty("tcId").GetInt32()}: returned {ok}");
                }

                rejected += ok ? 0 : 1;
            }
        }

        Assert.Empty(failures);
        Assert.Equal(31, rejected); // tests/vectors/README.md: 31 cases flagged ZeroSharedSecret
    }

    [Fact]
    public void ScalarMult_Rfc7748Section52Vectors_MatchExpected()
    {
        using JsonDocument doc = LoadVectors("rfc7748_x25519.json");
        int count = 0;
        foreach (JsonElement v in doc.RootElement.GetProperty("x25519").EnumerateArray())
        {
            byte[] output = new byte[32];
            X25519.ScalarMult(Hex(v, "scalar"), Hex(v, "u"), output);
            Assert.Equal(Convert.ToHexStringLower(Hex(v, "output")), Convert.ToHexStringLower(output));
            count++;
        }

        Assert.Equal(2, count);
    }

    [Theory]
    [InlineData(1)]
    [InlineData(1000)]
    public void ScalarMult_Rfc7748Iterated_MatchesExpected(int iterations)
    {
        using JsonDocument doc = LoadVectors("rfc7748_x25519.json");
        JsonElement v = doc.RootElement.GetProperty("x25519_iterate").EnumerateArray()
            .Single(e => e.GetProperty("iterations").GetInt32() == iterations);

        // RFC 7748 §5.2: k = u = 9; repeat (k, u) = (X25519(k, u), k).
        byte[] k = new byte[32];
        byte[] u = new byte[32];
        byte[] next = new byte[32];
        k[0] = 9;
        u[0] = 9;
        for (int i = 0; i < iterations; i++)
        {
            X25519.ScalarMult(k, u, next);
            k.CopyTo(u, 0);
            next.CopyTo(k, 0);
        }

        Assert.Equal(Convert.ToHexStringLower(Hex(v, "output")), Convert.ToHexStringLower(k));
    }

    [Fact]
    public void PublicKeyAndTrySharedSecret_Rfc7748Section61Example_MatchExpected()
    {
        using JsonDocument doc = LoadVectors("rfc7748_x25519.json");
        JsonElement v = doc.RootElement.GetProperty("x25519_dh")[0];
        byte[] alicePublic = new byte[32];
        byte[] bobPublic = new byte[32];
        X25519.PublicKey(Hex(v, "alice_private"), alicePublic);
        X25519.PublicKey(Hex(v, "bob_private"), bobPublic);
        Assert.Equal(Hex(v, "alice_public"), alicePublic);
        Assert.Equal(Hex(v, "bob_public"), bobPublic);

        byte[] shared1 = new byte[32];
        byte[] shared2 = new byte[32];
        Assert.True(X25519.TrySharedSecret(Hex(v, "alice_private"), bobPublic, shared1));
        Assert.True(X25519.TrySharedSecret(Hex(v, "bob_private"), alicePublic, shared2));
        Assert.Equal(Hex(v, "shared"), shared1);
        Assert.Equal(Hex(v, "shared"), shared2);
    }

    [Fact]
    public void ScalarMult_RandomInputs_MatchesBigIntegerModelOfRfc7748()
    {
        const int seed = 7748;
        var rng = new Random(seed);
        byte[] scalar = new byte[32];
        byte[] point = new byte[32];
        byte[] output = new byte[32];
        for (int i = 0; i < 40; i++)
        {
            rng.NextBytes(scalar);
            rng.NextBytes(point);
            if (i % 4 == 0)
            {
                // Non-canonical u: 2^255 - 19 + small, with and without the top bit.
                point.AsSpan().Fill(0xFF);
                point[0] = (byte)(0xED + rng.Next(0, 19));
                point[31] = (byte)(i % 8 == 0 ? 0x7F : 0xFF);
            }

            X25519.ScalarMult(scalar, point, output);
            byte[] expected = NaiveX25519(scalar, point);
            Assert.True(expected.AsSpan().SequenceEqual(output),
                $"seed {seed} case {i}: k={Convert.ToHexStringLower(scalar)} u={Convert.ToHexStringLower(point)}");
        }
    }

    [Fact]
    public void ScalarMult_RandomInputs_MatchesBouncyCastle()
    {
        const int seed = 25519;
        var rng = new Random(seed);
        byte[] scalar = new byte[32];
        byte[] point = new byte[32];
        byte[] output = new byte[32];
        byte[] expected = new byte[32];
        for (int i = 0; i < 100; i++)
        {
            rng.NextBytes(scalar);
            rng.NextBytes(point);
            X25519.ScalarMult(scalar, point, output);
            Org.BouncyCastle.Math.EC.Rfc7748.X25519.ScalarMult(scalar, 0, point, 0, expected, 0);
            Assert.True(expected.AsSpan().SequenceEqual(output), $"seed {seed} case {i}");
        }
    }

    [Fact]
    public void ScalarMultBase_RandomScalars_EqualsScalarMultOfNine()
    {
        var rng = new Random(9);
        byte[] scalar = new byte[32];
        byte[] nine = new byte[32];
        nine[0] = 9;
        byte[] a = new byte[32];
        byte[] b = new byte[32];
        for (int i = 0; i < 10; i++)
        {
            rng.NextBytes(scalar);
            X25519.ScalarMultBase(scalar, a);
            X25519.ScalarMult(scalar, nine, b);
            Assert.Equal(b, a);
        }
    }

    [Fact]
    public void GeneratePrivateKey_Always_ProducesClampedKeysThatAgree()
    {
        byte[] a = new byte[32], b = new byte[32], pa = new byte[32], pb = new byte[32], s1 = new byte[32], s2 = new byte[32];
        X25519.GeneratePrivateKey(a);
        X25519.GeneratePrivateKey(b);
        Assert.NotEqual(a, b);
        foreach (byte[] k in new[] { a, b })
        {
            Assert.Equal(0, k[0] & 7);
            Assert.Equal(0x40, k[31] & 0xC0);
        }

        X25519.PublicKey(a, pa);
        X25519.PublicKey(b, pb);
        Assert.True(X25519.TrySharedSecret(a, pb, s1));
        Assert.True(X25519.TrySharedSecret(b, pa, s2));
        Assert.Equal(s1, s2);
    }

    [Theory]
    [InlineData(0)] // u = 0
    [InlineData(1)] // u = 1 (order 4 point)
    public void TrySharedSecret_LowOrderPoint_ReturnsFalseAndZeroOutput(byte u0)
    {
        byte[] priv = new byte[32];
        X25519.GeneratePrivateKey(priv);
        byte[] point = new byte[32];
        point[0] = u0;
        byte[] output = new byte[32];
        output.AsSpan().Fill(0x55);
        Assert.False(X25519.TrySharedSecret(priv, point, output));
        Assert.All(output, b => Assert.Equal(0, b));
    }

    [Fact]
    public void ScalarMult_OutputOverlapsInputs_GivesSameResult()
    {
        var rng = new Random(1);
        byte[] scalar = new byte[32];
        byte[] point = new byte[32];
        rng.NextBytes(scalar);
        rng.NextBytes(point);
        byte[] expected = new byte[32];
        X25519.ScalarMult(scalar, point, expected);

        byte[] inPlace = (byte[])point.Clone();
        X25519.ScalarMult(scalar, inPlace, inPlace);
        Assert.Equal(expected, inPlace);
        inPlace = (byte[])scalar.Clone();
        X25519.ScalarMult(inPlace, point, inPlace);
        Assert.Equal(expected, inPlace);
    }

    [Theory]
    [InlineData(31, 32, 32)]
    [InlineData(32, 33, 32)]
    [InlineData(32, 32, 0)]
    public void ScalarMult_WrongLength_Throws(int scalarLength, int pointLength, int outputLength)
    {
        Assert.Throws<ArgumentException>(() => X25519.ScalarMult(new byte[scalarLength], new byte[pointLength], new byte[outputLength]));
    }

    [Fact]
    public void TrySharedSecret_WrongLength_Throws()
    {
        Assert.Throws<ArgumentException>(() => X25519.TrySharedSecret(new byte[32], new byte[32], new byte[31]));
        Assert.Throws<ArgumentException>(() => X25519.PublicKey(new byte[32], new byte[16]));
        Assert.Throws<ArgumentException>(() => X25519.GeneratePrivateKey(new byte[33]));
    }

    /// <summary>RFC 7748 §5 pseudo-code transcribed literally over BigInteger (slow, variable time, test-only model).</summary>
    private static byte[] NaiveX25519(byte[] scalar, byte[] point)
    {
        BigInteger p = (BigInteger.One << 255) - 19;
        byte[] k = (byte[])scalar.Clone();
        k[0] &= 248;
        k[31] &= 127;
        k[31] |= 64;
        byte[] u = (byte[])point.Clone();
        u[31] &= 127;
        BigInteger kk = new(k, isUnsigned: true, isBigEndian: false);
        BigInteger x1 = new BigInteger(u, isUnsigned: true, isBigEndian: false) % p;
        BigInteger x2 = 1, z2 = 0, x3 = x1, z3 = 1;
        int swap = 0;
        BigInteger Mod(BigInteger v) => ((v % p) + p) % p;
        for (int t = 254; t >= 0; t--)
        {
            int kt = (int)((kk >> t) & 1);
            swap ^= kt;
            if (swap == 1)
            {
                (x2, x3) = (x3, x2);
                (z2, z3) = (z3, z2);
            }

            swap = kt;
            BigInteger a = Mod(x2 + z2), aa = Mod(a * a), b = Mod(x2 - z2), bb = Mod(b * b), e = Mod(aa - bb);
            BigInteger c = Mod(x3 + z3), d = Mod(x3 - z3), da = Mod(d * a), cb = Mod(c * b);
            x3 = Mod((da + cb) * (da + cb));
            z3 = Mod(x1 * Mod((da - cb) * (da - cb)));
            x2 = Mod(aa * bb);
            z2 = Mod(e * (aa + (121665 * e)));
        }

        if (swap == 1)
        {
            (x2, x3) = (x3, x2);
            (z2, z3) = (z3, z2);
        }

        BigInteger result = Mod(x2 * BigInteger.ModPow(z2, p - 2, p));
        byte[] output = new byte[32];
        Assert.True(result.TryWriteBytes(output, out _, isUnsigned: true, isBigEndian: false));
        return output;
    }
}
