using System.Buffers.Binary;
using System.Numerics;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Security.Cryptography;

namespace Sharptun.Crypto;

/// <summary>
/// BLAKE2s (RFC 7693) with 1..32-byte digests and an optional 0..32-byte key (keyed mode = MAC).
/// WireGuard uses <c>Hash</c> = BLAKE2s-256 and <c>Mac</c> = keyed BLAKE2s with a 16-byte output (whitepaper §5.4).
/// </summary>
/// <remarks>
/// <para>Incremental use: construct with <see cref="Blake2s(int, ReadOnlySpan{byte})"/>, call <see cref="Update"/> any
/// number of times, then <see cref="Final"/> once. The state lives inline in the struct (no allocation); it is a
/// mutable struct, so pass it by <see langword="ref"/>, never by value. After <see cref="Final"/> the state is wiped
/// and the instance must not be used again. A <see langword="default"/> instance is not initialised and throws.
/// Not thread-safe per instance; the static methods are thread-safe.</para>
/// <para>The output length is part of the parameter block, so a 16-byte digest is not a truncated 32-byte digest.</para>
/// </remarks>
public struct Blake2s
{
    /// <summary>Largest digest size in bytes (BLAKE2s-256).</summary>
    public const int MaxOutputLength = 32;

    /// <summary>Largest key size in bytes.</summary>
    public const int MaxKeyLength = 32;

    /// <summary>Compression block size in bytes.</summary>
    public const int BlockSize = 64;

    [InlineArray(8)]
    private struct StateWords
    {
        private uint _e0;
    }

    [InlineArray(BlockSize)]
    private struct BlockBuffer
    {
        private byte _e0;
    }

    private StateWords _h;
    private BlockBuffer _buffer;
    private ulong _t;          // total bytes compressed so far (t0, t1 of RFC 7693 §3.2)
    private int _bufferLength; // bytes waiting in _buffer (0..64); a full block is kept until more input arrives
    private int _outputLength; // 0 = not initialised or finalised

    /// <summary>Initialises a BLAKE2s state (RFC 7693 §3.3).</summary>
    /// <param name="outputLength">Digest size in bytes, 1..32.</param>
    /// <param name="key">Optional key, 0..32 bytes; empty means unkeyed.</param>
    /// <exception cref="ArgumentException">A length is out of range.</exception>
    public Blake2s(int outputLength, ReadOnlySpan<byte> key = default)
    {
        if (outputLength is < 1 or > MaxOutputLength)
        {
            throw new ArgumentException("The BLAKE2s output length must be 1..32 bytes.", nameof(outputLength));
        }

        if (key.Length > MaxKeyLength)
        {
            throw new ArgumentException("The BLAKE2s key must be at most 32 bytes.", nameof(key));
        }

        ReadOnlySpan<uint> iv = IV;
        for (int i = 0; i < 8; i++)
        {
            _h[i] = iv[i];
        }

        // Parameter block word 0: digest length, key length, fanout = 1, depth = 1 (RFC 7693 §2.5).
        _h[0] ^= 0x01010000u ^ ((uint)key.Length << 8) ^ (uint)outputLength;
        _outputLength = outputLength;

        if (!key.IsEmpty)
        {
            // The key, zero-padded to a full block, is the first data block (RFC 7693 §3.3).
            Span<byte> buffer = _buffer;
            buffer.Clear();
            key.CopyTo(buffer);
            _bufferLength = BlockSize;
        }
    }

