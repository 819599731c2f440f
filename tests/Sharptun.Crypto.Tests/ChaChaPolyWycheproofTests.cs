using System.Buffers.Binary;
using Sharptun.Crypto;

namespace Sharptun.Crypto.Tests;

public sealed class ChaChaPolyWycheproofTests
{
    private static readonly List<ChaChaAeadCase> ChaCha = ChaChaTestVectors.Wycheproof("chacha20_poly1305_test.json");
    private static readonly List<ChaChaAeadCase> XChaCha = ChaChaTestVectors.Wycheproof("xchacha20_poly1305_test.json");

    [Fact]
    public void Vectors_Loaded_HaveExpectedCounts()
    {
        Assert.Equal(325, ChaCha.Count);
        Assert.Equal(315, XChaCha.Count);
    }

    [Fact]
    public void ChaChaPoly_WycheproofValid_EncryptsToCtTagAndDecrypts()
    {
        var failures = new List<int>();
        int checkedCount = 0;
        foreach (ChaChaAeadCase c in ChaCha)
        {
            if (c.Result != "valid")
            {
                continue;
            }

            checkedCount++;
            var ct = new byte[c.Msg.Length];
            var tag = new byte[16];
            ChaChaPoly.Encrypt(c.Key, c.Iv, c.Msg, ct, tag, c.Aad);
            var pt = new byte[c.Ct.Length];
            bool ok = ChaChaPoly.Decrypt(c.Key, c.Iv, c.Ct, c.Tag, pt, c.Aad);
            if (!ct.AsSpan().SequenceEqual(c.Ct) || !tag.AsSpan().SequenceEqual(c.Tag) || !ok || !pt.AsSpan().SequenceEqual(c.Msg))
            {
                failures.Add(c.TcId);
            }
        }

        Assert.Equal(256, checkedCount);
        Assert.Empty(failures);
    }

    [Fact]
    public void ChaChaPoly_WycheproofInvalid_FailsToDecryptOrRejectsNonce()
    {
        var failures = new List<int>();
        foreach (ChaChaAeadCase c in ChaCha)
        {
            if (c.Result != "invalid")
            {
                continue;
            }

            var pt = new byte[c.Ct.Length];
            if (c.Iv.Length != ChaChaPoly.NonceSize)
            {
                if (!Throws(() => ChaChaPoly.Decrypt(c.Key, c.Iv, c.Ct, c.Tag, pt, c.Aad)) ||
                    !Throws(() => ChaChaPoly.Encrypt(c.Key, c.Iv, c.Msg, new byte[c.Msg.Length], new byte[16], c.Aad)))
                {
                    failures.Add(c.TcId);
                }

                continue;
            }

            Array.Fill(pt, (byte)0xAA);
            if (ChaChaPoly.Decrypt(c.Key, c.Iv, c.Ct, c.Tag, pt, c.Aad) || pt.Any(b => b != 0))
            {
                failures.Add(c.TcId);
            }
        }

        Assert.Empty(failures);
    }

    [Fact]
    public void ChaChaPoly_WycheproofInvalidNonceSizeGroups_AreRejected()
    {
        List<ChaChaAeadCase> groups = ChaCha.Where(c => c.IvSizeBits != 96).ToList();
        Assert.Equal(9, groups.Count);
        foreach (ChaChaAeadCase c in groups)
        {
            Assert.Throws<ArgumentException>(() => ChaChaPoly.Encrypt(c.Key, c.Iv, c.Msg, new byte[c.Msg.Length], new byte[16], c.Aad));
            Assert.Throws<ArgumentException>(() => ChaChaPoly.Decrypt(c.Key, c.Iv, c.Ct, c.Tag, new byte[c.Ct.Length], c.Aad));
        }
    }

    [Theory]
    [MemberData(nameof(ChaChaTestVectors.Paths), MemberType = typeof(ChaChaTestVectors))]
    public void ChaChaPolyCore_WycheproofAllCases_MatchOnEveryPath(int pathValue)
    {
        var path = (ChaCha20Path)pathValue;
        var failures = new List<int>();
        foreach (ChaChaAeadCase c in ChaCha)
        {
            if (c.Iv.Length != 12)
            {
                continue;
            }

            ChaCha20.NonceWords(c.Iv, out uint n0, out uint n1, out uint n2);
            var pt = new byte[c.Ct.Length];
            bool ok = ChaChaPolyCore.Open(c.Key, n0, n1, n2, c.Ct, c.Tag, pt, c.Aad, path);
            bool pass = c.Result == "valid" ? ok && pt.AsSpan().SequenceEqual(c.Msg) : !ok;
            if (c.Result == "valid")
            {
                var ct = new byte[c.Msg.Length];
                var tag = new byte[16];
                ChaChaPolyCore.Seal(c.Key, n0, n1, n2, c.Msg, ct, tag, c.Aad, path);
                pass &= ct.AsSpan().SequenceEqual(c.Ct) && tag.AsSpan().SequenceEqual(c.Tag);
            }

            if (!pass)
            {
                failures.Add(c.TcId);
            }
        }

        Assert.Empty(failures);
    }

