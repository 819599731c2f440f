using System.Buffers.Binary;
using System.Security.Cryptography;

namespace Sharptun.Crypto;

/// <summary>
/// XChaCha20-Poly1305 AEAD (draft-irtf-cfrg-xchacha-03 §2.3): a 24-byte nonce; the first 16 nonce bytes derive a subkey with
/// HChaCha20, the last 8 form the ChaCha20-Poly1305 nonce (4 zero bytes || nonce[16..24]). WireGuard uses it for cookie replies
/// (whitepaper §5.4.7).
/// </summary>
/// <remarks>Same contract as <see cref="ChaChaPoly"/>: static, thread-safe, allocation-free, in place allowed
/// (identical spans), partial overlap rejected. The subkey lives on the stack and is wiped before return.</remarks>
public static class XChaChaPoly
{
    /// <summary>Key length in bytes.</summary>
    public const int KeySize = 32;

    /// <summary>Nonce length in bytes.</summary>
    public const int NonceSize = 24;

    /// <summary>Tag length in bytes.</summary>
    public const int TagSize = 16;

    /// <summary>
    /// Encrypts <paramref name="plaintext"/> into <paramref name="ciphertext"/> (same length; may be the same span) and writes the
    /// 16-byte tag. Throws <see cref="ArgumentException"/> on a wrong key, nonce, tag or output length, or partially overlapping buffers.
    /// </summary>
    public static void Encrypt(ReadOnlySpan<byte> key, ReadOnlySpan<byte> nonce, ReadOnlySpan<byte> plaintext, Span<byte> ciphertext,
        Span<byte> tag, ReadOnlySpan<byte> associatedData = default)
    {
        ChaChaPoly.CheckNonce(nonce, NonceSize);
        ChaChaPoly.CheckArguments(key, plaintext, ciphertext, tag.Length);
        Span<byte> subkey = stackalloc byte[KeySize];
        ChaCha20.HChaCha20(key, nonce[..16], subkey);
        ChaChaPolyCore.Seal(subkey, 0, BinaryPrimitives.ReadUInt32LittleEndian(nonce[16..]), BinaryPrimitives.ReadUInt32LittleEndian(nonce[20..]),
            plaintext, ciphertext, tag, associatedData, ChaCha20.BestPath);
        CryptographicOperations.ZeroMemory(subkey);
    }

    /// <summary>
    /// Verifies <paramref name="tag"/> and decrypts <paramref name="ciphertext"/> into <paramref name="plaintext"/> (same length; may be
    /// the same span). Returns false, and zeroes <paramref name="plaintext"/>, when the tag does not verify.
    /// Throws <see cref="ArgumentException"/> on a wrong key, nonce, tag or output length, or partially overlapping buffers.
    /// </summary>
    public static bool Decrypt(ReadOnlySpan<byte> key, ReadOnlySpan<byte> nonce, ReadOnlySpan<byte> ciphertext, ReadOnlySpan<byte> tag,
        Span<byte> plaintext, ReadOnlySpan<byte> associatedData = default)
    {
        ChaChaPoly.CheckNonce(nonce, NonceSize);
        ChaChaPoly.CheckArguments(key, ciphertext, plaintext, tag.Length);
        Span<byte> subkey = stackalloc byte[KeySize];
        ChaCha20.HChaCha20(key, nonce[..16], subkey);
        bool ok = ChaChaPolyCore.Open(subkey, 0, BinaryPrimitives.ReadUInt32LittleEndian(nonce[16..]), BinaryPrimitives.ReadUInt32LittleEndian(nonce[20..]),
            ciphertext, tag, plaintext, associatedData, ChaCha20.BestPath);
        CryptographicOperations.ZeroMemory(subkey);
        return ok;
    }
}
