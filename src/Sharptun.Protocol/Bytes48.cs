using System.Buffers.Binary;
using System.Diagnostics.CodeAnalysis;
using System.Runtime.CompilerServices;

namespace Sharptun.Protocol;

/// <summary>48 bytes by value.</summary>
[InlineArray(48)]
public struct Bytes48 : IEquatable<Bytes48>
{
    private byte _e0;

    /// <summary>Copies the first 48 bytes of <paramref name="source"/>, which must hold at least 48.</summary>
    public Bytes48(ReadOnlySpan<byte> source) => source[..48].CopyTo(this);

    /// <summary>The bytes, writable in place.</summary>
    [UnscopedRef]
    public Span<byte> AsSpan() => this;

    /// <summary>True when all bytes are equal.</summary>
    public readonly bool Equals(Bytes48 other) => ((ReadOnlySpan<byte>)this).SequenceEqual(other);

    /// <summary>True when <paramref name="obj"/> is a <see cref="Bytes48"/> with the same bytes.</summary>
    public override readonly bool Equals(object? obj) => obj is Bytes48 b && Equals(b);

    /// <summary>A hash of the first four bytes.</summary>
    public override readonly int GetHashCode() => BinaryPrimitives.ReadInt32LittleEndian(this);

    /// <summary>Copies the 48 bytes to <paramref name="destination"/>.</summary>
    public readonly void CopyTo(Span<byte> destination) => ((ReadOnlySpan<byte>)this).CopyTo(destination);
}
