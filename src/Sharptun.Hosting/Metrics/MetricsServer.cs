using System.Collections.Concurrent;
using System.Globalization;
using System.Net;
using System.Net.Sockets;
using System.Text;
using Microsoft.Extensions.Logging;

namespace Sharptun.Hosting.Metrics;

/// <summary>
/// The operations endpoint of <c>sharptun proxy -i ADDR</c> and <c>sharptun gateway -i ADDR</c>: a small HTTP/1.1
/// server (RFC 9110, RFC 9112) on a TCP address serving <c>GET /metrics</c> (Prometheus text format 0.0.4: the
/// tunnel's <see cref="TunnelMetricsSource"/> plus every <see cref="IMetricsSource"/> the caller adds) and
/// <c>GET /readyz</c> (wireproxy's semantics, see <see cref="Start"/>).
/// </summary>
/// <remarks>
/// <para>One request per connection (<c>Connection: close</c>); GET and HEAD. A request head over
/// <see cref="MaxRequestHeadBytes"/> gets 431, a malformed one 400, another method 405, another path 404; a head not
/// complete within 5 s closes the connection. At most <see cref="MaxConnections"/> connections are served at once;
/// past that a client gets 503 at once. Nothing a client sends stops the server.</para>
/// <para>Built on <see cref="Socket"/> directly: ASP.NET Core (Kestrel) would bring a web framework, its trimming
/// warnings and megabytes of native-AOT output for two fixed routes.</para>
/// </remarks>
public sealed partial class MetricsServer : IAsyncDisposable
{
    /// <summary>The largest request head (request line and header fields) read; larger heads get 431.</summary>
    public const int MaxRequestHeadBytes = 8192;

    /// <summary>Connections served at once; more get 503.</summary>
    public const int MaxConnections = 128;

    /// <summary>The Content-Type of <c>/metrics</c>.</summary>
    public const string MetricsContentType = "text/plain; version=0.0.4; charset=utf-8";

    private static readonly TimeSpan HeadTimeout = TimeSpan.FromSeconds(5);

    private readonly Socket _listener;
    private readonly IMetricsSource[] _sources;
    private readonly Func<(bool Ready, string Json)> _readiness;
    private readonly ILogger? _log;
    private readonly TimeSpan _headTimeout;
    private readonly CancellationTokenSource _stop = new();
    private readonly ConcurrentDictionary<Socket, byte> _connections = new();
    private readonly Task _acceptLoop;
    private int _active;
    private long _requests;
    private long _badRequests;
    private long _sourceErrors;
    private long _refused;

    private MetricsServer(Socket listener, IMetricsSource[] sources, Func<(bool, string)> readiness, ILogger? log, TimeSpan headTimeout)
    {
        _listener = listener;
        _sources = sources;
        _readiness = readiness;
        _log = log;
        _headTimeout = headTimeout;
        LocalEndPoint = (IPEndPoint)listener.LocalEndPoint!;
        _acceptLoop = Task.Run(AcceptLoopAsync);
    }

    /// <summary>The address the server listens on (with the port chosen when 0 was asked for).</summary>
    public IPEndPoint LocalEndPoint { get; }

    /// <summary>Requests answered (any status).</summary>
    public long Requests => Interlocked.Read(ref _requests);

    /// <summary>Requests answered 400, 405, 431 or 505, or dropped for an incomplete head.</summary>
    public long BadRequests => Interlocked.Read(ref _badRequests);

    /// <summary>Connections being served now (tests).</summary>
    internal int ActiveConnections => Volatile.Read(ref _active);

    /// <summary>Connections refused with 503 because <see cref="MaxConnections"/> were open.</summary>
    public long Refused => Interlocked.Read(ref _refused);

