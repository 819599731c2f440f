using System.Globalization;
using System.Net;
using System.Net.Sockets;
using System.Security.Cryptography;
using System.Text;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using Sharptun.Hosting;
using Sharptun.Proxy.Http;

namespace Sharptun.Proxy.Tests.Http;

/// <summary>
/// A Kestrel origin on loopback (shared by a test class):
/// <c>/bytes/N</c> N deterministic bytes with Content-Length · <c>/chunked/N</c> the same without a length (chunked) ·
/// <c>/echo</c> the request body back (chunked), method in X-Method, Host in X-Host · <c>/sha</c> SHA-256 and length
/// of the request body, read as it streams · <c>/headers</c> the request's fields, one "name: value" a line ·
/// <c>/status/N</c> an empty response with status N.
/// </summary>
public sealed class OriginServer : IAsyncLifetime
{
    private WebApplication? _app;

    public int Port { get; private set; }

    public async Task InitializeAsync()
    {
        var builder = WebApplication.CreateSlimBuilder();
        builder.Logging.ClearProviders();
        builder.WebHost.ConfigureKestrel(o =>
        {
            o.Listen(IPAddress.Loopback, 0);
            o.Limits.MaxRequestBodySize = null;
        });
        _app = builder.Build();
        _app.Run(HandleAsync);
        await _app.StartAsync();
        var address = _app.Services.GetRequiredService<IServer>().Features.Get<IServerAddressesFeature>()!.Addresses.First();
        Port = new Uri(address).Port;
    }

    public async Task DisposeAsync()
    {
        if (_app is not null)
        {
            await _app.StopAsync();
            await _app.DisposeAsync();
        }
    }

    private static async Task HandleAsync(HttpContext context)
    {
        var path = context.Request.Path.Value ?? "/";
        var response = context.Response;
        if (path.StartsWith("/bytes/", StringComparison.Ordinal) || path.StartsWith("/chunked/", StringComparison.Ordinal))
        {
            var size = long.Parse(path[(path.LastIndexOf('/') + 1)..], CultureInfo.InvariantCulture);
            if (path.StartsWith("/bytes/", StringComparison.Ordinal))
            {
                response.ContentLength = size;
            }

            response.ContentType = "application/octet-stream";
            if (HttpMethods.IsHead(context.Request.Method))
            {
                return;
            }

            var block = new byte[64 * 1024];
            for (long sent = 0; sent < size;)
            {
                var n = (int)Math.Min(block.Length, size - sent);
                Pattern.Fill(block.AsSpan(0, n), sent);
                await response.Body.WriteAsync(block.AsMemory(0, n));
                sent += n;
            }
        }
        else if (path == "/echo")
        {
            response.Headers["X-Method"] = context.Request.Method;
            response.Headers["X-Host"] = context.Request.Host.Value;
            response.ContentType = "application/octet-stream";
            await context.Request.Body.CopyToAsync(response.Body);
        }
        else if (path == "/sha")
        {
            using var sha = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
            var buffer = new byte[64 * 1024];
            long total = 0;
            int n;
            while ((n = await context.Request.Body.ReadAsync(buffer)) > 0)
            {
                sha.AppendData(buffer, 0, n);
                total += n;
            }

            await response.WriteAsync($"{total} {Convert.ToHexStringLower(sha.GetHashAndReset())}");
        }
        else if (path == "/headers")
        {
            var text = new StringBuilder();
            foreach (var header in context.Request.Headers)
            {
                text.Append(header.Key.ToLowerInvariant()).Append(": ").Append(header.Value.ToString()).Append('\n');
            }

            await response.WriteAsync(text.ToString());
        }
        else if (path.StartsWith("/status/", StringComparison.Ordinal))
        {
            response.StatusCode = int.Parse(path["/status/".Length..], CultureInfo.InvariantCulture);
        }
        else
        {
            response.StatusCode = 404;
        }
    }
}

/// <summary>Deterministic content: byte i of a body is a function of i, so any slice can be checked.</summary>
public static class Pattern
{
    public static void Fill(Span<byte> span, long offset)
    {
        for (var i = 0; i < span.Length; i++)
        {
            var x = (ulong)(offset + i);
            span[i] = (byte)((x * 2654435761UL) >> 13 ^ x);
        }
    }

    public static byte[] Bytes(long offset, int count)
    {
        var bytes = new byte[count];
        Fill(bytes, offset);
        return bytes;
    }

    public static string Sha256Hex(long size)
    {
        using var sha = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
        var block = new byte[64 * 1024];
        for (long at = 0; at < size;)
        {
            var n = (int)Math.Min(block.Length, size - at);
            Fill(block.AsSpan(0, n), at);
            sha.AppendData(block, 0, n);
            at += n;
        }

        return Convert.ToHexStringLower(sha.GetHashAndReset());
    }
}

/// <summary>A stream of <see cref="Pattern"/> bytes of a given length, produced as it is read (for uploads).</summary>
public sealed class PatternStream(long length) : Stream
{
    private long _position;

