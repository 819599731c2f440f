using System.Net.Sockets;
using System.Threading.Channels;
using Microsoft.Extensions.Logging;
using Sharptun.Hosting;
using Sharptun.Testing.Logging;
using static Sharptun.Proxy.Tests.Forwards.ForwardTestKit;

namespace Sharptun.Proxy.Tests;

/// <summary>
/// <see cref="AcceptLoop"/>, the accept loop of every stream service, on a scripted listener: the gate's cap, a
/// handler that throws, a failed accept, and stopping with handlers still running.
/// </summary>
public sealed class AcceptLoopTests
{
    private static readonly TimeSpan Wait = TimeSpan.FromSeconds(30);

    [Fact]
    public async Task PastTheCap_HandlerSeesRefused_CountedOnce_SlotFreedWhenAdmittedOneEnds()
    {
        var listener = new ScriptedListener();
        var gate = new ConnectionGate(1);
        var counters = new ProxyServiceCounters();
        var release = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var seen = Channel.CreateUnbounded<(string? Client, bool Admitted)>();
        using var stop = new CancellationTokenSource();
        var loop = Serve(
            listener,
            async (c, admitted, ct) =>
            {
                seen.Writer.TryWrite((c.Client, admitted));
                if (c.Client == "first")
                {
                    await release.Task.WaitAsync(ct);
                }
            },
            gate,
            counters,
            new CapturingLogger(),
            stop.Token);

        var first = listener.Offer("first");
        Assert.Equal(("first", true), await seen.Reader.ReadAsync().AsTask().WaitAsync(Wait));
        var second = listener.Offer("second");
        Assert.Equal(("second", false), await seen.Reader.ReadAsync().AsTask().WaitAsync(Wait));
        await WaitUntilAsync(() => second.IsDisposed, "the refused connection's stream to be closed");
        Assert.Equal((1, 1, 1L), (gate.Open, (int)gate.Refused, counters.Refused));
        Assert.False(first.IsDisposed);

        release.SetResult();
        await WaitUntilAsync(() => gate.Open == 0 && first.IsDisposed, "the admitted connection's slot and stream");
        var third = listener.Offer("third");
        Assert.Equal(("third", true), await seen.Reader.ReadAsync().AsTask().WaitAsync(Wait));
        Assert.Equal(1L, counters.Refused);

        await stop.CancelAsync();
        await loop.WaitAsync(Wait);
        Assert.True(third.IsDisposed);
        Assert.True(listener.IsDisposed);
    }

    [Fact]
    public async Task HandlerThrows_CountedFailedAndLogged_LoopGoesOn()
    {
        var listener = new ScriptedListener();
        var gate = new ConnectionGate(8);
        var counters = new ProxyServiceCounters();
        var logger = new CapturingLogger();
        var served = Channel.CreateUnbounded<string?>();
        using var stop = new CancellationTokenSource();
        var loop = Serve(listener, Recording(served, throwFor: "bad"), gate, counters, logger, stop.Token);

        var bad = listener.Offer("bad");
        Assert.Equal("bad", await served.Reader.ReadAsync().AsTask().WaitAsync(Wait));
        Assert.True(await logger.WaitForAsync(e => e.Level == LogLevel.Error && e.Exception?.Message == "handler bug", Wait), logger.AllText);
        await WaitUntilAsync(() => counters.Failed == 1 && gate.Open == 0 && bad.IsDisposed, "the failure counted, its slot freed, its stream closed");
        Assert.Contains("test here: connection from bad failed unexpectedly", logger.AllText, StringComparison.Ordinal);

        listener.Offer("good");
        Assert.Equal("good", await served.Reader.ReadAsync().AsTask().WaitAsync(Wait));
        Assert.False(loop.IsCompleted);
        Assert.Equal(0L, counters.Refused);

        await stop.CancelAsync();
        await loop.WaitAsync(Wait);
        Assert.Equal(1L, counters.Failed);
    }

    [Fact]
    public async Task AcceptFails_LoggedAndRetried_NextConnectionServed()
    {
        var listener = new ScriptedListener();
        var logger = new CapturingLogger();
        var served = Channel.CreateUnbounded<string?>();
        using var stop = new CancellationTokenSource();
        var loop = Serve(listener, Recording(served), new ConnectionGate(8), new ProxyServiceCounters(), logger, stop.Token);

        listener.Fail(new SocketException((int)SocketError.TooManyOpenSockets));
        listener.Offer("after");
        Assert.Equal("after", await served.Reader.ReadAsync().AsTask().WaitAsync(Wait));
        Assert.Contains(logger.Entries, e => e.Level == LogLevel.Warning && e.Message.StartsWith("test here: accept failed: TooManyOpenSockets", StringComparison.Ordinal));

        await stop.CancelAsync();
        await loop.WaitAsync(Wait);
    }

