using System.Security.Cryptography;

namespace Sharptun.Crypto;

/// <summary>
/// The managed ChaCha20-Poly1305 AEAD construction (RFC 8439 §2.8) on already-validated arguments, with an explicit
/// ChaCha20 code path so tests and benchmarks can run every path on one machine.
/// </summary>
internal static class ChaChaPolyCore
{
    /// <summary>
    /// Seals <paramref name="plaintext"/> into <paramref name="ciphertext"/> (same length, may be the same span) and writes the tag.
    /// The nonce is given as its three little-endian words.
    /// </summary>
    public static void Seal(ReadOnlySpan<byte> key, uint n0, uint n1, uint n2, ReadOnlySpan<byte> plaintext, Span<byte> ciphertext,
        Span<byte> tag, ReadOnlySpan<byte> associatedData, ChaCha20Path path)
    {
        var mac = StartMac(key, n0, n1, n2, associatedData, path);

        // RFC 8439 §2.8: the plaintext is encrypted from block counter 1.
        ChaCha20.Xor(key, 1, n0, n1, n2, plaintext, ciphertext, path);

        mac.UpdatePadded(ciphertext);
        mac.UpdateLengths((ulong)associatedData.Length, (ulong)ciphertext.Length);
        mac.Finish(tag);
        mac.Clear();
    }

    /// <summary>
    /// Verifies the tag over <paramref name="ciphertext"/> and, only if it matches, decrypts into <paramref name="plaintext"/>
    /// (may be the same span). On mismatch, zeroes <paramref name="plaintext"/> and returns false.
    /// </summary>
    public static bool Open(ReadOnlySpan<byte> key, uint n0, uint n1, uint n2, ReadOnlySpan<byte> ciphertext, ReadOnlySpan<byte> tag,
        Span<byte> plaintext, ReadOnlySpan<byte> associatedData, ChaCha20Path path)
    {
        var mac = StartMac(key, n0, n1, n2, associatedData, path);
        mac.UpdatePadded(ciphertext);
        mac.UpdateLengths((ulong)associatedData.Length, (ulong)ciphertext.Length);
        Span<byte> expected = stackalloc byte[Poly1305.TagSize];
        mac.Finish(expected);
        mac.Clear();

        bool ok = CryptographicOperations.FixedTimeEquals(expected, tag);
        CryptographicOperations.ZeroMemory(expected);
        if (!ok)
        {
            CryptographicOperations.ZeroMemory(plaintext);
            return false;
        }

        ChaCha20.Xor(key, 1, n0, n1, n2, ciphertext, plaintext, path);
        return true;
    }

    /// <summary>RFC 8439 §2.6: the one-time Poly1305 key is the first 32 bytes of block 0; then absorbs AAD || pad16.</summary>
    private static Poly1305 StartMac(ReadOnlySpan<byte> key, uint n0, uint n1, uint n2, ReadOnlySpan<byte> associatedData, ChaCha20Path path)
    {
        Span<byte> block0 = stackalloc byte[ChaCha20.BlockSize];
        block0.Clear();
        ChaCha20.Xor(key, 0, n0, n1, n2, block0, block0, path < ChaCha20Path.Vector128 ? path : ChaCha20Path.Vector128);
        var mac = new Poly1305(block0[..Poly1305.KeySize]);
        CryptographicOperations.ZeroMemory(block0);
        mac.UpdatePadded(associatedData);
        return mac;
    }
}
