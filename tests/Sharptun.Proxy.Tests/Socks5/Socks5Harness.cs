using System.Buffers.Binary;
using System.Net;
using System.Net.Sockets;
using System.Text;
using Sharptun.Hosting;
using Sharptun.Proxy.Socks5;

namespace Sharptun.Proxy.Tests.Socks5;

/// <summary>A <see cref="Socks5Server"/> on 127.0.0.1 (any port) over a <see cref="LoopbackNetwork"/>, running until disposed.</summary>
internal sealed class Socks5Harness : IAsyncDisposable
{
    private readonly CancellationTokenSource _stop = new();
    private readonly Task _run;

    public Socks5Harness(Socks5Options? options = null, LoopbackNetwork? network = null, int cap = 1024, TimeSpan? handshakeTimeout = null, RelayOptions? relay = null, ITunnelNetwork? seam = null, TimeSpan? acceptTimeout = null)
    {
        Network = network ?? new LoopbackNetwork();
        Context = new ProxyContext(seam ?? Network)
        {
            Gate = new ConnectionGate(cap),
            HandshakeTimeout = handshakeTimeout ?? TimeSpan.FromSeconds(30),
            Relay = relay ?? new RelayOptions { IdleTimeout = TimeSpan.FromMinutes(1) },
            AcceptTimeout = acceptTimeout ?? TimeSpan.FromSeconds(30),
        };
        Server = new Socks5Server(options ?? new Socks5Options(new IPEndPoint(IPAddress.Loopback, 0)), Context);
        Server.Start();
        _run = Server.RunAsync(_stop.Token);
    }

    public LoopbackNetwork Network { get; }

    public ProxyContext Context { get; }

    public Socks5Server Server { get; }

    public IPEndPoint EndPoint => Server.LocalEndPoint!;

    public async Task<Socks5TestClient> ConnectClientAsync()
    {
        var socket = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp) { NoDelay = true };
        await socket.ConnectAsync(EndPoint);
        return new Socks5TestClient(socket);
    }

    /// <summary>Waits (up to 20 s, for a loaded machine) until <paramref name="condition"/> holds.</summary>
    public static async Task EventuallyAsync(Func<bool> condition, string what)
    {
        var deadline = Environment.TickCount64 + 20_000;
        while (!condition())
        {
            Assert.True(Environment.TickCount64 < deadline, $"Timed out waiting for: {what}");
            await Task.Delay(20);
        }
    }

    public async ValueTask DisposeAsync()
    {
        await _stop.CancelAsync();
        await _run.WaitAsync(TimeSpan.FromSeconds(30));
        _stop.Dispose();
    }
}

/// <summary>A small SOCKS5 client (RFC 1928/1929) that can also send what a real client never would.</summary>
internal sealed class Socks5TestClient(Socket socket) : IDisposable
{
    public Socket Socket { get; } = socket;

    public NetworkStream Stream { get; } = new(socket, ownsSocket: true);

    public Task SendAsync(params byte[] bytes) => Stream.WriteAsync(bytes).AsTask();

