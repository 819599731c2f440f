using System.Runtime.CompilerServices;

namespace Sharptun.NetStack.Wire;

/// <summary>
/// A TCP sequence number: arithmetic modulo 2^32, compared with the "serial number" rule of
/// RFC 9293 §3.4 (a &lt; b iff (int)(a - b) &lt; 0). Only meaningful for values less than 2^31 apart.
/// </summary>
internal readonly struct SeqNumber : IEquatable<SeqNumber>, IComparable<SeqNumber>
{
    public readonly uint Value;

    public SeqNumber(uint value) => Value = value;

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static SeqNumber operator +(SeqNumber a, int n) => new(unchecked(a.Value + (uint)n));

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static SeqNumber operator -(SeqNumber a, int n) => new(unchecked(a.Value - (uint)n));

    /// <summary>Signed distance a - b.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static int operator -(SeqNumber a, SeqNumber b) => unchecked((int)(a.Value - b.Value));

    public static bool operator <(SeqNumber a, SeqNumber b) => (a - b) < 0;
    public static bool operator >(SeqNumber a, SeqNumber b) => (a - b) > 0;
    public static bool operator <=(SeqNumber a, SeqNumber b) => (a - b) <= 0;
    public static bool operator >=(SeqNumber a, SeqNumber b) => (a - b) >= 0;
    public static bool operator ==(SeqNumber a, SeqNumber b) => a.Value == b.Value;
    public static bool operator !=(SeqNumber a, SeqNumber b) => a.Value != b.Value;

    public static SeqNumber Max(SeqNumber a, SeqNumber b) => a >= b ? a : b;
    public static SeqNumber Min(SeqNumber a, SeqNumber b) => a <= b ? a : b;

    public bool Equals(SeqNumber other) => Value == other.Value;
    public override bool Equals(object? obj) => obj is SeqNumber s && s.Value == Value;
    public override int GetHashCode() => (int)Value;
    public int CompareTo(SeqNumber other) => this - other;
    public override string ToString() => Value.ToString(System.Globalization.CultureInfo.InvariantCulture);
}
