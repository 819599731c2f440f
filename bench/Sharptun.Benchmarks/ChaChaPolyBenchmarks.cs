using System.Security.Cryptography;
using BenchmarkDotNet.Attributes;
using Sharptun.Crypto;

namespace Sharptun.Benchmarks;

/// <summary>
/// Encrypt + decrypt (in place, no AAD, one fixed key) per call: .NET's OpenSSL-backed ChaCha20Poly1305 against the managed
/// SIMD code on each of its paths, and the public <see cref="ChaChaPoly"/> dispatcher (managed below 8 KiB, OpenSSL from 8 KiB).
/// </summary>
[MemoryDiagnoser]
public class ChaChaPolyBenchmarks
{
    private readonly byte[] _key = new byte[32];
    private readonly byte[] _nonce = new byte[12];
    private readonly byte[] _tag = new byte[16];
    private byte[] _buffer = [];
    private ChaCha20Poly1305? _system;

    [Params(64, 1420, 65535)]
    public int Size { get; set; }

    [GlobalSetup]
    public void Setup()
    {
        new Random(42).NextBytes(_key);
        _buffer = new byte[Size];
        new Random(43).NextBytes(_buffer);
        _system = new ChaCha20Poly1305(_key);
    }

    [GlobalCleanup]
    public void Cleanup() => _system?.Dispose();

    [Benchmark(Baseline = true, Description = "System.Security.Cryptography.ChaCha20Poly1305 (OpenSSL)")]
    public bool SystemOpenSsl()
    {
        _system!.Encrypt(_nonce, _buffer, _buffer, _tag);
        _system.Decrypt(_nonce, _buffer, _tag, _buffer);
        return true;
    }

    [Benchmark(Description = "Managed, best path (AVX-512 here)")]
    public bool ManagedBest() => Managed(ChaCha20.BestPath);

    [Benchmark(Description = "Managed, Vector256 (AVX2) path")]
    public bool ManagedVector256() => Managed(ChaCha20Path.Vector256);

    [Benchmark(Description = "Managed, Vector128 path")]
    public bool ManagedVector128() => Managed(ChaCha20Path.Vector128);

    [Benchmark(Description = "ChaChaPoly (dispatcher: managed < 8 KiB <= OpenSSL)")]
    public bool Dispatcher()
    {
        ChaChaPoly.Encrypt(_key, 7UL, _buffer, _buffer, _tag);
        return ChaChaPoly.Decrypt(_key, 7UL, _buffer, _tag, _buffer);
    }

    private bool Managed(ChaCha20Path path)
    {
        ChaChaPolyCore.Seal(_key, 0, 7, 0, _buffer, _buffer, _tag, default, path);
        return ChaChaPolyCore.Open(_key, 0, 7, 0, _buffer, _tag, _buffer, default, path);
    }
}
