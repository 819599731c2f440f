using Xunit.Abstractions;

namespace Sharptun.Protocol.Tests;

public sealed class KeyTests(ITestOutputHelper output)
{
    private const string Base64Alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

    [Fact]
    public void TryParse_RandomKeys_MatchesSystemBase64BothWays()
    {
        var rng = new Random(1234);
        output.WriteLine("seed=1234");
        for (var i = 0; i < 2000; i++)
        {
            var bytes = new byte[32];
            rng.NextBytes(bytes);
            var text = Convert.ToBase64String(bytes);
            Assert.True(Key.TryParse(text, out var key), text);
            Assert.Equal(bytes, key.AsSpan().ToArray());
            Assert.Equal(text, key.ToString());
        }
    }

    [Fact]
    public void TryParse_NonCanonicalTrailingBits_IsRejected()
    {
        // Convert.FromBase64String accepts these; wg's key_from_base64 does not (one spelling per key).
        var canonical = Convert.ToBase64String(new byte[32]); // ends in "AAA="
        var chars = canonical.ToCharArray();
        chars[42] = 'B'; // low two bits of the 43rd character set
        var text = new string(chars);
        Assert.Equal(32, Convert.FromBase64String(text).Length);
        Assert.False(Key.TryParse(text, out _));
    }

    [Theory]
    [InlineData("")]
    [InlineData("AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA")] // 43 chars, no padding
    [InlineData("AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA==")] // 45
    [InlineData("AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA")] // 44, last not '='
    [InlineData("AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA==")] // 31 bytes
    [InlineData("AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA-A=")] // URL-safe alphabet
    [InlineData("AAAAAAAAAAAAAAAAAAAA AAAAAAAAAAAAAAAAAAAAAA=")] // inner space
    [InlineData(" AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=")] // leading space
    [InlineData("AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAé=")] // non-ASCII
    public void TryParse_Malformed_IsRejected(string text) => Assert.False(Key.TryParse(text, out _));

    [Fact]
    public void TryParse_EveryAlphabetCharacter_DecodesLikeSystem()
    {
        foreach (var c in Base64Alphabet)
        {
            var text = new string(c, 40) + "AAA=";
            Assert.True(Key.TryParse(text, out var key), text);
            Assert.Equal(Convert.FromBase64String(text), key.AsSpan().ToArray());
        }
    }

    [Fact]
    public void TryParse_EveryInvalidAsciiCharacter_IsRejected()
    {
        for (var c = (char)0; c < 128; c++)
        {
            if (Base64Alphabet.Contains(c))
            {
                continue;
            }

            Assert.False(Key.TryParse(c + new string('A', 40) + "AA=", out _), $"char {(int)c}");
        }
    }

    [Fact]
    public void TryParseHex_RoundTripsAndAcceptsUpperCase()
    {
        var bytes = new byte[32];
        new Random(5).NextBytes(bytes);
        var hex = Convert.ToHexStringLower(bytes);
        Assert.True(Key.TryParseHex(hex, out var lower));
        Assert.True(Key.TryParseHex(hex.ToUpperInvariant(), out var upper));
        Assert.Equal(bytes, lower.AsSpan().ToArray());
        Assert.Equal(lower, upper);
        Assert.Equal(hex, lower.ToHex());
    }

    [Theory]
    [InlineData("00")]
    [InlineData("000000000000000000000000000000000000000000000000000000000000000")]
    [InlineData("00000000000000000000000000000000000000000000000000000000000000000")]
    [InlineData("000000000000000000000000000000000000000000000000000000000000000g")]
    [InlineData("00000000000000000000000000000000000000000000000000000000000000 0")]
    public void TryParseHex_Malformed_IsRejected(string text) => Assert.False(Key.TryParseHex(text, out _));

    [Fact]
    public void Equals_SameBytes_TrueAndDifferentBytes_False()
    {
        var a = Key.Random();
        var b = new Key(a.AsSpan());
        var c = Key.Random();
        Assert.True(a == b);
        Assert.Equal(a.GetHashCode(), b.GetHashCode());
        Assert.True(a != c);
        Assert.NotEqual(a, default);
        Assert.Equal(default(Key), default);
    }

    [Fact]
    public void Clear_ZeroesBytesForEveryCopy()
    {
        var key = Key.Random();
        var copy = key;
        Assert.False(copy.IsZero);
        key.Dispose();
        Assert.True(copy.IsZero);
    }

    [Fact]
    public void Copy_SurvivesClearOfOriginal()
    {
        var key = Key.Random();
        var copy = key.Copy();
        Assert.Equal(key, copy);
        key.Clear();
        Assert.False(copy.IsZero);
    }

    [Fact]
    public void DerivePublicKey_Rfc7748Vector()
    {
        var priv = new Key(Convert.FromHexString("5dab087e624a8a4b79e17f8b83800ee66f3bb1292618b6fd1c2f8b27ff88e0eb"));
        Assert.Equal("de9edb7d7b7dc1b4d35b61c2ece435373f8343c85b78674dadfc7e146f882b4f", priv.DerivePublicKey().ToHex());
    }

    [Fact]
    public void Clamped_AppliesRfc7748Clamping()
    {
        var key = new Key(Enumerable.Repeat((byte)0xFF, 32).ToArray());
        var clamped = key.Clamped();
        Assert.Equal(0xF8, clamped.AsSpan()[0]);
        Assert.Equal(0x7F, clamped.AsSpan()[31]);
        Assert.Equal(0xFF, key.AsSpan()[0]); // the original is untouched
        Assert.True(new Key(new byte[32]).Clamped().IsZero);
    }
}