    /// <summary>Reads exactly <paramref name="count"/> bytes (fails on end of stream or after 20 s).</summary>
    public async Task<byte[]> ReadAsync(int count)
    {
        var buffer = new byte[count];
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(20));
        await Stream.ReadExactlyAsync(buffer, timeout.Token);
        return buffer;
    }

    /// <summary>Whether the server closed the connection (end of stream or reset) within 20 s, reading and discarding anything before.</summary>
    public async Task<bool> ClosedByServerAsync()
    {
        var buffer = new byte[256];
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(20));
        try
        {
            while (await Stream.ReadAsync(buffer, timeout.Token) > 0)
            {
            }

            return true;
        }
        catch (IOException)
        {
            return true;
        }
        catch (OperationCanceledException)
        {
            return false;
        }
    }

    /// <summary>Greeting offering <paramref name="methods"/>; returns the method the server chose.</summary>
    public async Task<byte> GreetAsync(params byte[] methods)
    {
        await SendAsync([0x05, (byte)methods.Length, .. methods]);
        var reply = await ReadAsync(2);
        Assert.Equal(0x05, reply[0]);
        return reply[1];
    }

    /// <summary>RFC 1929 sub-negotiation; returns STATUS.</summary>
    public async Task<byte> AuthenticateAsync(string user, string password)
    {
        var u = Encoding.UTF8.GetBytes(user);
        var p = Encoding.UTF8.GetBytes(password);
        await SendAsync([0x01, (byte)u.Length, .. u, (byte)p.Length, .. p]);
        var reply = await ReadAsync(2);
        Assert.Equal(0x01, reply[0]);
        return reply[1];
    }

    public static byte[] Request(byte command, IPEndPoint target)
    {
        var ipv4 = target.AddressFamily == AddressFamily.InterNetwork;
        var request = new byte[4 + (ipv4 ? 4 : 16) + 2];
        request[0] = 0x05;
        request[1] = command;
        request[3] = ipv4 ? (byte)0x01 : (byte)0x04;
        target.Address.TryWriteBytes(request.AsSpan(4), out _);
        BinaryPrimitives.WriteUInt16BigEndian(request.AsSpan(request.Length - 2), (ushort)target.Port);
        return request;
    }

    public static byte[] Request(byte command, string host, int port)
    {
        var name = Encoding.ASCII.GetBytes(host);
        return [0x05, command, 0x00, 0x03, (byte)name.Length, .. name, (byte)(port >> 8), (byte)port];
    }

    /// <summary>Sends a request and reads the reply (RFC 1928 §6); returns REP and BND.</summary>
    public async Task<(byte Reply, IPEndPoint Bound)> RequestAsync(byte[] request)
    {
        await SendAsync(request);
        return await ReadReplyAsync();
    }

    public async Task<(byte Reply, IPEndPoint Bound)> ReadReplyAsync()
    {
        var head = await ReadAsync(4);
        Assert.Equal(0x05, head[0]);
        Assert.Equal(0x00, head[2]);
        var length = head[3] switch
        {
            0x01 => 4,
            0x04 => 16,
            _ => throw new Xunit.Sdk.XunitException($"reply ATYP 0x{head[3]:x2}"),
        };
        var tail = await ReadAsync(length + 2);
        var bound = new IPEndPoint(new IPAddress(tail.AsSpan(0, length)), BinaryPrimitives.ReadUInt16BigEndian(tail.AsSpan(length)));
        return (head[1], bound);
    }

    /// <summary>Greets with "no authentication" and sends CONNECT; returns REP and BND.</summary>
    public async Task<(byte Reply, IPEndPoint Bound)> ConnectAsync(byte[] request)
    {
        Assert.Equal(0x00, await GreetAsync(0x00));
        return await RequestAsync(request);
    }

    public void Dispose() => Stream.Dispose();
}

/// <summary>A TCP server on loopback that echoes every byte and half-closes when the client does; counts its open connections.</summary>
internal sealed class EchoServer : IDisposable
{
    private readonly TcpListener _listener;
    private readonly CancellationTokenSource _stop = new();
    private int _open;

    public EchoServer(IPAddress address)
    {
        _listener = new TcpListener(address, 0);
        _listener.Start(2048);
        _ = AcceptLoopAsync();
    }

    public IPEndPoint EndPoint => (IPEndPoint)_listener.LocalEndpoint;

    public int Open => Volatile.Read(ref _open);

    private async Task AcceptLoopAsync()
    {
        try
        {
            while (true)
            {
                var socket = await _listener.AcceptSocketAsync(_stop.Token);
                _ = EchoAsync(socket);
            }
        }
        catch (Exception e) when (e is OperationCanceledException or SocketException or ObjectDisposedException)
        {
        }
    }

    private async Task EchoAsync(Socket socket)
    {
        Interlocked.Increment(ref _open);
        try
        {
            var buffer = new byte[16 * 1024];
            while (true)
            {
                var n = await socket.ReceiveAsync(buffer, SocketFlags.None, _stop.Token);
                if (n == 0)
                {
                    socket.Shutdown(SocketShutdown.Send);
                    break;
                }

                await socket.SendAsync(buffer.AsMemory(0, n), SocketFlags.None, _stop.Token);
            }
        }
        catch (Exception e) when (e is OperationCanceledException or SocketException or ObjectDisposedException)
        {
        }
        finally
        {
            socket.Dispose();
            Interlocked.Decrement(ref _open);
        }
    }

    public void Dispose()
    {
        _stop.Cancel();
        _listener.Stop();
    }
}
