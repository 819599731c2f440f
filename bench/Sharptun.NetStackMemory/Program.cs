using System.Buffers.Binary;
using System.Diagnostics;
using System.Globalization;
using System.Net;
using System.Runtime;
using Sharptun.NetStack;
using Sharptun.NetStack.Tcp;
using Sharptun.NetStackMemory;

// NetStack memory benchmark: two NetworkStacks in one process joined by an in-memory link (two pump threads moving
// packet batches Read -> Write), N concurrent TCP connections each moving B bytes each way, every byte checked
// against a position-keyed generator (no repeating pattern, so stale or duplicated ring data is caught). A sampler
// thread records the peak Private_Dirty (smaps_rollup); VmHWM is the kernel's peak RSS. A child run of this same
// binary with --baseline (an almost empty Main, same runtimeconfig and environment) gives the .NET runtime's own
// footprint, so the figure reads as runtime baseline + stack.
//
// Exit codes: 0 ok, 1 a transfer failed or timed out, 2 peak private dirty above --budget-mb, 64 bad arguments.
var opts = Options.Parse(args);
if (opts is null)
{
    return 64;
}

if (opts.Baseline)
{
    var r = new ProcMemory().Read();
    Console.WriteLine($"BASELINE private_dirty_kb={r.PrivateDirtyKb} rss_kb={r.RssKb} hwm_kb={r.HwmKb} threads={r.Threads}");
    return 0;
}

return Bench.Run(opts);

internal sealed class Options
{
    public int Connections { get; private set; } = 100;
    public long Bytes { get; private set; } = 4L << 20;
    public int? SendBuffer { get; private set; }
    public int? ReceiveBuffer { get; private set; }
    public int? OutboundQueue { get; private set; }
    public int AppBuffer { get; private set; } = 2048;
    public double BudgetMb { get; private set; }
    public int TimeoutSeconds { get; private set; } = 120;
    public bool NoSack { get; private set; }
    public bool Baseline { get; private set; }
    public bool SkipBaseline { get; private set; }

    public static Options? Parse(string[] args)
    {
        var o = new Options();
        for (int i = 0; i < args.Length; i++)
        {
            string a = args[i];
            string Next() => i + 1 < args.Length ? args[++i] : throw new ArgumentException($"{a} needs a value");
            try
            {
                switch (a)
                {
                    case "--connections" or "-n": o.Connections = checked((int)Size(Next())); break;
                    case "--bytes" or "-b": o.Bytes = Size(Next()); break;
                    case "--send-buffer": o.SendBuffer = checked((int)Size(Next())); break;
                    case "--receive-buffer": o.ReceiveBuffer = checked((int)Size(Next())); break;
                    case "--buffers": o.SendBuffer = o.ReceiveBuffer = checked((int)Size(Next())); break;
                    case "--outbound-queue": o.OutboundQueue = checked((int)Size(Next())); break;
                    case "--app-buffer": o.AppBuffer = checked((int)Size(Next())); break;
                    case "--budget-mb": o.BudgetMb = double.Parse(Next(), CultureInfo.InvariantCulture); break;
                    case "--timeout": o.TimeoutSeconds = checked((int)Size(Next())); break;
                    case "--no-sack": o.NoSack = true; break;
                    case "--baseline": o.Baseline = true; break;
                    case "--no-baseline": o.SkipBaseline = true; break;
                    default: throw new ArgumentException($"unknown option {a}");
                }
            }
            catch (Exception e) when (e is ArgumentException or FormatException or OverflowException)
            {
                Console.Error.WriteLine(e.Message);
                Console.Error.WriteLine(
                    "usage: Sharptun.NetStackMemory [--connections N] [--bytes B] [--buffers S | --send-buffer S --receive-buffer R]\n" +
                    "       [--outbound-queue Q] [--app-buffer A] [--budget-mb M] [--timeout SEC] [--no-sack] [--no-baseline] [--baseline]\n" +
                    "  sizes take K/M/G suffixes (binary); buffers and queue default to the stack's own defaults");
                return null;
            }
        }

        if (o.Connections < 1 || o.Bytes < 0 || o.AppBuffer < 64 || o.AppBuffer % 8 != 0)
        {
            Console.Error.WriteLine("need --connections >= 1, --bytes >= 0, --app-buffer >= 64 and a multiple of 8");
            return null;
        }

        return o;
    }

    private static long Size(string s)
    {
        long mult = 1;
        char last = char.ToUpperInvariant(s[^1]);
        if (last is 'K' or 'M' or 'G')
        {
            mult = last switch { 'K' => 1L << 10, 'M' => 1L << 20, _ => 1L << 30 };
            s = s[..^1];
        }

        return checked(long.Parse(s, CultureInfo.InvariantCulture) * mult);
    }
}

