using System.Buffers;
using System.Buffers.Binary;
using System.Diagnostics;
using System.Globalization;
using System.Net;
using System.Net.Sockets;
using System.Security.Cryptography;
using Sharptun;
using Sharptun.Protocol;

// Throughput and memory of WireGuardTunnel's ConnectAsync streams (bench/tunnel-throughput.sh runs every mode):
//   inproc MB                      two in-process tunnels over loopback UDP: MB client->server, then server->client
//   inproc-memory N MB             the same pair, N concurrent connections each moving MB server->client
//   server PORT                    a kernel TCP server for the client modes (run it behind wireguard-go)
//   client CONFIG HOST PORT MB     one tunnel from a wg-quick config: download MB from and upload MB to the server
//   client-memory CONFIG HOST PORT N MB   N concurrent downloads of MB each
// The memory modes give up after 90 s and report how many connections completed.
// Each result is one line "key=value ..." (MB/s are 10^6 bytes a second; memory is Private_Dirty of
// /proc/self/smaps_rollup: peak sampled every 50 ms during the transfers, and after them).
// Wire protocol of the server: the client sends 'D' or 'U' and a big-endian int64 length; 'D': the server sends that
// many bytes and closes; 'U': it reads that many bytes and answers one byte.
return args switch
{
    ["inproc", var mb] => await Bench.InProcessAsync(Mb(mb)),
    ["inproc-memory", var n, var mb] => await Bench.InProcessMemoryAsync(int.Parse(n, CultureInfo.InvariantCulture), Mb(mb)),
    ["server", var port] => await Bench.ServerAsync(int.Parse(port, CultureInfo.InvariantCulture)),
    ["client", var config, var host, var port, var mb] => await Bench.ClientAsync(config, new IPEndPoint(IPAddress.Parse(host), int.Parse(port, CultureInfo.InvariantCulture)), Mb(mb)),
    ["client-memory", var config, var host, var port, var n, var mb] =>
        await Bench.ClientMemoryAsync(config, new IPEndPoint(IPAddress.Parse(host), int.Parse(port, CultureInfo.InvariantCulture)), int.Parse(n, CultureInfo.InvariantCulture), Mb(mb)),
    _ => Usage(),
};

static long Mb(string text) => long.Parse(text, CultureInfo.InvariantCulture) * 1_000_000;

static int Usage()
{
    Console.Error.WriteLine("usage: TunnelBench inproc MB | inproc-memory N MB | server PORT | client CONFIG HOST PORT MB | client-memory CONFIG HOST PORT N MB");
    return 2;
}

/// <summary>The benchmark modes.</summary>
internal static class Bench
{
    private const int ChunkSize = 64 * 1024;
    private const int BenchPort = 5001;

    /// <summary>How long the memory modes wait for their connections; stalled ones are reported (completed=K of N), not waited for.</summary>
    private static readonly TimeSpan Deadline = TimeSpan.FromSeconds(90);
    private static readonly IPAddress ClientAddress = IPAddress.Parse("10.78.0.1");
    private static readonly IPAddress ServerAddress = IPAddress.Parse("10.78.0.2");

    public static async Task<int> InProcessAsync(long bytes)
    {
        var (client, server) = await StartPairAsync();
        await using var _ = client;
        await using var __ = server;
        await using var listener = server.ListenTcp(BenchPort);
        var remote = new IPEndPoint(ServerAddress, BenchPort);
        var up = await MeasureAsync(client, listener, remote, bytes, clientSends: true);
        var down = await MeasureAsync(client, listener, remote, bytes, clientSends: false);
        Console.WriteLine(Line($"mode=inproc bytes={bytes} up_MBps={up:0.0} down_MBps={down:0.0}"));
        return 0;
    }

