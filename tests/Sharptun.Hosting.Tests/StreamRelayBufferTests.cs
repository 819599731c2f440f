using System.Net;
using System.Net.Sockets;
using System.Security.Cryptography;
using Sharptun.Hosting;

namespace Sharptun.Hosting.Tests;

/// <summary>The relay takes a buffer only when a direction has bytes to move (a zero-byte read waits for them first).</summary>
public sealed class StreamRelayBufferTests
{
    [Fact]
    public async Task QuietDirections_WaitWithZeroByteReads_AndTakeABufferOnlyWhenDataArrives()
    {
        var (clientEnd, relayClient) = await LoopbackPairAsync();
        var (serverEnd, relayServer) = await LoopbackPairAsync();
        var client = new RecordingStream(relayClient);
        var server = new RecordingStream(relayServer);
        var relay = StreamRelay.RunAsync(client, server);

        await Task.Delay(300);
        Assert.Equal([0], client.ReadSizes); // waiting, with no buffer
        Assert.Equal([0], server.ReadSizes);

        var request = RandomNumberGenerator.GetBytes(100);
        await clientEnd.WriteAsync(request);
        var got = new byte[100];
        await serverEnd.ReadExactlyAsync(got);
        Assert.Equal(request, got);
        await Task.Delay(100);
        Assert.Equal([0, 16 * 1024, 0], client.ReadSizes); // read what came, gave the buffer back, waits again
        Assert.Equal([0], server.ReadSizes);                 // the reply side never took one

        clientEnd.Dispose();
        serverEnd.Dispose();
        var result = await relay.WaitAsync(TimeSpan.FromSeconds(10));
        Assert.Equal(100, result.ClientToServerBytes);
    }

    [Fact]
    public async Task StreamsWhoseZeroByteReadReturnsAtOnce_StillRelayEverything_AndEndAtTheRealEndOfStream()
    {
        // MemoryStream answers a zero-byte read with 0 at once, data or not: the relay must not take that for the end
        var data = RandomNumberGenerator.GetBytes(200_000);
        var source = new MemoryStream(data);
        var sink = new MemoryStream();
        var server = new RecordingStream(new WriteOnlyStream(sink)); // a server that never replies and closes when told
        var result = await StreamRelay.RunAsync(new RecordingStream(source), server).WaitAsync(TimeSpan.FromSeconds(10));
        Assert.Equal(data.Length, result.ClientToServerBytes);
        Assert.Equal(data, sink.ToArray());
    }

    [Fact]
    public async Task BulkTransfer_TradesUpToALargeBuffer_AfterAFullRead_AndGivesItBackWhenDrained()
    {
        var data = RandomNumberGenerator.GetBytes(1_000_000);
        var options = new RelayOptions { LargeBufferSize = 64 * 1024, LargeBufferCount = 4 };
        var client = new RecordingStream(new MemoryStream(data));
        var sink = new MemoryStream();
        var result = await StreamRelay.RunAsync(client, new WriteOnlyStream(sink), options).WaitAsync(TimeSpan.FromSeconds(10));
        Assert.Equal(data, sink.ToArray());
        Assert.Equal(data.Length, result.ClientToServerBytes);
        var sizes = client.ReadSizes.Where(s => s > 0).ToArray();
        Assert.Equal(16 * 1024, sizes[0]);                                  // a transfer starts small
        Assert.All(sizes[1..^1], s => Assert.Equal(64 * 1024, s));           // a full read traded up
        Assert.Equal(16 * 1024, sizes[^1]);                                 // a short read gave it back: the end is read small
        Assert.Equal(0, options.LargeBuffersInUse);

        // LargeBufferCount = 0: every read stays at BufferSize
        var small = new RelayOptions { LargeBufferCount = 0 };
        var plain = new RecordingStream(new MemoryStream(data));
        await StreamRelay.RunAsync(plain, new WriteOnlyStream(new MemoryStream()), small).WaitAsync(TimeSpan.FromSeconds(10));
        Assert.All(plain.ReadSizes.Where(s => s > 0), s => Assert.Equal(16 * 1024, s));
    }

    [Fact]
    public async Task ConcurrentBulkRelays_NeverHoldMoreLargeBuffersThanTheCount_AndAllBytesArrive()
    {
        // Eight relays race for two large buffers: a sampler watches the count while they run.
        var options = new RelayOptions { LargeBufferCount = 2 };
        var sources = Enumerable.Range(0, 8).Select(_ => RandomNumberGenerator.GetBytes(2_000_000)).ToArray();
        var sinks = sources.Select(_ => new MemoryStream()).ToArray();
        var maxSeen = 0;
        var tookLarge = 0;
        using var stop = new CancellationTokenSource();
        var sampler = Task.Factory.StartNew(() =>
        {
            while (!stop.IsCancellationRequested)
            {
                var n = options.LargeBuffersInUse;
                maxSeen = Math.Max(maxSeen, n);
                Thread.SpinWait(50);
            }
        }, TaskCreationOptions.LongRunning);
        var streams = sources.Select(s => new RecordingStream(new SlowMemoryStream(s))).ToArray();
        var relays = streams.Select((s, i) => Task.Run(() => StreamRelay.RunAsync(s, new WriteOnlyStream(sinks[i]), options))).ToArray();
        await Task.WhenAll(relays).WaitAsync(TimeSpan.FromSeconds(60));
        stop.Cancel();
        await sampler;
        for (var i = 0; i < sources.Length; i++)
        {
            Assert.Equal(sources[i], sinks[i].ToArray());
            tookLarge += streams[i].ReadSizes.Any(s => s == options.LargeBufferSize) ? 1 : 0;
        }

        Assert.InRange(maxSeen, 0, 2);
        Assert.True(tookLarge >= 1, "no relay ever got a large buffer");
        Assert.Equal(0, options.LargeBuffersInUse);
    }