internal static class Bench
{
    private const int Port = 5201;
    private static long s_moved;
    private static int s_failures;

    public static int Run(Options o)
    {
        var baseline = o.SkipBaseline ? null : MeasureBaseline();

        var tcp = new TcpOptions { EnableSack = !o.NoSack };
        if (o.SendBuffer is int sb)
        {
            tcp.SendBufferSize = sb;
        }

        if (o.ReceiveBuffer is int rb)
        {
            tcp.ReceiveBufferSize = rb;
        }

        NetworkStack MakeStack(string v4)
        {
            var so = new NetworkStackOptions { Tcp = tcp };
            if (o.OutboundQueue is int q)
            {
                so.OutboundQueueCapacity = q;
            }

            so.Addresses.Add(IPAddress.Parse(v4));
            return new NetworkStack(so);
        }

        using var ticks = Environment.GetEnvironmentVariable("SHARPTUN_ALLOC_TICKS") == "1" ? new AllocationTicks() : null;
        var sampler = new Sampler();
        var atStart = sampler.Sample();
        using var a = MakeStack("10.0.0.1");
        using var b = MakeStack("10.0.0.2");
        var outboundSlots = new NetworkStackOptions().OutboundQueueCapacity;
        a.Start();
        b.Start();
        var pumps = new[] { StartPump(a, b, "pump a->b"), StartPump(b, a, "pump b->a") };
        sampler.Start();

        var total = Stopwatch.StartNew();
        var deadline = TimeSpan.FromSeconds(o.TimeoutSeconds);
        var setupAndTransfer = RunConnections(a, b, o);
        bool finished = ((IAsyncResult)setupAndTransfer).AsyncWaitHandle.WaitOne(deadline);
        var (connected, transferSeconds) = finished && setupAndTransfer.IsCompletedSuccessfully ? setupAndTransfer.Result : (default, 0.0);
        sampler.Stop();
        if (Environment.GetEnvironmentVariable("SHARPTUN_SMAPS_DUMP") is { Length: > 0 } dump)
        {
            // Diagnostics: the per-mapping breakdown after the run (before the stacks are disposed).
            File.Copy("/proc/self/smaps", dump, overwrite: true);
        }

        var peak = sampler.Peak;
        var last = sampler.Sample();
        var gc = GC.GetGCMemoryInfo(GCKind.Any);

        ticks?.Print();
        if (!finished)
        {
            Console.Error.WriteLine($"FAIL: not finished after {o.TimeoutSeconds} s ({Volatile.Read(ref s_moved)} bytes moved)");
            Interlocked.Increment(ref s_failures);
        }
        else if (setupAndTransfer.IsFaulted)
        {
            Console.Error.WriteLine("FAIL: " + setupAndTransfer.Exception!.GetBaseException());
            Interlocked.Increment(ref s_failures);
        }

        long expected = 2L * o.Connections * o.Bytes;
        long moved = Volatile.Read(ref s_moved);
        if (finished && moved != expected)
        {
            Console.Error.WriteLine($"FAIL: moved {moved} bytes, expected {expected}");
            Interlocked.Increment(ref s_failures);
        }

        var tcpUsed = new TcpOptions();
        int send = o.SendBuffer ?? tcpUsed.SendBufferSize, recv = o.ReceiveBuffer ?? tcpUsed.ReceiveBufferSize;
        int queue = o.OutboundQueue ?? outboundSlots;
        static string Mb(long kb) => (kb / 1024.0).ToString("0.0", CultureInfo.InvariantCulture) + " MiB";
        static string MbB(long bytes) => (bytes / 1048576.0).ToString("0.0", CultureInfo.InvariantCulture) + " MiB";

        Console.WriteLine("NetStack memory: two stacks in one process, in-memory link, TCP both ways per connection");
        Console.WriteLine($"  connections                 {o.Connections} (x2 endpoints in this process: client in stack A, server in stack B)");
        Console.WriteLine($"  bytes per direction         {MbB(o.Bytes)} per connection, verified byte by byte");
        Console.WriteLine($"  tcp buffers per endpoint    send {send / 1024} KiB + receive {recv / 1024} KiB   outbound queue {queue} x MTU 1420 per stack   app buffer {o.AppBuffer} B per stream direction");
        Console.WriteLine($"  gc                          server={GCSettings.IsServerGC} concurrent={IsConcurrent()} heap-hard-limit={Env("DOTNET_GCHeapHardLimit")} gen0size={Env("DOTNET_GCgen0size")} conserve={Env("DOTNET_GCConserveMemory")} total-available={MbB(gc.TotalAvailableMemoryBytes)}");
        if (baseline is { } bl)
        {
            Console.WriteLine($"  runtime baseline            private dirty {Mb(bl.PrivateDirtyKb)}, RSS {Mb(bl.RssKb)} (same binary, --baseline: empty Main)");
        }

        Console.WriteLine($"  before stacks               private dirty {Mb(atStart.PrivateDirtyKb)}, RSS {Mb(atStart.RssKb)}");
        Console.WriteLine($"  connected (idle)            private dirty {Mb(connected.PrivateDirtyKb)}, RSS {Mb(connected.RssKb)}");
        Console.WriteLine($"  PEAK private dirty          {Mb(peak.PrivateDirtyKb)}   ({sampler.Samples} samples)");
        if (o.BudgetMb > 0)
        {
            Console.WriteLine($"  budget                      {o.BudgetMb.ToString(CultureInfo.InvariantCulture)} MiB private dirty for the whole process: {(peak.PrivateDirtyKb <= o.BudgetMb * 1024 ? "within" : "OVER")}");
        }

        Console.WriteLine($"  peak RSS (VmHWM)            {Mb(last.HwmKb)}");
        Console.WriteLine($"  peak threads                {peak.Threads}");
        Console.WriteLine($"  GC heap                     peak {MbB(sampler.PeakHeapBytes)} (after a GC), committed peak {MbB(sampler.PeakCommittedBytes)}, gen0/1/2 collections {GC.CollectionCount(0)}/{GC.CollectionCount(1)}/{GC.CollectionCount(2)}, allocated {MbB(GC.GetTotalAllocatedBytes())}");
        if (baseline is { } b2)
        {
            double perEndpoint = (peak.PrivateDirtyKb - b2.PrivateDirtyKb) / (2.0 * o.Connections);
            Console.WriteLine($"  above baseline              {Mb(peak.PrivateDirtyKb - b2.PrivateDirtyKb)} = {perEndpoint.ToString("0.0", CultureInfo.InvariantCulture)} KiB per TCP endpoint");
        }

        Console.WriteLine($"  moved                       {MbB(moved)} in {transferSeconds.ToString("0.00", CultureInfo.InvariantCulture)} s = {(moved * 8 / 1e6 / Math.Max(transferSeconds, 1e-9)).ToString("0", CultureInfo.InvariantCulture)} Mbit/s (payload, all connections)");
        Console.WriteLine($"  stack counters              A sent/received {a.Statistics.Sent}/{a.Statistics.Received} outbound-full {a.Statistics.OutboundFull}; B sent/received {b.Statistics.Sent}/{b.Statistics.Received} outbound-full {b.Statistics.OutboundFull}; sack {(o.NoSack ? "off" : "on")}");
        Console.WriteLine($"  total run                   {total.Elapsed.TotalSeconds.ToString("0.00", CultureInfo.InvariantCulture)} s   cores {Environment.ProcessorCount}   load {File.ReadAllText("/proc/loadavg").Split(' ')[0]}");
        Console.WriteLine(
            $"RESULT ok={(Volatile.Read(ref s_failures) == 0 ? 1 : 0)} connections={o.Connections} bytes={o.Bytes} send_buffer={send} receive_buffer={recv} " +
            $"peak_private_dirty_kb={peak.PrivateDirtyKb} peak_rss_kb={last.HwmKb} baseline_private_dirty_kb={baseline?.PrivateDirtyKb ?? -1} " +
            $"baseline_rss_kb={baseline?.RssKb ?? -1} gc_heap_peak_bytes={sampler.PeakHeapBytes} gc_committed_peak_bytes={sampler.PeakCommittedBytes} moved_bytes={moved} " +
            $"seconds={transferSeconds.ToString("0.000", CultureInfo.InvariantCulture)} mbit={(moved * 8 / 1e6 / Math.Max(transferSeconds, 1e-9)).ToString("0", CultureInfo.InvariantCulture)}");

        if (Volatile.Read(ref s_failures) != 0)
        {
            return 1;
        }

        if (o.BudgetMb > 0 && peak.PrivateDirtyKb > o.BudgetMb * 1024)
        {
            Console.Error.WriteLine($"OVER BUDGET: peak private dirty {Mb(peak.PrivateDirtyKb)} > {o.BudgetMb} MiB");
            return 2;
        }

        _ = pumps;
        return 0;
    }

