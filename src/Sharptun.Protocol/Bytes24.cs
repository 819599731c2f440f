using System.Buffers.Binary;
using System.Diagnostics.CodeAnalysis;
using System.Runtime.CompilerServices;

namespace Sharptun.Protocol;

/// <summary>24 bytes by value.</summary>
[InlineArray(24)]
public struct Bytes24 : IEquatable<Bytes24>
{
    private byte _e0;

    public Bytes24(ReadOnlySpan<byte> source) => source[..24].CopyTo(this);

    [UnscopedRef]
    public Span<byte> AsSpan() => this;

    public readonly bool Equals(Bytes24 other) => ((ReadOnlySpan<byte>)this).SequenceEqual(other);

    public override readonly bool Equals(object? obj) => obj is Bytes24 b && Equals(b);

    public override readonly int GetHashCode() => BinaryPrimitives.ReadInt32LittleEndian(this);

    public readonly void CopyTo(Span<byte> destination) => ((ReadOnlySpan<byte>)this).CopyTo(destination);
}