    [Fact]
    public async Task ARelayThatFailsMidTransfer_GivesItsLargeBufferBack()
    {
        var options = new RelayOptions { LargeBufferCount = 1 };
        var source = new FailingStream(RandomNumberGenerator.GetBytes(500_000), failAfter: 300_000);
        var result = await StreamRelay.RunAsync(source, new WriteOnlyStream(new MemoryStream()), options).WaitAsync(TimeSpan.FromSeconds(10));
        Assert.Equal(RelayEnd.Error, result.End);
        Assert.True(source.LargeReads > 0, "the transfer never traded up");
        Assert.Equal(0, options.LargeBuffersInUse);
        Assert.True(options.TryTakeLargeBuffer()); // the one slot is free again
    }

    /// <summary>Serves its bytes, then fails every read once <paramref name="failAfter"/> bytes were read.</summary>
    private sealed class FailingStream(byte[] data, int failAfter) : MemoryStream(data)
    {
        public int LargeReads { get; private set; }

        public override ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken cancellationToken = default)
        {
            if (Position >= failAfter)
            {
                throw new IOException("connection reset (test)");
            }

            LargeReads += buffer.Length > 16 * 1024 ? 1 : 0;
            return base.ReadAsync(buffer, cancellationToken);
        }
    }

    /// <summary>A MemoryStream whose reads yield first, so concurrent relays interleave.</summary>
    private sealed class SlowMemoryStream(byte[] data) : MemoryStream(data)
    {
        public override async ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken cancellationToken = default)
        {
            await Task.Yield();
            return await base.ReadAsync(buffer, cancellationToken);
        }
    }

    /// <summary>Two ends of one loopback TCP connection (sockets wait on a zero-byte read).</summary>
    private static async Task<(NetworkStream A, NetworkStream B)> LoopbackPairAsync()
    {
        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        var a = new TcpClient();
        await a.ConnectAsync(IPAddress.Loopback, ((IPEndPoint)listener.LocalEndpoint).Port);
        var b = await listener.AcceptTcpClientAsync();
        return (new NetworkStream(a.Client, ownsSocket: true), new NetworkStream(b.Client, ownsSocket: true));
    }

    /// <summary>Writes go to <paramref name="inner"/>; a read waits until the stream is closed, then finds its end.</summary>
    private sealed class WriteOnlyStream(MemoryStream inner) : Stream
    {
        private readonly TaskCompletionSource<int> _closed = new(TaskCreationOptions.RunContinuationsAsynchronously);

        public override bool CanRead => true;
        public override bool CanSeek => false;
        public override bool CanWrite => true;
        public override long Length => throw new NotSupportedException();
        public override long Position { get => throw new NotSupportedException(); set => throw new NotSupportedException(); }

        public override ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken cancellationToken = default) =>
            new(_closed.Task.WaitAsync(cancellationToken));

        public override ValueTask WriteAsync(ReadOnlyMemory<byte> buffer, CancellationToken cancellationToken = default)
        {
            inner.Write(buffer.Span);
            return ValueTask.CompletedTask;
        }

        public override int Read(byte[] buffer, int offset, int count) => throw new NotSupportedException();
        public override void Write(byte[] buffer, int offset, int count) => inner.Write(buffer, offset, count);
        public override void Flush()
        {
        }

        public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();
        public override void SetLength(long value) => throw new NotSupportedException();

        protected override void Dispose(bool disposing)
        {
            _closed.TrySetResult(0);
            base.Dispose(disposing);
        }
    }

    /// <summary>Passes everything through and records the size of every read buffer.</summary>
    private sealed class RecordingStream(Stream inner) : Stream
    {
        private readonly List<int> _sizes = [];

        public int[] ReadSizes
        {
            get
            {
                lock (_sizes)
                {
                    return [.. _sizes];
                }
            }
        }

        public override bool CanRead => true;
        public override bool CanSeek => false;
        public override bool CanWrite => true;
        public override long Length => throw new NotSupportedException();
        public override long Position { get => throw new NotSupportedException(); set => throw new NotSupportedException(); }

        public override ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken cancellationToken = default)
        {
            lock (_sizes)
            {
                _sizes.Add(buffer.Length);
            }

            return inner.ReadAsync(buffer, cancellationToken);
        }

        public override ValueTask WriteAsync(ReadOnlyMemory<byte> buffer, CancellationToken cancellationToken = default) =>
            inner.WriteAsync(buffer, cancellationToken);

        public override int Read(byte[] buffer, int offset, int count) => throw new NotSupportedException();
        public override void Write(byte[] buffer, int offset, int count) => throw new NotSupportedException();
        public override void Flush() => inner.Flush();
        public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();
        public override void SetLength(long value) => throw new NotSupportedException();

        protected override void Dispose(bool disposing)
        {
            if (disposing)
            {
                inner.Dispose();
            }

            base.Dispose(disposing);
        }
    }
}
