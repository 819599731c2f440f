using System.Net;
using BenchmarkDotNet.Attributes;
using Sharptun.Device;
using Sharptun.Device.Routing;

namespace Sharptun.Benchmarks;

/// <summary>
/// Allowed-IPs longest-prefix match (the per-packet routing step): 1 000 / 10 000 random prefixes over 100 peers,
/// a batch of 1 024 random destinations per invocation. Lookup must allocate nothing.
/// </summary>
[MemoryDiagnoser]
public class AllowedIpsBenchmarks
{
    private const int Batch = 1024;
    private AllowedIps<object> _table = null!;
    private byte[] _v4 = null!;
    private byte[] _v6 = null!;

    [Params(1_000, 10_000)]
    public int Prefixes { get; set; }

    [GlobalSetup]
    public void Setup()
    {
        var rng = new Random(42);
        var peers = Enumerable.Range(0, 100).Select(_ => new object()).ToArray();
        _table = new AllowedIps<object>();
        for (var i = 0; i < Prefixes; i++)
        {
            var v6 = (i & 1) == 1;
            var bytes = new byte[v6 ? 16 : 4];
            rng.NextBytes(bytes);
            var length = v6 ? rng.Next(32, 129) : rng.Next(8, 33);
            _table.Insert(new IpPrefix(new IPAddress(bytes), length), peers[i % peers.Length]);
        }

        _v4 = new byte[Batch * 4];
        _v6 = new byte[Batch * 16];
        rng.NextBytes(_v4);
        rng.NextBytes(_v6);
    }

    [Benchmark(OperationsPerInvoke = Batch)]
    public int LookupV4()
    {
        var hits = 0;
        for (var i = 0; i < Batch; i++)
        {
            if (_table.Lookup(_v4.AsSpan(i * 4, 4)) is not null)
            {
                hits++;
            }
        }

        return hits;
    }

    [Benchmark(OperationsPerInvoke = Batch)]
    public int LookupV6()
    {
        var hits = 0;
        for (var i = 0; i < Batch; i++)
        {
            if (_table.Lookup(_v6.AsSpan(i * 16, 16)) is not null)
            {
                hits++;
            }
        }

        return hits;
    }
}
