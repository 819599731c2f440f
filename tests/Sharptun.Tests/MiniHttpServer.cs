using System.Globalization;
using System.Text;

namespace Sharptun.Tests;

/// <summary>
/// A minimal HTTP/1.1 server on a tunnel listener (keep-alive, Content-Length bodies only): GET /hello answers a fixed
/// text; POST /echo answers the request body.
/// </summary>
internal sealed class MiniHttpServer
{
    public const string HelloText = "hello through WireGuard";

    public static async Task RunAsync(TunnelTcpListener listener, CancellationToken cancellationToken)
    {
        var connections = new List<Task>();
        try
        {
            while (true)
            {
                var stream = await listener.AcceptAsync(cancellationToken);
                connections.Add(Task.Run(() => ServeAsync(stream, cancellationToken), CancellationToken.None));
            }
        }
        catch (Exception e) when (e is OperationCanceledException or IOException or ObjectDisposedException)
        {
        }

        await Task.WhenAll(connections).WaitAsync(TimeSpan.FromSeconds(10), CancellationToken.None).ConfigureAwait(ConfigureAwaitOptions.SuppressThrowing);
    }

    private static async Task ServeAsync(Stream stream, CancellationToken cancellationToken)
    {
        await using var _ = stream;
        var buffer = new byte[64 * 1024];
        var filled = 0;
        try
        {
            while (true)
            {
                int headerEnd;
                while ((headerEnd = buffer.AsSpan(0, filled).IndexOf("\r\n\r\n"u8)) < 0)
                {
                    var n = await stream.ReadAsync(buffer.AsMemory(filled), cancellationToken);
                    if (n == 0)
                    {
                        return;
                    }

                    filled += n;
                }

                var head = Encoding.ASCII.GetString(buffer, 0, headerEnd).Split("\r\n");
                var requestLine = head[0].Split(' ');
                var contentLength = 0;
                foreach (var line in head.Skip(1))
                {
                    var colon = line.IndexOf(':', StringComparison.Ordinal);
                    if (colon > 0 && line[..colon].Trim().Equals("content-length", StringComparison.OrdinalIgnoreCase))
                    {
                        contentLength = int.Parse(line[(colon + 1)..].Trim(), CultureInfo.InvariantCulture);
                    }
                }

                var bodyStart = headerEnd + 4;
                var body = new byte[contentLength];
                var have = Math.Min(contentLength, filled - bodyStart);
                buffer.AsSpan(bodyStart, have).CopyTo(body);
                await stream.ReadExactlyAsync(body.AsMemory(have), cancellationToken);
                var consumed = bodyStart + have;
                buffer.AsSpan(consumed, filled - consumed).CopyTo(buffer);
                filled -= consumed;

                var (status, responseBody) = (requestLine[0], requestLine[1]) switch
                {
                    ("GET", "/hello") => ("200 OK", Encoding.UTF8.GetBytes(HelloText)),
                    ("POST", "/echo") => ("200 OK", body),
                    _ => ("404 Not Found", Array.Empty<byte>()),
                };
                var header = $"HTTP/1.1 {status}\r\nContent-Type: application/octet-stream\r\nContent-Length: {responseBody.Length}\r\n\r\n";
                await stream.WriteAsync(Encoding.ASCII.GetBytes(header), cancellationToken);
                await stream.WriteAsync(responseBody, cancellationToken);
            }
        }
        catch (Exception e) when (e is OperationCanceledException or IOException or ObjectDisposedException)
        {
        }
    }
}