    public static async Task<int> InProcessMemoryAsync(int connections, long bytesEach)
    {
        var (client, server) = await StartPairAsync();
        await using var _ = client;
        await using var __ = server;
        await using var listener = server.ListenTcp(BenchPort);
        var remote = new IPEndPoint(ServerAddress, BenchPort);
        var before = PrivateDirtyKb();
        using var sampler = new PeakSampler();
        var watch = Stopwatch.StartNew();
        using var deadline = new CancellationTokenSource(Deadline);
        var completed = 0;
        var serving = Task.Run(async () =>
        {
            // one accept at a time (the usual accept loop), each connection served on its own task
            var served = new List<Task>();
            for (var i = 0; i < connections; i++)
            {
                var s = await listener.AcceptAsync(deadline.Token);
                served.Add(Task.Run(async () =>
                {
                    await using var _ = s;
                    await SendAsync(s, bytesEach, deadline.Token);
                }));
            }

            await Task.WhenAll(served);
        });
        var receiving = Task.WhenAll(Enumerable.Range(0, connections).Select(async _ =>
        {
            await using var s = await client.ConnectAsync(remote, deadline.Token);
            await ReceiveAsync(s, bytesEach, deadline.Token, MemoryReadSize);
            Interlocked.Increment(ref completed);
        }));
        await Task.WhenAll(serving, receiving).ConfigureAwait(ConfigureAwaitOptions.SuppressThrowing);
        var seconds = watch.Elapsed.TotalSeconds;
        Console.WriteLine(Line($"mode=inproc-memory connections={connections} completed={completed} bytes_each={bytesEach} MBps={completed * bytesEach / seconds / 1e6:0.0} " +
            $"private_dirty_before_MiB={before / 1024.0:0.0} private_dirty_peak_MiB={sampler.PeakKb / 1024.0:0.0} private_dirty_after_MiB={PrivateDirtyKb() / 1024.0:0.0} " +
            $"gc_committed_peak_MiB={sampler.PeakGcCommittedBytes / 1048576.0:0.0} gc_heap_peak_MiB={sampler.PeakGcHeapBytes / 1048576.0:0.0} gen0_collections={GC.CollectionCount(0)}"));
        return 0;
    }

    public static async Task<int> ServerAsync(int port)
    {
        using var listener = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        listener.Bind(new IPEndPoint(IPAddress.Any, port));
        listener.Listen(256);
        Console.WriteLine($"listening on {listener.LocalEndPoint}");
        while (true)
        {
            var socket = await listener.AcceptAsync();
            _ = Task.Run(async () =>
            {
                try
                {
                    await using var stream = new NetworkStream(socket, ownsSocket: true);
                    var header = new byte[9];
                    await stream.ReadExactlyAsync(header);
                    var length = BinaryPrimitives.ReadInt64BigEndian(header.AsSpan(1));
                    if (header[0] == (byte)'D')
                    {
                        await SendAsync(stream, length);
                        socket.Shutdown(SocketShutdown.Send);
                    }
                    else
                    {
                        await ReceiveAsync(stream, length);
                        await stream.WriteAsync(new byte[] { (byte)'K' });
                    }
                }
                catch (Exception e) when (e is IOException or SocketException or EndOfStreamException)
                {
                    Console.Error.WriteLine($"connection failed: {e.Message}");
                }
            });
        }
    }

    public static async Task<int> ClientAsync(string configPath, IPEndPoint server, long bytes)
    {
        await using var tunnel = await WireGuardTunnel.StartAsync(await File.ReadAllTextAsync(configPath));
        await TransferAsync(tunnel, server, 'D', 1_000_000); // handshake and warm-up
        var down = await TimedAsync(() => TransferAsync(tunnel, server, 'D', bytes), bytes);
        var up = await TimedAsync(() => TransferAsync(tunnel, server, 'U', bytes), bytes);
        Console.WriteLine(Line($"mode=client bytes={bytes} down_MBps={down:0.0} up_MBps={up:0.0}"));
        return 0;
    }