    /// <summary>
    /// Starts serving on <paramref name="endpoint"/> (port 0: any free port, see <see cref="LocalEndPoint"/>).
    /// <c>/readyz</c> answers 200 or 503 with a JSON body: with <paramref name="alive"/> (CheckAlive), the Unix time of
    /// each target's last pong (<c>{"10.0.0.1":1733500000}</c>, 0 when none) and 503 when any is older than
    /// CheckAliveInterval + 2 s (wireproxy); without it, <c>{}</c> and 200 once some peer of the tunnel has completed
    /// a handshake (503 before).
    /// </summary>
    /// <param name="endpoint">Where to listen (<see cref="TryParseEndpoint"/> reads <c>-i</c>'s text).</param>
    /// <param name="tunnel">The tunnel whose peers and drops are exported.</param>
    /// <param name="alive">The CheckAlive pinger, or null when CheckAlive is not configured.</param>
    /// <param name="sources">More metrics (front-end counters, flows).</param>
    /// <param name="logger">Where failures of sources are logged.</param>
    /// <exception cref="SocketException">The address is in use or not local.</exception>
    public static MetricsServer Start(IPEndPoint endpoint, WireGuardTunnel tunnel, AlivePinger? alive = null, IEnumerable<IMetricsSource>? sources = null, ILogger? logger = null)
    {
        ArgumentNullException.ThrowIfNull(endpoint);
        ArgumentNullException.ThrowIfNull(tunnel);
        IMetricsSource[] all = [new TunnelMetricsSource(tunnel), .. sources ?? []];
        return StartCore(endpoint, all, ReadinessOf(tunnel.GetStatistics, alive), logger, HeadTimeout);
    }

    internal static MetricsServer StartCore(IPEndPoint endpoint, IMetricsSource[] sources, Func<(bool, string)> readiness, ILogger? logger, TimeSpan headTimeout)
    {
        var listener = new Socket(endpoint.AddressFamily, SocketType.Stream, ProtocolType.Tcp);
        try
        {
            if (endpoint.AddressFamily == AddressFamily.InterNetworkV6)
            {
                listener.DualMode = endpoint.Address.Equals(IPAddress.IPv6Any);
            }

            listener.Bind(endpoint);
            listener.Listen(256);
            return new MetricsServer(listener, sources, readiness, logger, headTimeout);
        }
        catch
        {
            listener.Dispose();
            throw;
        }
    }

    /// <summary>/readyz's rule for a tunnel: the pinger's when there is one, else "some peer had a handshake".</summary>
    internal static Func<(bool, string)> ReadinessOf(Func<TunnelStatistics> statistics, AlivePinger? alive) => alive is not null
        ? () =>
        {
            var json = alive.ReadinessJson(out var ready);
            return (ready, json);
        }
        : () => (statistics().Peers.Any(p => p.LastHandshake is not null), "{}");

    /// <summary>
    /// Parses <c>-i</c>'s address: <c>127.0.0.1:9080</c>, <c>[::1]:9080</c>, <c>localhost:9080</c> (127.0.0.1), or
    /// <c>:9080</c> (every address, as Go's net/http reads it).
    /// </summary>
    public static bool TryParseEndpoint(string? text, out IPEndPoint? endpoint, out string? error)
    {
        endpoint = null;
        error = null;
        text = text?.Trim();
        var colon = text?.LastIndexOf(':') ?? -1;
        if (string.IsNullOrEmpty(text) || colon < 0)
        {
            error = $"'{text}' is not HOST:PORT (e.g. 127.0.0.1:9080 or [::1]:9080).";
            return false;
        }

        var host = text[..colon];
        var portText = text[(colon + 1)..];
        if (!int.TryParse(portText, NumberStyles.None, CultureInfo.InvariantCulture, out var port) || port > 65535)
        {
            error = $"'{text}': '{portText}' is not a port (0-65535).";
            return false;
        }

        IPAddress? address;
        if (host.Length == 0)
        {
            address = IPAddress.IPv6Any;
        }
        else if (host.Equals("localhost", StringComparison.OrdinalIgnoreCase))
        {
            address = IPAddress.Loopback;
        }
        else if (host.StartsWith('[') && host.EndsWith(']') && IPAddress.TryParse(host[1..^1], out var v6) && v6.AddressFamily == AddressFamily.InterNetworkV6)
        {
            address = v6;
        }
        else if (!host.Contains(':') && IPAddress.TryParse(host, out var v4) && v4.AddressFamily == AddressFamily.InterNetwork && host.Count(c => c == '.') == 3)
        {
            address = v4;
        }
        else
        {
            error = $"'{text}': '{host}' is not an IP address (IPv6 goes in brackets: [::1]:9080) or localhost.";
            return false;
        }

        endpoint = new IPEndPoint(address, port);
        return true;
    }

