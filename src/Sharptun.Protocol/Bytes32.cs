using System.Buffers.Binary;
using System.Diagnostics.CodeAnalysis;
using System.Runtime.CompilerServices;

namespace Sharptun.Protocol;

/// <summary>32 bytes by value.</summary>
[InlineArray(32)]
public struct Bytes32 : IEquatable<Bytes32>
{
    private byte _e0;

    /// <summary>Copies the first 32 bytes of <paramref name="source"/>, which must hold at least 32.</summary>
    public Bytes32(ReadOnlySpan<byte> source) => source[..32].CopyTo(this);

    /// <summary>The bytes, writable in place.</summary>
    [UnscopedRef]
    public Span<byte> AsSpan() => this;

    /// <summary>True when all bytes are equal.</summary>
    public readonly bool Equals(Bytes32 other) => ((ReadOnlySpan<byte>)this).SequenceEqual(other);

    /// <summary>True when <paramref name="obj"/> is a <see cref="Bytes32"/> with the same bytes.</summary>
    public override readonly bool Equals(object? obj) => obj is Bytes32 b && Equals(b);

    /// <summary>A hash of the first four bytes.</summary>
    public override readonly int GetHashCode() => BinaryPrimitives.ReadInt32LittleEndian(this);

    /// <summary>Copies the 32 bytes to <paramref name="destination"/>.</summary>
    public readonly void CopyTo(Span<byte> destination) => ((ReadOnlySpan<byte>)this).CopyTo(destination);
}
