using System.Runtime.CompilerServices;
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
        Run(counter, new Seal(plaintext, ciphertext, tag));
    }

    /// <summary>
    /// Verifies <paramref name="tag"/> and decrypts (nonce as in <see cref="Encrypt"/>, no associated data). False, with
    /// <paramref name="plaintext"/> zeroed, when the tag does not verify.
    /// </summary>
    public bool Decrypt(ulong counter, ReadOnlySpan<byte> ciphertext, ReadOnlySpan<byte> tag, Span<byte> plaintext)
    {
        ChaChaPoly.CheckArguments(_key, ciphertext, plaintext, tag.Length);
        return Run(counter, new Open(ciphertext, tag, plaintext));
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

    /// <summary>
    /// Runs one sealing or opening with the WireGuard nonce of <paramref name="counter"/>: messages of
    /// <see cref="ChaChaPoly.OpenSslThreshold"/> bytes or more on a pooled OpenSSL context, shorter ones managed.
    /// <typeparamref name="TOperation"/> is a struct, so the JIT compiles this once per operation with direct calls:
    /// no delegate or interface dispatch per packet.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private bool Run<TOperation>(ulong counter, TOperation operation)
        where TOperation : IAeadOperation, allows ref struct
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        return operation.Length >= ChaChaPoly.OpenSslThreshold && ChaChaPolyOpenSsl.IsSupported
            ? RunOpenSsl(counter, operation)
            : operation.RunManaged(_key, (uint)counter, (uint)(counter >> 32));
    }

    private bool RunOpenSsl<TOperation>(ulong counter, TOperation operation)
        where TOperation : IAeadOperation, allows ref struct
    {
        Span<byte> nonce = stackalloc byte[ChaChaPoly.NonceSize];
        ChaChaPoly.WireGuardNonce(counter, nonce);
        var context = Rent();
        try
        {
            return operation.RunOpenSsl(context, nonce);
        }
        finally
        {
            Return(context);
        }
    }

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

    /// <summary>One AEAD direction over its buffers, on either engine (arguments already checked).</summary>
    private interface IAeadOperation
    {
        /// <summary>The message length (plaintext or ciphertext), which picks the engine.</summary>
        int Length { get; }

        /// <summary>The managed code, nonce words 0, <paramref name="n1"/>, <paramref name="n2"/>; false: the tag did not verify.</summary>
        bool RunManaged(ReadOnlySpan<byte> key, uint n1, uint n2);

        /// <summary>OpenSSL on <paramref name="context"/>; false: the tag did not verify.</summary>
        bool RunOpenSsl(ChaCha20Poly1305 context, scoped ReadOnlySpan<byte> nonce);
    }

    private readonly ref struct Seal(ReadOnlySpan<byte> plaintext, Span<byte> ciphertext, Span<byte> tag) : IAeadOperation
    {
        private readonly ReadOnlySpan<byte> _plaintext = plaintext;
        private readonly Span<byte> _ciphertext = ciphertext;
        private readonly Span<byte> _tag = tag;

        public int Length => _plaintext.Length;

        public bool RunManaged(ReadOnlySpan<byte> key, uint n1, uint n2)
        {
            ChaChaPolyCore.Seal(key, 0, n1, n2, _plaintext, _ciphertext, _tag, default, ChaCha20.BestPath);
            return true;
        }

        public bool RunOpenSsl(ChaCha20Poly1305 context, scoped ReadOnlySpan<byte> nonce)
        {
            context.Encrypt(nonce, _plaintext, _ciphertext, _tag);
            return true;
        }
    }

    private readonly ref struct Open(ReadOnlySpan<byte> ciphertext, ReadOnlySpan<byte> tag, Span<byte> plaintext) : IAeadOperation
    {
        private readonly ReadOnlySpan<byte> _ciphertext = ciphertext;
        private readonly ReadOnlySpan<byte> _tag = tag;
        private readonly Span<byte> _plaintext = plaintext;

        public int Length => _ciphertext.Length;

        public bool RunManaged(ReadOnlySpan<byte> key, uint n1, uint n2) =>
            ChaChaPolyCore.Open(key, 0, n1, n2, _ciphertext, _tag, _plaintext, default, ChaCha20.BestPath);

        public bool RunOpenSsl(ChaCha20Poly1305 context, scoped ReadOnlySpan<byte> nonce)
        {
            try
            {
                context.Decrypt(nonce, _ciphertext, _tag, _plaintext);
                return true;
            }
            catch (AuthenticationTagMismatchException)
            {
                CryptographicOperations.ZeroMemory(_plaintext);
                return false;
            }
        }
    }
}