    public static async Task<int> ClientMemoryAsync(string configPath, IPEndPoint server, int connections, long bytesEach)
    {
        await using var tunnel = await WireGuardTunnel.StartAsync(await File.ReadAllTextAsync(configPath));
        await TransferAsync(tunnel, server, 'D', 1_000_000);
        var before = PrivateDirtyKb();
        using var sampler = new PeakSampler();
        var watch = Stopwatch.StartNew();
        using var deadline = new CancellationTokenSource(Deadline);
        var completed = 0;
        await Task.WhenAll(Enumerable.Range(0, connections).Select(async _ =>
        {
            await TransferAsync(tunnel, server, 'D', bytesEach, deadline.Token);
            Interlocked.Increment(ref completed);
        })).ConfigureAwait(ConfigureAwaitOptions.SuppressThrowing);
        var seconds = watch.Elapsed.TotalSeconds;
        Console.WriteLine(Line($"mode=client-memory connections={connections} completed={completed} bytes_each={bytesEach} MBps={completed * bytesEach / seconds / 1e6:0.0} " +
            $"private_dirty_before_MiB={before / 1024.0:0.0} private_dirty_peak_MiB={sampler.PeakKb / 1024.0:0.0} private_dirty_after_MiB={PrivateDirtyKb() / 1024.0:0.0} " +
            $"gc_committed_peak_MiB={sampler.PeakGcCommittedBytes / 1048576.0:0.0} gc_heap_peak_MiB={sampler.PeakGcHeapBytes / 1048576.0:0.0} gen0_collections={GC.CollectionCount(0)}"));
        return 0;
    }

    private static async Task TransferAsync(WireGuardTunnel tunnel, IPEndPoint server, char command, long bytes, CancellationToken ct = default)
    {
        await using var s = await tunnel.ConnectAsync(server, ct);
        var header = new byte[9];
        header[0] = (byte)command;
        BinaryPrimitives.WriteInt64BigEndian(header.AsSpan(1), bytes);
        await s.WriteAsync(header, ct);
        if (command == 'D')
        {
            await ReceiveAsync(s, bytes, ct);
        }
        else
        {
            await SendAsync(s, bytes, ct);
            var ack = new byte[1];
            await s.ReadExactlyAsync(ack, ct);
        }
    }

    private static async Task<double> TimedAsync(Func<Task> transfer, long bytes)
    {
        var watch = Stopwatch.StartNew();
        await transfer();
        return bytes / watch.Elapsed.TotalSeconds / 1e6;
    }

    private static async Task<double> MeasureAsync(WireGuardTunnel client, TunnelTcpListener listener, IPEndPoint remote, long bytes, bool clientSends)
    {
        var accepted = listener.AcceptAsync().AsTask();
        await using var c = await client.ConnectAsync(remote, CancellationToken.None);
        await using var s = await accepted;
        var (sender, receiver) = clientSends ? (c, s) : (s, c);
        var watch = Stopwatch.StartNew();
        var receiving = ReceiveAsync(receiver, bytes);
        await SendAsync(sender, bytes);
        await receiving;
        return bytes / watch.Elapsed.TotalSeconds / 1e6;
    }

    // The application's own buffers are kept out of the memory figures: every sender writes from one shared random
    // block, and a receiver waits with a zero-byte read and holds a pooled 16 KiB buffer only while data is there
    // (as the proxy's relay does), so 100 connections do not add 100 x 2 x 64 KiB of the benchmark's arrays.
    private static readonly byte[] SharedChunk = RandomNumberGenerator.GetBytes(ChunkSize);

    private static async Task SendAsync(Stream s, long bytes, CancellationToken ct = default)
    {
        for (long sent = 0; sent < bytes;)
        {
            var n = (int)Math.Min(SharedChunk.Length, bytes - sent);
            await s.WriteAsync(SharedChunk.AsMemory(0, n), ct);
            sent += n;
        }
    }

    /// <summary>Reads of the 100-connection memory phase: small, and a zero-byte read waits for data before a buffer is taken.</summary>
    private const int MemoryReadSize = 16 * 1024;

