using System.Buffers.Binary;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics.X86;
using System.Security.Cryptography;

namespace Sharptun.Crypto;

/// <summary>
/// Poly1305 one-time authenticator (RFC 8439 §2.5) in radix 2^64: the accumulator is h0 + h1·2^64 + h2·2^128
/// (h2 holds a few bits) and r is r0 + r1·2^64. Products use 64×64→128-bit multiplies (<see cref="Math.BigMul(ulong, ulong, out ulong)"/>).
/// </summary>
/// <remarks>
/// Reduction uses 2^130 ≡ 5 (mod p): because clamping clears the low two bits of r1, h1·r1·2^128 ≡ h1·(r1 + r1/4)
/// (the s1 term) and h2·r1·2^192 ≡ h2·s1·2^64. After each block h is only partially reduced (below 2^130 + a little);
/// <see cref="Finish"/> does the final conditional subtraction of p with a mask. No branch depends on secret data.
/// With AVX2, runs of at least <see cref="SimdMinBytes"/> bytes go through the vectorised radix-2^26 code in Poly1305.Avx2.cs.
/// A value of this type holds key material: wipe it with <see cref="Clear"/>.
/// </remarks>
[StructLayout(LayoutKind.Auto)]
internal partial struct Poly1305
{
    public const int KeySize = 32;
    public const int TagSize = 16;
    public const int BlockSize = 16;

    private ulong _r0, _r1, _s1;
    private ulong _h0, _h1, _h2;
    private ulong _pad0, _pad1;
    private Block16 _buffer;
    private int _buffered;
    private bool _scalarOnly;

    [InlineArray(16)]
    private struct Block16
    {
        private byte _element0;
    }

    /// <summary>RFC 8439 §2.5: r = key[0..16] clamped, s = key[16..32].</summary>
    public Poly1305(ReadOnlySpan<byte> key)
        : this(key, scalarOnly: false)
    {
    }

    /// <summary>As <see cref="Poly1305(ReadOnlySpan{byte})"/>; <paramref name="scalarOnly"/> turns off the SIMD block path (for tests).</summary>
    public Poly1305(ReadOnlySpan<byte> key, bool scalarOnly)
    {
        _scalarOnly = scalarOnly;
        if (key.Length != KeySize)
        {
            throw new ArgumentException("Poly1305 key must be 32 bytes.", nameof(key));
        }

        _r0 = BinaryPrimitives.ReadUInt64LittleEndian(key) & 0x0FFFFFFC0FFFFFFFUL;
        _r1 = BinaryPrimitives.ReadUInt64LittleEndian(key[8..]) & 0x0FFFFFFC0FFFFFFCUL;
        _s1 = _r1 + (_r1 >> 2);
        _pad0 = BinaryPrimitives.ReadUInt64LittleEndian(key[16..]);
        _pad1 = BinaryPrimitives.ReadUInt64LittleEndian(key[24..]);
    }

    /// <summary>Computes the tag of a whole message.</summary>
    public static void Compute(ReadOnlySpan<byte> key, ReadOnlySpan<byte> message, Span<byte> tag)
    {
        var mac = new Poly1305(key);
        mac.Update(message);
        mac.Finish(tag);
    }

    /// <summary>Absorbs message bytes (any length; partial blocks are buffered).</summary>
    public void Update(ReadOnlySpan<byte> data)
    {
        Span<byte> buffer = _buffer;
        if (_buffered > 0)
        {
            int take = Math.Min(BlockSize - _buffered, data.Length);
            data[..take].CopyTo(buffer[_buffered..]);
            _buffered += take;
            data = data[take..];
            if (_buffered < BlockSize)
            {
                return;
            }

            Blocks(buffer, 1UL);
            _buffered = 0;
        }

        int full = data.Length & ~(BlockSize - 1);
        if (full > 0)
        {
            Blocks(data[..full], 1UL);
        }

        if (full < data.Length)
        {
            data[full..].CopyTo(buffer);
            _buffered = data.Length - full;
        }
    }

    /// <summary>
    /// Absorbs <paramref name="data"/> followed by zero bytes up to a 16-byte boundary (RFC 8439 §2.8 pad16).
    /// Only valid when nothing is buffered (the AEAD construction keeps every field 16-byte aligned).
    /// </summary>
    public void UpdatePadded(ReadOnlySpan<byte> data)
    {
        int full = data.Length & ~(BlockSize - 1);
        if (full > 0)
        {
            Blocks(data[..full], 1UL);
        }

        int rest = data.Length - full;
        if (rest > 0)
        {
            Span<byte> block = _buffer;
            block.Clear();
            data[full..].CopyTo(block);
            Blocks(block, 1UL);
            block.Clear();
        }
    }

    /// <summary>Absorbs one 16-byte block holding le64(a) || le64(b) (the AEAD length block).</summary>
    public void UpdateLengths(ulong a, ulong b)
    {
        Span<byte> block = _buffer;
        BinaryPrimitives.WriteUInt64LittleEndian(block, a);
        BinaryPrimitives.WriteUInt64LittleEndian(block[8..], b);
        Blocks(block, 1UL);
    }

