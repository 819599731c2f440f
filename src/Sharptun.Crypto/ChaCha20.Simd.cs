using System.Diagnostics.CodeAnalysis;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;
using System.Security.Cryptography;

namespace Sharptun.Crypto;

// SIMD ChaCha20. Layout: a = row 0 (constants), b = row 1 (key 0..3), c = row 2 (key 4..7), d = row 3 (counter, nonce).
// Each 128-bit lane holds one block's row, so a quarter round over the four columns is one vector operation, and
// the diagonal round is reached by rotating rows b, c, d by 1, 2, 3 words inside each lane (RFC 8439 §2.3).
// Each path runs two independent sets of blocks per step (a lone block is bound by the latency of its dependency
// chain); a tail runs the same sets into a stack keystream buffer, or hands a short remainder to the next narrower path.
internal static partial class ChaCha20
{
    // pshufd immediates: rotate words in each lane left by 1, 2, 3 positions.
    private const byte Rot1 = 0b00_11_10_01; // (1,2,3,0)
    private const byte Rot2 = 0b01_00_11_10; // (2,3,0,1)
    private const byte Rot3 = 0b10_01_00_11; // (3,0,1,2)

    // ---------------------------------------------------------------- Vector128 (SSE / AdvSimd): four blocks per iteration

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector128<uint> Rotl<TRot>(Vector128<uint> x, [ConstantExpected] byte n) where TRot : struct, IRotatePolicy
    {
        if (TRot.UseAvx512 && Avx512F.VL.IsSupported)
        {
            return Avx512F.VL.RotateLeft(x, n);
        }

        return Vector128.ShiftLeft(x, n) | Vector128.ShiftRightLogical(x, 32 - n);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void Round<TRot>(ref Vector128<uint> a, ref Vector128<uint> b, ref Vector128<uint> c, ref Vector128<uint> d) where TRot : struct, IRotatePolicy
    {
        a += b; d ^= a; d = Rotl<TRot>(d, 16);
        c += d; b ^= c; b = Rotl<TRot>(b, 12);
        a += b; d ^= a; d = Rotl<TRot>(d, 8);
        c += d; b ^= c; b = Rotl<TRot>(b, 7);
    }

    [SkipLocalsInit] // tail buffers are cleared or fully written before they are read
    private static void XorVector128<TRot>(ReadOnlySpan<byte> key, uint counter, uint n0, uint n1, uint n2, ReadOnlySpan<byte> input, Span<byte> output)
        where TRot : struct, IRotatePolicy
    {
        Vector128<uint> a0 = Vector128.Create(C0, C1, C2, C3);
        Vector128<uint> b0 = Vector128.Create(key).AsUInt32();
        Vector128<uint> c0 = Vector128.Create(key[16..]).AsUInt32();
        Vector128<uint> d0 = Vector128.Create(counter, n0, n1, n2);

        ref byte src = ref MemoryMarshal.GetReference(input);
        ref byte dst = ref MemoryMarshal.GetReference(output);
        int length = input.Length;
        int offset = 0;

        // Four independent blocks per iteration: one block alone is bound by the latency of its dependency chain.
        while (length - offset >= 4 * BlockSize)
        {
            Block128x4<TRot>(a0, b0, c0, d0, ref src, ref dst, (nuint)offset);
            d0 += Vector128.Create(4u, 0, 0, 0);
            offset += 4 * BlockSize;
        }

        if (offset < length)
        {
            Span<byte> ks = stackalloc byte[4 * BlockSize];
            ref byte k = ref MemoryMarshal.GetReference(ks);
            if (length - offset > BlockSize)
            {
                ks.Clear();
                Block128x4<TRot>(a0, b0, c0, d0, ref k, ref k, 0);
            }
            else
            {
                Block128<TRot>(a0, b0, c0, d0, out Vector128<uint> a, out Vector128<uint> b, out Vector128<uint> c, out Vector128<uint> d);
                a.AsByte().StoreUnsafe(ref k);
                b.AsByte().StoreUnsafe(ref k, 16);
                c.AsByte().StoreUnsafe(ref k, 32);
                d.AsByte().StoreUnsafe(ref k, 48);
            }

            XorBytes(input[offset..], ks, output[offset..]);
            CryptographicOperations.ZeroMemory(ks);
        }
    }

    /// <summary>Four consecutive blocks (counters d0.X .. d0.X+3) XORed into 256 bytes at offset.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void Block128x4<TRot>(Vector128<uint> a0, Vector128<uint> b0, Vector128<uint> c0, Vector128<uint> d0, ref byte src, ref byte dst, nuint o)
        where TRot : struct, IRotatePolicy
    {
        Vector128<uint> d1 = d0 + Vector128.Create(1u, 0, 0, 0);
        Vector128<uint> d2 = d0 + Vector128.Create(2u, 0, 0, 0);
        Vector128<uint> d3 = d0 + Vector128.Create(3u, 0, 0, 0);
        Vector128<uint> a = a0, b = b0, c = c0, d = d0;
        Vector128<uint> e = a0, f = b0, g = c0, h = d1;
        Vector128<uint> i = a0, j = b0, k = c0, l = d2;
        Vector128<uint> m = a0, n = b0, p = c0, q = d3;
        for (int round = 0; round < 10; round++)
        {
            Round<TRot>(ref a, ref b, ref c, ref d);
            Round<TRot>(ref e, ref f, ref g, ref h);
            Round<TRot>(ref i, ref j, ref k, ref l);
            Round<TRot>(ref m, ref n, ref p, ref q);
            Diagonalize(ref b, ref c, ref d);
            Diagonalize(ref f, ref g, ref h);
            Diagonalize(ref j, ref k, ref l);
            Diagonalize(ref n, ref p, ref q);
            Round<TRot>(ref a, ref b, ref c, ref d);
            Round<TRot>(ref e, ref f, ref g, ref h);
            Round<TRot>(ref i, ref j, ref k, ref l);
            Round<TRot>(ref m, ref n, ref p, ref q);
            Undiagonalize(ref b, ref c, ref d);
            Undiagonalize(ref f, ref g, ref h);
            Undiagonalize(ref j, ref k, ref l);
            Undiagonalize(ref n, ref p, ref q);
        }

        Store1(a + a0, b + b0, c + c0, d + d0, ref src, ref dst, o);
        Store1(e + a0, f + b0, g + c0, h + d1, ref src, ref dst, o + 64);
        Store1(i + a0, j + b0, k + c0, l + d2, ref src, ref dst, o + 128);
        Store1(m + a0, n + b0, p + c0, q + d3, ref src, ref dst, o + 192);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void Store1(Vector128<uint> a, Vector128<uint> b, Vector128<uint> c, Vector128<uint> d, ref byte src, ref byte dst, nuint o)
    {
        (Vector128.LoadUnsafe(ref src, o) ^ a.AsByte()).StoreUnsafe(ref dst, o);
        (Vector128.LoadUnsafe(ref src, o + 16) ^ b.AsByte()).StoreUnsafe(ref dst, o + 16);
        (Vector128.LoadUnsafe(ref src, o + 32) ^ c.AsByte()).StoreUnsafe(ref dst, o + 32);
        (Vector128.LoadUnsafe(ref src, o + 48) ^ d.AsByte()).StoreUnsafe(ref dst, o + 48);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void Diagonalize(ref Vector128<uint> b, ref Vector128<uint> c, ref Vector128<uint> d)
    {
        b = Vector128.Shuffle(b, Vector128.Create(1u, 2, 3, 0));
        c = Vector128.Shuffle(c, Vector128.Create(2u, 3, 0, 1));
        d = Vector128.Shuffle(d, Vector128.Create(3u, 0, 1, 2));
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void Undiagonalize(ref Vector128<uint> b, ref Vector128<uint> c, ref Vector128<uint> d)
    {
        b = Vector128.Shuffle(b, Vector128.Create(3u, 0, 1, 2));
        c = Vector128.Shuffle(c, Vector128.Create(2u, 3, 0, 1));
        d = Vector128.Shuffle(d, Vector128.Create(1u, 2, 3, 0));
    }

    /// <summary>One keystream block (rows a, b, c, d after the final addition).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void Block128<TRot>(Vector128<uint> a0, Vector128<uint> b0, Vector128<uint> c0, Vector128<uint> d0,
        out Vector128<uint> a, out Vector128<uint> b, out Vector128<uint> c, out Vector128<uint> d)
        where TRot : struct, IRotatePolicy
    {
        a = a0; b = b0; c = c0; d = d0;
        for (int i = 0; i < 10; i++)
        {
            Round<TRot>(ref a, ref b, ref c, ref d);
            Diagonalize(ref b, ref c, ref d);
            Round<TRot>(ref a, ref b, ref c, ref d);
            Undiagonalize(ref b, ref c, ref d);
        }

        a += a0; b += b0; c += c0; d += d0;
    }

    // ---------------------------------------------------------------- Vector256 (AVX2): 2 blocks per vector, 2 sets

    private static readonly Vector256<byte> Rot16Mask = Vector256.Create(
        (byte)2, 3, 0, 1, 6, 7, 4, 5, 10, 11, 8, 9, 14, 15, 12, 13,
        2, 3, 0, 1, 6, 7, 4, 5, 10, 11, 8, 9, 14, 15, 12, 13);

    private static readonly Vector256<byte> Rot8Mask = Vector256.Create(
        (byte)3, 0, 1, 2, 7, 4, 5, 6, 11, 8, 9, 10, 15, 12, 13, 14,
        3, 0, 1, 2, 7, 4, 5, 6, 11, 8, 9, 10, 15, 12, 13, 14);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector256<uint> Rotl<TRot>(Vector256<uint> x, [ConstantExpected] byte n) where TRot : struct, IRotatePolicy
    {
        if (TRot.UseAvx512 && Avx512F.VL.IsSupported)
        {
            return Avx512F.VL.RotateLeft(x, n);
        }

        if (n == 16)
        {
            return Avx2.Shuffle(x.AsByte(), Rot16Mask).AsUInt32();
        }

        if (n == 8)
        {
            return Avx2.Shuffle(x.AsByte(), Rot8Mask).AsUInt32();
        }

        return Vector256.ShiftLeft(x, n) | Vector256.ShiftRightLogical(x, 32 - n);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void Round<TRot>(ref Vector256<uint> a, ref Vector256<uint> b, ref Vector256<uint> c, ref Vector256<uint> d) where TRot : struct, IRotatePolicy
    {
        a += b; d ^= a; d = Rotl<TRot>(d, 16);
        c += d; b ^= c; b = Rotl<TRot>(b, 12);
        a += b; d ^= a; d = Rotl<TRot>(d, 8);
        c += d; b ^= c; b = Rotl<TRot>(b, 7);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void DoubleRound<TRot>(ref Vector256<uint> a, ref Vector256<uint> b, ref Vector256<uint> c, ref Vector256<uint> d) where TRot : struct, IRotatePolicy
    {
        Round<TRot>(ref a, ref b, ref c, ref d);
        b = Avx2.Shuffle(b, Rot1);
        c = Avx2.Shuffle(c, Rot2);
        d = Avx2.Shuffle(d, Rot3);
        Round<TRot>(ref a, ref b, ref c, ref d);
        b = Avx2.Shuffle(b, Rot3);
        c = Avx2.Shuffle(c, Rot2);
        d = Avx2.Shuffle(d, Rot1);
    }

    /// <summary>XORs two blocks (lane 0 then lane 1 of a, b, c, d) into 128 bytes at offset.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void Store2(Vector256<uint> a, Vector256<uint> b, Vector256<uint> c, Vector256<uint> d, ref byte src, ref byte dst, nuint o)
    {
        Vector256<byte> ab0 = Avx2.Permute2x128(a, b, 0x20).AsByte();
        Vector256<byte> cd0 = Avx2.Permute2x128(c, d, 0x20).AsByte();
        Vector256<byte> ab1 = Avx2.Permute2x128(a, b, 0x31).AsByte();
        Vector256<byte> cd1 = Avx2.Permute2x128(c, d, 0x31).AsByte();
        (Vector256.LoadUnsafe(ref src, o) ^ ab0).StoreUnsafe(ref dst, o);
        (Vector256.LoadUnsafe(ref src, o + 32) ^ cd0).StoreUnsafe(ref dst, o + 32);
        (Vector256.LoadUnsafe(ref src, o + 64) ^ ab1).StoreUnsafe(ref dst, o + 64);
        (Vector256.LoadUnsafe(ref src, o + 96) ^ cd1).StoreUnsafe(ref dst, o + 96);
    }

    [SkipLocalsInit] // tail buffers are cleared or fully written before they are read
    private static void XorVector256<TRot>(ReadOnlySpan<byte> key, uint counter, uint n0, uint n1, uint n2, ReadOnlySpan<byte> input, Span<byte> output)
        where TRot : struct, IRotatePolicy
    {
        int length = input.Length;
        int offset = 0;
        if (length > BlockSize)
        {
            Vector256<uint> a0 = Vector256.Create(Vector128.Create(C0, C1, C2, C3));
            Vector256<uint> b0 = Vector256.Create(Vector128.Create(key).AsUInt32());
            Vector256<uint> c0 = Vector256.Create(Vector128.Create(key[16..]).AsUInt32());
            Vector256<uint> d0 = Vector256.Create(Vector128.Create(counter, n0, n1, n2)) + Vector256.Create(0u, 0, 0, 0, 1, 0, 0, 0);
            Vector256<uint> two = Vector256.Create(2u, 0, 0, 0, 2, 0, 0, 0);
            Vector256<uint> four = Vector256.Create(4u, 0, 0, 0, 4, 0, 0, 0);

            ref byte src = ref MemoryMarshal.GetReference(input);
            ref byte dst = ref MemoryMarshal.GetReference(output);

            while (length - offset >= 4 * BlockSize)
            {
                Vector256<uint> a = a0, b = b0, c = c0, d = d0;
                Vector256<uint> e = a0, f = b0, g = c0, h = d0 + two;
                for (int i = 0; i < 10; i++)
                {
                    DoubleRound<TRot>(ref a, ref b, ref c, ref d);
                    DoubleRound<TRot>(ref e, ref f, ref g, ref h);
                }

                Store2(a + a0, b + b0, c + c0, d + d0, ref src, ref dst, (nuint)offset);
                Store2(e + a0, f + b0, g + c0, h + d0 + two, ref src, ref dst, (nuint)offset + 128);
                d0 += four;
                offset += 4 * BlockSize;
            }

            if (offset < length)
            {
                // Tail: 1..255 bytes. Run both sets side by side only if the second one is needed (the latency is the same).
                Span<byte> ks = stackalloc byte[4 * BlockSize];
                ks.Clear();
                ref byte k = ref MemoryMarshal.GetReference(ks);
                Vector256<uint> a = a0, b = b0, c = c0, d = d0;
                if (length - offset > 2 * BlockSize)
                {
                    Vector256<uint> e = a0, f = b0, g = c0, h = d0 + two;
                    for (int i = 0; i < 10; i++)
                    {
                        DoubleRound<TRot>(ref a, ref b, ref c, ref d);
                        DoubleRound<TRot>(ref e, ref f, ref g, ref h);
                    }

                    Store2(e + a0, f + b0, g + c0, h + d0 + two, ref k, ref k, 128);
                }
                else
                {
                    for (int i = 0; i < 10; i++)
                    {
                        DoubleRound<TRot>(ref a, ref b, ref c, ref d);
                    }
                }

                Store2(a + a0, b + b0, c + c0, d + d0, ref k, ref k, 0);
                XorBytes(input[offset..], ks, output[offset..]);
                CryptographicOperations.ZeroMemory(ks);
            }

            return;
        }

        XorVector128<TRot>(key, counter, n0, n1, n2, input, output);
    }

    // ---------------------------------------------------------------- Vector512 (AVX-512F): 4 blocks per vector, 2 sets

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void Round(ref Vector512<uint> a, ref Vector512<uint> b, ref Vector512<uint> c, ref Vector512<uint> d)
    {
        a += b; d ^= a; d = Avx512F.RotateLeft(d, 16);
        c += d; b ^= c; b = Avx512F.RotateLeft(b, 12);
        a += b; d ^= a; d = Avx512F.RotateLeft(d, 8);
        c += d; b ^= c; b = Avx512F.RotateLeft(b, 7);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void DoubleRound(ref Vector512<uint> a, ref Vector512<uint> b, ref Vector512<uint> c, ref Vector512<uint> d)
    {
        Round(ref a, ref b, ref c, ref d);
        b = Avx512F.Shuffle(b, Rot1);
        c = Avx512F.Shuffle(c, Rot2);
        d = Avx512F.Shuffle(d, Rot3);
        Round(ref a, ref b, ref c, ref d);
        b = Avx512F.Shuffle(b, Rot3);
        c = Avx512F.Shuffle(c, Rot2);
        d = Avx512F.Shuffle(d, Rot1);
    }

    /// <summary>Transposes the 128-bit lanes of (a, b, c, d) into four consecutive blocks and XORs 256 bytes at offset.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void Store4(Vector512<uint> a, Vector512<uint> b, Vector512<uint> c, Vector512<uint> d, ref byte src, ref byte dst, nuint o)
    {
        Vector512<uint> t0 = Avx512F.Shuffle4x128(a, b, 0x44); // a0 a1 b0 b1
        Vector512<uint> t1 = Avx512F.Shuffle4x128(c, d, 0x44); // c0 c1 d0 d1
        Vector512<uint> t2 = Avx512F.Shuffle4x128(a, b, 0xEE); // a2 a3 b2 b3
        Vector512<uint> t3 = Avx512F.Shuffle4x128(c, d, 0xEE); // c2 c3 d2 d3
        Vector512<byte> k0 = Avx512F.Shuffle4x128(t0, t1, 0x88).AsByte(); // a0 b0 c0 d0
        Vector512<byte> k1 = Avx512F.Shuffle4x128(t0, t1, 0xDD).AsByte(); // a1 b1 c1 d1
        Vector512<byte> k2 = Avx512F.Shuffle4x128(t2, t3, 0x88).AsByte(); // a2 b2 c2 d2
        Vector512<byte> k3 = Avx512F.Shuffle4x128(t2, t3, 0xDD).AsByte(); // a3 b3 c3 d3
        (Vector512.LoadUnsafe(ref src, o) ^ k0).StoreUnsafe(ref dst, o);
        (Vector512.LoadUnsafe(ref src, o + 64) ^ k1).StoreUnsafe(ref dst, o + 64);
        (Vector512.LoadUnsafe(ref src, o + 128) ^ k2).StoreUnsafe(ref dst, o + 128);
        (Vector512.LoadUnsafe(ref src, o + 192) ^ k3).StoreUnsafe(ref dst, o + 192);
    }

    [SkipLocalsInit] // tail buffers are cleared or fully written before they are read
    private static void XorVector512(ReadOnlySpan<byte> key, uint counter, uint n0, uint n1, uint n2, ReadOnlySpan<byte> input, Span<byte> output)
    {
        int length = input.Length;
        int offset = 0;
        if (length > 2 * BlockSize)
        {
            Vector512<uint> a0 = Vector512.Create(Vector256.Create(Vector128.Create(C0, C1, C2, C3)));
            Vector512<uint> b0 = Vector512.Create(Vector256.Create(Vector128.Create(key).AsUInt32()));
            Vector512<uint> c0 = Vector512.Create(Vector256.Create(Vector128.Create(key[16..]).AsUInt32()));
            Vector512<uint> d0 = Vector512.Create(Vector256.Create(Vector128.Create(counter, n0, n1, n2)))
                + Vector512.Create(0u, 0, 0, 0, 1, 0, 0, 0, 2, 0, 0, 0, 3, 0, 0, 0);
            Vector512<uint> four = Vector512.Create(Vector256.Create(Vector128.Create(4u, 0, 0, 0)));
            Vector512<uint> eight = Vector512.Create(Vector256.Create(Vector128.Create(8u, 0, 0, 0)));

            ref byte src = ref MemoryMarshal.GetReference(input);
            ref byte dst = ref MemoryMarshal.GetReference(output);

            while (length - offset >= 8 * BlockSize)
            {
                Vector512<uint> a = a0, b = b0, c = c0, d = d0;
                Vector512<uint> e = a0, f = b0, g = c0, h = d0 + four;
                for (int i = 0; i < 10; i++)
                {
                    DoubleRound(ref a, ref b, ref c, ref d);
                    DoubleRound(ref e, ref f, ref g, ref h);
                }

                Store4(a + a0, b + b0, c + c0, d + d0, ref src, ref dst, (nuint)offset);
                Store4(e + a0, f + b0, g + c0, h + d0 + four, ref src, ref dst, (nuint)offset + 256);
                d0 += eight;
                offset += 8 * BlockSize;
            }

            if (length - offset > 2 * BlockSize)
            {
                // Tail of 129..511 bytes: one or two 4-block sets side by side (same latency) into a keystream buffer.
                Span<byte> ks = stackalloc byte[8 * BlockSize];
                ks.Clear();
                ref byte k = ref MemoryMarshal.GetReference(ks);
                Vector512<uint> a = a0, b = b0, c = c0, d = d0;
                if (length - offset > 4 * BlockSize)
                {
                    Vector512<uint> e = a0, f = b0, g = c0, h = d0 + four;
                    for (int i = 0; i < 10; i++)
                    {
                        DoubleRound(ref a, ref b, ref c, ref d);
                        DoubleRound(ref e, ref f, ref g, ref h);
                    }

                    Store4(e + a0, f + b0, g + c0, h + d0 + four, ref k, ref k, 256);
                }
                else
                {
                    for (int i = 0; i < 10; i++)
                    {
                        DoubleRound(ref a, ref b, ref c, ref d);
                    }
                }

                Store4(a + a0, b + b0, c + c0, d + d0, ref k, ref k, 0);
                XorBytes(input[offset..], ks, output[offset..]);
                CryptographicOperations.ZeroMemory(ks);
                return;
            }
        }

        if (offset < length)
        {
            XorVector256<Avx512Rotate>(key, counter + (uint)(offset / BlockSize), n0, n1, n2, input[offset..], output[offset..]);
        }
    }

    /// <summary>Chooses the rotation of the Vector128/Vector256 paths at compile time (the JIT specialises per struct).</summary>
    internal interface IRotatePolicy
    {
        /// <summary>Whether to use AVX-512VL vprold when the CPU has it (false forces the AVX2/SSE/AdvSimd rotations, for tests).</summary>
        static abstract bool UseAvx512 { get; }
    }

    internal readonly struct Avx512Rotate : IRotatePolicy
    {
        public static bool UseAvx512 => true;
    }

    internal readonly struct PortableRotate : IRotatePolicy
    {
        public static bool UseAvx512 => false;
    }
}
