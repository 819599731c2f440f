using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace Sharptun.Crypto;

// Four-way Poly1305 with AVX2 (the technique of Goll and Gueron, "Vectorization of Poly1305", 2015).
// Radix 2^26: a value is five 26-bit limbs, so a 5x5 limb product fits in 64-bit lanes with vpmuludq, and
// 2^130 = 5 (mod p) folds the high limbs back as multiples of 5·r. Four accumulators (one per 64-bit lane)
// take every fourth block and are multiplied by r^4 per step; at the end lane j is multiplied by the power of r
// that its last block still owes (r^4, r^3, r^2, r^1 for blocks 0..3 of the last group) and the lanes are summed.
internal partial struct Poly1305
{
    /// <summary>Below this many bytes the scalar loop is faster than the power precomputation.</summary>
    internal const int SimdMinBytes = 256;

    private const ulong M26 = (1UL << 26) - 1;

    /// <summary>Five 26-bit limbs.</summary>
    [StructLayout(LayoutKind.Auto)]
    private struct Limbs
    {
        public ulong L0, L1, L2, L3, L4;
    }

    /// <summary>a·b mod p on 26-bit limbs (scalar); the result has limbs of at most 26 bits plus a carry bit in L1.</summary>
    private static Limbs Mul26(in Limbs a, in Limbs b)
    {
        ulong s1 = b.L1 * 5, s2 = b.L2 * 5, s3 = b.L3 * 5, s4 = b.L4 * 5;
        ulong d0 = (a.L0 * b.L0) + (a.L1 * s4) + (a.L2 * s3) + (a.L3 * s2) + (a.L4 * s1);
        ulong d1 = (a.L0 * b.L1) + (a.L1 * b.L0) + (a.L2 * s4) + (a.L3 * s3) + (a.L4 * s2);
        ulong d2 = (a.L0 * b.L2) + (a.L1 * b.L1) + (a.L2 * b.L0) + (a.L3 * s4) + (a.L4 * s3);
        ulong d3 = (a.L0 * b.L3) + (a.L1 * b.L2) + (a.L2 * b.L1) + (a.L3 * b.L0) + (a.L4 * s4);
        ulong d4 = (a.L0 * b.L4) + (a.L1 * b.L3) + (a.L2 * b.L2) + (a.L3 * b.L1) + (a.L4 * b.L0);
        ulong c = d0 >> 26; d0 &= M26; d1 += c;
        c = d1 >> 26; d1 &= M26; d2 += c;
        c = d2 >> 26; d2 &= M26; d3 += c;
        c = d3 >> 26; d3 &= M26; d4 += c;
        c = d4 >> 26; d4 &= M26; d0 += c * 5;
        c = d0 >> 26; d0 &= M26; d1 += c;
        return new Limbs { L0 = d0, L1 = d1, L2 = d2, L3 = d3, L4 = d4 };
    }

    /// <summary>Splits h0 + h1·2^64 + h2·2^128 into 26-bit limbs (the top limb may hold a few more bits).</summary>
    private static Limbs ToLimbs(ulong h0, ulong h1, ulong h2) => new()
    {
        L0 = h0 & M26,
        L1 = (h0 >> 26) & M26,
        L2 = ((h0 >> 52) | (h1 << 12)) & M26,
        L3 = (h1 >> 14) & M26,
        L4 = (h1 >> 40) | (h2 << 24),
    };

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector256<ulong> Mul(Vector256<ulong> x, Vector256<ulong> y) => Avx2.Multiply(x.AsUInt32(), y.AsUInt32());

