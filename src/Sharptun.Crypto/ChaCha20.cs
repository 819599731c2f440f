using System.Buffers.Binary;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;
using System.Security.Cryptography;

namespace Sharptun.Crypto;

/// <summary>Which ChaCha20 code path runs. Ordered from narrowest to widest.</summary>
internal enum ChaCha20Path
{
    /// <summary>Plain 32-bit arithmetic; works everywhere.</summary>
    Scalar = 0,
    /// <summary>One block per Vector128 (cross-platform Vector128 API: SSE / AdvSimd).</summary>
    Vector128 = 1,
    /// <summary>Two blocks per Vector256 (AVX2), four blocks per iteration.</summary>
    Vector256 = 2,
    /// <summary>Four blocks per Vector512 (AVX-512F), eight blocks per iteration.</summary>
    Vector512 = 3,
}

/// <summary>
/// The ChaCha20 stream cipher of RFC 8439 §2.3–§2.4 (32-bit block counter, 96-bit nonce) and HChaCha20
/// (draft-irtf-cfrg-xchacha-03 §2.2). Everything works on caller-provided spans; nothing allocates.
/// No branch or memory index depends on key, nonce or data, so it is constant time.
/// </summary>
/// <remarks>
/// The SIMD paths keep each 4-word row of the 4x4 state in one 128-bit lane ("horizontal" layout) and
/// run several blocks side by side in the wider vectors; the diagonal round is a lane-local word shuffle.
/// </remarks>
internal static partial class ChaCha20
{
    public const int KeySize = 32;
    public const int NonceSize = 12;
    public const int BlockSize = 64;

    // RFC 8439 §2.3: "expand 32-byte k".
    private const uint C0 = 0x61707865, C1 = 0x3320646e, C2 = 0x79622d32, C3 = 0x6b206574;

    /// <summary>The widest path this machine runs fast.</summary>
    public static readonly ChaCha20Path BestPath = DetectBestPath();

    private static ChaCha20Path DetectBestPath()
    {
        if (!BitConverter.IsLittleEndian)
        {
            return ChaCha20Path.Scalar;
        }

        if (Avx512F.IsSupported && Vector512.IsHardwareAccelerated)
        {
            return ChaCha20Path.Vector512;
        }

        if (Avx2.IsSupported && Vector256.IsHardwareAccelerated)
        {
            return ChaCha20Path.Vector256;
        }

        return Vector128.IsHardwareAccelerated ? ChaCha20Path.Vector128 : ChaCha20Path.Scalar;
    }

    /// <summary>Clamps a requested path to what this machine supports (tests may ask for any path).</summary>
    public static ChaCha20Path Supported(ChaCha20Path requested) => requested <= BestPath ? requested : BestPath;

    /// <summary>Reads the 12-byte nonce as the three little-endian state words 13..15.</summary>
    public static void NonceWords(ReadOnlySpan<byte> nonce, out uint n0, out uint n1, out uint n2)
    {
        n0 = BinaryPrimitives.ReadUInt32LittleEndian(nonce);
        n1 = BinaryPrimitives.ReadUInt32LittleEndian(nonce[4..]);
        n2 = BinaryPrimitives.ReadUInt32LittleEndian(nonce[8..]);
    }

    /// <summary>RFC 8439 §2.3: writes the 64-byte keystream block for <paramref name="counter"/>.</summary>
    public static void Block(ReadOnlySpan<byte> key, ReadOnlySpan<byte> nonce, uint counter, Span<byte> keystream)
    {
        CheckKeyNonce(key, nonce);
        if (keystream.Length != BlockSize)
        {
            throw new ArgumentException("Keystream block must be 64 bytes.", nameof(keystream));
        }

        NonceWords(nonce, out uint n0, out uint n1, out uint n2);
        ScalarBlock(key, counter, n0, n1, n2, keystream);
    }

