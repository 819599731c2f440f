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

    /// <summary>Adds four message blocks (64 bytes at offset, each with the 2^128 bit) to the four lanes, in block order 0, 2, 1, 3.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void AddMessage(ref byte p, nuint offset, ref Vector256<ulong> h0, ref Vector256<ulong> h1, ref Vector256<ulong> h2,
        ref Vector256<ulong> h3, ref Vector256<ulong> h4)
    {
        // lo = bytes 0..7 of each block, hi = bytes 8..15; the in-lane unpacks leave the blocks in lane order 0, 2, 1, 3.
        Vector256<ulong> mask = Vector256.Create(M26);
        Vector256<ulong> a = Vector256.LoadUnsafe(ref p, offset).AsUInt64();
        Vector256<ulong> b = Vector256.LoadUnsafe(ref p, offset + 32).AsUInt64();
        Vector256<ulong> lo = Avx2.UnpackLow(a, b);
        Vector256<ulong> hi = Avx2.UnpackHigh(a, b);
        h0 += lo & mask;
        h1 += Vector256.ShiftRightLogical(lo, 26) & mask;
        h2 += (Vector256.ShiftRightLogical(lo, 52) | Vector256.ShiftLeft(hi, 12)) & mask;
        h3 += Vector256.ShiftRightLogical(hi, 14) & mask;
        h4 += Vector256.ShiftRightLogical(hi, 40) | Vector256.Create(1UL << 24);
    }

    /// <summary>Multiplies each lane by its own power of r: lanes 0..3 by w, x, y, z.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void MulLanes(ref Vector256<ulong> h0, ref Vector256<ulong> h1, ref Vector256<ulong> h2, ref Vector256<ulong> h3, ref Vector256<ulong> h4,
        in Limbs w, in Limbs x, in Limbs y, in Limbs z)
    {
        Vector256<ulong> r0 = Vector256.Create(w.L0, x.L0, y.L0, z.L0);
        Vector256<ulong> r1 = Vector256.Create(w.L1, x.L1, y.L1, z.L1);
        Vector256<ulong> r2 = Vector256.Create(w.L2, x.L2, y.L2, z.L2);
        Vector256<ulong> r3 = Vector256.Create(w.L3, x.L3, y.L3, z.L3);
        Vector256<ulong> r4 = Vector256.Create(w.L4, x.L4, y.L4, z.L4);
        MulVec(ref h0, ref h1, ref h2, ref h3, ref h4, r0, r1, r2, r3, r4, r1 * 5, r2 * 5, r3 * 5, r4 * 5);
    }

    /// <summary>Sums the lanes and carries so every limb fits in 26 bits (L1 may keep one carry bit).</summary>
    private static Limbs SumLanes(Vector256<ulong> h0, Vector256<ulong> h1, Vector256<ulong> h2, Vector256<ulong> h3, Vector256<ulong> h4)
    {
        ulong l0 = Vector256.Sum(h0), l1 = Vector256.Sum(h1), l2 = Vector256.Sum(h2), l3 = Vector256.Sum(h3), l4 = Vector256.Sum(h4);
        ulong c = l0 >> 26; l0 &= M26; l1 += c;
        c = l1 >> 26; l1 &= M26; l2 += c;
        c = l2 >> 26; l2 &= M26; l3 += c;
        c = l3 >> 26; l3 &= M26; l4 += c;
        c = l4 >> 26; l4 &= M26; l0 += c * 5;
        c = l0 >> 26; l0 &= M26; l1 += c;
        return new Limbs { L0 = l0, L1 = l1, L2 = l2, L3 = l3, L4 = l4 };
    }

    /// <summary>
    /// Absorbs whole 64-byte groups (each four full blocks with the 2^128 bit): pairs of groups eight blocks at a time in two
    /// independent 4-lane accumulators (multiplier r^8), then an odd last group four blocks at a time.
    /// </summary>
    private void BlocksAvx2(ReadOnlySpan<byte> m)
    {
        // Powers of r in radix 2^26.
        Limbs p1 = ToLimbs(_r0, _r1, 0);
        Limbs p2 = Mul26(p1, p1);
        Limbs p3 = Mul26(p2, p1);
        Limbs p4 = Mul26(p2, p2);
        Limbs h = ToLimbs(_h0, _h1, _h2);
        ref byte p = ref MemoryMarshal.GetReference(m);
        nuint pairs = (nuint)m.Length & ~(nuint)127;

        if (pairs > 0)
        {
            Limbs p5 = Mul26(p4, p1);
            Limbs p6 = Mul26(p4, p2);
            Limbs p7 = Mul26(p4, p3);
            Limbs p8 = Mul26(p4, p4);
            Vector256<ulong> r0 = Vector256.Create(p8.L0), r1 = Vector256.Create(p8.L1), r2 = Vector256.Create(p8.L2);
            Vector256<ulong> r3 = Vector256.Create(p8.L3), r4 = Vector256.Create(p8.L4);
            Vector256<ulong> s1 = r1 * 5, s2 = r2 * 5, s3 = r3 * 5, s4 = r4 * 5;

            // Set A takes blocks 0..3 of every 128-byte pair, set B blocks 4..7; the accumulator enters A's lane of block 0.
            Vector256<ulong> a0 = Vector256.Create(h.L0, 0, 0, 0), a1 = Vector256.Create(h.L1, 0, 0, 0), a2 = Vector256.Create(h.L2, 0, 0, 0);
            Vector256<ulong> a3 = Vector256.Create(h.L3, 0, 0, 0), a4 = Vector256.Create(h.L4, 0, 0, 0);
            Vector256<ulong> b0 = default, b1 = default, b2 = default, b3 = default, b4 = default;
            for (nuint offset = 0; ; offset += 128)
            {
                AddMessage(ref p, offset, ref a0, ref a1, ref a2, ref a3, ref a4);
                AddMessage(ref p, offset + 64, ref b0, ref b1, ref b2, ref b3, ref b4);
                if (offset + 128 >= pairs)
                {
                    break;
                }

                MulVec(ref a0, ref a1, ref a2, ref a3, ref a4, r0, r1, r2, r3, r4, s1, s2, s3, s4);
                MulVec(ref b0, ref b1, ref b2, ref b3, ref b4, r0, r1, r2, r3, r4, s1, s2, s3, s4);
            }

            // Lanes hold blocks (0, 2, 1, 3) and (4, 6, 5, 7) of the last pair: they still owe r^8, r^6, r^7, r^5 and r^4, r^2, r^3, r^1.
            MulLanes(ref a0, ref a1, ref a2, ref a3, ref a4, p8, p6, p7, p5);
            MulLanes(ref b0, ref b1, ref b2, ref b3, ref b4, p4, p2, p3, p1);
            h = SumLanes(a0 + b0, a1 + b1, a2 + b2, a3 + b3, a4 + b4);
        }

        if ((nuint)m.Length > pairs)
        {
            // One last group of four blocks: (0, 2, 1, 3) owe r^4, r^2, r^3, r^1.
            Vector256<ulong> a0 = Vector256.Create(h.L0, 0, 0, 0), a1 = Vector256.Create(h.L1, 0, 0, 0), a2 = Vector256.Create(h.L2, 0, 0, 0);
            Vector256<ulong> a3 = Vector256.Create(h.L3, 0, 0, 0), a4 = Vector256.Create(h.L4, 0, 0, 0);
            AddMessage(ref p, pairs, ref a0, ref a1, ref a2, ref a3, ref a4);
            MulLanes(ref a0, ref a1, ref a2, ref a3, ref a4, p4, p2, p3, p1);
            h = SumLanes(a0, a1, a2, a3, a4);
        }

        // Back to radix 2^64 (h < 2^131; L1 may hold a carry, so add rather than OR across limb boundaries).
        ulong w0 = h.L0 | (h.L1 << 26); // L1 < 2^27: at most 53 bits, no overlap with L0
        ulong x = h.L2 << 52;
        ulong t0 = w0 + x;
        ulong carry0 = Carry(w0, x, t0);
        ulong hiPart = (h.L2 >> 12) + (h.L3 << 14);
        ulong y = h.L4 << 40;
        ulong t1 = hiPart + y;
        ulong carry1 = Carry(hiPart, y, t1);
        ulong t1c = t1 + carry0;
        ulong carry2 = Carry(t1, carry0, t1c);
        _h0 = t0;
        _h1 = t1c;
        _h2 = (h.L4 >> 24) + carry1 + carry2;
    }
}
