#:project ../src/Sharptun.Crypto/Sharptun.Crypto.csproj
#:package libsodium@1.0.22
#:property PublishAot=false
#:property AllowUnsafeBlocks=true
// X25519 per second of process CPU time (like `openssl speed` without -elapsed), for busy machines where wall-clock
// figures are meaningless: Sharptun's X25519.ScalarMult and libsodium's crypto_scalarmult_curve25519 (the native
// library of NuGet's libsodium package, which NSec.Cryptography also uses), alternated in rounds in one process so
// that both see the same machine load. Prints one line per implementation: "NAME OPS_PER_CPU_SECOND".
// Used by bench/x25519.sh.
using System.Diagnostics;
using System.Globalization;
using System.Runtime.InteropServices;
using Sharptun.Crypto;

if (Sodium.sodium_init() < 0)
{
    throw new InvalidOperationException("sodium_init failed");
}

byte[] scalar = new byte[X25519.KeySize], point = new byte[X25519.KeySize], ours = new byte[X25519.KeySize], theirs = new byte[X25519.KeySize];
new Random(25519).NextBytes(scalar);
X25519.PublicKey(scalar, point);
X25519.ScalarMult(scalar, point, ours);
Sodium.ScalarMult(scalar, point, theirs);
if (!ours.AsSpan().SequenceEqual(theirs))
{
    throw new InvalidOperationException("Sharptun and libsodium disagree");
}

for (int i = 0; i < 2000; i++)
{
    X25519.ScalarMult(scalar, point, ours); // warm up through tiered compilation
    Sodium.ScalarMult(scalar, point, theirs);
}

var process = Process.GetCurrentProcess();
double[] seconds = new double[2];
long[] ops = new long[2];
for (int round = 0; round < 6; round++)
{
    for (int impl = 0; impl < 2; impl++)
    {
        process.Refresh();
        TimeSpan start = process.TotalProcessorTime;
        for (int i = 0; i < 2000; i++)
        {
            if (impl == 0)
            {
                X25519.ScalarMult(scalar, point, ours);
            }
            else
            {
                Sodium.ScalarMult(scalar, point, theirs);
            }
        }

        process.Refresh();
        seconds[impl] += (process.TotalProcessorTime - start).TotalSeconds;
        ops[impl] += 2000;
    }
}

Console.WriteLine("sharptun " + (ops[0] / seconds[0]).ToString("F0", CultureInfo.InvariantCulture));
Console.WriteLine("libsodium " + (ops[1] / seconds[1]).ToString("F0", CultureInfo.InvariantCulture));

static unsafe partial class Sodium
{
    [LibraryImport("libsodium")]
    internal static partial int sodium_init();

    [LibraryImport("libsodium")]
    private static partial int crypto_scalarmult_curve25519(byte* q, byte* n, byte* p);

    internal static void ScalarMult(byte[] n, byte[] p, byte[] q)
    {
        fixed (byte* pq = q, pn = n, pp = p)
        {
            _ = crypto_scalarmult_curve25519(pq, pn, pp);
        }
    }
}
