using System.Runtime.InteropServices;
using System.Security.Cryptography;

namespace Sharptun.Crypto;

/// <summary>libsodium's entry points (the native library of NuGet's <c>libsodium</c> package).</summary>
internal static unsafe partial class Sodium
{
    private const string Library = "libsodium";

    // sodium_init is thread-safe and idempotent; it selects the CPU's fastest implementations, so it must run
    // before the first scalar multiplication (the static constructor runs it once).
    static Sodium()
    {
        if (sodium_init() < 0)
        {
            throw new CryptographicException("libsodium: sodium_init failed.");
        }
    }

    /// <summary>Runs the static constructor (sodium_init) if it has not run yet.</summary>
    internal static void EnsureInitialized()
    {
    }

    [LibraryImport(Library)]
    private static partial int sodium_init();

    [LibraryImport(Library)]
    internal static partial int crypto_scalarmult_curve25519(byte* q, byte* n, byte* p);
}
