using System.Diagnostics;
using System.Reflection;
using Sharptun.NetStack.Tcp;
using Xunit.Abstractions;

namespace Sharptun.NetStack.Tests.Tcp;

/// <summary>
/// TcpStream.ReadAsync/WriteAsync that have to wait must not allocate a state machine box per call (pooled builder).
/// The test thread issues the calls and drives the link under the Gate; the waits complete on the thread pool.
/// </summary>
public sealed class TcpStreamAllocationTests(ITestOutputHelper output)
{
    [Fact]
    public void ReadAsyncWriteAsync_SteadyStateBulkTransfer_AllocateNothingPerCall()
    {
        var gate = new Lock();
        var o = new TcpOptions { ReceiveBufferSize = 32 * 1024, SendBufferSize = 32 * 1024 };
        var a = new DirectLinkHost(gate, "10.0.0.1", o);
        var b = new DirectLinkHost(gate, "10.0.0.2", o);
        a.Peer = b;
        b.Peer = a;
        TcpConnection c;
        TcpConnection? s = null;
        TcpStreamListener listener;
        lock (gate)
        {
            listener = b.Tcp.Listen(new System.Net.IPEndPoint(b.Address.ToIPAddress(), 80), 4);
            c = a.Tcp.Connect(new System.Net.IPEndPoint(b.Address.ToIPAddress(), 80), new System.Net.IPEndPoint(a.Address.ToIPAddress(), 1234));
        }

        void Step()
        {
            lock (gate)
            {
                var now = a.Now + TimeSpan.FromMilliseconds(1);
                a.Now = b.Now = now;
                b.DeliverAll();
                a.DeliverAll();
                a.Tcp.Poll(now);
                b.Tcp.Poll(now);
                if (s is null && listener.TryAccept(out var accepted))
                {
                    s = accepted;
                }
            }
        }

        while (s is null || c.State != TcpState.Established)
        {
            Step();
        }

        using var writer = new TcpStream(a.Tcp, c);
        using var reader = new TcpStream(b.Tcp, s);
        var chunk = new byte[16 * 1024];
        var sink = new byte[16 * 1024];
        long received = 0;
        int waits = 0;

        // One round: a 16 KiB write and a read, each driven to completion; returns how many of the two had to wait.
        int Round()
        {
            var write = writer.WriteAsync(chunk);
            var read = reader.ReadAsync(sink);
            int waited = (write.IsCompleted ? 0 : 1) + (read.IsCompleted ? 0 : 1);
            while (!write.IsCompleted || !read.IsCompleted)
            {
                Step();
                Thread.Yield();
            }

            write.GetAwaiter().GetResult();
            received += read.GetAwaiter().GetResult();

            return waited;
        }

        for (int warm = 0; warm < 3; warm++)
        {
            for (int i = 0; i < 300; i++)
            {
                Round(); // JIT tiers, rings and queue slots reach their steady size; the builder's pool fills
            }

            Thread.Sleep(150);
        }

        const int Rounds = 1000;
        long startReceived = received;
        long before = GC.GetAllocatedBytesForCurrentThread();
        for (int i = 0; i < Rounds; i++)
        {
            waits += Round();
        }

        long allocated = GC.GetAllocatedBytesForCurrentThread() - before;
        output.WriteLine($"{allocated} B allocated over {Rounds} rounds ({waits} calls waited), {received - startReceived} bytes moved");
        Assert.True(received - startReceived >= Rounds * 8 * 1024L, "steady state must move data");
        Assert.True(waits >= Rounds / 2, $"only {waits} calls waited: the test does not exercise the waiting path");

        // Optimized builds (Release: CI, shipped binaries): the struct state machine lives in a pooled box, so nothing is
        // allocated per call; allow a few stray allocations (a pool miss now and then), far below a box (~150 B) per call.
        // A Debug build compiles every async state machine as a class (for Edit and Continue): one ~100-byte object per
        // call whatever the builder; there the bound only catches a box on top of it (without pooling a write is ~180 B).
        bool optimized = typeof(TcpStream).Assembly.GetCustomAttribute<DebuggableAttribute>()?.IsJITOptimizerDisabled != true;
        long bound = optimized ? 16 * 1024 : Rounds * 2 * 128L;
        Assert.True(allocated <= bound,
            $"{allocated} B allocated over {Rounds * 2} calls ({waits} waited), {(double)allocated / (Rounds * 2):F1} B per call (optimized build: {optimized})");
    }
}