    [Fact]
    public void XChaChaPoly_WycheproofValid_EncryptsToCtTagAndDecrypts()
    {
        var failures = new List<int>();
        int checkedCount = 0;
        foreach (ChaChaAeadCase c in XChaCha)
        {
            if (c.Result != "valid")
            {
                continue;
            }

            checkedCount++;
            var ct = new byte[c.Msg.Length];
            var tag = new byte[16];
            XChaChaPoly.Encrypt(c.Key, c.Iv, c.Msg, ct, tag, c.Aad);
            var pt = new byte[c.Ct.Length];
            bool ok = XChaChaPoly.Decrypt(c.Key, c.Iv, c.Ct, c.Tag, pt, c.Aad);
            if (!ct.AsSpan().SequenceEqual(c.Ct) || !tag.AsSpan().SequenceEqual(c.Tag) || !ok || !pt.AsSpan().SequenceEqual(c.Msg))
            {
                failures.Add(c.TcId);
            }
        }

        Assert.Equal(246, checkedCount);
        Assert.Empty(failures);
    }

    [Fact]
    public void XChaChaPoly_WycheproofInvalid_FailsToDecryptOrRejectsNonce()
    {
        var failures = new List<int>();
        foreach (ChaChaAeadCase c in XChaCha)
        {
            if (c.Result != "invalid")
            {
                continue;
            }

            var pt = new byte[c.Ct.Length];
            if (c.Iv.Length != XChaChaPoly.NonceSize)
            {
                if (!Throws(() => XChaChaPoly.Decrypt(c.Key, c.Iv, c.Ct, c.Tag, pt, c.Aad)) ||
                    !Throws(() => XChaChaPoly.Encrypt(c.Key, c.Iv, c.Msg, new byte[c.Msg.Length], new byte[16], c.Aad)))
                {
                    failures.Add(c.TcId);
                }

                continue;
            }

            Array.Fill(pt, (byte)0xAA);
            if (XChaChaPoly.Decrypt(c.Key, c.Iv, c.Ct, c.Tag, pt, c.Aad) || pt.Any(b => b != 0))
            {
                failures.Add(c.TcId);
            }
        }

        Assert.Empty(failures);
    }

    [Fact]
    public void XChaChaPoly_WycheproofInvalidNonceSizeGroups_AreRejected()
    {
        List<ChaChaAeadCase> groups = XChaCha.Where(c => c.IvSizeBits != 192).ToList();
        Assert.Equal(9, groups.Count);
        foreach (ChaChaAeadCase c in groups)
        {
            Assert.Throws<ArgumentException>(() => XChaChaPoly.Encrypt(c.Key, c.Iv, c.Msg, new byte[c.Msg.Length], new byte[16], c.Aad));
            Assert.Throws<ArgumentException>(() => XChaChaPoly.Decrypt(c.Key, c.Iv, c.Ct, c.Tag, new byte[c.Ct.Length], c.Aad));
        }
    }

    [Fact]
    public void ChaChaPoly_CounterOverload_MatchesExplicitWireGuardNonce()
    {
        // whitepaper §5.4.6: nonce = 32 zero bits || 64-bit little-endian counter
        ChaChaAeadCase c = ChaCha.First(x => x.Result == "valid" && x.Msg.Length > 100);
        const ulong counter = 0x0102030405060708UL;
        var nonce = new byte[12];
        BinaryPrimitives.WriteUInt64LittleEndian(nonce.AsSpan(4), counter);
        var ct1 = new byte[c.Msg.Length];
        var ct2 = new byte[c.Msg.Length];
        var tag1 = new byte[16];
        var tag2 = new byte[16];
        ChaChaPoly.Encrypt(c.Key, nonce, c.Msg, ct1, tag1, c.Aad);
        ChaChaPoly.Encrypt(c.Key, counter, c.Msg, ct2, tag2, c.Aad);
        Assert.Equal(ct1, ct2);
        Assert.Equal(tag1, tag2);
        var pt = new byte[ct2.Length];
        Assert.True(ChaChaPoly.Decrypt(c.Key, counter, ct2, tag2, pt, c.Aad));
        Assert.Equal(c.Msg, pt);
        Assert.False(ChaChaPoly.Decrypt(c.Key, counter + 1, ct2, tag2, pt, c.Aad));
    }

    private static bool Throws(Action action)
    {
        try
        {
            action();
            return false;
        }
        catch (ArgumentException)
        {
            return true;
        }
    }
}
