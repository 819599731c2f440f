using System.Runtime.InteropServices;
using System.Security.Cryptography;

namespace Sharptun.Crypto;

/// <summary>
/// X25519 Diffie-Hellman (RFC 7748 §5) over Curve25519, constant time, computed by libsodium
/// (<c>crypto_scalarmult_curve25519</c>).
/// </summary>
/// <remarks>
/// <para>libsodium (the native library of NuGet's <c>libsodium</c> package, called through [LibraryImport]) picks its
/// fastest constant-time implementation for the CPU at <c>sodium_init</c> (on x86-64 the AVX "sandy2x" or the
/// 64-bit-limb assembly ladder): 2.3 times our former managed Montgomery ladder per CPU second, which decides how many
/// handshakes one core answers under a flood (docs/architecture.md, "X25519"; docs/benchmarks.md).</para>
/// <para>All methods are thread-safe and allocation-free. Inputs and outputs may overlap: the result goes through a
/// stack buffer that is wiped afterwards.</para>
/// </remarks>
public static class X25519
{
    /// <summary>Size in bytes of scalars (private keys), u-coordinates (public keys) and shared secrets.</summary>
    public const int KeySize = 32;

    /// <summary>
    /// Raw X25519: writes X25519(<paramref name="scalar"/>, <paramref name="point"/>) to <paramref name="output"/>.
    /// The scalar is clamped (RFC 7748 §5 decodeScalar25519), the top bit of u is masked and a non-canonical u
    /// (&gt;= p) is reduced. Low-order points yield an all-zero output, which this method does not reject
    /// (see <see cref="TrySharedSecret"/>).
    /// </summary>
    /// <exception cref="ArgumentException">A span is not <see cref="KeySize"/> bytes long.</exception>
    public static void ScalarMult(ReadOnlySpan<byte> scalar, ReadOnlySpan<byte> point, Span<byte> output)
    {
        CheckLength(scalar, nameof(scalar));
        CheckLength(point, nameof(point));
        CheckLength(output, nameof(output));
        Multiply(scalar, point, output);
    }

    /// <summary>Writes X25519(<paramref name="scalar"/>, 9), the public key of a private scalar (RFC 7748 §6.1).</summary>
    /// <exception cref="ArgumentException">A span is not <see cref="KeySize"/> bytes long.</exception>
    internal static void ScalarMultBase(ReadOnlySpan<byte> scalar, Span<byte> output)
    {
        CheckLength(scalar, nameof(scalar));
        CheckLength(output, nameof(output));
        Span<byte> basePoint = stackalloc byte[KeySize];
        basePoint.Clear();
        basePoint[0] = 9;
        Multiply(scalar, basePoint, output);
    }

    /// <summary>
    /// Fills <paramref name="privateKey"/> with 32 random bytes from <see cref="RandomNumberGenerator"/> and clamps
    /// them (as <c>wg genkey</c> does), so the stored key is already a valid X25519 scalar.
    /// </summary>
    /// <exception cref="ArgumentException"><paramref name="privateKey"/> is not <see cref="KeySize"/> bytes long.</exception>
    public static void GeneratePrivateKey(Span<byte> privateKey)
    {
        CheckLength(privateKey, nameof(privateKey));
        RandomNumberGenerator.Fill(privateKey);
        Clamp(privateKey);
    }

    /// <summary>Derives the public key of <paramref name="privateKey"/>: X25519(privateKey, 9).</summary>
    /// <exception cref="ArgumentException">A span is not <see cref="KeySize"/> bytes long.</exception>
    public static void PublicKey(ReadOnlySpan<byte> privateKey, Span<byte> publicKey) => ScalarMultBase(privateKey, publicKey);

    /// <summary>
    /// Computes the shared secret X25519(<paramref name="privateKey"/>, <paramref name="publicKey"/>).
    /// Returns <see langword="false"/> and leaves <paramref name="sharedSecret"/> all zero when the result is
    /// all zero (a low-order public key); WireGuard must then abort the handshake (whitepaper §5.4, RFC 7748 §6.1).
    /// The zero check runs in constant time. The public key is untrusted input: any 32 bytes are accepted.
    /// </summary>
    /// <exception cref="ArgumentException">A span is not <see cref="KeySize"/> bytes long.</exception>
    public static bool TrySharedSecret(ReadOnlySpan<byte> privateKey, ReadOnlySpan<byte> publicKey, Span<byte> sharedSecret)
    {
        CheckLength(privateKey, nameof(privateKey));
        CheckLength(publicKey, nameof(publicKey));
        CheckLength(sharedSecret, nameof(sharedSecret));
        Multiply(privateKey, publicKey, sharedSecret);

        uint acc = 0;
        for (int i = 0; i < KeySize; i++)
        {
            acc |= sharedSecret[i];
        }

        // (acc - 1) >> 31 is 1 only when acc == 0 (acc <= 255), computed without a branch on the secret.
        uint isZero = (acc - 1) >> 31;
        return isZero == 0;
    }

    private static void CheckLength(ReadOnlySpan<byte> span, string name)
    {
        if (span.Length != KeySize)
        {
            throw new ArgumentException($"Must be {KeySize} bytes long.", name);
        }
    }

    // RFC 7748 §5 decodeScalar25519.
    private static void Clamp(Span<byte> k)
    {
        k[0] &= 248;
        k[31] &= 127;
        k[31] |= 64;
    }

    // libsodium clamps the scalar and masks the top bit of u itself (RFC 7748 §5). Its return value (-1 for an
    // all-zero result) is ignored: TrySharedSecret makes its own constant-time check.
    private static unsafe void Multiply(ReadOnlySpan<byte> scalar, ReadOnlySpan<byte> point, Span<byte> output)
    {
        Sodium.EnsureInitialized();
        byte* result = stackalloc byte[KeySize];
        fixed (byte* n = scalar, p = point)
        {
            _ = Sodium.crypto_scalarmult_curve25519(result, n, p);
        }

        var resultSpan = new Span<byte>(result, KeySize);
        resultSpan.CopyTo(output);
        CryptographicOperations.ZeroMemory(resultSpan);
    }
}
