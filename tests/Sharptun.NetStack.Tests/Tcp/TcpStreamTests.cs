using System.Net.Sockets;
using System.Security.Cryptography;
using Sharptun.NetStack.Tcp;

namespace Sharptun.NetStack.Tests.Tcp;

/// <summary>The socket API (TcpStream / TcpStreamListener / ConnectAsync) over the simulated link, driven by a pump.</summary>
public sealed class TcpStreamTests
{
    /// <summary>Steps the virtual network while <paramref name="work"/> runs on the thread pool.</summary>
    private static async Task Drive(SimNetwork net, Task work, int realSeconds = 20)
    {
        var deadline = DateTime.UtcNow.AddSeconds(realSeconds);
        while (!work.IsCompleted)
        {
            if (DateTime.UtcNow > deadline)
            {
                throw new TimeoutException($"stream test did not finish (seed {net.Seed})");
            }

            if (!net.Step())
            {
                await Task.Delay(1);
            }
            else
            {
                await Task.Delay(0);
                Thread.Yield();
            }
        }

        await work;
    }

    private static (SimNetwork Net, SimHost Client, SimHost Server) Hosts(int seed, TcpOptions? o = null)
    {
        var net = new SimNetwork(seed);
        return (net, net.AddHost("10.0.0.1", o), net.AddHost("10.0.0.2", o));
    }

    private static async Task<byte[]> ReadToEnd(Stream s)
    {
        var ms = new MemoryStream();
        var buf = new byte[8192];
        int n;
        while ((n = await s.ReadAsync(buf)) > 0)
        {
            ms.Write(buf, 0, n);
        }

        return ms.ToArray();
    }

    [Fact]
    public async Task ConnectAsync_EchoServer_DataRoundTripsAndBothSidesSeeEof()
    {
        var (net, a, b) = Hosts(61);
        var listener = b.Tcp.Listen(b.EndPoint(7), 8);
        var data = Transfer.RandomData(200_000, 61);
        var server = Task.Run(async () =>
        {
            await using var s = await listener.AcceptAsync();
            var got = await ReadToEnd(s);
            Assert.False(net.Gate.IsHeldByCurrentThread);
            await s.WriteAsync(got);
        });
        byte[]? echoed = null;
        var client = Task.Run(async () =>
        {
            await using var c = await a.Tcp.ConnectAsync(b.EndPoint(7), null, CancellationToken.None);
            Assert.Equal(7, c.RemoteEndPoint.Port);
            var reader = ReadToEnd(c);
            await c.WriteAsync(data);
            c.ShutdownWrite();
            echoed = await reader;
        });
        await Drive(net, Task.WhenAll(server, client));
        Assert.Equal(SHA256.HashData(data), SHA256.HashData(echoed!));
    }

    [Fact]
    public async Task ReadAsync_ZeroBytes_WaitsForData_ThenForTheEndOfStream()
    {
        var (net, a, b) = Hosts(64);
        var listener = b.Tcp.Listen(b.EndPoint(7), 8);
        var release = new TaskCompletionSource();
        var server = Task.Run(async () =>
        {
            await using var s = await listener.AcceptAsync();
            await release.Task;
            await s.WriteAsync(new byte[] { 42 });
            s.ShutdownWrite();
            Assert.Empty(await ReadToEnd(s));
        });
        var client = Task.Run(async () =>
        {
            await using var c = await a.Tcp.ConnectAsync(b.EndPoint(7), null, CancellationToken.None);
            var wait = c.ReadAsync(Memory<byte>.Empty).AsTask();
            await Task.Delay(300);
            Assert.False(wait.IsCompleted); // nothing to read yet: a zero-byte read waits, as a socket's does
            release.SetResult();
            Assert.Equal(0, await wait);
            var one = new byte[4];
            Assert.Equal(1, await c.ReadAsync(one));
            Assert.Equal(0, await c.ReadAsync(Memory<byte>.Empty)); // returns at the end of stream too
            Assert.Equal(0, await c.ReadAsync(one));
            c.ShutdownWrite();
        });
        await Drive(net, Task.WhenAll(server, client));
    }

    [Fact]
    public async Task ReadAsync_ZeroBytes_PeerAborts_ThrowsConnectionReset()
    {
        var (net, a, b) = Hosts(65);
        var listener = b.Tcp.Listen(b.EndPoint(7), 8);
        var server = Task.Run(async () =>
        {
            var s = await listener.AcceptAsync();
            await Task.Delay(100);
            s.Abort();
        });
        var client = Task.Run(async () =>
        {
            await using var c = await a.Tcp.ConnectAsync(b.EndPoint(7), null, CancellationToken.None);
            var e = await Assert.ThrowsAsync<IOException>(async () => _ = await c.ReadAsync(Memory<byte>.Empty));
            Assert.Equal(SocketError.ConnectionReset, Assert.IsType<SocketException>(e.InnerException).SocketErrorCode);
        });
        await Drive(net, Task.WhenAll(server, client));
    }