    /// <summary>The text of <c>/metrics</c>: every source in order; a source that throws is left out and counted.</summary>
    internal string RenderMetrics()
    {
        var text = new StringBuilder(4096);
        var families = new HashSet<string>(StringComparer.Ordinal);
        foreach (var source in _sources)
        {
            var part = new StringBuilder();
            var before = new HashSet<string>(families, StringComparer.Ordinal);
            try
            {
                source.WriteMetrics(new MetricsWriter(part, families));
                text.Append(part);
            }
            catch (Exception e) when (e is not OutOfMemoryException)
            {
                families = before;
                Interlocked.Increment(ref _sourceErrors);
                if (_log is not null)
                {
                    Log.SourceFailed(_log, source.GetType().Name, e);
                }
            }
        }

        var own = new MetricsWriter(text, families);
        own.BeginFamily("sharptun_metrics_source_errors_total", MetricType.Counter, "Metrics sources that failed during a scrape (left out of it).");
        own.Sample(Interlocked.Read(ref _sourceErrors));
        own.BeginFamily("sharptun_metrics_requests_total", MetricType.Counter, "Requests the metrics endpoint answered.");
        own.Sample(Interlocked.Read(ref _requests));
        return text.ToString();
    }

    /// <summary>Stops listening and closes open connections.</summary>
    public async ValueTask DisposeAsync()
    {
        if (_stop.IsCancellationRequested)
        {
            return;
        }

        await _stop.CancelAsync().ConfigureAwait(false);
        _listener.Dispose();
        foreach (var c in _connections.Keys)
        {
            c.Dispose();
        }

        await _acceptLoop.ConfigureAwait(ConfigureAwaitOptions.SuppressThrowing);
    }

    private async Task AcceptLoopAsync()
    {
        while (!_stop.IsCancellationRequested)
        {
            Socket client;
            try
            {
                client = await _listener.AcceptAsync(_stop.Token).ConfigureAwait(false);
            }
            catch (Exception e) when (e is OperationCanceledException or ObjectDisposedException)
            {
                return;
            }
            catch (SocketException)
            {
                continue; // ECONNABORTED and friends: the next accept works
            }

            _ = ServeAsync(client);
        }
    }

    private async Task ServeAsync(Socket client)
    {
        _connections.TryAdd(client, 0);
        var overCap = Interlocked.Increment(ref _active) > MaxConnections;
        try
        {
            client.NoDelay = true;
            if (overCap)
            {
                Interlocked.Increment(ref _refused);
                await RespondAsync(client, 503, "Service Unavailable", "text/plain; charset=utf-8", "too many connections\n", head: false).ConfigureAwait(false);
                return;
            }

            using var timeout = CancellationTokenSource.CreateLinkedTokenSource(_stop.Token);
            timeout.CancelAfter(_headTimeout);
            var (status, method, path) = await ReadHeadAsync(client, timeout.Token).ConfigureAwait(false);
            if (status == 0)
            {
                Interlocked.Increment(ref _badRequests);
                return; // the client went away or was too slow: nothing to answer
            }

            await AnswerAsync(client, status, method, path).ConfigureAwait(false);
        }
        catch (Exception e) when (e is SocketException or ObjectDisposedException or OperationCanceledException or IOException)
        {
            // the client went away, or the server is stopping
        }
        finally
        {
            Interlocked.Decrement(ref _active);
            _connections.TryRemove(client, out _);
            client.Dispose();
        }
    }

