namespace Sharptun.Crypto;

/// <summary>
/// ChaCha20-Poly1305 AEAD (RFC 8439 §2.8), the transport cipher of WireGuard (whitepaper §5.4.6).
/// </summary>
/// <remarks>
/// <para>All methods are static, thread-safe, work on caller-provided spans and allocate nothing.
/// Encryption may run in place: the output span may be the very same span as the input (same start and length);
/// partially overlapping spans are rejected with <see cref="ArgumentException"/>.</para>
/// <para>Messages shorter than 8 KiB (every WireGuard packet below jumbo-frame MTUs) run managed, constant-time code: SIMD ChaCha20
/// (AVX-512 / AVX2 / Vector128) and Poly1305 (AVX2, eight blocks per step, or radix-2^64 scalar). Longer messages go to the OpenSSL-backed
/// <see cref="System.Security.Cryptography.ChaCha20Poly1305"/> through a small per-thread instance cache keyed by the key bytes.
/// docs/benchmarks.md "ChaCha20-Poly1305" has the measurements behind the split. A key that must be wiped on demand, with
/// no copy left in a per-thread cache, is held in a <see cref="ChaChaPolyKey"/> instead.</para>
/// </remarks>
public static class ChaChaPoly
{
    /// <summary>Key length in bytes.</summary>
    public const int KeySize = 32;

    /// <summary>Nonce length in bytes.</summary>
    public const int NonceSize = 12;

    /// <summary>Tag length in bytes.</summary>
    public const int TagSize = 16;

    /// <summary>
    /// Encrypts <paramref name="plaintext"/> into <paramref name="ciphertext"/> (same length; may be the same span) and writes the
    /// 16-byte tag. Throws <see cref="ArgumentException"/> on a wrong key, nonce, tag or output length, or partially overlapping buffers.
    /// </summary>
    public static void Encrypt(ReadOnlySpan<byte> key, ReadOnlySpan<byte> nonce, ReadOnlySpan<byte> plaintext, Span<byte> ciphertext,
        Span<byte> tag, ReadOnlySpan<byte> associatedData = default)
    {
        CheckNonce(nonce, NonceSize);
        CheckArguments(key, plaintext, ciphertext, tag.Length);
        if (plaintext.Length >= OpenSslThreshold && ChaChaPolyOpenSsl.IsSupported)
        {
            ChaChaPolyOpenSsl.Encrypt(key, nonce, plaintext, ciphertext, tag, associatedData);
            return;
        }

        ChaCha20.NonceWords(nonce, out uint n0, out uint n1, out uint n2);
        ChaChaPolyCore.Seal(key, n0, n1, n2, plaintext, ciphertext, tag, associatedData, ChaCha20.BestPath);
    }

    /// <summary>
    /// Verifies <paramref name="tag"/> and decrypts <paramref name="ciphertext"/> into <paramref name="plaintext"/> (same length; may be
    /// the same span). Returns false, and zeroes <paramref name="plaintext"/>, when the tag does not verify; nothing is decrypted then.
    /// Throws <see cref="ArgumentException"/> on a wrong key, nonce, tag or output length, or partially overlapping buffers.
    /// </summary>
    public static bool Decrypt(ReadOnlySpan<byte> key, ReadOnlySpan<byte> nonce, ReadOnlySpan<byte> ciphertext, ReadOnlySpan<byte> tag,
        Span<byte> plaintext, ReadOnlySpan<byte> associatedData = default)
    {
        CheckNonce(nonce, NonceSize);
        CheckArguments(key, ciphertext, plaintext, tag.Length);
        if (ciphertext.Length >= OpenSslThreshold && ChaChaPolyOpenSsl.IsSupported)
        {
            return ChaChaPolyOpenSsl.Decrypt(key, nonce, ciphertext, tag, plaintext, associatedData);
        }

        ChaCha20.NonceWords(nonce, out uint n0, out uint n1, out uint n2);
        return ChaChaPolyCore.Open(key, n0, n1, n2, ciphertext, tag, plaintext, associatedData, ChaCha20.BestPath);
    }

