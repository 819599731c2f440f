using System.Buffers.Binary;

namespace Sharptun.Crypto;

/// <summary>
/// TAI64N timestamps as WireGuard sends them in the handshake initiation (whitepaper §5.4.2): 8 bytes big-endian
/// seconds label followed by 4 bytes big-endian nanoseconds. Like wireguard-go (<c>tai64n.go</c>) and the Linux
/// kernel (<c>noise.c</c>), the label is 2^62 + 10 + Unix seconds (the TAI64 epoch offset with the 10 s TAI−UTC
/// difference of 1970, no further leap seconds), so our timestamps compare correctly against theirs.
/// Thread-safe; no clock is read here (callers pass wall-clock time in).
/// </summary>
public static class Tai64n
{
    /// <summary>Size of a TAI64N label in bytes.</summary>
    public const int Size = 12;

    /// <summary>2^62 + 10: the TAI64 label of the Unix epoch as used by wireguard-go and Linux.</summary>
    internal const ulong Base = 0x400000000000000aUL;

    /// <summary>
    /// wireguard-go and Linux clear the low 24 bits of the nanoseconds (about 16.8 ms granularity) so the timestamp
    /// does not leak a fine-grained clock; <see cref="Whiten"/> applies the same mask.
    /// </summary>
    internal const int WhitenerMask = 0x1000000 - 1;

    /// <summary>Writes the TAI64N label of <paramref name="unixSeconds"/> + <paramref name="nanoseconds"/> (exact, not whitened).</summary>
    /// <exception cref="ArgumentException"><paramref name="destination"/> is shorter than <see cref="Size"/>.</exception>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="nanoseconds"/> is not 0..999,999,999.</exception>
    public static void Write(Span<byte> destination, long unixSeconds, int nanoseconds)
    {
        if (destination.Length < Size)
        {
            throw new ArgumentException($"The destination must hold {Size} bytes.", nameof(destination));
        }

        ArgumentOutOfRangeException.ThrowIfNegative(nanoseconds);
        ArgumentOutOfRangeException.ThrowIfGreaterThan(nanoseconds, 999_999_999);
        BinaryPrimitives.WriteUInt64BigEndian(destination, unchecked(Base + (ulong)unixSeconds));
        BinaryPrimitives.WriteUInt32BigEndian(destination[8..], (uint)nanoseconds);
    }

    /// <summary>Clears the low 24 bits of <paramref name="nanoseconds"/>, as wireguard-go does before <see cref="Write"/>.</summary>
    public static int Whiten(int nanoseconds) => nanoseconds & ~WhitenerMask;

    /// <summary>
    /// Compares two labels as big-endian numbers (what WireGuard uses to reject replayed initiations, whitepaper §5.1):
    /// negative if <paramref name="a"/> is earlier, zero if equal, positive if later.
    /// </summary>
    /// <exception cref="ArgumentException">A label is not <see cref="Size"/> bytes long.</exception>
    public static int Compare(ReadOnlySpan<byte> a, ReadOnlySpan<byte> b)
    {
        if (a.Length != Size || b.Length != Size)
        {
            throw new ArgumentException($"TAI64N labels are {Size} bytes long.");
        }

        return Math.Sign(a.SequenceCompareTo(b));
    }
}
