using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics.Arm;
using System.Runtime.Intrinsics.X86;
using System.Security.Cryptography;

namespace Sharptun.Crypto;

/// <summary>
/// X25519 Diffie-Hellman (RFC 7748 §5) over Curve25519, constant time.
/// </summary>
/// <remarks>
/// <para>Field elements are five 51-bit limbs (radix 2^51) multiplied with 64×64→128-bit products. The scalar
/// multiplication is the Montgomery ladder of RFC 7748 §5 with a mask-based conditional swap: no branch and no
/// memory index depends on a secret. Secret temporaries are wiped before returning.</para>
/// <para>All methods are thread-safe (no shared state) and allocation-free. Inputs and outputs may overlap.</para>
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
        Ladder(scalar, point, output);
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
        Ladder(scalar, basePoint, output);
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
        Ladder(privateKey, publicKey, sharedSecret);

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

    [InlineArray(KeySize)]
    private struct ScalarBytes
    {
        private byte _e0;
    }

    /// <summary>All secret state of one ladder run, kept together so it can be wiped in one call.</summary>
    [StructLayout(LayoutKind.Sequential)]
    private struct LadderState
    {
        public ScalarBytes K;
        public Fe X1, X2, Z2, X3, Z3, A, B, C, D, E, AA, BB, DA, CB, T;
    }

    private static void Ladder(ReadOnlySpan<byte> scalar, ReadOnlySpan<byte> point, Span<byte> output)
    {
        LadderState s = default;
        Span<byte> k = s.K;
        scalar.CopyTo(k);
        Clamp(k);

        // RFC 7748 §5: mask the most significant bit of u; non-canonical values are accepted and reduced by
        // the field arithmetic itself (limbs are < 2^51, so 2^255 - 19 .. 2^255 - 1 work as their residue).
        Fe.FromBytes(out s.X1, point);
        s.X2 = Fe.One;
        s.Z2 = default;
        s.X3 = s.X1;
        s.Z3 = Fe.One;

        ulong swap = 0;
        for (int t = 254; t >= 0; t--)
        {
            ulong kt = (ulong)((k[t >> 3] >> (t & 7)) & 1);
            swap ^= kt;
            Fe.CSwap(ref s.X2, ref s.X3, swap);
            Fe.CSwap(ref s.Z2, ref s.Z3, swap);
            swap = kt;

            Fe.Add(out s.A, in s.X2, in s.Z2);       // A = x_2 + z_2
            Fe.Square(out s.AA, in s.A);             // AA = A^2
            Fe.Sub(out s.B, in s.X2, in s.Z2);       // B = x_2 - z_2
            Fe.Square(out s.BB, in s.B);             // BB = B^2
            Fe.Sub(out s.E, in s.AA, in s.BB);       // E = AA - BB
            Fe.Add(out s.C, in s.X3, in s.Z3);       // C = x_3 + z_3
            Fe.Sub(out s.D, in s.X3, in s.Z3);       // D = x_3 - z_3
            Fe.Mul(out s.DA, in s.D, in s.A);        // DA = D * A
            Fe.Mul(out s.CB, in s.C, in s.B);        // CB = C * B
            Fe.Add(out s.T, in s.DA, in s.CB);
            Fe.Square(out s.X3, in s.T);             // x_3 = (DA + CB)^2
            Fe.Sub(out s.T, in s.DA, in s.CB);
            Fe.Square(out s.T, in s.T);
            Fe.Mul(out s.Z3, in s.X1, in s.T);       // z_3 = x_1 * (DA - CB)^2
            Fe.Mul(out s.X2, in s.AA, in s.BB);      // x_2 = AA * BB
            Fe.Mul121665(out s.T, in s.E);
            Fe.Add(out s.T, in s.AA, in s.T);
            Fe.Mul(out s.Z2, in s.E, in s.T);        // z_2 = E * (AA + a24 * E)
        }

        Fe.CSwap(ref s.X2, ref s.X3, swap);
        Fe.CSwap(ref s.Z2, ref s.Z3, swap);

        // Return x_2 * z_2^(p - 2).
        Fe.Invert(out s.T, in s.Z2, ref s.A, ref s.B, ref s.C, ref s.D);
        Fe.Mul(out s.X2, in s.X2, in s.T);
        Fe.ToBytes(output, in s.X2);

        CryptographicOperations.ZeroMemory(MemoryMarshal.AsBytes(MemoryMarshal.CreateSpan(ref s, 1)));
    }

    /// <summary>
    /// An element of GF(2^255 - 19) as five unsigned 51-bit limbs, value = Σ L_i·2^(51·i).
    /// Bounds: outputs of <see cref="Mul"/>, <see cref="Square"/> and <see cref="Mul121665"/> are "reduced"
    /// (limbs &lt; 2^51 + 2^13); <see cref="Add"/> and <see cref="Sub"/> of reduced inputs give limbs &lt; 2^53,
    /// which <see cref="Mul"/> and <see cref="Square"/> accept without overflowing 128 bits.
    /// </summary>
    [StructLayout(LayoutKind.Sequential)]
    private struct Fe
    {
        public ulong L0, L1, L2, L3, L4;

        private const ulong Mask51 = (1UL << 51) - 1;

        public static Fe One => new() { L0 = 1 };

        public static void FromBytes(out Fe r, ReadOnlySpan<byte> s)
        {
            ulong w0 = System.Buffers.Binary.BinaryPrimitives.ReadUInt64LittleEndian(s);
            ulong w1 = System.Buffers.Binary.BinaryPrimitives.ReadUInt64LittleEndian(s[8..]);
            ulong w2 = System.Buffers.Binary.BinaryPrimitives.ReadUInt64LittleEndian(s[16..]);
            ulong w3 = System.Buffers.Binary.BinaryPrimitives.ReadUInt64LittleEndian(s[24..]);
            r.L0 = w0 & Mask51;
            r.L1 = ((w0 >> 51) | (w1 << 13)) & Mask51;
            r.L2 = ((w1 >> 38) | (w2 << 26)) & Mask51;
            r.L3 = ((w2 >> 25) | (w3 << 39)) & Mask51;
            r.L4 = (w3 >> 12) & Mask51; // drops bit 255 (RFC 7748 §5)
        }

        /// <summary>Fully reduces modulo p and writes the canonical 32-byte little-endian encoding.</summary>
        public static void ToBytes(Span<byte> s, in Fe a)
        {
            ulong t0 = a.L0, t1 = a.L1, t2 = a.L2, t3 = a.L3, t4 = a.L4;

            // Two full carry passes bring the value below 2^255 + small with every limb < 2^51.
            for (int i = 0; i < 2; i++)
            {
                t1 += t0 >> 51; t0 &= Mask51;
                t2 += t1 >> 51; t1 &= Mask51;
                t3 += t2 >> 51; t2 &= Mask51;
                t4 += t3 >> 51; t3 &= Mask51;
                t0 += 19 * (t4 >> 51); t4 &= Mask51;
            }

            // Now 0 <= t < 2^255. Compute t + 19: it reaches 2^255 exactly when t >= p. Adding 19 and then
            // 2^255 - 19 (per limb: 2^51 - 19, 2^51 - 1, ...) yields t + 2^255 if t < p, else t - p + 2^256;
            // keeping the low 255 bits gives t mod p without a branch.
            t0 += 19;
            t1 += t0 >> 51; t0 &= Mask51;
            t2 += t1 >> 51; t1 &= Mask51;
            t3 += t2 >> 51; t2 &= Mask51;
            t4 += t3 >> 51; t3 &= Mask51;
            t0 += 19 * (t4 >> 51); t4 &= Mask51;

            t0 += (1UL << 51) - 19;
            t1 += (1UL << 51) - 1;
            t2 += (1UL << 51) - 1;
            t3 += (1UL << 51) - 1;
            t4 += (1UL << 51) - 1;
            t1 += t0 >> 51; t0 &= Mask51;
            t2 += t1 >> 51; t1 &= Mask51;
            t3 += t2 >> 51; t2 &= Mask51;
            t4 += t3 >> 51; t3 &= Mask51;
            t4 &= Mask51;

            System.Buffers.Binary.BinaryPrimitives.WriteUInt64LittleEndian(s, t0 | (t1 << 51));
            System.Buffers.Binary.BinaryPrimitives.WriteUInt64LittleEndian(s[8..], (t1 >> 13) | (t2 << 38));
            System.Buffers.Binary.BinaryPrimitives.WriteUInt64LittleEndian(s[16..], (t2 >> 26) | (t3 << 25));
            System.Buffers.Binary.BinaryPrimitives.WriteUInt64LittleEndian(s[24..], (t3 >> 39) | (t4 << 12));
        }

        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public static void Add(out Fe r, in Fe a, in Fe b)
        {
            r.L0 = a.L0 + b.L0;
            r.L1 = a.L1 + b.L1;
            r.L2 = a.L2 + b.L2;
            r.L3 = a.L3 + b.L3;
            r.L4 = a.L4 + b.L4;
        }

        /// <summary>r = a - b + 2p, so no limb underflows when b is reduced.</summary>
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public static void Sub(out Fe r, in Fe a, in Fe b)
        {
            r.L0 = a.L0 + 0xFFFFFFFFFFFDAUL - b.L0;
            r.L1 = a.L1 + 0xFFFFFFFFFFFFEUL - b.L1;
            r.L2 = a.L2 + 0xFFFFFFFFFFFFEUL - b.L2;
            r.L3 = a.L3 + 0xFFFFFFFFFFFFEUL - b.L3;
            r.L4 = a.L4 + 0xFFFFFFFFFFFFEUL - b.L4;
        }

        /// <summary>Swaps a and b when <paramref name="swap"/> is 1, leaves them when 0; no branch.</summary>
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public static void CSwap(ref Fe a, ref Fe b, ulong swap)
        {
            ulong mask = 0UL - swap;
            ulong x;
            x = mask & (a.L0 ^ b.L0); a.L0 ^= x; b.L0 ^= x;
            x = mask & (a.L1 ^ b.L1); a.L1 ^= x; b.L1 ^= x;
            x = mask & (a.L2 ^ b.L2); a.L2 ^= x; b.L2 ^= x;
            x = mask & (a.L3 ^ b.L3); a.L3 ^= x; b.L3 ^= x;
            x = mask & (a.L4 ^ b.L4); a.L4 ^= x; b.L4 ^= x;
        }

        /// <summary>High 64 bits of a 64×64-bit product (MULX / UMULH, no memory round trip for the low half).</summary>
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        private static ulong Hi(ulong a, ulong b)
        {
            if (Bmi2.X64.IsSupported)
            {
                return Bmi2.X64.MultiplyNoFlags(a, b);
            }

            if (ArmBase.Arm64.IsSupported)
            {
                return ArmBase.Arm64.MultiplyHigh(a, b);
            }

            return Math.BigMul(a, b, out _);
        }

        /// <summary>
        /// Carry out of the 64-bit addition that produced <paramref name="sum"/> from <paramref name="addend"/>
        /// (1 when it wrapped). A bool-valued comparison compiles to IL <c>clt.un</c> (SETB at every JIT tier), never
        /// a branch, as in Poly1305.Carry. <c>cond ? 1UL : 0UL</c> becomes <c>clt.un</c> only by an optimizing Roslyn
        /// peephole: a Debug build emits <c>blt.un.s</c> + <c>br.s</c>, which unoptimized JIT code keeps as jumps.
        /// </summary>
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        private static ulong CarryOut(ulong sum, ulong addend) => Unsafe.BitCast<bool, byte>(sum < addend);

        /// <summary>(hi:lo) += a·b, branch-free (see <see cref="CarryOut"/>).</summary>
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        private static void Acc(ref ulong lo, ref ulong hi, ulong a, ulong b)
        {
            ulong l = a * b;
            lo += l;
            hi += Hi(a, b) + CarryOut(lo, l);
        }

        /// <summary>
        /// Carries five 128-bit column sums (h_i·2^64 + l_i, each &lt; 2^115) into a reduced element, folding the
        /// carry out of the top limb back with 2^255 ≡ 19 (mod p).
        /// </summary>
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        private static void Carry(out Fe r, ulong l0, ulong h0, ulong l1, ulong h1, ulong l2, ulong h2, ulong l3, ulong h3, ulong l4, ulong h4)
        {
            ulong r0 = l0 & Mask51;
            ulong c = (l0 >> 51) | (h0 << 13);
            l1 += c;
            h1 += CarryOut(l1, c);
            ulong r1 = l1 & Mask51;
            c = (l1 >> 51) | (h1 << 13);
            l2 += c;
            h2 += CarryOut(l2, c);
            ulong r2 = l2 & Mask51;
            c = (l2 >> 51) | (h2 << 13);
            l3 += c;
            h3 += CarryOut(l3, c);
            ulong r3 = l3 & Mask51;
            c = (l3 >> 51) | (h3 << 13);
            l4 += c;
            h4 += CarryOut(l4, c);
            ulong r4 = l4 & Mask51;
            c = (l4 >> 51) | (h4 << 13);
            r0 += c * 19;
            r1 += r0 >> 51;
            r0 &= Mask51;
            r.L0 = r0;
            r.L1 = r1;
            r.L2 = r2;
            r.L3 = r3;
            r.L4 = r4;
        }

        /// <summary>r = a·b; schoolbook 5×5 with the wrapped columns multiplied by 19. r may alias a or b.</summary>
        public static void Mul(out Fe r, in Fe a, in Fe b)
        {
            ulong l0 = a.L0 * b.L0, h0 = Hi(a.L0, b.L0);
            Acc(ref l0, ref h0, a.L1, b.L4 * 19);
            Acc(ref l0, ref h0, a.L2, b.L3 * 19);
            Acc(ref l0, ref h0, a.L3, b.L2 * 19);
            Acc(ref l0, ref h0, a.L4, b.L1 * 19);
            ulong l1 = a.L0 * b.L1, h1 = Hi(a.L0, b.L1);
            Acc(ref l1, ref h1, a.L1, b.L0);
            Acc(ref l1, ref h1, a.L2, b.L4 * 19);
            Acc(ref l1, ref h1, a.L3, b.L3 * 19);
            Acc(ref l1, ref h1, a.L4, b.L2 * 19);
            ulong l2 = a.L0 * b.L2, h2 = Hi(a.L0, b.L2);
            Acc(ref l2, ref h2, a.L1, b.L1);
            Acc(ref l2, ref h2, a.L2, b.L0);
            Acc(ref l2, ref h2, a.L3, b.L4 * 19);
            Acc(ref l2, ref h2, a.L4, b.L3 * 19);
            ulong l3 = a.L0 * b.L3, h3 = Hi(a.L0, b.L3);
            Acc(ref l3, ref h3, a.L1, b.L2);
            Acc(ref l3, ref h3, a.L2, b.L1);
            Acc(ref l3, ref h3, a.L3, b.L0);
            Acc(ref l3, ref h3, a.L4, b.L4 * 19);
            ulong l4 = a.L0 * b.L4, h4 = Hi(a.L0, b.L4);
            Acc(ref l4, ref h4, a.L1, b.L3);
            Acc(ref l4, ref h4, a.L2, b.L2);
            Acc(ref l4, ref h4, a.L3, b.L1);
            Acc(ref l4, ref h4, a.L4, b.L0);
            Carry(out r, l0, h0, l1, h1, l2, h2, l3, h3, l4, h4);
        }

        /// <summary>r = a²; 15 products instead of 25. r may alias a.</summary>
        public static void Square(out Fe r, in Fe a)
        {
            ulong a0 = a.L0, a1 = a.L1, a2 = a.L2, a3 = a.L3, a4 = a.L4;
            ulong d0 = a0 * 2, d1 = a1 * 2, a4_19 = a4 * 19;
            ulong l0 = a0 * a0, h0 = Hi(a0, a0);
            Acc(ref l0, ref h0, a4_19, d1);
            Acc(ref l0, ref h0, a2 * 38, a3);
            ulong l1 = d0 * a1, h1 = Hi(d0, a1);
            Acc(ref l1, ref h1, a4_19, a2 * 2);
            Acc(ref l1, ref h1, a3 * 19, a3);
            ulong l2 = d0 * a2, h2 = Hi(d0, a2);
            Acc(ref l2, ref h2, a1, a1);
            Acc(ref l2, ref h2, a4_19, a3 * 2);
            ulong l3 = d0 * a3, h3 = Hi(d0, a3);
            Acc(ref l3, ref h3, d1, a2);
            Acc(ref l3, ref h3, a4_19, a4);
            ulong l4 = d0 * a4, h4 = Hi(d0, a4);
            Acc(ref l4, ref h4, d1, a3);
            Acc(ref l4, ref h4, a2, a2);
            Carry(out r, l0, h0, l1, h1, l2, h2, l3, h3, l4, h4);
        }

        /// <summary>r = a · 121665, where 121665 = (486662 - 2) / 4 is a24 of RFC 7748 §5.</summary>
        public static void Mul121665(out Fe r, in Fe a)
        {
            const ulong A24 = 121665;
            Carry(
                out r,
                a.L0 * A24, Hi(a.L0, A24),
                a.L1 * A24, Hi(a.L1, A24),
                a.L2 * A24, Hi(a.L2, A24),
                a.L3 * A24, Hi(a.L3, A24),
                a.L4 * A24, Hi(a.L4, A24));
        }

        private static void SquareTimes(out Fe r, in Fe a, int n)
        {
            Square(out r, in a);
            for (int i = 1; i < n; i++)
            {
                Square(out r, in r);
            }
        }

        /// <summary>r = z^(p-2) = z^(2^255 - 21) by the usual chain of 254 squarings and 11 multiplications.</summary>
        public static void Invert(out Fe r, in Fe z, ref Fe t0, ref Fe t1, ref Fe t2, ref Fe t3)
        {
            Square(out t0, in z);                 // 2
            SquareTimes(out t1, in t0, 2);        // 8
            Mul(out t1, in z, in t1);             // 9
            Mul(out t0, in t0, in t1);            // 11
            Square(out t2, in t0);                // 22
            Mul(out t1, in t1, in t2);            // 2^5 - 1
            SquareTimes(out t2, in t1, 5);
            Mul(out t1, in t2, in t1);            // 2^10 - 1
            SquareTimes(out t2, in t1, 10);
            Mul(out t2, in t2, in t1);            // 2^20 - 1
            SquareTimes(out t3, in t2, 20);
            Mul(out t2, in t3, in t2);            // 2^40 - 1
            SquareTimes(out t2, in t2, 10);
            Mul(out t1, in t2, in t1);            // 2^50 - 1
            SquareTimes(out t2, in t1, 50);
            Mul(out t2, in t2, in t1);            // 2^100 - 1
            SquareTimes(out t3, in t2, 100);
            Mul(out t2, in t3, in t2);            // 2^200 - 1
            SquareTimes(out t2, in t2, 50);
            Mul(out t1, in t2, in t1);            // 2^250 - 1
            SquareTimes(out t1, in t1, 5);        // 2^255 - 2^5
            Mul(out r, in t1, in t0);             // 2^255 - 21
        }
    }
}
