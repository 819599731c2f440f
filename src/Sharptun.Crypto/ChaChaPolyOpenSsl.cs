using System.Security.Cryptography;

namespace Sharptun.Crypto;

/// <summary>
/// ChaCha20-Poly1305 through .NET's OpenSSL-backed <see cref="ChaCha20Poly1305"/>, used by <see cref="ChaChaPoly"/> for large
/// messages only (its ~1 µs fixed cost per call loses to the managed code below a few kilobytes; see docs/benchmarks.md).
/// </summary>
/// <remarks>
/// Instances are cached per thread, a few keys deep (WireGuard sends bursts per keypair), so steady-state calls allocate nothing.
/// A miss evicts the oldest entry round-robin, disposes it and wipes its key copy; only a thread that alternates between more
/// than <see cref="CacheSize"/> keys on consecutive large messages allocates per call. Key lookup compares every byte in constant
/// time; which entry matched is not secret. A tag mismatch surfaces as an exception inside the BCL; it is caught and turned into
/// <c>false</c>, so the failure path costs more than the managed one (acceptable: this path only serves large messages).
/// The cache keeps key copies until evicted, so long-lived secret keys that must be wiped on demand (WireGuard transport
/// keys) use <see cref="ChaChaPolyKey"/> instead, whose contexts live and die with the key.
/// </remarks>
internal static class ChaChaPolyOpenSsl
{
    public const int CacheSize = 4;

    public static bool IsSupported { get; } = ChaCha20Poly1305.IsSupported;

    [ThreadStatic]
    private static Cache? t_cache;

    private sealed class Cache
    {
        public readonly byte[] Keys = new byte[CacheSize * ChaChaPoly.KeySize];
        public readonly ChaCha20Poly1305?[] Instances = new ChaCha20Poly1305?[CacheSize];
        public int Next;
    }

    public static void Encrypt(ReadOnlySpan<byte> key, ReadOnlySpan<byte> nonce, ReadOnlySpan<byte> plaintext, Span<byte> ciphertext,
        Span<byte> tag, ReadOnlySpan<byte> associatedData)
    {
        Get(key).Encrypt(nonce, plaintext, ciphertext, tag, associatedData);
    }

    public static bool Decrypt(ReadOnlySpan<byte> key, ReadOnlySpan<byte> nonce, ReadOnlySpan<byte> ciphertext, ReadOnlySpan<byte> tag,
        Span<byte> plaintext, ReadOnlySpan<byte> associatedData)
    {
        try
        {
            Get(key).Decrypt(nonce, ciphertext, tag, plaintext, associatedData);
            return true;
        }
        catch (AuthenticationTagMismatchException)
        {
            CryptographicOperations.ZeroMemory(plaintext);
            return false;
        }
    }

    /// <summary>Disposes this thread's cached instances and wipes their keys (tests; threads that retire).</summary>
    public static void ClearThreadCache()
    {
        Cache? cache = t_cache;
        if (cache is null)
        {
            return;
        }

        for (int i = 0; i < CacheSize; i++)
        {
            cache.Instances[i]?.Dispose();
            cache.Instances[i] = null;
        }

        CryptographicOperations.ZeroMemory(cache.Keys);
    }

    /// <summary>Test hook: true when this thread's cache holds a context for <paramref name="key"/>.</summary>
    internal static bool ThreadCacheHolds(ReadOnlySpan<byte> key)
    {
        Cache? cache = t_cache;
        if (cache is null)
        {
            return false;
        }

        for (int i = 0; i < CacheSize; i++)
        {
            if (cache.Instances[i] is not null && cache.Keys.AsSpan(i * ChaChaPoly.KeySize, ChaChaPoly.KeySize).SequenceEqual(key))
            {
                return true;
            }
        }

        return false;
    }

    private static ChaCha20Poly1305 Get(ReadOnlySpan<byte> key)
    {
        Cache cache = t_cache ??= new Cache();
        for (int i = 0; i < CacheSize; i++)
        {
            ChaCha20Poly1305? instance = cache.Instances[i];
            if (instance is not null &&
                CryptographicOperations.FixedTimeEquals(cache.Keys.AsSpan(i * ChaChaPoly.KeySize, ChaChaPoly.KeySize), key))
            {
                return instance;
            }
        }

        int slot = cache.Next;
        cache.Next = (slot + 1) % CacheSize;
        cache.Instances[slot]?.Dispose();
        cache.Instances[slot] = null;
        Span<byte> keyCopy = cache.Keys.AsSpan(slot * ChaChaPoly.KeySize, ChaChaPoly.KeySize);
        var created = new ChaCha20Poly1305(key);
        key.CopyTo(keyCopy);
        cache.Instances[slot] = created;
        return created;
    }
}