    [Fact]
    public async Task Cancelled_StopsAccepting_DisposesListener_WaitsForEveryHandler()
    {
        var listener = new ScriptedListener();
        var gate = new ConnectionGate(8);
        var started = Channel.CreateUnbounded<string?>();
        var finishing = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        using var stop = new CancellationTokenSource();
        var loop = Serve(
            listener,
            async (c, admitted, ct) =>
            {
                started.Writer.TryWrite(c.Client);
                if (c.Client == "slow")
                {
                    // Sees the stop, then takes its time closing (as a relay flushing its last bytes would).
                    await Task.Delay(Timeout.Infinite, ct).ConfigureAwait(ConfigureAwaitOptions.SuppressThrowing);
                    await finishing.Task;
                }
                else
                {
                    await Task.Delay(Timeout.Infinite, ct);
                }
            },
            gate,
            new ProxyServiceCounters(),
            new CapturingLogger(),
            stop.Token);

        var slow = listener.Offer("slow");
        var quick = listener.Offer("quick");
        Assert.Equal(2, await CountAsync(started.Reader, 2));

        await stop.CancelAsync();
        await WaitUntilAsync(() => listener.IsDisposed && quick.IsDisposed, "the listener and the quick handler's stream to close");
        await Task.Delay(200);
        Assert.False(loop.IsCompleted, "the loop must wait for the handler still closing");
        Assert.False(slow.IsDisposed);
        Assert.Equal(1, gate.Open);

        finishing.SetResult();
        await loop.WaitAsync(Wait);
        Assert.True(slow.IsDisposed);
        Assert.Equal(0, gate.Open);
    }

    [Fact]
    public async Task ManyAtOnce_NeverMoreAdmittedThanTheCap_EveryOneCountedOnce()
    {
        const int connections = 300;
        const int cap = 7;
        var listener = new ScriptedListener();
        var gate = new ConnectionGate(cap);
        var counters = new ProxyServiceCounters();
        var admittedNow = 0;
        var overCap = 0;
        var handled = 0;
        var admittedTotal = 0;
        using var stop = new CancellationTokenSource();
        var loop = Serve(
            listener,
            async (c, admitted, ct) =>
            {
                if (admitted)
                {
                    Interlocked.Increment(ref admittedTotal);
                    if (Interlocked.Increment(ref admittedNow) > cap)
                    {
                        Interlocked.Increment(ref overCap);
                    }

                    await Task.Delay(Random.Shared.Next(0, 3), ct);
                    Interlocked.Decrement(ref admittedNow);
                }

                Interlocked.Increment(ref handled);
            },
            gate,
            counters,
            new CapturingLogger(),
            stop.Token);

        var streams = Enumerable.Range(0, connections).Select(i => listener.Offer($"c{i}")).ToArray();
        await WaitUntilAsync(() => Volatile.Read(ref handled) == connections && gate.Open == 0, "every connection handled");
        await stop.CancelAsync();
        await loop.WaitAsync(Wait);

        Assert.Equal(0, Volatile.Read(ref overCap));
        Assert.InRange(Volatile.Read(ref admittedTotal), cap, connections);
        Assert.Equal(connections, Volatile.Read(ref admittedTotal) + counters.Refused);
        Assert.Equal(gate.Refused, counters.Refused);
        Assert.All(streams, s => Assert.True(s.IsDisposed));
    }

    [Fact]
    public async Task ListenerDisposedUnderneath_LoopEnds()
    {
        var listener = new ScriptedListener();
        var loop = Serve(
            listener,
            (c, admitted, ct) => Task.CompletedTask,
            new ConnectionGate(8),
            new ProxyServiceCounters(),
            new CapturingLogger(),
            CancellationToken.None);

        listener.Fail(new ObjectDisposedException("listener"));
        await loop.WaitAsync(Wait);
        Assert.True(listener.IsDisposed);
    }

    /// <summary>The loop on <paramref name="listener"/> as service "test" at "here".</summary>
    private static Task Serve(
        ScriptedListener listener,
        Func<AcceptedConnection, bool, CancellationToken, Task> handle,
        ConnectionGate gate,
        ProxyServiceCounters counters,
        ILogger logger,
        CancellationToken cancellationToken) =>
        AcceptLoop.ServeAsync(listener, handle, gate, counters, logger, "test", "here", cancellationToken);

    /// <summary>A handler that writes each client's name to <paramref name="served"/> and throws "handler bug" for <paramref name="throwFor"/>.</summary>
    private static Func<AcceptedConnection, bool, CancellationToken, Task> Recording(Channel<string?> served, string? throwFor = null) =>
        (c, admitted, ct) =>
        {
            served.Writer.TryWrite(c.Client);
            return c.Client == throwFor ? throw new InvalidOperationException("handler bug") : Task.CompletedTask;
        };

    private static async Task<int> CountAsync(ChannelReader<string?> reader, int n)
    {
        for (var i = 0; i < n; i++)
        {
            await reader.ReadAsync().AsTask().WaitAsync(Wait);
        }

        return n;
    }

    /// <summary>A listener that hands out the connections (or accept failures) a test offers, in order.</summary>
    private sealed class ScriptedListener : IConnectionListener
    {
        private readonly Channel<Func<AcceptedConnection>> _queue = Channel.CreateUnbounded<Func<AcceptedConnection>>();
        private int _disposed;

        public bool IsDisposed => Volatile.Read(ref _disposed) != 0;

        public TrackedStream Offer(string client)
        {
            var stream = new TrackedStream();
            _queue.Writer.TryWrite(() => new AcceptedConnection(stream, null, client));
            return stream;
        }

        public void Fail(Exception e) => _queue.Writer.TryWrite(() => throw e);

        public async ValueTask<AcceptedConnection> AcceptAsync(CancellationToken cancellationToken) =>
            (await _queue.Reader.ReadAsync(cancellationToken))();

        public ValueTask DisposeAsync()
        {
            Volatile.Write(ref _disposed, 1);
            return ValueTask.CompletedTask;
        }
    }

    private sealed class TrackedStream : MemoryStream
    {
        private int _disposed;

        public bool IsDisposed => Volatile.Read(ref _disposed) != 0;

        protected override void Dispose(bool disposing)
        {
            Volatile.Write(ref _disposed, 1);
            base.Dispose(disposing);
        }
    }
}