    private static string Env(string name) => Environment.GetEnvironmentVariable(name) ?? "-";

    private static bool IsConcurrent() =>
        AppContext.GetData("System.GC.Concurrent") is { } c ? !string.Equals(c.ToString(), "false", StringComparison.OrdinalIgnoreCase) : true;

    private static ProcMemory.Reading? MeasureBaseline()
    {
        var self = Environment.ProcessPath!;
        var psi = new ProcessStartInfo(self) { RedirectStandardOutput = true, UseShellExecute = false };
        if (Path.GetFileNameWithoutExtension(self) == "dotnet")
        {
            psi.ArgumentList.Add(typeof(Bench).Assembly.Location);
        }

        psi.ArgumentList.Add("--baseline");
        using var p = Process.Start(psi)!;
        string output = p.StandardOutput.ReadToEnd();
        p.WaitForExit();
        long Get(string key)
        {
            int i = output.IndexOf(key + "=", StringComparison.Ordinal);
            if (i < 0)
            {
                return -1;
            }

            var rest = output.AsSpan(i + key.Length + 1);
            int end = rest.IndexOfAny(' ', '\n');
            return long.Parse(end < 0 ? rest : rest[..end], CultureInfo.InvariantCulture);
        }

        return p.ExitCode == 0 ? new ProcMemory.Reading(Get("private_dirty_kb"), Get("rss_kb"), Get("hwm_kb"), Get("threads")) : null;
    }

