using BenchmarkDotNet.Attributes;
using Sharptun.Crypto;

namespace Sharptun.Benchmarks;

/// <summary>
/// Handshake-path primitives: one X25519 scalar multiplication (a WireGuard handshake does four on each side, plus
/// one for the ephemeral public key) and WireGuard's keyed-BLAKE2s MAC over a 148-byte handshake initiation prefix.
/// Side-by-side with OpenSSL: bench/x25519.sh.
/// </summary>
[MemoryDiagnoser]
public class X25519Benchmarks
{
    private readonly byte[] _scalar = new byte[X25519.KeySize];
    private readonly byte[] _point = new byte[X25519.KeySize];
    private readonly byte[] _output = new byte[X25519.KeySize];
    private readonly byte[] _macKey = new byte[32];
    private readonly byte[] _message = new byte[148];
    private readonly byte[] _mac16 = new byte[16];
    private readonly byte[] _mac32 = new byte[32];

    [GlobalSetup]
    public void Setup()
    {
        var rng = new Random(25519);
        byte[] peer = new byte[X25519.KeySize];
        rng.NextBytes(_scalar);
        rng.NextBytes(peer);
        X25519.PublicKey(peer, _point);
        rng.NextBytes(_macKey);
        rng.NextBytes(_message);
    }

    [Benchmark]
    public void ScalarMult() => X25519.ScalarMult(_scalar, _point, _output);

    [Benchmark]
    public void Blake2sMac16Over148() => Blake2s.KeyedHash(_macKey, _message, _mac16);

    [Benchmark]
    public void Blake2sMac32Over148() => Blake2s.KeyedHash(_macKey, _message, _mac32);
}
