using System.Buffers.Binary;
using System.Diagnostics.CodeAnalysis;
using System.Runtime.CompilerServices;

namespace Sharptun.Protocol;

/// <summary>48 bytes by value.</summary>
[InlineArray(48)]
public struct Bytes48 : IEquatable<Bytes48>
{
    private byte _e0;

    public Bytes48(ReadOnlySpan<byte> source) => source[..48].CopyTo(this);

    [UnscopedRef]
    public Span<byte> AsSpan() => this;

    public readonly bool Equals(Bytes48 other) => ((ReadOnlySpan<byte>)this).SequenceEqual(other);

    public override readonly bool Equals(object? obj) => obj is Bytes48 b && Equals(b);

    public override readonly int GetHashCode() => BinaryPrimitives.ReadInt32LittleEndian(this);

    public readonly void CopyTo(Span<byte> destination) => ((ReadOnlySpan<byte>)this).CopyTo(destination);
}
