using System.Security.Cryptography;

namespace Sharptun.Protocol;

/// <summary>
/// A 32-byte WireGuard key (private, public or preshared) with wg's text forms: base64 (44 characters,
/// config files and the CLI) and lowercase hex (64 characters, the UAPI).
/// </summary>
/// <remarks>
/// <para>The one key type of every layer (protocol core, device, config, UAPI, CLI); it lives in the root namespace so
/// every <c>Sharptun.*</c> namespace sees it. Usable as a dictionary key (constant-time equality, hash of the first
/// bytes, which are uniformly random for public keys).</para>
/// <para>The bytes live in a private array that copies of this struct share; the key is immutable except for
/// <see cref="Clear"/>/<see cref="Dispose"/>, which zero that array for every copy (do this for private and
/// preshared keys when they are no longer needed). <c>default(Key)</c> is "no key": <see cref="IsDefault"/> is true
/// and <see cref="AsSpan"/> is empty.</para>
/// <para><see cref="Equals(Key)"/> runs in constant time (CryptographicOperations.FixedTimeEquals).
/// <see cref="ToString"/> returns the base64 form, so never log a private key through it.</para>
/// </remarks>
public readonly struct Key : IEquatable<Key>, IDisposable
{
    /// <summary>Key length in bytes.</summary>
    public const int Size = 32;

    /// <summary>Length of the base64 form (with one '=' of padding).</summary>
    public const int Base64Length = 44;

    /// <summary>Length of the hex form.</summary>
    public const int HexLength = 64;

    private readonly byte[]? _bytes;

    /// <summary>Copies 32 bytes into a new key.</summary>
    /// <exception cref="ArgumentException"><paramref name="bytes"/> is not 32 bytes long.</exception>
    public Key(ReadOnlySpan<byte> bytes)
    {
        if (bytes.Length != Size)
        {
            throw new ArgumentException("A key is 32 bytes.", nameof(bytes));
        }

        _bytes = bytes.ToArray();
    }

    private Key(byte[] owned) => _bytes = owned;

    /// <summary>True for <c>default(Key)</c> (no key).</summary>
    public bool IsDefault => _bytes is null;

    /// <summary>True when all 32 bytes are zero (constant time). In the UAPI an all-zero key means "none".</summary>
    public bool IsZero
    {
        get
        {
            if (_bytes is null)
            {
                return true;
            }

            var acc = 0;
            foreach (var b in _bytes)
            {
                acc |= b;
            }

            return acc == 0;
        }
    }

    /// <summary>The key's bytes (empty for <c>default</c>). Valid until <see cref="Clear"/>.</summary>
    public ReadOnlySpan<byte> AsSpan() => _bytes;

    /// <summary>A new random, clamped X25519 private key (what <c>wg genkey</c> produces).</summary>
    public static Key GeneratePrivateKey()
    {
        var bytes = new byte[Size];
        Sharptun.Crypto.X25519.GeneratePrivateKey(bytes);
        return new Key(bytes);
    }

    /// <summary>The X25519 public key of this private key (what <c>wg pubkey</c> prints).</summary>
    /// <exception cref="InvalidOperationException">This is <c>default(Key)</c>.</exception>
    public Key DerivePublicKey()
    {
        if (_bytes is null)
        {
            throw new InvalidOperationException("No key.");
        }

        var pub = new byte[Size];
        Sharptun.Crypto.X25519.PublicKey(_bytes, pub);
        return new Key(pub);
    }

    /// <summary>Creates a key from 32 random bytes (a preshared key, or an unclamped private key).</summary>
    public static Key Random()
    {
        var bytes = new byte[Size];
        RandomNumberGenerator.Fill(bytes);
        return new Key(bytes);
    }

    /// <summary>
    /// Parses wg's base64 form exactly as wg's key_from_base64 does: exactly 44 characters of the standard
    /// alphabet, the last one '=', and the unused low bits of the 43rd character zero (so each key has one
    /// spelling). No whitespace is accepted. Never throws.
    /// </summary>
    public static bool TryParse(ReadOnlySpan<char> base64, out Key key)
    {
        key = default;
        if (base64.Length != Base64Length || base64[Base64Length - 1] != '=')
        {
            return false;
        }

        var bytes = new byte[Size];
        var bad = 0;
        for (var group = 0; group < 10; group++)
        {
            var v = Decode4(base64[(group * 4)..], 4, ref bad);
            bytes[group * 3] = (byte)(v >> 16);
            bytes[(group * 3) + 1] = (byte)(v >> 8);
            bytes[(group * 3) + 2] = (byte)v;
        }

        var last = Decode4(base64[40..], 3, ref bad);
        bad |= last & 0xFF; // non-canonical trailing bits
        bytes[30] = (byte)(last >> 16);
        bytes[31] = (byte)(last >> 8);
        if (bad != 0)
        {
            CryptographicOperations.ZeroMemory(bytes);
            return false;
        }

        key = new Key(bytes);
        return true;
    }

    /// <summary>Parses the UAPI's 64-character hex form (either case, like Go's hex.DecodeString). Never throws.</summary>
    public static bool TryParseHex(ReadOnlySpan<char> hex, out Key key)
    {
        key = default;
        if (hex.Length != HexLength)
        {
            return false;
        }

        var bytes = new byte[Size];
        var bad = 0;
        for (var i = 0; i < Size; i++)
        {
            var hi = HexValue(hex[2 * i]);
            var lo = HexValue(hex[(2 * i) + 1]);
            bad |= (hi | lo) >> 8;
            bytes[i] = (byte)((hi << 4) | (lo & 0xF));
        }

        if (bad != 0)
        {
            CryptographicOperations.ZeroMemory(bytes);
            return false;
        }

        key = new Key(bytes);
        return true;
    }

    /// <summary>The 44-character base64 form (empty string for <c>default</c>).</summary>
    public override string ToString() => _bytes is null ? string.Empty : Convert.ToBase64String(_bytes);

    /// <summary>The 64-character lowercase hex form used by the UAPI (empty string for <c>default</c>).</summary>
    public string ToHex() => _bytes is null ? string.Empty : Convert.ToHexStringLower(_bytes);

    /// <summary>
    /// A new key with X25519 clamping applied (RFC 7748 §5: clear bits 0-2 and 255, set bit 254), as the kernel
    /// and wireguard-go store a private key. An all-zero key ("none" in the UAPI) is copied unchanged.
    /// </summary>
    public Key Clamped()
    {
        var bytes = AsSpan().ToArray();
        if (bytes.Length == Size && !IsZero)
        {
            bytes[0] &= 248;
            bytes[31] = (byte)((bytes[31] & 127) | 64);
        }

        return bytes.Length == Size ? new Key(bytes) : default;
    }

    /// <summary>
    /// An independent copy (its own array), for a holder that must outlive <see cref="Clear"/> on the original —
    /// e.g. a device keeping a key from a change set that the caller wipes afterwards.
    /// </summary>
    public Key Copy() => _bytes is null ? default : new Key(_bytes.AsSpan());

    /// <summary>Zeroes the key's bytes (shared by every copy of this struct).</summary>
    public void Clear()
    {
        if (_bytes is not null)
        {
            CryptographicOperations.ZeroMemory(_bytes);
        }
    }

    /// <summary>Same as <see cref="Clear"/>.</summary>
    public void Dispose() => Clear();

    /// <summary>Constant-time comparison of the 32 bytes; two <c>default</c> keys are equal.</summary>
    public bool Equals(Key other)
    {
        if (_bytes is null || other._bytes is null)
        {
            return _bytes is null && other._bytes is null;
        }

        return CryptographicOperations.FixedTimeEquals(_bytes, other._bytes);
    }

    /// <inheritdoc/>
    public override bool Equals(object? obj) => obj is Key other && Equals(other);

    /// <inheritdoc/>
    public override int GetHashCode() => _bytes is null ? 0 : BitConverter.ToInt32(_bytes, 0);

    /// <summary>Constant-time equality.</summary>
    public static bool operator ==(Key left, Key right) => left.Equals(right);

    /// <summary>Constant-time inequality.</summary>
    public static bool operator !=(Key left, Key right) => !left.Equals(right);

    // Branch-free base64 decode of `count` characters (RFC 4648 standard alphabet); sets bad != 0 on a bad char.
    private static int Decode4(ReadOnlySpan<char> src, int count, ref int bad)
    {
        var v = 0;
        for (var i = 0; i < 4; i++)
        {
            var c = i < count ? src[i] : 'A';
            var d = Base64Value(c);
            bad |= d >> 8;
            v = (v << 6) | (d & 0x3F);
        }

        return v;
    }

    // Returns 0..63, or a value >= 0x100 for a character outside the alphabet, without branching on the input
    // (the same arithmetic range trick as wg's encoding.c).
    private static int Base64Value(char ch)
    {
        if (ch > 0x7F)
        {
            return 0x1FF; // the arithmetic below assumes 7-bit input
        }

        int c = ch;
        var ret = -1;
        ret += (((0x40 - c) & (c - 0x5b)) >> 8) & (c - 64);      // A-Z → 1..26
        ret += (((0x60 - c) & (c - 0x7b)) >> 8) & (c - 70);      // a-z → 27..52
        ret += (((0x2f - c) & (c - 0x3a)) >> 8) & (c + 5);       // 0-9 → 53..62
        ret += (((0x2a - c) & (c - 0x2c)) >> 8) & 63;            // +   → 63
        ret += (((0x2e - c) & (c - 0x30)) >> 8) & 64;            // /   → 64
        return ret & 0x1FF; // -1 (invalid) becomes 0x1FF
    }

    private static int HexValue(char ch)
    {
        if (ch > 0x7F)
        {
            return 0x1FF;
        }

        int c = ch;
        var ret = -1;
        ret += (((0x2f - c) & (c - 0x3a)) >> 8) & (c - 47);      // 0-9 → 1..10
        c |= 0x20;
        ret += (((0x60 - c) & (c - 0x67)) >> 8) & (c - 86);      // a-f → 11..16
        return ret & 0x1FF;
    }
}
