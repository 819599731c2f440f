#:project ../src/Sharptun.Crypto/Sharptun.Crypto.csproj
#:property PublishAot=false
// X25519 ops per second of process CPU time (like `openssl speed` without -elapsed), for busy machines where
// wall-clock figures are meaningless. Used by bench/x25519.sh.
using System.Diagnostics;
using Sharptun.Crypto;

byte[] scalar = new byte[X25519.KeySize], point = new byte[X25519.KeySize], output = new byte[X25519.KeySize];
new Random(25519).NextBytes(scalar);
X25519.PublicKey(scalar, point);
for (int i = 0; i < 2000; i++)
{
    X25519.ScalarMult(scalar, point, output); // warm up through tiered compilation
}

var process = Process.GetCurrentProcess();
process.Refresh();
TimeSpan start = process.TotalProcessorTime;
int n = 0;
do
{
    for (int i = 0; i < 1000; i++)
    {
        X25519.ScalarMult(scalar, point, output);
    }

    n += 1000;
    process.Refresh();
}
while ((process.TotalProcessorTime - start).TotalSeconds < 3);
Console.WriteLine((n / (process.TotalProcessorTime - start).TotalSeconds).ToString("F0", System.Globalization.CultureInfo.InvariantCulture));