    private static Thread StartPump(NetworkStack from, NetworkStack to, string name)
    {
        var t = new Thread(() =>
        {
            int batch = from.BatchSize;
            var buffers = new byte[batch][];
            for (int i = 0; i < batch; i++)
            {
                buffers[i] = new byte[from.Mtu];
            }

            var sizes = new int[batch];
            try
            {
                while (true)
                {
                    int n = from.Read(buffers, sizes, 0);
                    if (n == 0)
                    {
                        return;
                    }

                    to.Write(buffers, sizes, 0, n);
                }
            }
            catch (ObjectDisposedException)
            {
                // the other stack was disposed at the end of the run
            }
        })
        { IsBackground = true, Name = name };
        t.Start();
        return t;
    }

    private static async Task<(ProcMemory.Reading Connected, double Seconds)> RunConnections(NetworkStack a, NetworkStack b, Options o)
    {
        using var listener = b.ListenTcp(new IPEndPoint(IPAddress.Any, Port), backlog: o.Connections);
        var acceptLoop = AcceptAllAsync(listener, o.Connections);
        var connects = new Task<TcpStream>[o.Connections];
        for (int i = 0; i < o.Connections; i++)
        {
            connects[i] = a.ConnectTcpAsync(new IPEndPoint(IPAddress.Parse("10.0.0.2"), Port)).AsTask();
        }

        var clients = await Task.WhenAll(connects).ConfigureAwait(false);
        var servers = await acceptLoop.ConfigureAwait(false);
        var connected = new ProcMemory().Read();

        // Start every transfer at once, so all 2N endpoints are busy at the same time.
        var sw = Stopwatch.StartNew();
        var work = new Task[4 * o.Connections];
        for (int i = 0; i < o.Connections; i++)
        {
            // The client's port names the connection; each direction gets its own stream of bytes.
            var client = clients[i];
            var server = servers[i];
            ulong c2s = (ulong)client.LocalEndPoint.Port, s2c = c2s | 0x8000_0000UL;
            ulong serverC2s = (ulong)server.RemoteEndPoint.Port, serverS2c = serverC2s | 0x8000_0000UL;
            work[(4 * i) + 0] = Task.Run(() => SendAsync(client, c2s, o.Bytes, o.AppBuffer));
            work[(4 * i) + 1] = Task.Run(() => ReceiveAsync(client, s2c, o.Bytes, o.AppBuffer));
            work[(4 * i) + 2] = Task.Run(() => SendAsync(server, serverS2c, o.Bytes, o.AppBuffer));
            work[(4 * i) + 3] = Task.Run(() => ReceiveAsync(server, serverC2s, o.Bytes, o.AppBuffer));
        }

        await Task.WhenAll(work).ConfigureAwait(false);
        double seconds = sw.Elapsed.TotalSeconds;
        foreach (var s in clients)
        {
            await s.DisposeAsync().ConfigureAwait(false);
        }

        foreach (var s in servers)
        {
            await s.DisposeAsync().ConfigureAwait(false);
        }

        return (connected, seconds);
    }

    private static async Task<TcpStream[]> AcceptAllAsync(TcpStreamListener listener, int count)
    {
        // One AcceptAsync may be pending at a time.
        var accepted = new TcpStream[count];
        for (int i = 0; i < count; i++)
        {
            accepted[i] = await listener.AcceptAsync().ConfigureAwait(false);
        }

        return accepted;
    }