    /// <summary>
    /// RFC 8439 §2.4: <paramref name="output"/> = <paramref name="input"/> XOR keystream(counter, counter+1, ...).
    /// <paramref name="output"/> may be the same span as <paramref name="input"/>.
    /// </summary>
    public static void Xor(ReadOnlySpan<byte> key, ReadOnlySpan<byte> nonce, uint counter, ReadOnlySpan<byte> input, Span<byte> output, ChaCha20Path path)
    {
        CheckKeyNonce(key, nonce);
        if (output.Length != input.Length)
        {
            throw new ArgumentException("Output must be as long as input.", nameof(output));
        }

        NonceWords(nonce, out uint n0, out uint n1, out uint n2);
        Xor(key, counter, n0, n1, n2, input, output, path);
    }

    /// <summary>Core of <see cref="Xor(ReadOnlySpan{byte}, ReadOnlySpan{byte}, uint, ReadOnlySpan{byte}, Span{byte}, ChaCha20Path)"/>; lengths already checked.</summary>
    public static void Xor(ReadOnlySpan<byte> key, uint counter, uint n0, uint n1, uint n2, ReadOnlySpan<byte> input, Span<byte> output, ChaCha20Path path)
        => Xor(key, counter, n0, n1, n2, input, output, path, avx512Rotate: true);

    /// <summary>
    /// As above; <paramref name="avx512Rotate"/> = false makes the Vector256/Vector128 paths use the rotations they use on CPUs
    /// without AVX-512VL (so tests reach that code on any machine).
    /// </summary>
    public static void Xor(ReadOnlySpan<byte> key, uint counter, uint n0, uint n1, uint n2, ReadOnlySpan<byte> input, Span<byte> output,
        ChaCha20Path path, bool avx512Rotate)
    {
        if (input.IsEmpty)
        {
            return;
        }

        switch (Supported(path))
        {
            case ChaCha20Path.Vector512:
                XorVector512(key, counter, n0, n1, n2, input, output);
                break;
            case ChaCha20Path.Vector256 when avx512Rotate:
                XorVector256<Avx512Rotate>(key, counter, n0, n1, n2, input, output);
                break;
            case ChaCha20Path.Vector256:
                XorVector256<PortableRotate>(key, counter, n0, n1, n2, input, output);
                break;
            case ChaCha20Path.Vector128 when avx512Rotate:
                XorVector128<Avx512Rotate>(key, counter, n0, n1, n2, input, output);
                break;
            case ChaCha20Path.Vector128:
                XorVector128<PortableRotate>(key, counter, n0, n1, n2, input, output);
                break;
            default:
                XorScalar(key, counter, n0, n1, n2, input, output);
                break;
        }
    }

    /// <summary>
    /// HChaCha20 (draft-irtf-cfrg-xchacha-03 §2.2): 20 rounds over (constants, key, 16-byte nonce) with no final
    /// addition; the subkey is state words 0..3 and 12..15.
    /// </summary>
    public static void HChaCha20(ReadOnlySpan<byte> key, ReadOnlySpan<byte> nonce16, Span<byte> subkey)
    {
        if (key.Length != KeySize || nonce16.Length != 16 || subkey.Length != KeySize)
        {
            throw new ArgumentException("HChaCha20 takes a 32-byte key, a 16-byte nonce and a 32-byte output.");
        }

        uint x0 = C0, x1 = C1, x2 = C2, x3 = C3;
        uint x4 = Le(key, 0), x5 = Le(key, 4), x6 = Le(key, 8), x7 = Le(key, 12);
        uint x8 = Le(key, 16), x9 = Le(key, 20), x10 = Le(key, 24), x11 = Le(key, 28);
        uint x12 = Le(nonce16, 0), x13 = Le(nonce16, 4), x14 = Le(nonce16, 8), x15 = Le(nonce16, 12);

        for (int i = 0; i < 10; i++)
        {
            DoubleRound(ref x0, ref x1, ref x2, ref x3, ref x4, ref x5, ref x6, ref x7,
                ref x8, ref x9, ref x10, ref x11, ref x12, ref x13, ref x14, ref x15);
        }

        BinaryPrimitives.WriteUInt32LittleEndian(subkey, x0);
        BinaryPrimitives.WriteUInt32LittleEndian(subkey[4..], x1);
        BinaryPrimitives.WriteUInt32LittleEndian(subkey[8..], x2);
        BinaryPrimitives.WriteUInt32LittleEndian(subkey[12..], x3);
        BinaryPrimitives.WriteUInt32LittleEndian(subkey[16..], x12);
        BinaryPrimitives.WriteUInt32LittleEndian(subkey[20..], x13);
        BinaryPrimitives.WriteUInt32LittleEndian(subkey[24..], x14);
        BinaryPrimitives.WriteUInt32LittleEndian(subkey[28..], x15);
    }

