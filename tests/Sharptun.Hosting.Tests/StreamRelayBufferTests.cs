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