    /// <summary>H = H·R mod p lane by lane (S = 5·R), followed by a lazy carry pass.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void MulVec(ref Vector256<ulong> h0, ref Vector256<ulong> h1, ref Vector256<ulong> h2, ref Vector256<ulong> h3, ref Vector256<ulong> h4,
        Vector256<ulong> r0, Vector256<ulong> r1, Vector256<ulong> r2, Vector256<ulong> r3, Vector256<ulong> r4,
        Vector256<ulong> s1, Vector256<ulong> s2, Vector256<ulong> s3, Vector256<ulong> s4)
    {
        Vector256<ulong> d0 = Mul(h0, r0) + Mul(h1, s4) + Mul(h2, s3) + Mul(h3, s2) + Mul(h4, s1);
        Vector256<ulong> d1 = Mul(h0, r1) + Mul(h1, r0) + Mul(h2, s4) + Mul(h3, s3) + Mul(h4, s2);
        Vector256<ulong> d2 = Mul(h0, r2) + Mul(h1, r1) + Mul(h2, r0) + Mul(h3, s4) + Mul(h4, s3);
        Vector256<ulong> d3 = Mul(h0, r3) + Mul(h1, r2) + Mul(h2, r1) + Mul(h3, r0) + Mul(h4, s4);
        Vector256<ulong> d4 = Mul(h0, r4) + Mul(h1, r3) + Mul(h2, r2) + Mul(h3, r1) + Mul(h4, r0);

        // Two interleaved carry chains (d0→d1→d2→d3 and d3→d4→d0→d1) halve the dependency depth of the loop. Afterwards
        // d0, d2, d3 < 2^26 and d1, d4 < 2^26 plus a small carry, which keeps the next products below 2^64.
        Vector256<ulong> mask = Vector256.Create(M26);
        Vector256<ulong> c0 = Vector256.ShiftRightLogical(d0, 26); d0 &= mask; d1 += c0;
        Vector256<ulong> c3 = Vector256.ShiftRightLogical(d3, 26); d3 &= mask; d4 += c3;
        Vector256<ulong> c1 = Vector256.ShiftRightLogical(d1, 26); d1 &= mask; d2 += c1;
        Vector256<ulong> c4 = Vector256.ShiftRightLogical(d4, 26); d4 &= mask; d0 += c4 + Vector256.ShiftLeft(c4, 2);
        Vector256<ulong> c2 = Vector256.ShiftRightLogical(d2, 26); d2 &= mask; d3 += c2;
        c0 = Vector256.ShiftRightLogical(d0, 26); d0 &= mask; d1 += c0;
        c3 = Vector256.ShiftRightLogical(d3, 26); d3 &= mask; d4 += c3;
        h0 = d0; h1 = d1; h2 = d2; h3 = d3; h4 = d4;
    }

    /// <summary>Absorbs whole 64-byte groups (four full blocks, each with the 2^128 bit) four blocks at a time.</summary>
    private void BlocksAvx2(ReadOnlySpan<byte> m)
    {
        // Powers of r in radix 2^26.
        Limbs p1 = ToLimbs(_r0, _r1, 0);
        Limbs p2 = Mul26(p1, p1);
        Limbs p3 = Mul26(p2, p1);
        Limbs p4 = Mul26(p2, p2);

        Vector256<ulong> r0 = Vector256.Create(p4.L0), r1 = Vector256.Create(p4.L1), r2 = Vector256.Create(p4.L2);
        Vector256<ulong> r3 = Vector256.Create(p4.L3), r4 = Vector256.Create(p4.L4);
        Vector256<ulong> s1 = r1 * 5, s2 = r2 * 5, s3 = r3 * 5, s4 = r4 * 5;

        Vector256<ulong> mask = Vector256.Create(M26);
        Vector256<ulong> hibit = Vector256.Create(1UL << 24);
        ref byte p = ref MemoryMarshal.GetReference(m);

        // The accumulator enters lane 0 (the lane of block 0).
        Limbs h = ToLimbs(_h0, _h1, _h2);
        Vector256<ulong> h0 = Vector256.Create(h.L0, 0, 0, 0), h1 = Vector256.Create(h.L1, 0, 0, 0), h2 = Vector256.Create(h.L2, 0, 0, 0);
        Vector256<ulong> h3 = Vector256.Create(h.L3, 0, 0, 0), h4 = Vector256.Create(h.L4, 0, 0, 0);

        nuint length = (nuint)m.Length;
        for (nuint offset = 0; ; offset += 64)
        {
            // Blocks 0..3 of the group: lo = bytes 0..7 of each block, hi = bytes 8..15. The unpacks leave the lanes in
            // block order 0, 2, 1, 3, which the final powers below follow.
            Vector256<ulong> a = Vector256.LoadUnsafe(ref p, offset).AsUInt64();
            Vector256<ulong> b = Vector256.LoadUnsafe(ref p, offset + 32).AsUInt64();
            Vector256<ulong> lo = Avx2.UnpackLow(a, b);
            Vector256<ulong> hi = Avx2.UnpackHigh(a, b);
            h0 += lo & mask;
            h1 += Vector256.ShiftRightLogical(lo, 26) & mask;
            h2 += (Vector256.ShiftRightLogical(lo, 52) | Vector256.ShiftLeft(hi, 12)) & mask;
            h3 += Vector256.ShiftRightLogical(hi, 14) & mask;
            h4 += Vector256.ShiftRightLogical(hi, 40) | hibit;

            if (offset + 64 >= length)
            {
                break;
            }

            MulVec(ref h0, ref h1, ref h2, ref h3, ref h4, r0, r1, r2, r3, r4, s1, s2, s3, s4);
        }

        // Lanes hold blocks 0, 2, 1, 3 of the last group: they still owe r^4, r^2, r^3, r^1.
        r0 = Vector256.Create(p4.L0, p2.L0, p3.L0, p1.L0);
        r1 = Vector256.Create(p4.L1, p2.L1, p3.L1, p1.L1);
        r2 = Vector256.Create(p4.L2, p2.L2, p3.L2, p1.L2);
        r3 = Vector256.Create(p4.L3, p2.L3, p3.L3, p1.L3);
        r4 = Vector256.Create(p4.L4, p2.L4, p3.L4, p1.L4);
        s1 = r1 * 5; s2 = r2 * 5; s3 = r3 * 5; s4 = r4 * 5;
        MulVec(ref h0, ref h1, ref h2, ref h3, ref h4, r0, r1, r2, r3, r4, s1, s2, s3, s4);

        ulong l0 = Vector256.Sum(h0), l1 = Vector256.Sum(h1), l2 = Vector256.Sum(h2), l3 = Vector256.Sum(h3), l4 = Vector256.Sum(h4);

        // Full carry pass so every limb fits in 26 bits (l1 may keep one carry), then back to radix 2^64.
        ulong c = l0 >> 26; l0 &= M26; l1 += c;
        c = l1 >> 26; l1 &= M26; l2 += c;
        c = l2 >> 26; l2 &= M26; l3 += c;
        c = l3 >> 26; l3 &= M26; l4 += c;
        c = l4 >> 26; l4 &= M26; l0 += c * 5;
        c = l0 >> 26; l0 &= M26; l1 += c;

        ulong w0 = l0 | (l1 << 26); // l1 < 2^27: at most 53 bits, no overlap with l0
        ulong x = l2 << 52;
        ulong t0 = w0 + x;
        ulong carry0 = Carry(w0, x, t0);
        ulong hiPart = (l2 >> 12) + (l3 << 14);
        ulong y = l4 << 40;
        ulong t1 = hiPart + y;
        ulong carry1 = Carry(hiPart, y, t1);
        ulong t1c = t1 + carry0;
        ulong carry2 = Carry(t1, carry0, t1c);
        _h0 = t0;
        _h1 = t1c;
        _h2 = (l4 >> 24) + carry1 + carry2;
    }
}
