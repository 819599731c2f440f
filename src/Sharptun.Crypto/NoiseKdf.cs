using System.Security.Cryptography;

namespace Sharptun.Crypto;

/// <summary>
/// WireGuard's KDF_n (whitepaper §5.4; the Noise HKDF of Noise spec §4.3 with HMAC-BLAKE2s), all values 32 bytes:
/// τ0 = Hmac(key, input), τ1 = Hmac(τ0, 0x1), τi = Hmac(τ0, τ(i-1) ‖ i); KDF_n returns (τ1, ..., τn).
/// </summary>
/// <remarks>
/// <c>key</c> is the chaining key. Outputs may alias the inputs (e.g. the chaining key is both
/// <c>key</c> and <c>t1</c>): all outputs are computed before any is written. Thread-safe and allocation-free.
/// </remarks>
public static class NoiseKdf
{
    /// <summary>Size in bytes of every KDF output.</summary>
    public const int OutputSize = 32;

    /// <summary>KDF_1(key, input) = τ1.</summary>
    /// <exception cref="ArgumentException">An output is not 32 bytes long.</exception>
    public static void Kdf1(ReadOnlySpan<byte> key, ReadOnlySpan<byte> input, Span<byte> t1) =>
        Derive(key, input, 1, t1, default, default);

    /// <summary>KDF_2(key, input) = (τ1, τ2).</summary>
    /// <exception cref="ArgumentException">An output is not 32 bytes long.</exception>
    public static void Kdf2(ReadOnlySpan<byte> key, ReadOnlySpan<byte> input, Span<byte> t1, Span<byte> t2) =>
        Derive(key, input, 2, t1, t2, default);

    /// <summary>KDF_3(key, input) = (τ1, τ2, τ3).</summary>
    /// <exception cref="ArgumentException">An output is not 32 bytes long.</exception>
    public static void Kdf3(ReadOnlySpan<byte> key, ReadOnlySpan<byte> input, Span<byte> t1, Span<byte> t2, Span<byte> t3) =>
        Derive(key, input, 3, t1, t2, t3);

    private static void Derive(ReadOnlySpan<byte> key, ReadOnlySpan<byte> input, int n, Span<byte> t1, Span<byte> t2, Span<byte> t3)
    {
        CheckOutput(t1, nameof(t1));
        if (n >= 2)
        {
            CheckOutput(t2, nameof(t2));
        }

        if (n >= 3)
        {
            CheckOutput(t3, nameof(t3));
        }

        // τ0 (32) ‖ τ1 (32) ‖ τ2 (32) ‖ τ3 (32) ‖ scratch for τ(i-1) ‖ i (33).
        Span<byte> work = stackalloc byte[(4 * OutputSize) + OutputSize + 1];
        Span<byte> tau0 = work[..OutputSize];
        Span<byte> scratch = work.Slice(4 * OutputSize, OutputSize + 1);
        HmacBlake2s.Compute(key, input, tau0);

        // τ1 = Hmac(τ0, 0x1)
        scratch[0] = 1;
        HmacBlake2s.Compute(tau0, scratch[..1], work.Slice(OutputSize, OutputSize));
        for (int i = 2; i <= n; i++)
        {
            // τi = Hmac(τ0, τ(i-1) ‖ i)
            work.Slice((i - 1) * OutputSize, OutputSize).CopyTo(scratch);
            scratch[OutputSize] = (byte)i;
            HmacBlake2s.Compute(tau0, scratch, work.Slice(i * OutputSize, OutputSize));
        }

        work.Slice(OutputSize, OutputSize).CopyTo(t1);
        if (n >= 2)
        {
            work.Slice(2 * OutputSize, OutputSize).CopyTo(t2);
        }

        if (n >= 3)
        {
            work.Slice(3 * OutputSize, OutputSize).CopyTo(t3);
        }

        CryptographicOperations.ZeroMemory(work);
    }

    private static void CheckOutput(Span<byte> output, string name)
    {
        if (output.Length != OutputSize)
        {
            throw new ArgumentException($"Each KDF output must be {OutputSize} bytes long.", name);
        }
    }
}