    /// <summary>
    /// Reads of the single-stream throughput phases: 64 KiB, what the proxy's relay reads a bulk direction with
    /// (StreamRelay's large buffers; Stream.CopyToAsync reads 80 KiB).
    /// </summary>
    private const int BulkReadSize = 64 * 1024;

    private static async Task ReceiveAsync(Stream s, long bytes, CancellationToken ct = default, int readSize = BulkReadSize)
    {
        long received = 0;
        while (received < bytes)
        {
            _ = await s.ReadAsync(Memory<byte>.Empty, ct); // wait for data before taking a buffer
            var buffer = ArrayPool<byte>.Shared.Rent(readSize);
            try
            {
                while (received < bytes)
                {
                    var n = await s.ReadAsync(buffer.AsMemory(0, (int)Math.Min(readSize, bytes - received)), ct);
                    if (n == 0)
                    {
                        throw new EndOfStreamException($"the stream ended after {received} of {bytes} bytes");
                    }

                    received += n;
                    if (n < readSize)
                    {
                        break; // drained: give the buffer back until more arrives
                    }
                }
            }
            finally
            {
                ArrayPool<byte>.Shared.Return(buffer);
            }
        }
    }

    private static async Task<(WireGuardTunnel Client, WireGuardTunnel Server)> StartPairAsync()
    {
        using var clientKey = Key.GeneratePrivateKey();
        using var serverKey = Key.GeneratePrivateKey();
        var server = await WireGuardTunnel.StartAsync($"""
            [Interface]
            PrivateKey = {serverKey}
            Address = {ServerAddress}/32

            [Peer]
            PublicKey = {clientKey.DerivePublicKey()}
            AllowedIPs = {ClientAddress}/32
            """);
        var client = await WireGuardTunnel.StartAsync($"""
            [Interface]
            PrivateKey = {clientKey}
            Address = {ClientAddress}/32

            [Peer]
            PublicKey = {serverKey.DerivePublicKey()}
            Endpoint = 127.0.0.1:{server.ListenPort}
            AllowedIPs = {ServerAddress}/32
            """);
        return (client, server);
    }

    // InvariantGlobalization (Directory.Build.props): numbers always print with a dot.
    private static string Line(string text) => text;

    internal static long PrivateDirtyKb()
    {
        foreach (var line in File.ReadLines("/proc/self/smaps_rollup"))
        {
            if (line.StartsWith("Private_Dirty:", StringComparison.Ordinal))
            {
                return long.Parse(line["Private_Dirty:".Length..].Trim().Split(' ')[0], CultureInfo.InvariantCulture);
            }
        }

        return -1;
    }

    /// <summary>
    /// Samples Private_Dirty every 50 ms on a timer until disposed; keeps the peak, and the peaks of the GC's committed
    /// memory and heap size (as of the last collection: <see cref="GC.GetGCMemoryInfo()"/>).
    /// </summary>
    private sealed class PeakSampler : IDisposable
    {
        private readonly Timer _timer;
        private long _peakKb;
        private long _peakGcCommitted;
        private long _peakGcHeap;

        public PeakSampler()
        {
            _peakKb = PrivateDirtyKb();
            _timer = new Timer(_ => Sample(), null, 0, 50);
        }

        public long PeakKb
        {
            get
            {
                Sample();
                return Interlocked.Read(ref _peakKb);
            }
        }

        public long PeakGcCommittedBytes => Interlocked.Read(ref _peakGcCommitted);

        public long PeakGcHeapBytes => Interlocked.Read(ref _peakGcHeap);

        public void Dispose() => _timer.Dispose();

        private static void Raise(ref long peak, long now)
        {
            long seen;
            while (now > (seen = Interlocked.Read(ref peak)) && Interlocked.CompareExchange(ref peak, now, seen) != seen)
            {
            }
        }

        private void Sample()
        {
            Raise(ref _peakKb, PrivateDirtyKb());
            var gc = GC.GetGCMemoryInfo();
            Raise(ref _peakGcCommitted, gc.TotalCommittedBytes);
            Raise(ref _peakGcHeap, gc.HeapSizeBytes);
        }
    }
}
