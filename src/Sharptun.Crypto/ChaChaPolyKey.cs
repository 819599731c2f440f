using System.Security.Cryptography;

namespace Sharptun.Crypto;

/// <summary>
/// A ChaCha20-Poly1305 key used for many messages with the WireGuard nonce (whitepaper §5.4.6): a transport key.
/// Unlike the static <see cref="ChaChaPoly"/> methods, large messages go to OpenSSL through contexts owned by this
/// object (a small pool), never through the per-thread cache, so <see cref="Dispose"/> removes every copy of the key:
/// the managed bytes are wiped and each OpenSSL context is freed (EVP_CIPHER_CTX_free clears the cipher state).
/// </summary>
/// <remarks>
/// <see cref="Encrypt"/> and <see cref="Decrypt"/> are thread-safe and allocate nothing once a context per concurrent
/// large-message thread exists (a thread finding every pooled context busy creates one; the pool keeps up to
/// <see cref="PoolSize"/>). <see cref="Dispose"/> must not overlap a call in flight; the owner guarantees that
/// (Sharptun.Protocol's Keypair disposes only after its last user has left). A call after disposal throws.
/// </remarks>
public sealed class ChaChaPolyKey : IDisposable
{
    /// <summary>OpenSSL contexts kept for reuse (one per concurrent thread that sends or receives large messages).</summary>
    internal static readonly int PoolSize = Math.Clamp(Environment.ProcessorCount, 2, 16);

    private readonly byte[] _key = new byte[ChaChaPoly.KeySize];
    private readonly ChaCha20Poly1305?[] _pool = new ChaCha20Poly1305?[PoolSize];
    private volatile bool _disposed;

    /// <summary>Copies a 32-byte key (the caller wipes its own copy).</summary>
    public ChaChaPolyKey(ReadOnlySpan<byte> key)
    {
        if (key.Length != ChaChaPoly.KeySize)
        {
            throw new ArgumentException("Key must be 32 bytes.", nameof(key));
        }

        key.CopyTo(_key);
    }

    /// <summary>
    /// Encrypts <paramref name="plaintext"/> into <paramref name="ciphertext"/> (same length; may be the same span) with the
    /// nonce 0³² ‖ LE64(<paramref name="counter"/>) and no associated data, and writes the 16-byte tag.
    /// Same output as <see cref="ChaChaPoly.Encrypt(ReadOnlySpan{byte}, ulong, ReadOnlySpan{byte}, Span{byte}, Span{byte}, ReadOnlySpan{byte})"/>.
    /// </summary>
    public void Encrypt(ulong counter, ReadOnlySpan<byte> plaintext, Span<byte> ciphertext, Span<byte> tag)
    {
        ChaChaPoly.CheckArguments(_key, plaintext, ciphertext, tag.Length);
        ObjectDisposedException.ThrowIf(_disposed, this);
        if (plaintext.Length >= ChaChaPoly.OpenSslThreshold && ChaChaPolyOpenSsl.IsSupported)
        {
            Span<byte> nonce = stackalloc byte[ChaChaPoly.NonceSize];
            ChaChaPoly.WireGuardNonce(counter, nonce);
            var context = Rent();
            try
            {
                context.Encrypt(nonce, plaintext, ciphertext, tag);
            }
            finally
            {
                Return(context);
            }

            return;
        }

        ChaChaPolyCore.Seal(_key, 0, (uint)counter, (uint)(counter >> 32), plaintext, ciphertext, tag, default, ChaCha20.BestPath);
    }

    /// <summary>
    /// Verifies <paramref name="tag"/> and decrypts (nonce as in <see cref="Encrypt"/>, no associated data). False, with
    /// <paramref name="plaintext"/> zeroed, when the tag does not verify.
    /// </summary>
    public bool Decrypt(ulong counter, ReadOnlySpan<byte> ciphertext, ReadOnlySpan<byte> tag, Span<byte> plaintext)
    {
        ChaChaPoly.CheckArguments(_key, ciphertext, plaintext, tag.Length);
        ObjectDisposedException.ThrowIf(_disposed, this);
        if (ciphertext.Length >= ChaChaPoly.OpenSslThreshold && ChaChaPolyOpenSsl.IsSupported)
        {
            Span<byte> nonce = stackalloc byte[ChaChaPoly.NonceSize];
            ChaChaPoly.WireGuardNonce(counter, nonce);
            var context = Rent();
            try
            {
                context.Decrypt(nonce, ciphertext, tag, plaintext);
                return true;
            }
            catch (AuthenticationTagMismatchException)
            {
                CryptographicOperations.ZeroMemory(plaintext);
                return false;
            }
            finally
            {
                Return(context);
            }
        }

        return ChaChaPolyCore.Open(_key, 0, (uint)counter, (uint)(counter >> 32), ciphertext, tag, plaintext, default, ChaCha20.BestPath);
    }

    /// <summary>Wipes the key and frees every pooled OpenSSL context. Idempotent.</summary>
    public void Dispose()
    {
        // The flag is written before the pool is swept (Interlocked.Exchange is a full fence); Return checks the flag
        // after its CompareExchange, so a context can never stay behind in the pool.
        _disposed = true;
        for (var i = 0; i < _pool.Length; i++)
        {
            Interlocked.Exchange(ref _pool[i], null)?.Dispose();
        }

        CryptographicOperations.ZeroMemory(_key);
    }

    /// <summary>True once <see cref="Dispose"/> ran: the key bytes are zero and no OpenSSL context is left.</summary>
    public bool IsDisposed => _disposed;

    /// <summary>Test hook: OpenSSL contexts currently pooled (each holds a copy of the key).</summary>
    internal int PooledContexts
    {
        get
        {
            var n = 0;
            for (var i = 0; i < _pool.Length; i++)
            {
                n += Volatile.Read(ref _pool[i]) is null ? 0 : 1;
            }

            return n;
        }
    }

    /// <summary>Test hook: true when the managed key bytes are all zero.</summary>
    internal bool IsWiped => _key.AsSpan().IndexOfAnyExcept((byte)0) < 0;

    private ChaCha20Poly1305 Rent()
    {
        for (var i = 0; i < _pool.Length; i++)
        {
            if (Volatile.Read(ref _pool[i]) is not null && Interlocked.Exchange(ref _pool[i], null) is { } pooled)
            {
                return pooled;
            }
        }

        return new ChaCha20Poly1305(_key); // one per concurrent thread; kept by Return
    }

    private void Return(ChaCha20Poly1305 context)
    {
        for (var i = 0; i < _pool.Length; i++)
        {
            if (Interlocked.CompareExchange(ref _pool[i], context, null) is null)
            {
                if (_disposed)
                {
                    Interlocked.Exchange(ref _pool[i], null)?.Dispose();
                }

                return;
            }
        }

        context.Dispose();
    }
}