    public override bool CanRead => true;

    public override bool CanSeek => false;

    public override bool CanWrite => false;

    public override long Length => length;

    public override long Position { get => _position; set => throw new NotSupportedException(); }

    public override int Read(byte[] buffer, int offset, int count) => Read(buffer.AsSpan(offset, count));

    public override int Read(Span<byte> buffer)
    {
        var n = (int)Math.Min(buffer.Length, length - _position);
        Pattern.Fill(buffer[..n], _position);
        _position += n;
        return n;
    }

    public override ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken cancellationToken = default) =>
        ValueTask.FromResult(Read(buffer.Span));

    public override void Flush()
    {
    }

    public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();

    public override void SetLength(long value) => throw new NotSupportedException();

    public override void Write(byte[] buffer, int offset, int count) => throw new NotSupportedException();
}

/// <summary>An <see cref="HttpProxyServer"/> on 127.0.0.1:0 running until disposed, over a <see cref="LoopbackNetwork"/> by default.</summary>
public sealed class ProxyHarness : IAsyncDisposable
{
    private readonly CancellationTokenSource _stop = new();
    private readonly Task _run;

    private ProxyHarness(HttpProxyServer server, ProxyContext context)
    {
        Server = server;
        Context = context;
        server.Start();
        _run = server.RunAsync(_stop.Token);
    }

    public HttpProxyServer Server { get; }

    public ProxyContext Context { get; }

    public IPEndPoint EndPoint => Server.LocalEndPoint!;

    public Uri ProxyUri => new($"http://127.0.0.1:{EndPoint.Port}");

    public static LoopbackNetwork Network()
    {
        var network = new LoopbackNetwork();
        network.Names["a.test"] = IPAddress.Loopback;
        network.Names["b.test"] = IPAddress.Loopback;
        return network;
    }

    public static ProxyHarness Start(
        ITunnelNetwork? network = null, string? username = null, string? password = null,
        System.Security.Cryptography.X509Certificates.X509Certificate2? certificate = null,
        int capacity = 1024, TimeSpan? handshakeTimeout = null, TimeSpan? idleTimeout = null)
    {
        var context = new ProxyContext(network ?? Network())
        {
            Gate = new ConnectionGate(capacity),
            HandshakeTimeout = handshakeTimeout ?? TimeSpan.FromSeconds(30),
            Relay = new RelayOptions { IdleTimeout = idleTimeout ?? TimeSpan.FromMinutes(2) },
        };
        var server = new HttpProxyServer(
            new HttpProxyOptions { BindAddress = new IPEndPoint(IPAddress.Loopback, 0), Username = username, Password = password, Certificate = certificate },
            context);
        return new ProxyHarness(server, context);
    }

    public static ProxyHarness Start(HttpProxyServer server, ProxyContext context) => new(server, context);

    public HttpClient Client(ICredentials? credentials = null, bool expectContinue = false)
    {
        var handler = new SocketsHttpHandler
        {
            Proxy = new WebProxy(ProxyUri) { Credentials = credentials },
            UseProxy = true,
            AllowAutoRedirect = false,
        };
        var client = new HttpClient(handler) { Timeout = TimeSpan.FromSeconds(60) };
        client.DefaultRequestHeaders.ExpectContinue = expectContinue;
        return client;
    }

    public async Task<TcpClient> ConnectRawAsync()
    {
        var client = new TcpClient();
        await client.ConnectAsync(EndPoint);
        return client;
    }

    /// <summary>Waits until the counters show no open connection (connections end asynchronously after the client sees the response).</summary>
    public async Task WaitIdleAsync()
    {
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(20);
        while ((Server.Counters.Open != 0 || Context.Gate.Open != 0) && DateTime.UtcNow < deadline)
        {
            await Task.Delay(20);
        }

        Assert.Equal(0, Server.Counters.Open);
        Assert.Equal(0, Context.Gate.Open);
    }

    public async ValueTask DisposeAsync()
    {
        await _stop.CancelAsync();
        await _run.WaitAsync(TimeSpan.FromSeconds(20));
        _stop.Dispose();
    }
}

/// <summary>A response read off a raw connection by <see cref="RawHttp"/>.</summary>
public sealed record RawResponse(int Status, string Head, Dictionary<string, string> Fields, byte[] Body)
{
    public string Text => Encoding.UTF8.GetString(Body);
}

/// <summary>A minimal HTTP/1.1 client over a raw stream, for what HttpClient will not send.</summary>
public static class RawHttp
{
    public static Task SendAsync(Stream stream, string text) => stream.WriteAsync(Encoding.Latin1.GetBytes(text)).AsTask();

