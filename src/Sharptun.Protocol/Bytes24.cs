using System.Buffers.Binary;
using System.Diagnostics.CodeAnalysis;
using System.Runtime.CompilerServices;

namespace Sharptun.Protocol;

/// <summary>24 bytes by value.</summary>
[InlineArray(24)]
public struct Bytes24 : IEquatable<Bytes24>
{
    private byte _e0;

    /// <summary>Copies the first 24 bytes of <paramref name="source"/>, which must hold at least 24.</summary>
    public Bytes24(ReadOnlySpan<byte> source) => source[..24].CopyTo(this);

    /// <summary>The bytes, writable in place.</summary>
    [UnscopedRef]
    public Span<byte> AsSpan() => this;

    /// <summary>True when all bytes are equal.</summary>
    public readonly bool Equals(Bytes24 other) => ((ReadOnlySpan<byte>)this).SequenceEqual(other);

    /// <summary>True when <paramref name="obj"/> is a <see cref="Bytes24"/> with the same bytes.</summary>
    public override readonly bool Equals(object? obj) => obj is Bytes24 b && Equals(b);

    /// <summary>A hash of the first four bytes.</summary>
    public override readonly int GetHashCode() => BinaryPrimitives.ReadInt32LittleEndian(this);

    /// <summary>Copies the 24 bytes to <paramref name="destination"/>.</summary>
    public readonly void CopyTo(Span<byte> destination) => ((ReadOnlySpan<byte>)this).CopyTo(destination);
}
