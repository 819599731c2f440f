using System.Diagnostics.CodeAnalysis;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Security.Cryptography;

namespace Sharptun.Protocol;

/// <summary>
/// A 32-byte WireGuard key (static public key, private key or preshared key) as a value type, so peers can be
/// looked up by public key without allocating. Equality is constant-time.
/// </summary>
[StructLayout(LayoutKind.Sequential)]
public readonly struct WireGuardKey : IEquatable<WireGuardKey>
{
    /// <summary>Key length in bytes.</summary>
    public const int Size = 32;

    private readonly Bytes32 _bytes;

    /// <summary>Copies a 32-byte key.</summary>
    /// <exception cref="ArgumentException">The span is not 32 bytes long.</exception>
    public WireGuardKey(ReadOnlySpan<byte> key)
    {
        if (key.Length != Size)
        {
            throw new ArgumentException("A WireGuard key is 32 bytes.", nameof(key));
        }

        key.CopyTo(_bytes);
    }

    /// <summary>The key bytes (a read-only view of this value's storage).</summary>
    [UnscopedRef]
    public ReadOnlySpan<byte> Span => _bytes;

    /// <summary>True when all 32 bytes are zero (wg's "no key").</summary>
    public bool IsZero
    {
        get
        {
            ReadOnlySpan<byte> s = _bytes;
            return s.IndexOfAnyExcept((byte)0) < 0;
        }
    }

    /// <summary>Parses standard base64 (44 characters), as printed by <c>wg</c>.</summary>
    public static bool TryParseBase64(string text, out WireGuardKey key)
    {
        Span<byte> raw = stackalloc byte[33];
        if (!Convert.TryFromBase64String(text, raw, out var written) || written != Size)
        {
            key = default;
            return false;
        }

        key = new WireGuardKey(raw[..Size]);
        return true;
    }

    /// <summary>Parses 64 hex digits, as used by the UAPI.</summary>
    public static bool TryParseHex(string text, out WireGuardKey key)
    {
        key = default;
        if (text.Length != 64)
        {
            return false;
        }

        try
        {
            key = new WireGuardKey(Convert.FromHexString(text));
            return true;
        }
        catch (FormatException)
        {
            return false;
        }
    }

    /// <summary>Standard base64.</summary>
    public string ToBase64() => Convert.ToBase64String(_bytes);

    /// <summary>Lower-case hex, as used by the UAPI.</summary>
    public string ToHex() => Convert.ToHexStringLower(_bytes);

    /// <summary>Base64 of the key. Do not call this on private or preshared keys you do not mean to print.</summary>
    public override string ToString() => ToBase64();

    /// <inheritdoc/>
    public bool Equals(WireGuardKey other) => CryptographicOperations.FixedTimeEquals(Span, other.Span);

    /// <inheritdoc/>
    public override bool Equals(object? obj) => obj is WireGuardKey k && Equals(k);

    /// <inheritdoc/>
    public override int GetHashCode()
    {
        // Keys are uniformly random, so the first bytes already hash well.
        return MemoryMarshal.Read<int>(Span);
    }

    public static bool operator ==(WireGuardKey left, WireGuardKey right) => left.Equals(right);

    public static bool operator !=(WireGuardKey left, WireGuardKey right) => !left.Equals(right);

    [InlineArray(Size)]
    private struct Bytes32
    {
        private byte _e0;
    }
}