    private async Task AnswerAsync(Socket client, int status, string method, string path)
    {
        var head = method == "HEAD";
        if (status != 200)
        {
            Interlocked.Increment(ref _badRequests);
            await RespondAsync(client, status, ReasonPhrase(status), "text/plain; charset=utf-8", ReasonPhrase(status) + "\n", head,
                status == 405 ? "Allow: GET, HEAD\r\n" : "").ConfigureAwait(false);
            return;
        }

        switch (path)
        {
            case "/metrics":
                await RespondAsync(client, 200, "OK", MetricsContentType, RenderMetrics(), head).ConfigureAwait(false);
                break;
            case "/readyz":
                bool ready;
                string json;
                try
                {
                    (ready, json) = _readiness();
                }
                catch (Exception e) when (e is IOException or ObjectDisposedException or InvalidOperationException)
                {
                    (ready, json) = (false, "{}"); // the tunnel closed: not ready
                }

                await RespondAsync(client, ready ? 200 : 503, ready ? "OK" : "Service Unavailable", "application/json", json + "\n", head).ConfigureAwait(false);
                break;
            default:
                await RespondAsync(client, 404, "Not Found", "text/plain; charset=utf-8", "not found: try /metrics or /readyz\n", head).ConfigureAwait(false);
                break;
        }
    }

    /// <summary>
    /// Reads the request head (RFC 9112 §2.1: start-line and field lines up to an empty line) and checks it. Returns
    /// status 0 when the connection closed or timed out first; 200 with the method and path of a good request; else the
    /// error status to answer.
    /// </summary>
    private static async Task<(int Status, string Method, string Path)> ReadHeadAsync(Socket client, CancellationToken cancellationToken)
    {
        var buffer = new byte[MaxRequestHeadBytes];
        var length = 0;
        while (true)
        {
            var end = FindHeadEnd(buffer.AsSpan(0, length));
            if (end >= 0)
            {
                return ParseHead(buffer.AsSpan(0, end));
            }

            if (length == buffer.Length)
            {
                return (431, "", "");
            }

            int n;
            try
            {
                n = await client.ReceiveAsync(buffer.AsMemory(length), SocketFlags.None, cancellationToken).ConfigureAwait(false);
            }
            catch (OperationCanceledException)
            {
                return (0, "", "");
            }

            if (n == 0)
            {
                return (0, "", "");
            }

            length += n;
        }
    }

    /// <summary>The length of the head without its final empty line, or -1 while incomplete (CRLF, or bare LF: RFC 9112 §2.2).</summary>
    internal static int FindHeadEnd(ReadOnlySpan<byte> data)
    {
        for (var i = 0; i < data.Length; i++)
        {
            if (data[i] != '\n')
            {
                continue;
            }

            var next = i + 1;
            if (next < data.Length && data[next] == '\n')
            {
                return i;
            }

            if (next + 1 < data.Length && data[next] == '\r' && data[next + 1] == '\n')
            {
                return i;
            }
        }

        return -1;
    }