    /// <summary>
    /// <see cref="Encrypt(ReadOnlySpan{byte}, ReadOnlySpan{byte}, ReadOnlySpan{byte}, Span{byte}, Span{byte}, ReadOnlySpan{byte})"/>
    /// with the WireGuard nonce: 32 zero bits followed by the 64-bit little-endian <paramref name="counter"/> (whitepaper §5.4.6).
    /// </summary>
    public static void Encrypt(ReadOnlySpan<byte> key, ulong counter, ReadOnlySpan<byte> plaintext, Span<byte> ciphertext,
        Span<byte> tag, ReadOnlySpan<byte> associatedData = default)
    {
        CheckArguments(key, plaintext, ciphertext, tag.Length);
        if (plaintext.Length >= OpenSslThreshold && ChaChaPolyOpenSsl.IsSupported)
        {
            Span<byte> nonce = stackalloc byte[NonceSize];
            WireGuardNonce(counter, nonce);
            ChaChaPolyOpenSsl.Encrypt(key, nonce, plaintext, ciphertext, tag, associatedData);
            return;
        }

        ChaChaPolyCore.Seal(key, 0, (uint)counter, (uint)(counter >> 32), plaintext, ciphertext, tag, associatedData, ChaCha20.BestPath);
    }

    /// <summary>
    /// <see cref="Decrypt(ReadOnlySpan{byte}, ReadOnlySpan{byte}, ReadOnlySpan{byte}, ReadOnlySpan{byte}, Span{byte}, ReadOnlySpan{byte})"/>
    /// with the WireGuard nonce: 32 zero bits followed by the 64-bit little-endian <paramref name="counter"/> (whitepaper §5.4.6).
    /// </summary>
    public static bool Decrypt(ReadOnlySpan<byte> key, ulong counter, ReadOnlySpan<byte> ciphertext, ReadOnlySpan<byte> tag,
        Span<byte> plaintext, ReadOnlySpan<byte> associatedData = default)
    {
        CheckArguments(key, ciphertext, plaintext, tag.Length);
        if (ciphertext.Length >= OpenSslThreshold && ChaChaPolyOpenSsl.IsSupported)
        {
            Span<byte> nonce = stackalloc byte[NonceSize];
            WireGuardNonce(counter, nonce);
            return ChaChaPolyOpenSsl.Decrypt(key, nonce, ciphertext, tag, plaintext, associatedData);
        }

        return ChaChaPolyCore.Open(key, 0, (uint)counter, (uint)(counter >> 32), ciphertext, tag, plaintext, associatedData, ChaCha20.BestPath);
    }

    /// <summary>
    /// Messages at least this long go to OpenSSL (<see cref="ChaChaPolyOpenSsl"/>); shorter ones to the managed SIMD code.
    /// Chosen from the BenchmarkDotNet figures in docs/benchmarks.md ("ChaCha20-Poly1305").
    /// </summary>
    internal const int OpenSslThreshold = 8192;

    /// <summary>whitepaper §5.4.6: 32 zero bits followed by the 64-bit little-endian counter.</summary>
    internal static void WireGuardNonce(ulong counter, Span<byte> nonce)
    {
        System.Buffers.Binary.BinaryPrimitives.WriteUInt32LittleEndian(nonce, 0);
        System.Buffers.Binary.BinaryPrimitives.WriteUInt64LittleEndian(nonce[4..], counter);
    }

    internal static void CheckNonce(ReadOnlySpan<byte> nonce, int size)
    {
        if (nonce.Length != size)
        {
            throw new ArgumentException($"Nonce must be {size} bytes.", nameof(nonce));
        }
    }

    /// <summary>Validates key, tag and buffer lengths and rejects partially overlapping input and output.</summary>
    internal static void CheckArguments(ReadOnlySpan<byte> key, ReadOnlySpan<byte> input, ReadOnlySpan<byte> output, int tagLength)
    {
        if (key.Length != KeySize)
        {
            throw new ArgumentException("Key must be 32 bytes.", nameof(key));
        }

        if (tagLength != TagSize)
        {
            throw new ArgumentException("Tag must be 16 bytes.", "tag");
        }

        if (output.Length != input.Length)
        {
            throw new ArgumentException("Output must be exactly as long as input.", nameof(output));
        }

        if (input.Overlaps(output, out int elementOffset) && elementOffset != 0)
        {
            throw new ArgumentException("Input and output must be the same span or must not overlap.", nameof(output));
        }
    }
}