    private static async Task SendAsync(TcpStream stream, ulong seed, long bytes, int appBuffer)
    {
        var buffer = new byte[appBuffer];
        long position = 0;
        while (position < bytes)
        {
            int n = (int)Math.Min(buffer.Length, bytes - position);
            Pattern.Fill(seed, position, buffer.AsSpan(0, n));
            await stream.WriteAsync(buffer.AsMemory(0, n)).ConfigureAwait(false);
            position += n;
        }

        stream.ShutdownWrite();
    }

    private static async Task ReceiveAsync(TcpStream stream, ulong seed, long bytes, int appBuffer)
    {
        var buffer = new byte[appBuffer];
        long position = 0;
        while (true)
        {
            int n = await stream.ReadAsync(buffer).ConfigureAwait(false);
            if (n == 0)
            {
                break;
            }

            if (position + n > bytes || !Pattern.Check(seed, position, buffer.AsSpan(0, n)))
            {
                Interlocked.Increment(ref s_failures);
                throw new InvalidDataException($"corrupt or excess data at byte {position} of stream {seed:x}");
            }

            position += n;
            Interlocked.Add(ref s_moved, n);
        }

        if (position != bytes)
        {
            Interlocked.Increment(ref s_failures);
            throw new InvalidDataException($"stream {seed:x} ended after {position} of {bytes} bytes");
        }
    }
}

/// <summary>
/// The byte at position p of stream s is byte (p mod 8) of SplitMix64(s, p / 8): no period a ring size could divide,
/// so data replayed from an old ring position is detected.
/// </summary>
internal static class Pattern
{
    private static ulong Word(ulong seed, long index)
    {
        ulong z = (seed * 0x9E3779B97F4A7C15UL) + ((ulong)index * 0xBF58476D1CE4E5B9UL) + 0x94D049BB133111EBUL;
        z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9UL;
        z = (z ^ (z >> 27)) * 0x94D049BB133111EBUL;
        return z ^ (z >> 31);
    }

    /// <summary>Writes the stream's bytes [position, position + destination.Length) into destination.</summary>
    public static void Fill(ulong seed, long position, Span<byte> destination)
    {
        long word = position >> 3;
        int skip = (int)(position & 7);
        Span<byte> eight = stackalloc byte[8];
        int done = 0;
        while (done < destination.Length)
        {
            BinaryPrimitives.WriteUInt64LittleEndian(eight, Word(seed, word++));
            int take = Math.Min(8 - skip, destination.Length - done);
            eight.Slice(skip, take).CopyTo(destination[done..]);
            done += take;
            skip = 0;
        }
    }

    public static bool Check(ulong seed, long position, ReadOnlySpan<byte> data)
    {
        Span<byte> expected = stackalloc byte[512];
        int done = 0;
        while (done < data.Length)
        {
            int n = Math.Min(expected.Length, data.Length - done);
            Fill(seed, position + done, expected[..n]);
            if (!data.Slice(done, n).SequenceEqual(expected[..n]))
            {
                return false;
            }

            done += n;
        }

        return true;
    }
}

/// <summary>Samples the process's memory every 10 ms on its own thread and keeps the peaks.</summary>
internal sealed class Sampler
{
    private readonly ProcMemory _proc = new();
    private readonly ManualResetEventSlim _stop = new();
    private Thread? _thread;
    private ProcMemory.Reading _peak;

    public ProcMemory.Reading Peak => _peak;
    public long PeakHeapBytes { get; private set; }
    public long PeakCommittedBytes { get; private set; }
    public int Samples { get; private set; }

    public ProcMemory.Reading Sample()
    {
        var r = _proc.Read();
        Samples++;
        _peak = new ProcMemory.Reading(
            Math.Max(_peak.PrivateDirtyKb, r.PrivateDirtyKb), Math.Max(_peak.RssKb, r.RssKb), Math.Max(_peak.HwmKb, r.HwmKb), Math.Max(_peak.Threads, r.Threads));
        var gc = GC.GetGCMemoryInfo(GCKind.Any);
        PeakHeapBytes = Math.Max(PeakHeapBytes, gc.HeapSizeBytes);
        PeakCommittedBytes = Math.Max(PeakCommittedBytes, gc.TotalCommittedBytes);
        return r;
    }

    public void Start()
    {
        _thread = new Thread(() =>
        {
            while (!_stop.Wait(10))
            {
                Sample();
            }
        })
        { IsBackground = true, Name = "memory sampler" };
        _thread.Start();
    }

    public void Stop()
    {
        _stop.Set();
        _thread?.Join();
        Sample();
    }
}

