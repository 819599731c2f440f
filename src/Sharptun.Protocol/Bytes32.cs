using System.Buffers.Binary;
using System.Diagnostics.CodeAnalysis;
using System.Runtime.CompilerServices;

namespace Sharptun.Protocol;

/// <summary>32 bytes by value.</summary>
[InlineArray(32)]
public struct Bytes32 : IEquatable<Bytes32>
{
    private byte _e0;

    public Bytes32(ReadOnlySpan<byte> source) => source[..32].CopyTo(this);

    [UnscopedRef]
    public Span<byte> AsSpan() => this;

    public readonly bool Equals(Bytes32 other) => ((ReadOnlySpan<byte>)this).SequenceEqual(other);

    public override readonly bool Equals(object? obj) => obj is Bytes32 b && Equals(b);

    public override readonly int GetHashCode() => BinaryPrimitives.ReadInt32LittleEndian(this);

    public readonly void CopyTo(Span<byte> destination) => ((ReadOnlySpan<byte>)this).CopyTo(destination);
}