    /// <summary>Checks a request head: request-line (RFC 9112 §3), field lines (§5), Host for HTTP/1.1 (§3.2).</summary>
    internal static (int Status, string Method, string Path) ParseHead(ReadOnlySpan<byte> head)
    {
        foreach (var b in head)
        {
            if (b >= 0x80 || (b < 0x20 && b is not (byte)'\r' and not (byte)'\n' and not (byte)'\t'))
            {
                return (400, "", "");
            }
        }

        var text = Encoding.ASCII.GetString(head);
        var lines = text.Split('\n');
        var requestLine = lines[0].TrimEnd('\r');
        var parts = requestLine.Split(' ');
        if (parts.Length != 3 || parts[0].Length == 0 || parts[1].Length == 0 || !parts[0].All(IsTokenChar))
        {
            return (400, "", "");
        }

        var (method, target, version) = (parts[0], parts[1], parts[2]);
        if (version is not ("HTTP/1.1" or "HTTP/1.0"))
        {
            return version.StartsWith("HTTP/", StringComparison.Ordinal) && version.Length == 8 && char.IsAsciiDigit(version[5]) && version[6] == '.' && char.IsAsciiDigit(version[7])
                ? (505, method, "")
                : (400, "", "");
        }

        string path;
        if (target.StartsWith('/'))
        {
            path = target; // origin-form
        }
        else if (Uri.TryCreate(target, UriKind.Absolute, out var uri) && uri.Scheme is "http" or "https")
        {
            path = uri.AbsolutePath; // absolute-form (RFC 9112 §3.2.2)
        }
        else
        {
            return (400, "", "");
        }

        var query = path.IndexOfAny(['?', '#']);
        if (query >= 0)
        {
            path = path[..query];
        }

        var hasHost = false;
        for (var i = 1; i < lines.Length; i++)
        {
            var line = lines[i].TrimEnd('\r');
            if (line.Length == 0)
            {
                continue;
            }

            var colon = line.IndexOf(':');
            if (line[0] is ' ' or '\t' || colon <= 0 || !line.AsSpan(0, colon).ContainsAnyExcept(' ') || line[colon - 1] is ' ' or '\t'
                || !line.AsSpan(0, colon).ToString().All(IsTokenChar))
            {
                return (400, "", ""); // obs-fold, no colon, whitespace before the colon (RFC 9112 §5.1, §5.2)
            }

            hasHost |= line.AsSpan(0, colon).Equals("Host", StringComparison.OrdinalIgnoreCase);
        }

        if (version == "HTTP/1.1" && !hasHost)
        {
            return (400, "", "");
        }

        if (method is not ("GET" or "HEAD"))
        {
            return (405, method, path);
        }

        return (200, method, path);
    }

    private static bool IsTokenChar(char c) =>
        char.IsAsciiLetterOrDigit(c) || "!#$%&'*+-.^_`|~".Contains(c, StringComparison.Ordinal);

    private static string ReasonPhrase(int status) => status switch
    {
        400 => "Bad Request",
        404 => "Not Found",
        405 => "Method Not Allowed",
        431 => "Request Header Fields Too Large",
        503 => "Service Unavailable",
        505 => "HTTP Version Not Supported",
        _ => "OK",
    };

    private async Task RespondAsync(Socket client, int status, string reason, string contentType, string body, bool head, string extraHeaders = "")
    {
        Interlocked.Increment(ref _requests);
        var bodyBytes = Encoding.UTF8.GetBytes(body);
        var header = Encoding.ASCII.GetBytes(
            $"HTTP/1.1 {status.ToString(CultureInfo.InvariantCulture)} {reason}\r\n" +
            $"Content-Type: {contentType}\r\n" +
            $"Content-Length: {bodyBytes.Length.ToString(CultureInfo.InvariantCulture)}\r\n" +
            "Cache-Control: no-store\r\n" +
            extraHeaders +
            "Connection: close\r\n\r\n");
        using var timeout = CancellationTokenSource.CreateLinkedTokenSource(_stop.Token);
        timeout.CancelAfter(TimeSpan.FromSeconds(10)); // a client that does not read cannot hold the slot
        await client.SendAsync(header, SocketFlags.None, timeout.Token).ConfigureAwait(false);
        if (!head)
        {
            await client.SendAsync(bodyBytes, SocketFlags.None, timeout.Token).ConfigureAwait(false);
        }

        // Lingering close: stop sending, then drain what the client still sends (a body we did not read) for a moment,
        // so closing with unread data does not reset the connection before the client has read the response.
        client.Shutdown(SocketShutdown.Send);
        var sink = new byte[4096];
        using var drain = CancellationTokenSource.CreateLinkedTokenSource(_stop.Token);
        drain.CancelAfter(TimeSpan.FromSeconds(1));
        var drained = 0;
        try
        {
            while (drained < 64 << 10)
            {
                var n = await client.ReceiveAsync(sink, SocketFlags.None, drain.Token).ConfigureAwait(false);
                if (n == 0)
                {
                    break;
                }

                drained += n;
            }
        }
        catch (OperationCanceledException)
        {
            // the client keeps the connection open: close it anyway
        }
    }

    private static partial class Log
    {
        [LoggerMessage(EventId = 1, Level = LogLevel.Warning, Message = "Metrics source {Source} failed; left out of the scrape")]
        public static partial void SourceFailed(ILogger logger, string source, Exception exception);
    }
}
