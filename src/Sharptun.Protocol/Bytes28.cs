using System.Buffers.Binary;
using System.Diagnostics.CodeAnalysis;
using System.Runtime.CompilerServices;

namespace Sharptun.Protocol;

/// <summary>28 bytes by value.</summary>
[InlineArray(28)]
public struct Bytes28 : IEquatable<Bytes28>
{
    private byte _e0;

    public Bytes28(ReadOnlySpan<byte> source) => source[..28].CopyTo(this);

    [UnscopedRef]
    public Span<byte> AsSpan() => this;

    public readonly bool Equals(Bytes28 other) => ((ReadOnlySpan<byte>)this).SequenceEqual(other);

    public override readonly bool Equals(object? obj) => obj is Bytes28 b && Equals(b);

    public override readonly int GetHashCode() => BinaryPrimitives.ReadInt32LittleEndian(this);

    public readonly void CopyTo(Span<byte> destination) => ((ReadOnlySpan<byte>)this).CopyTo(destination);
}
