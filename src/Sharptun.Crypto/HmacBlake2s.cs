using System.Security.Cryptography;

namespace Sharptun.Crypto;

/// <summary>
/// HMAC (RFC 2104) over BLAKE2s-256 with a 64-byte block: WireGuard's <c>Hmac(key, input)</c> (whitepaper §5.4).
/// Thread-safe and allocation-free.
/// </summary>
internal static class HmacBlake2s
{
    /// <summary>Size of the HMAC output in bytes.</summary>
    public const int OutputSize = 32;

    private const int BlockSize = Blake2s.BlockSize;

    /// <summary>
    /// Writes HMAC-BLAKE2s-256(<paramref name="key"/>, <paramref name="input"/>) to <paramref name="output32"/>.
    /// A key longer than 64 bytes is first hashed with BLAKE2s-256 (RFC 2104 §2). The output may overlap the inputs.
    /// </summary>
    /// <exception cref="ArgumentException"><paramref name="output32"/> is not 32 bytes long.</exception>
    public static void Compute(ReadOnlySpan<byte> key, ReadOnlySpan<byte> input, Span<byte> output32)
    {
        if (output32.Length != OutputSize)
        {
            throw new ArgumentException($"The HMAC output must be {OutputSize} bytes long.", nameof(output32));
        }

        Span<byte> pad = stackalloc byte[BlockSize];
        Span<byte> inner = stackalloc byte[OutputSize];
        pad.Clear();
        if (key.Length > BlockSize)
        {
            Blake2s.Hash(key, pad[..OutputSize]);
        }
        else
        {
            key.CopyTo(pad);
        }

        // RFC 2104 §2: H(K ^ opad, H(K ^ ipad, text)).
        for (int i = 0; i < BlockSize; i++)
        {
            pad[i] ^= 0x36;
        }

        var state = new Blake2s(OutputSize);
        state.Update(pad);
        state.Update(input);
        state.Final(inner);

        for (int i = 0; i < BlockSize; i++)
        {
            pad[i] ^= 0x36 ^ 0x5c;
        }

        state = new Blake2s(OutputSize);
        state.Update(pad);
        state.Update(inner);
        state.Final(output32);

        CryptographicOperations.ZeroMemory(pad);
        CryptographicOperations.ZeroMemory(inner);
    }
}
