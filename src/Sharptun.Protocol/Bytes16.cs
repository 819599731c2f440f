using System.Buffers.Binary;
using System.Diagnostics.CodeAnalysis;
using System.Runtime.CompilerServices;

namespace Sharptun.Protocol;

/// <summary>16 bytes by value.</summary>
[InlineArray(16)]
public struct Bytes16 : IEquatable<Bytes16>
{
    private byte _e0;

    /// <summary>Copies the first 16 bytes of <paramref name="source"/>, which must hold at least 16.</summary>
    public Bytes16(ReadOnlySpan<byte> source) => source[..16].CopyTo(this);

    /// <summary>The bytes, writable in place.</summary>
    [UnscopedRef]
    public Span<byte> AsSpan() => this;

    /// <summary>True when all bytes are equal.</summary>
    public readonly bool Equals(Bytes16 other) => ((ReadOnlySpan<byte>)this).SequenceEqual(other);

    /// <summary>True when <paramref name="obj"/> is a <see cref="Bytes16"/> with the same bytes.</summary>
    public override readonly bool Equals(object? obj) => obj is Bytes16 b && Equals(b);

    /// <summary>A hash of the first four bytes.</summary>
    public override readonly int GetHashCode() => BinaryPrimitives.ReadInt32LittleEndian(this);

    /// <summary>Copies the 16 bytes to <paramref name="destination"/>.</summary>
    public readonly void CopyTo(Span<byte> destination) => ((ReadOnlySpan<byte>)this).CopyTo(destination);
}