    /// <summary>Writes the 16-byte tag. The state must not be used afterwards (wipe it with <see cref="Clear"/>).</summary>
    public void Finish(Span<byte> tag)
    {
        if (tag.Length < TagSize)
        {
            throw new ArgumentException("Tag must be 16 bytes.", nameof(tag));
        }

        if (_buffered > 0)
        {
            // RFC 8439 §2.5.1: a final partial block gets a 0x01 byte, zero padding and no 2^128 bit.
            Span<byte> block = _buffer;
            block[_buffered] = 1;
            block[(_buffered + 1)..].Clear();
            Blocks(block, 0UL);
            _buffered = 0;
        }

        ulong h0 = _h0, h1 = _h1, h2 = _h2;

        // Compute g = h + 5 - 2^130; if it does not borrow (h >= p), the result is g.
        ulong g0 = h0 + 5;
        ulong c = Carry(h0, 5, g0);
        ulong g1 = h1 + c;
        c = Carry(h1, c, g1);
        ulong g2 = h2 + c;
        ulong mask = 0UL - (g2 >> 2);
        h0 = (h0 & ~mask) | (g0 & mask);
        h1 = (h1 & ~mask) | (g1 & mask);

        // tag = (h + s) mod 2^128
        ulong t0 = h0 + _pad0;
        c = Carry(h0, _pad0, t0);
        ulong t1 = h1 + _pad1 + c;

        BinaryPrimitives.WriteUInt64LittleEndian(tag, t0);
        BinaryPrimitives.WriteUInt64LittleEndian(tag[8..], t1);
    }

    /// <summary>Wipes the key and accumulator.</summary>
    public void Clear()
    {
        CryptographicOperations.ZeroMemory(MemoryMarshal.AsBytes(MemoryMarshal.CreateSpan(ref this, 1)));
    }

    /// <summary>Carry out of x + y = sum (mod 2^64), computed without a branch.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static ulong Carry(ulong x, ulong y, ulong sum)
    {
        _ = y;

        // A bool materialises as setcc (never a branch); the comparison is the carry of x + y.
        return Unsafe.BitCast<bool, byte>(sum < x);
    }

    /// <summary>Processes whole 16-byte blocks; <paramref name="hibit"/> is 1 to add 2^128 to each block (full blocks).</summary>
    private void Blocks(ReadOnlySpan<byte> m, ulong hibit)
    {
        if (m.Length >= SimdMinBytes && hibit == 1 && !_scalarOnly && Avx2.IsSupported)
        {
            int simd = m.Length & ~63;
            BlocksAvx2(m[..simd]);
            m = m[simd..];
        }

        ulong r0 = _r0, r1 = _r1, s1 = _s1;
        ulong h0 = _h0, h1 = _h1, h2 = _h2;

        ref byte p = ref MemoryMarshal.GetReference(m);
        int blocks = m.Length / BlockSize;
        for (int i = 0; i < blocks; i++)
        {
            ulong m0 = BinaryPrimitives.ReadUInt64LittleEndian(MemoryMarshal.CreateReadOnlySpan(ref Unsafe.Add(ref p, i * 16), 8));
            ulong m1 = BinaryPrimitives.ReadUInt64LittleEndian(MemoryMarshal.CreateReadOnlySpan(ref Unsafe.Add(ref p, (i * 16) + 8), 8));

            // h += m (+ 2^128)
            ulong t0 = h0 + m0;
            ulong c = Carry(h0, m0, t0);
            ulong t1 = h1 + m1;
            ulong c1 = Carry(h1, m1, t1);
            ulong t1c = t1 + c;
            c1 |= Carry(t1, c, t1c);
            h0 = t0;
            h1 = t1c;
            h2 += c1 + hibit;

            // d = h * r (mod 2^130 - 5), partially: d0 at 2^0, d1 at 2^64, d2 at 2^128
            ulong d0hi = Math.BigMul(h0, r0, out ulong d0lo);
            ulong xhi = Math.BigMul(h1, s1, out ulong xlo);
            ulong lo = d0lo + xlo;
            d0hi += xhi + Carry(d0lo, xlo, lo);
            d0lo = lo;

            ulong d1hi = Math.BigMul(h0, r1, out ulong d1lo);
            xhi = Math.BigMul(h1, r0, out xlo);
            lo = d1lo + xlo;
            d1hi += xhi + Carry(d1lo, xlo, lo);
            d1lo = lo;
            ulong y = h2 * s1; // h2 < 8 and s1 < 2^61: fits in 64 bits
            lo = d1lo + y;
            d1hi += Carry(d1lo, y, lo);
            d1lo = lo;

            ulong d2 = h2 * r0; // h2 < 8 and r0 < 2^60

            // carry d0hi into d1, d1hi into d2
            h0 = d0lo;
            lo = d1lo + d0hi;
            d1hi += Carry(d1lo, d0hi, lo);
            h1 = lo;
            d2 += d1hi;

            // partial reduction: bits above 2^130 times 5 go back to the bottom
            c = (d2 >> 2) + (d2 & ~3UL);
            h2 = d2 & 3;
            t0 = h0 + c;
            c = Carry(h0, c, t0);
            h0 = t0;
            t1 = h1 + c;
            c = Carry(h1, c, t1);
            h1 = t1;
            h2 += c;
        }

        _h0 = h0;
        _h1 = h1;
        _h2 = h2;
    }
}