    private static void CheckKeyNonce(ReadOnlySpan<byte> key, ReadOnlySpan<byte> nonce)
    {
        if (key.Length != KeySize)
        {
            throw new ArgumentException("ChaCha20 key must be 32 bytes.", nameof(key));
        }

        if (nonce.Length != NonceSize)
        {
            throw new ArgumentException("ChaCha20 nonce must be 12 bytes.", nameof(nonce));
        }
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static uint Le(ReadOnlySpan<byte> s, int offset) => BinaryPrimitives.ReadUInt32LittleEndian(s[offset..]);

    // ---------------------------------------------------------------- scalar

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void QuarterRound(ref uint a, ref uint b, ref uint c, ref uint d)
    {
        // RFC 8439 §2.1
        a += b; d ^= a; d = uint.RotateLeft(d, 16);
        c += d; b ^= c; b = uint.RotateLeft(b, 12);
        a += b; d ^= a; d = uint.RotateLeft(d, 8);
        c += d; b ^= c; b = uint.RotateLeft(b, 7);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void DoubleRound(ref uint x0, ref uint x1, ref uint x2, ref uint x3, ref uint x4, ref uint x5, ref uint x6, ref uint x7,
        ref uint x8, ref uint x9, ref uint x10, ref uint x11, ref uint x12, ref uint x13, ref uint x14, ref uint x15)
    {
        // RFC 8439 §2.3: column round then diagonal round.
        QuarterRound(ref x0, ref x4, ref x8, ref x12);
        QuarterRound(ref x1, ref x5, ref x9, ref x13);
        QuarterRound(ref x2, ref x6, ref x10, ref x14);
        QuarterRound(ref x3, ref x7, ref x11, ref x15);
        QuarterRound(ref x0, ref x5, ref x10, ref x15);
        QuarterRound(ref x1, ref x6, ref x11, ref x12);
        QuarterRound(ref x2, ref x7, ref x8, ref x13);
        QuarterRound(ref x3, ref x4, ref x9, ref x14);
    }

    /// <summary>One 64-byte keystream block with plain integer arithmetic.</summary>
    private static void ScalarBlock(ReadOnlySpan<byte> key, uint counter, uint n0, uint n1, uint n2, Span<byte> keystream)
    {
        uint k0 = Le(key, 0), k1 = Le(key, 4), k2 = Le(key, 8), k3 = Le(key, 12);
        uint k4 = Le(key, 16), k5 = Le(key, 20), k6 = Le(key, 24), k7 = Le(key, 28);

        uint x0 = C0, x1 = C1, x2 = C2, x3 = C3;
        uint x4 = k0, x5 = k1, x6 = k2, x7 = k3, x8 = k4, x9 = k5, x10 = k6, x11 = k7;
        uint x12 = counter, x13 = n0, x14 = n1, x15 = n2;

        for (int i = 0; i < 10; i++)
        {
            DoubleRound(ref x0, ref x1, ref x2, ref x3, ref x4, ref x5, ref x6, ref x7,
                ref x8, ref x9, ref x10, ref x11, ref x12, ref x13, ref x14, ref x15);
        }

        Span<byte> o = keystream[..BlockSize];
        BinaryPrimitives.WriteUInt32LittleEndian(o, x0 + C0);
        BinaryPrimitives.WriteUInt32LittleEndian(o[4..], x1 + C1);
        BinaryPrimitives.WriteUInt32LittleEndian(o[8..], x2 + C2);
        BinaryPrimitives.WriteUInt32LittleEndian(o[12..], x3 + C3);
        BinaryPrimitives.WriteUInt32LittleEndian(o[16..], x4 + k0);
        BinaryPrimitives.WriteUInt32LittleEndian(o[20..], x5 + k1);
        BinaryPrimitives.WriteUInt32LittleEndian(o[24..], x6 + k2);
        BinaryPrimitives.WriteUInt32LittleEndian(o[28..], x7 + k3);
        BinaryPrimitives.WriteUInt32LittleEndian(o[32..], x8 + k4);
        BinaryPrimitives.WriteUInt32LittleEndian(o[36..], x9 + k5);
        BinaryPrimitives.WriteUInt32LittleEndian(o[40..], x10 + k6);
        BinaryPrimitives.WriteUInt32LittleEndian(o[44..], x11 + k7);
        BinaryPrimitives.WriteUInt32LittleEndian(o[48..], x12 + counter);
        BinaryPrimitives.WriteUInt32LittleEndian(o[52..], x13 + n0);
        BinaryPrimitives.WriteUInt32LittleEndian(o[56..], x14 + n1);
        BinaryPrimitives.WriteUInt32LittleEndian(o[60..], x15 + n2);
    }

    private static void XorScalar(ReadOnlySpan<byte> key, uint counter, uint n0, uint n1, uint n2, ReadOnlySpan<byte> input, Span<byte> output)
    {
        Span<byte> ks = stackalloc byte[BlockSize];
        int offset = 0;
        while (offset < input.Length)
        {
            int n = Math.Min(BlockSize, input.Length - offset);
            ScalarBlock(key, counter, n0, n1, n2, ks);
            XorBytes(input.Slice(offset, n), ks, output.Slice(offset, n));
            counter++;
            offset += n;
        }

        CryptographicOperations.ZeroMemory(ks);
    }

    /// <summary>dst[i] = a[i] ^ b[i] for i &lt; dst.Length; dst may be the same span as a.</summary>
    internal static void XorBytes(ReadOnlySpan<byte> a, ReadOnlySpan<byte> b, Span<byte> dst)
    {
        int n = dst.Length;
        int i = 0;
        ref byte ra = ref MemoryMarshal.GetReference(a);
        ref byte rb = ref MemoryMarshal.GetReference(b);
        ref byte rd = ref MemoryMarshal.GetReference(dst);
        if (Vector128.IsHardwareAccelerated && BitConverter.IsLittleEndian)
        {
            for (; i + 16 <= n; i += 16)
            {
                Vector128<byte> v = Vector128.LoadUnsafe(ref ra, (nuint)i) ^ Vector128.LoadUnsafe(ref rb, (nuint)i);
                v.StoreUnsafe(ref rd, (nuint)i);
            }
        }

        for (; i + 8 <= n; i += 8)
        {
            ulong v = Unsafe.ReadUnaligned<ulong>(ref Unsafe.Add(ref ra, i)) ^ Unsafe.ReadUnaligned<ulong>(ref Unsafe.Add(ref rb, i));
            Unsafe.WriteUnaligned(ref Unsafe.Add(ref rd, i), v);
        }

        for (; i < n; i++)
        {
            Unsafe.Add(ref rd, i) = (byte)(Unsafe.Add(ref ra, i) ^ Unsafe.Add(ref rb, i));
        }
    }
}