    /// <summary>Absorbs <paramref name="data"/>. May be called any number of times before <see cref="Final"/>.</summary>
    /// <exception cref="InvalidOperationException">The instance is not initialised or already finalised.</exception>
    public void Update(ReadOnlySpan<byte> data)
    {
        if (_outputLength == 0)
        {
            throw new InvalidOperationException("The BLAKE2s state is not initialised or already finalised.");
        }

        if (data.IsEmpty)
        {
            return;
        }

        Span<byte> buffer = _buffer;
        int free = BlockSize - _bufferLength;
        if (data.Length > free)
        {
            // Complete and compress the buffered block; it cannot be the last one since more data follows.
            data[..free].CopyTo(buffer[_bufferLength..]);
            data = data[free..];
            _t += BlockSize;
            Compress(ref _h, buffer, _t, last: false);
            _bufferLength = 0;

            // Compress whole blocks straight from the input, keeping at least one byte for the final block.
            while (data.Length > BlockSize)
            {
                _t += BlockSize;
                Compress(ref _h, data[..BlockSize], _t, last: false);
                data = data[BlockSize..];
            }
        }

        data.CopyTo(buffer[_bufferLength..]);
        _bufferLength += data.Length;
    }

    /// <summary>
    /// Finishes the hash and writes the digest to <paramref name="output"/>, which must be exactly the output length
    /// given to the constructor. Wipes the state afterwards.
    /// </summary>
    /// <exception cref="ArgumentException"><paramref name="output"/> has the wrong length.</exception>
    /// <exception cref="InvalidOperationException">The instance is not initialised or already finalised.</exception>
    public void Final(Span<byte> output)
    {
        if (_outputLength == 0)
        {
            throw new InvalidOperationException("The BLAKE2s state is not initialised or already finalised.");
        }

        if (output.Length != _outputLength)
        {
            throw new ArgumentException($"The output must be {_outputLength} bytes long.", nameof(output));
        }

        Span<byte> buffer = _buffer;
        buffer[_bufferLength..].Clear();
        _t += (ulong)_bufferLength;
        Compress(ref _h, buffer, _t, last: true);

        Span<byte> digest = stackalloc byte[MaxOutputLength];
        for (int i = 0; i < 8; i++)
        {
            BinaryPrimitives.WriteUInt32LittleEndian(digest[(4 * i)..], _h[i]);
        }

        digest[..output.Length].CopyTo(output);
        CryptographicOperations.ZeroMemory(digest);
        CryptographicOperations.ZeroMemory(MemoryMarshal.AsBytes(MemoryMarshal.CreateSpan(ref this, 1)));
    }

    /// <summary>Unkeyed BLAKE2s of <paramref name="input"/> with a digest of <c>output.Length</c> (1..32) bytes.</summary>
    /// <exception cref="ArgumentException"><paramref name="output"/> is not 1..32 bytes long.</exception>
    public static void Hash(ReadOnlySpan<byte> input, Span<byte> output)
    {
        var state = new Blake2s(output.Length);
        state.Update(input);
        state.Final(output);
    }

    /// <summary>
    /// Keyed BLAKE2s (MAC) of <paramref name="input"/> under <paramref name="key"/> (0..32 bytes) with a digest of
    /// <c>output.Length</c> (1..32) bytes. WireGuard's <c>Mac(key, input)</c> is this with a 16-byte output.
    /// </summary>
    /// <exception cref="ArgumentException">A length is out of range.</exception>
    public static void KeyedHash(ReadOnlySpan<byte> key, ReadOnlySpan<byte> input, Span<byte> output)
    {
        var state = new Blake2s(output.Length, key);
        state.Update(input);
        state.Final(output);
    }

    private static ReadOnlySpan<uint> IV =>
    [
        0x6A09E667u, 0xBB67AE85u, 0x3C6EF372u, 0xA54FF53Au,
        0x510E527Fu, 0x9B05688Cu, 0x1F83D9ABu, 0x5BE0CD19u,
    ];

