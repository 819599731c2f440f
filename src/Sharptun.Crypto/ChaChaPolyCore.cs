using System.Runtime.CompilerServices;
using System.Security.Cryptography;

namespace Sharptun.Crypto;

/// <summary>
/// The managed ChaCha20-Poly1305 AEAD construction (RFC 8439 §2.8) on already-validated arguments, with an explicit
/// ChaCha20 code path so tests and benchmarks can run every path on one machine.
/// </summary>
internal static class ChaChaPolyCore
{
    /// <summary>
    /// Blocks computed up front, side by side: block 0 (Poly1305 key) and the first data blocks. Eight on the AVX-512 path (two
    /// 4-block sets cost one latency), four on the others.
    /// </summary>
    private const int MaxHeadBlocks = 8;

    /// <summary>
    /// Seals <paramref name="plaintext"/> into <paramref name="ciphertext"/> (same length, may be the same span) and writes the tag.
    /// The nonce is given as its three little-endian words.
    /// </summary>
    [SkipLocalsInit] // every stack buffer is written before it is read
    public static void Seal(ReadOnlySpan<byte> key, uint n0, uint n1, uint n2, ReadOnlySpan<byte> plaintext, Span<byte> ciphertext,
        Span<byte> tag, ReadOnlySpan<byte> associatedData, ChaCha20Path path)
    {
        Span<byte> head = stackalloc byte[MaxHeadBlocks * ChaCha20.BlockSize];
        int headData = Head(key, n0, n1, n2, plaintext.Length, head, path);
        var mac = new Poly1305(head[..Poly1305.KeySize]);
        mac.UpdatePadded(associatedData);

        // RFC 8439 §2.8: the plaintext is encrypted from block counter 1.
        ChaCha20.XorBytes(plaintext[..headData], head[ChaCha20.BlockSize..], ciphertext[..headData]);
        CryptographicOperations.ZeroMemory(head);
        if (headData < plaintext.Length)
        {
            ChaCha20.Xor(key, 1 + (uint)(headData / ChaCha20.BlockSize), n0, n1, n2, plaintext[headData..], ciphertext[headData..], path);
        }

        mac.UpdatePadded(ciphertext);
        mac.UpdateLengths((ulong)associatedData.Length, (ulong)ciphertext.Length);
        mac.Finish(tag);
        mac.Clear();
    }

    /// <summary>
    /// Verifies the tag over <paramref name="ciphertext"/> and, only if it matches, decrypts into <paramref name="plaintext"/>
    /// (may be the same span). On mismatch, zeroes <paramref name="plaintext"/> and returns false.
    /// </summary>
    [SkipLocalsInit] // every stack buffer is written before it is read
    public static bool Open(ReadOnlySpan<byte> key, uint n0, uint n1, uint n2, ReadOnlySpan<byte> ciphertext, ReadOnlySpan<byte> tag,
        Span<byte> plaintext, ReadOnlySpan<byte> associatedData, ChaCha20Path path)
    {
        Span<byte> head = stackalloc byte[MaxHeadBlocks * ChaCha20.BlockSize];
        int headData = Head(key, n0, n1, n2, ciphertext.Length, head, path);
        var mac = new Poly1305(head[..Poly1305.KeySize]);
        mac.UpdatePadded(associatedData);
        mac.UpdatePadded(ciphertext);
        mac.UpdateLengths((ulong)associatedData.Length, (ulong)ciphertext.Length);
        Span<byte> expected = stackalloc byte[Poly1305.TagSize];
        mac.Finish(expected);
        mac.Clear();

        bool ok = CryptographicOperations.FixedTimeEquals(expected, tag);
        CryptographicOperations.ZeroMemory(expected);
        if (!ok)
        {
            CryptographicOperations.ZeroMemory(head);
            CryptographicOperations.ZeroMemory(plaintext);
            return false;
        }

        ChaCha20.XorBytes(ciphertext[..headData], head[ChaCha20.BlockSize..], plaintext[..headData]);
        CryptographicOperations.ZeroMemory(head);
        if (headData < ciphertext.Length)
        {
            ChaCha20.Xor(key, 1 + (uint)(headData / ChaCha20.BlockSize), n0, n1, n2, ciphertext[headData..], plaintext[headData..], path);
        }

        return true;
    }

    /// <summary>
    /// RFC 8439 §2.6 and §2.8: fills <paramref name="head"/> with keystream block 0 (its first 32 bytes are the one-time Poly1305 key)
    /// followed by as many of the next blocks as the message needs, computed side by side. Returns how many message bytes it
    /// covers: all of them, or a whole number of blocks.
    /// </summary>
    private static int Head(ReadOnlySpan<byte> key, uint n0, uint n1, uint n2, int messageLength, Span<byte> head, ChaCha20Path path)
    {
        int headBlocks = ChaCha20.Supported(path) == ChaCha20Path.Vector512 ? MaxHeadBlocks : MaxHeadBlocks / 2;
        int headData = Math.Min(messageLength, (headBlocks - 1) * ChaCha20.BlockSize);
        Span<byte> stream = head[..(ChaCha20.BlockSize + headData)];
        stream.Clear();
        ChaCha20.Xor(key, 0, n0, n1, n2, stream, stream, path);
        return headData;
    }
}