    [Fact]
    public async Task ConnectAsync_ClosedPort_ThrowsSocketExceptionConnectionRefused()
    {
        var (net, a, b) = Hosts(62);
        var t = a.Tcp.ConnectAsync(b.EndPoint(9), null, CancellationToken.None).AsTask();
        await Drive(net, Task.WhenAny(t));
        var e = await Assert.ThrowsAsync<SocketException>(() => t);
        Assert.Equal(SocketError.ConnectionRefused, e.SocketErrorCode);
    }

    [Fact]
    public async Task ReadAsync_PeerAborts_ThrowsIOExceptionWithConnectionReset()
    {
        var (net, a, b) = Hosts(63);
        var listener = b.Tcp.Listen(b.EndPoint(7), 8);
        var server = Task.Run(async () =>
        {
            var s = await listener.AcceptAsync();
            s.Abort();
        });
        var client = Task.Run(async () =>
        {
            await using var c = await a.Tcp.ConnectAsync(b.EndPoint(7), null, CancellationToken.None);
            var e = await Assert.ThrowsAsync<IOException>(async () => _ = await c.ReadAsync(new byte[10]));
            Assert.Equal(SocketError.ConnectionReset, Assert.IsType<SocketException>(e.InnerException).SocketErrorCode);
        });
        await Drive(net, Task.WhenAll(server, client));
    }

    [Fact]
    public async Task ReadAsync_Cancelled_ThrowsAndStreamStaysUsable()
    {
        var (net, a, b) = Hosts(64);
        var listener = b.Tcp.Listen(b.EndPoint(7), 8);
        var ready = new TaskCompletionSource();
        var server = Task.Run(async () =>
        {
            await using var s = await listener.AcceptAsync();
            await ready.Task;
            await s.WriteAsync(new byte[] { 42 });
            await ReadToEnd(s);
        });
        var client = Task.Run(async () =>
        {
            await using var c = await a.Tcp.ConnectAsync(b.EndPoint(7), null, CancellationToken.None);
            using var cts = new CancellationTokenSource();
            var pending = c.ReadAsync(new byte[10], cts.Token).AsTask();
            cts.Cancel();
            await Assert.ThrowsAnyAsync<OperationCanceledException>(() => pending);
            ready.SetResult();
            var buf = new byte[10];
            Assert.Equal(1, await c.ReadAsync(buf));
            Assert.Equal(42, buf[0]);
        });
        await Drive(net, Task.WhenAll(server, client));
    }

    [Fact]
    public async Task WriteAsync_MoreThanSendBuffer_WaitsForSpaceAndDeliversEverything()
    {
        var o = new TcpOptions { SendBufferSize = 4096, ReceiveBufferSize = 4096 };
        var (net, a, b) = Hosts(65, o);
        var listener = b.Tcp.Listen(b.EndPoint(7), 8);
        var data = Transfer.RandomData(100_000, 65);
        byte[]? got = null;
        var server = Task.Run(async () =>
        {
            await using var s = await listener.AcceptAsync();
            got = await ReadToEnd(s);
        });
        var client = Task.Run(async () =>
        {
            await using var c = await a.Tcp.ConnectAsync(b.EndPoint(7), null, CancellationToken.None);
            await c.WriteAsync(data);
        });
        await Drive(net, Task.WhenAll(server, client));
        Assert.Equal(data, got);
    }

    [Fact]
    public async Task AcceptAsync_ListenerDisposed_ThrowsObjectDisposed()
    {
        var (net, _, b) = Hosts(66);
        var listener = b.Tcp.Listen(b.EndPoint(7), 8);
        var pending = listener.AcceptAsync().AsTask();
        listener.Dispose();
        await Drive(net, Task.WhenAny(pending));
        await Assert.ThrowsAsync<ObjectDisposedException>(() => pending);
    }

    [Fact]
    public async Task ReadAsync_ReadTimeoutElapses_ThrowsIOExceptionTimedOut()
    {
        var (net, a, b) = Hosts(67);
        var listener = b.Tcp.Listen(b.EndPoint(7), 8);
        var done = new TaskCompletionSource();
        var server = Task.Run(async () =>
        {
            await using var s = await listener.AcceptAsync();
            await done.Task;
        });
        var client = Task.Run(async () =>
        {
            await using var c = await a.Tcp.ConnectAsync(b.EndPoint(7), null, CancellationToken.None);
            c.ReadTimeout = 50;
            var e = await Assert.ThrowsAsync<IOException>(async () => _ = await c.ReadAsync(new byte[10]));
            Assert.Equal(SocketError.TimedOut, Assert.IsType<SocketException>(e.InnerException).SocketErrorCode);
            done.SetResult();
        });
        await Drive(net, Task.WhenAll(server, client));
    }
}
