using System.Text.Json;
using Sharptun.Crypto;
using static Sharptun.Crypto.Tests.ChaChaTestVectors;

namespace Sharptun.Crypto.Tests;

/// <summary>Every example of rfc8439_chacha20_poly1305.json, run against the internal primitives on every path.</summary>
public sealed class ChaCha20Rfc8439Tests
{
    private static JsonElement Section(string name)
    {
        using JsonDocument doc = Open("rfc8439_chacha20_poly1305.json");
        return doc.RootElement.GetProperty(name).Clone();
    }

    [Theory]
    [MemberData(nameof(ChaChaTestVectors.Paths), MemberType = typeof(ChaChaTestVectors))]
    public void ChaCha20Block_Rfc8439Examples_MatchKeystream(int path)
    {
        int count = 0;
        foreach (JsonElement v in Section("chacha20_block").EnumerateArray())
        {
            byte[] key = Hex(v, "key"), nonce = Hex(v, "nonce"), expected = Hex(v, "keystream");
            uint counter = v.GetProperty("counter").GetUInt32();

            var block = new byte[64];
            ChaCha20.Block(key, nonce, counter, block);
            Assert.Equal(expected, block);

            var viaXor = new byte[64];
            ChaCha20.Xor(key, nonce, counter, viaXor, viaXor, (ChaCha20Path)path);
            Assert.Equal(expected, viaXor);
            count++;
        }

        Assert.True(count >= 1);
    }

    [Theory]
    [MemberData(nameof(ChaChaTestVectors.Paths), MemberType = typeof(ChaChaTestVectors))]
    public void ChaCha20Xor_Rfc8439Examples_MatchCiphertext(int path)
    {
        int count = 0;
        foreach (JsonElement v in Section("chacha20_encrypt").EnumerateArray())
        {
            byte[] key = Hex(v, "key"), nonce = Hex(v, "nonce"), pt = Hex(v, "plaintext"), expected = Hex(v, "ciphertext");
            uint counter = v.GetProperty("counter").GetUInt32();
            var ct = new byte[pt.Length];
            ChaCha20.Xor(key, nonce, counter, pt, ct, (ChaCha20Path)path);
            Assert.Equal(expected, ct);
            count++;
        }

        Assert.True(count >= 1);
    }

    [Fact]
    public void Poly1305_Rfc8439Examples_MatchTag()
    {
        int count = 0;
        foreach (JsonElement v in Section("poly1305").EnumerateArray())
        {
            byte[] key = Hex(v, "key"), msg = Hex(v, "msg"), expected = Hex(v, "tag");
            var tag = new byte[16];
            Poly1305.Compute(key, msg, tag);
            Assert.Equal(expected, tag);
            count++;
        }

        Assert.True(count >= 8);
    }

    [Fact]
    public void Poly1305_Rfc8439ExamplesFedInPieces_MatchTag()
    {
        foreach (JsonElement v in Section("poly1305").EnumerateArray())
        {
            byte[] key = Hex(v, "key"), msg = Hex(v, "msg"), expected = Hex(v, "tag");
            for (int piece = 1; piece <= 17; piece += 3)
            {
                var mac = new Poly1305(key);
                for (int i = 0; i < msg.Length; i += piece)
                {
                    mac.Update(msg.AsSpan(i, Math.Min(piece, msg.Length - i)));
                }

                var tag = new byte[16];
                mac.Finish(tag);
                Assert.Equal(expected, tag);
            }
        }
    }

    [Fact]
    public void Poly1305KeyGen_Rfc8439Examples_MatchOneTimeKey()
    {
        int count = 0;
        foreach (JsonElement v in Section("poly1305_keygen").EnumerateArray())
        {
            byte[] key = Hex(v, "key"), nonce = Hex(v, "nonce"), expected = Hex(v, "otk");
            var block = new byte[64];
            ChaCha20.Block(key, nonce, 0, block);
            Assert.Equal(expected, block[..32]);
            count++;
        }

        Assert.True(count >= 1);
    }

    [Fact]
    public void ChaChaPoly_Rfc8439AeadExamples_EncryptAndDecrypt()
    {
        int count = 0;
        foreach (JsonElement v in Section("aead_chacha20_poly1305").EnumerateArray())
        {
            byte[] key = Hex(v, "key"), nonce = Hex(v, "nonce"), aad = Hex(v, "aad");
            byte[] pt = Hex(v, "plaintext"), expectedCt = Hex(v, "ciphertext"), expectedTag = Hex(v, "tag");
            var ct = new byte[pt.Length];
            var tag = new byte[16];
            ChaChaPoly.Encrypt(key, nonce, pt, ct, tag, aad);
            Assert.Equal(expectedCt, ct);
            Assert.Equal(expectedTag, tag);

            var back = new byte[ct.Length];
            Assert.True(ChaChaPoly.Decrypt(key, nonce, expectedCt, expectedTag, back, aad));
            Assert.Equal(pt, back);
            count++;
        }

        Assert.True(count >= 2);
    }

    [Fact]
    public void HChaCha20_DraftXChaChaExample_MatchesSubkey()
    {
        // draft-irtf-cfrg-xchacha-03 §2.2.1
        byte[] key = Convert.FromHexString("000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f");
        byte[] nonce = Convert.FromHexString("000000090000004a0000000031415927");
        var subkey = new byte[32];
        ChaCha20.HChaCha20(key, nonce, subkey);
        Assert.Equal(Convert.FromHexString("82413b4227b27bfed30e42508a877d73a0f9e4d58a74a853c12ec41326d3ecdc"), subkey);
    }
}