    /// <summary>Reads one response: head, then a body framed by Content-Length, chunked, or close (none for HEAD/1xx/204/304).</summary>
    public static async Task<RawResponse> ReadResponseAsync(Stream stream, bool head = false)
    {
        var headBytes = new List<byte>();
        var one = new byte[1];
        while (headBytes.Count < 4 || !(headBytes[^4] == '\r' && headBytes[^3] == '\n' && headBytes[^2] == '\r' && headBytes[^1] == '\n'))
        {
            if (await stream.ReadAsync(one) == 0)
            {
                throw new EndOfStreamException($"the connection closed inside a response head: '{Encoding.Latin1.GetString(headBytes.ToArray())}'");
            }

            headBytes.Add(one[0]);
        }

        var text = Encoding.Latin1.GetString(headBytes.ToArray());
        var lines = text.Split("\r\n", StringSplitOptions.RemoveEmptyEntries);
        var status = int.Parse(lines[0].Split(' ')[1], CultureInfo.InvariantCulture);
        var fields = new Dictionary<string, string>(StringComparer.OrdinalIgnoreCase);
        foreach (var line in lines.Skip(1))
        {
            var colon = line.IndexOf(':', StringComparison.Ordinal);
            fields[line[..colon]] = line[(colon + 1)..].Trim();
        }

        var body = new MemoryStream();
        if (head || status < 200 || status is 204 or 304)
        {
        }
        else if (fields.TryGetValue("Transfer-Encoding", out var te) && te.Contains("chunked", StringComparison.OrdinalIgnoreCase))
        {
            while (true)
            {
                var sizeLine = await ReadLineAsync(stream);
                var size = Convert.ToInt32(sizeLine.Split(';')[0], 16);
                if (size == 0)
                {
                    while ((await ReadLineAsync(stream)).Length > 0)
                    {
                    }

                    break;
                }

                var chunk = new byte[size];
                await stream.ReadExactlyAsync(chunk);
                body.Write(chunk);
                Assert.Equal(string.Empty, await ReadLineAsync(stream));
            }
        }
        else if (fields.TryGetValue("Content-Length", out var length))
        {
            var bytes = new byte[long.Parse(length, CultureInfo.InvariantCulture)];
            await stream.ReadExactlyAsync(bytes);
            body.Write(bytes);
        }
        else
        {
            await stream.CopyToAsync(body);
        }

        return new RawResponse(status, text, fields, body.ToArray());
    }

    /// <summary>Reads until the peer closes (or resets: what arrived before the reset is returned).</summary>
    public static async Task<byte[]> ReadToEndAsync(Stream stream)
    {
        var all = new MemoryStream();
        var buffer = new byte[16 * 1024];
        try
        {
            int n;
            while ((n = await stream.ReadAsync(buffer)) > 0)
            {
                all.Write(buffer, 0, n);
            }
        }
        catch (IOException)
        {
        }

        return all.ToArray();
    }

    private static async Task<string> ReadLineAsync(Stream stream)
    {
        var line = new StringBuilder();
        var one = new byte[1];
        while (true)
        {
            if (await stream.ReadAsync(one) == 0)
            {
                throw new EndOfStreamException("the connection closed inside a line");
            }

            if (one[0] == '\n')
            {
                return line.ToString().TrimEnd('\r');
            }

            line.Append((char)one[0]);
        }
    }
}

/// <summary>A raw TCP server that runs <paramref name="handler"/> for each connection (origins that misbehave on purpose).</summary>
public sealed class RawOrigin : IAsyncDisposable
{
    private readonly TcpListener _listener = new(IPAddress.Loopback, 0);
    private readonly CancellationTokenSource _stop = new();
    private readonly Task _accept;

    public RawOrigin(Func<NetworkStream, Socket, Task> handler)
    {
        _listener.Start();
        _accept = Task.Run(async () =>
        {
            var tasks = new List<Task>();
            try
            {
                while (true)
                {
                    var socket = await _listener.AcceptSocketAsync(_stop.Token);
                    tasks.Add(Task.Run(async () =>
                    {
                        using var stream = new NetworkStream(socket, ownsSocket: true);
                        try
                        {
                            await handler(stream, socket);
                        }
                        catch (IOException)
                        {
                        }
                    }));
                }
            }
            catch (OperationCanceledException)
            {
            }

            await Task.WhenAll(tasks);
        });
    }

    public int Port => ((IPEndPoint)_listener.LocalEndpoint).Port;

    /// <summary>Reads one request head (up to the empty line) and returns it.</summary>
    public static async Task<string> ReadHeadAsync(Stream stream)
    {
        var head = new List<byte>();
        var one = new byte[1];
        while (!(head.Count >= 4 && head[^4] == '\r' && head[^3] == '\n' && head[^2] == '\r' && head[^1] == '\n'))
        {
            if (await stream.ReadAsync(one) == 0)
            {
                break;
            }

            head.Add(one[0]);
        }

        return Encoding.Latin1.GetString(head.ToArray());
    }

    public async ValueTask DisposeAsync()
    {
        await _stop.CancelAsync();
        _listener.Stop();
        await _accept.WaitAsync(TimeSpan.FromSeconds(20));
        _stop.Dispose();
    }
}
