using System.Buffers.Binary;
using System.Diagnostics.CodeAnalysis;
using System.Runtime.CompilerServices;

namespace Sharptun.Protocol;

/// <summary>16 bytes by value.</summary>
[InlineArray(16)]
public struct Bytes16 : IEquatable<Bytes16>
{
    private byte _e0;

    public Bytes16(ReadOnlySpan<byte> source) => source[..16].CopyTo(this);

    [UnscopedRef]
    public Span<byte> AsSpan() => this;

    public readonly bool Equals(Bytes16 other) => ((ReadOnlySpan<byte>)this).SequenceEqual(other);

    public override readonly bool Equals(object? obj) => obj is Bytes16 b && Equals(b);

    public override readonly int GetHashCode() => BinaryPrimitives.ReadInt32LittleEndian(this);

    public readonly void CopyTo(Span<byte> destination) => ((ReadOnlySpan<byte>)this).CopyTo(destination);
}
