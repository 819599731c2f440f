using System.Net;
using System.Net.Sockets;
using System.Text;
using Sharptun.Proxy.Config;

namespace Sharptun.Proxy.Tests.Forwards;

/// <summary>Shared pieces of the forward tests: a running service, loopback TCP targets, waits that tolerate a loaded machine.</summary>
internal static class ForwardTestKit
{
    public static readonly TimeSpan Patience = TimeSpan.FromSeconds(20);

    /// <summary>Starts <paramref name="service"/> and runs it until the returned handle is disposed (which asserts that RunAsync ends).</summary>
    public static RunningService Run(IProxyService service)
    {
        service.Start();
        var cts = new CancellationTokenSource();
        return new RunningService(service.RunAsync(cts.Token), cts);
    }

    /// <summary>Polls <paramref name="condition"/> until true, failing after <see cref="Patience"/>.</summary>
    public static async Task WaitUntilAsync(Func<bool> condition, string what)
    {
        var deadline = DateTime.UtcNow + Patience;
        while (!condition())
        {
            if (DateTime.UtcNow > deadline)
            {
                Assert.Fail($"timed out waiting for {what}");
            }

            await Task.Delay(10);
        }
    }

    /// <summary>Reads until end of stream (bounded by <see cref="Patience"/>).</summary>
    public static async Task<byte[]> ReadToEndAsync(Stream stream)
    {
        using var timeout = new CancellationTokenSource(Patience);
        using var all = new MemoryStream();
        await stream.CopyToAsync(all, timeout.Token);
        return all.ToArray();
    }

    /// <summary>Reads exactly <paramref name="count"/> bytes.</summary>
    public static async Task<byte[]> ReadExactlyAsync(Stream stream, int count)
    {
        using var timeout = new CancellationTokenSource(Patience);
        var buffer = new byte[count];
        await stream.ReadExactlyAsync(buffer, timeout.Token);
        return buffer;
    }

    /// <summary>A port nobody listens on right now.</summary>
    public static int FreeTcpPort()
    {
        using var probe = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        probe.Bind(new IPEndPoint(IPAddress.Loopback, 0));
        return ((IPEndPoint)probe.LocalEndPoint!).Port;
    }

    /// <summary>A connected client socket's stream to <paramref name="endPoint"/>.</summary>
    public static async Task<NetworkStream> ConnectAsync(IPEndPoint endPoint)
    {
        var socket = new Socket(endPoint.AddressFamily, SocketType.Stream, ProtocolType.Tcp);
        using var timeout = new CancellationTokenSource(Patience);
        await socket.ConnectAsync(endPoint, timeout.Token);
        return new NetworkStream(socket, ownsSocket: true);
    }

    public static ConfigSection Section(string text, string name)
    {
        var file = ConfigFile.Parse(text, "test.conf", _ => null);
        return file.Named(name).Single();
    }

    public static byte[] Ascii(string text) => Encoding.ASCII.GetBytes(text);
}

internal sealed class RunningService(Task run, CancellationTokenSource cts) : IAsyncDisposable
{
    public Task Run => run;

    public async ValueTask DisposeAsync()
    {
        await cts.CancelAsync();
        var finished = await Task.WhenAny(run, Task.Delay(ForwardTestKit.Patience));
        Assert.True(finished == run, "RunAsync did not return after cancellation");
        await run;
        cts.Dispose();
    }
}

/// <summary>
/// A loopback TCP server for forward targets: "half-close echo" reads the whole request (until the client's FIN),
/// answers "got:" + request and closes; so a reply proves the FIN crossed the forward and the answer crossed back.
/// </summary>
internal sealed class TcpTarget : IAsyncDisposable
{
    private readonly TcpListener _listener;
    private readonly CancellationTokenSource _stop = new();
    private readonly List<Task> _handlers = [];
    private readonly Task _accepting;
    private int _accepted;

    public TcpTarget(Func<NetworkStream, CancellationToken, Task>? handler = null, IPAddress? address = null)
    {
        _listener = new TcpListener(address ?? IPAddress.Loopback, 0);
        _listener.Start();
        handler ??= HalfCloseEchoAsync;
        _accepting = AcceptAsync(handler);
    }

    public IPEndPoint EndPoint => (IPEndPoint)_listener.LocalEndpoint;

    public int Port => EndPoint.Port;

    public int Accepted => Volatile.Read(ref _accepted);

    public static async Task HalfCloseEchoAsync(NetworkStream stream, CancellationToken cancellationToken)
    {
        using var all = new MemoryStream();
        await stream.CopyToAsync(all, cancellationToken);
        var reply = new byte[4 + all.Length];
        "got:"u8.CopyTo(reply);
        all.ToArray().CopyTo(reply, 4);
        await stream.WriteAsync(reply, cancellationToken);
        stream.Socket.Shutdown(SocketShutdown.Send);
    }

    public async ValueTask DisposeAsync()
    {
        await _stop.CancelAsync();
        _listener.Stop();
        await _accepting;
        Task[] handlers;
        lock (_handlers)
        {
            handlers = [.. _handlers];
        }

        await Task.WhenAll(handlers).WaitAsync(ForwardTestKit.Patience).ConfigureAwait(ConfigureAwaitOptions.SuppressThrowing);
        _stop.Dispose();
    }

    private async Task AcceptAsync(Func<NetworkStream, CancellationToken, Task> handler)
    {
        while (true)
        {
            Socket socket;
            try
            {
                socket = await _listener.AcceptSocketAsync(_stop.Token);
            }
            catch (Exception e) when (e is OperationCanceledException or SocketException or ObjectDisposedException)
            {
                return;
            }

            Interlocked.Increment(ref _accepted);
            var task = Task.Run(async () =>
            {
                await using var stream = new NetworkStream(socket, ownsSocket: true);
                try
                {
                    await handler(stream, _stop.Token);
                }
                catch (Exception e) when (e is OperationCanceledException or IOException or SocketException)
                {
                }
            });
            lock (_handlers)
            {
                _handlers.Add(task);
            }
        }
    }
}
