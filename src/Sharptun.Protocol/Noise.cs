using System.Security.Cryptography;
using System.Text;
using Sharptun.Crypto;

namespace Sharptun.Protocol;

/// <summary>Noise_IKpsk2 building blocks with the whitepaper's names (§5.4): HASH, MAC, MixHash, MixKey.</summary>
internal static class Noise
{
    public const int HashSize = 32;
    public const int MacSize = 16;

    /// <summary>Ci = HASH(CONSTRUCTION) (whitepaper §5.4.2).</summary>
    public static readonly byte[] InitialChainKey = ComputeInitialChainKey();

    /// <summary>Hi = HASH(Ci || IDENTIFIER) (whitepaper §5.4.2).</summary>
    public static readonly byte[] InitialHash = ComputeInitialHash();

    private static byte[] ComputeInitialChainKey()
    {
        var ck = new byte[HashSize];
        Blake2s.Hash(Encoding.ASCII.GetBytes(ProtocolConstants.Construction), ck);
        return ck;
    }

    private static byte[] ComputeInitialHash()
    {
        var h = new byte[HashSize];
        var b = new Blake2s(HashSize);
        b.Update(ComputeInitialChainKey());
        b.Update(Encoding.ASCII.GetBytes(ProtocolConstants.Identifier));
        b.Final(h);
        return h;
    }

    /// <summary>h = HASH(h || data).</summary>
    public static void MixHash(Span<byte> hash, ReadOnlySpan<byte> data)
    {
        var b = new Blake2s(HashSize);
        b.Update(hash);
        b.Update(data);
        b.Final(hash);
    }

    /// <summary>ck = KDF1(ck, data).</summary>
    public static void MixKey(Span<byte> chainKey, ReadOnlySpan<byte> data)
    {
        Span<byte> t1 = stackalloc byte[HashSize];
        NoiseKdf.Kdf1(chainKey, data, t1);
        t1.CopyTo(chainKey);
        CryptographicOperations.ZeroMemory(t1);
    }

    /// <summary>(ck, key) = KDF2(ck, data).</summary>
    public static void MixKeyAndGetKey(Span<byte> chainKey, ReadOnlySpan<byte> data, Span<byte> key)
    {
        Span<byte> t1 = stackalloc byte[HashSize];
        NoiseKdf.Kdf2(chainKey, data, t1, key);
        t1.CopyTo(chainKey);
        CryptographicOperations.ZeroMemory(t1);
    }

    /// <summary>(ck, τ, key) = KDF3(ck, psk).</summary>
    public static void MixPsk(Span<byte> chainKey, ReadOnlySpan<byte> psk, Span<byte> tau, Span<byte> key)
    {
        Span<byte> t1 = stackalloc byte[HashSize];
        NoiseKdf.Kdf3(chainKey, psk, t1, tau, key);
        t1.CopyTo(chainKey);
        CryptographicOperations.ZeroMemory(t1);
    }

    /// <summary>HASH(label || publicKey): the mac1 and cookie keys (whitepaper §5.4.4, §5.4.7).</summary>
    public static void LabelKey(string label, ReadOnlySpan<byte> publicKey, Span<byte> key)
    {
        Span<byte> l = stackalloc byte[8];
        Encoding.ASCII.GetBytes(label, l);
        var b = new Blake2s(HashSize);
        b.Update(l);
        b.Update(publicKey);
        b.Final(key);
    }

    /// <summary>MAC(key, input) = keyed BLAKE2s with a 16-byte output.</summary>
    public static void Mac(ReadOnlySpan<byte> key, ReadOnlySpan<byte> input, Span<byte> mac16)
    {
        var b = new Blake2s(MacSize, key);
        b.Update(input);
        b.Final(mac16[..MacSize]);
    }

    /// <summary>AEAD(key, 0, plaintext, aad) into <paramref name="output"/> (ciphertext then tag).</summary>
    public static void Seal(ReadOnlySpan<byte> key, ReadOnlySpan<byte> plaintext, ReadOnlySpan<byte> aad, Span<byte> output)
    {
        ChaChaPoly.Encrypt(key, 0UL, plaintext, output[..plaintext.Length], output.Slice(plaintext.Length, ChaChaPoly.TagSize), aad);
    }

    /// <summary>Opens AEAD(key, 0, ·, aad); false when the tag does not verify.</summary>
    public static bool Open(ReadOnlySpan<byte> key, ReadOnlySpan<byte> sealedData, ReadOnlySpan<byte> aad, Span<byte> plaintext)
    {
        var n = sealedData.Length - ChaChaPoly.TagSize;
        return ChaChaPoly.Decrypt(key, 0UL, sealedData[..n], sealedData[n..], plaintext[..n], aad);
    }
}