    // RFC 7693 §2.7: message word schedule for the 10 rounds.
    private static ReadOnlySpan<byte> Sigma =>
    [
        0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15,
        14, 10, 4, 8, 9, 15, 13, 6, 1, 12, 0, 2, 11, 7, 5, 3,
        11, 8, 12, 0, 5, 2, 15, 13, 10, 14, 3, 6, 7, 1, 9, 4,
        7, 9, 3, 1, 13, 12, 11, 14, 2, 6, 5, 10, 4, 0, 15, 8,
        9, 0, 5, 7, 2, 4, 10, 15, 14, 1, 11, 12, 6, 8, 3, 13,
        2, 12, 6, 10, 0, 11, 8, 3, 4, 13, 7, 5, 15, 14, 1, 9,
        12, 5, 1, 15, 14, 13, 4, 10, 0, 7, 6, 3, 9, 2, 8, 11,
        13, 11, 7, 14, 12, 1, 3, 9, 5, 0, 15, 4, 8, 6, 2, 10,
        6, 15, 14, 9, 11, 3, 0, 8, 12, 2, 13, 7, 1, 4, 10, 5,
        10, 2, 8, 4, 7, 6, 1, 5, 15, 11, 9, 14, 3, 12, 13, 0,
    ];

    [InlineArray(16)]
    private struct MessageWords
    {
        private uint _e0;
    }

    /// <summary>Compression function F (RFC 7693 §3.2); <paramref name="t"/> is the byte count including this block.</summary>
    private static void Compress(ref StateWords h, ReadOnlySpan<byte> block, ulong t, bool last)
    {
        MessageWords mw = default;
        Span<uint> m = mw;
        for (int i = 0; i < 16; i++)
        {
            m[i] = BinaryPrimitives.ReadUInt32LittleEndian(block[(4 * i)..]);
        }

        ReadOnlySpan<uint> iv = IV;
        uint v0 = h[0], v1 = h[1], v2 = h[2], v3 = h[3], v4 = h[4], v5 = h[5], v6 = h[6], v7 = h[7];
        uint v8 = iv[0], v9 = iv[1], v10 = iv[2], v11 = iv[3];
        uint v12 = iv[4] ^ (uint)t, v13 = iv[5] ^ (uint)(t >> 32);
        uint v14 = last ? ~iv[6] : iv[6];
        uint v15 = iv[7];

        ReadOnlySpan<byte> sigma = Sigma;
        for (int r = 0; r < 10; r++)
        {
            ReadOnlySpan<byte> s = sigma.Slice(16 * r, 16);
            G(ref v0, ref v4, ref v8, ref v12, m[s[0]], m[s[1]]);
            G(ref v1, ref v5, ref v9, ref v13, m[s[2]], m[s[3]]);
            G(ref v2, ref v6, ref v10, ref v14, m[s[4]], m[s[5]]);
            G(ref v3, ref v7, ref v11, ref v15, m[s[6]], m[s[7]]);
            G(ref v0, ref v5, ref v10, ref v15, m[s[8]], m[s[9]]);
            G(ref v1, ref v6, ref v11, ref v12, m[s[10]], m[s[11]]);
            G(ref v2, ref v7, ref v8, ref v13, m[s[12]], m[s[13]]);
            G(ref v3, ref v4, ref v9, ref v14, m[s[14]], m[s[15]]);
        }

        h[0] ^= v0 ^ v8;
        h[1] ^= v1 ^ v9;
        h[2] ^= v2 ^ v10;
        h[3] ^= v3 ^ v11;
        h[4] ^= v4 ^ v12;
        h[5] ^= v5 ^ v13;
        h[6] ^= v6 ^ v14;
        h[7] ^= v7 ^ v15;

        // The message words may hold key material (keyed mode, HMAC pads).
        CryptographicOperations.ZeroMemory(MemoryMarshal.AsBytes(m));
    }

    /// <summary>Mixing function G (RFC 7693 §3.1) with rotations 16, 12, 8, 7.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void G(ref uint a, ref uint b, ref uint c, ref uint d, uint x, uint y)
    {
        a = a + b + x;
        d = BitOperations.RotateRight(d ^ a, 16);
        c += d;
        b = BitOperations.RotateRight(b ^ c, 12);
        a = a + b + y;
        d = BitOperations.RotateRight(d ^ a, 8);
        c += d;
        b = BitOperations.RotateRight(b ^ c, 7);
    }
}
