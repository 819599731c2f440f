using System.Net;
using System.Net.Sockets;
using System.Text;
using Microsoft.Extensions.Logging;
using Sharptun.Hosting;

namespace Sharptun.Proxy.Http;

/// <summary>
/// One client connection of an <see cref="HttpProxyServer"/>: reads requests one after another (keep-alive, RFC 9112
/// §9.3) and handles each as CONNECT or as a forwarded absolute-URI request. Errors the proxy detects before a
/// response has started are answered with a status and a plain-text reason, then the connection is closed:
/// <code>
/// 400 malformed request line or fields, bad framing, not a proxy request     505 not HTTP/1.x
/// 407 missing or wrong Proxy-Authorization                                   408 the head took too long
/// 431 head larger than 64 KiB                                                502 unresolvable, refused, unreachable, bad origin reply
/// 503 over the connection cap (HttpProxyServer)                              504 connect or origin timeout
/// </code>
/// </summary>
internal sealed partial class HttpProxyConnection : IDisposable
{
    private readonly HttpProxyServer _server;
    private readonly Stream _client;
    private readonly HttpReader _reader;
    private readonly string _remote;
    private readonly ILogger _logger;

    public HttpProxyConnection(HttpProxyServer server, Stream client, string remote)
    {
        _server = server;
        _client = client;
        _remote = remote;
        _reader = new HttpReader(client);
        _logger = server.Logger;
    }

    private ProxyContext Context => _server.Context;

    private ProxyServiceCounters Counters => _server.Counters;

    /// <summary>Serves requests until the client closes, an error closes the connection, or cancellation.</summary>
    /// <param name="firstHead">Cancels when the first request's head has taken longer than the handshake timeout (it started at accept).</param>
    /// <param name="cancellationToken">Stops the proxy.</param>
    public async Task RunAsync(CancellationTokenSource firstHead, CancellationToken cancellationToken)
    {
        var headTimeout = firstHead;
        while (true)
        {
            HttpHead? head;
            try
            {
                if (headTimeout is null)
                {
                    // Between requests the client may stay idle as long as a relay may; the head itself then has the
                    // handshake timeout.
                    using var idle = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
                    if (Context.Relay.IdleTimeout != Timeout.InfiniteTimeSpan)
                    {
                        idle.CancelAfter(Context.Relay.IdleTimeout);
                    }

                    if (!await _reader.WaitForDataAsync(idle.Token).ConfigureAwait(false))
                    {
                        return;
                    }

                    headTimeout = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
                    headTimeout.CancelAfter(Context.HandshakeTimeout);
                }

                head = await ReadRequestAsync(headTimeout.Token, cancellationToken).ConfigureAwait(false);
            }
            catch (OperationCanceledException) when (!cancellationToken.IsCancellationRequested)
            {
                if (!_reader.Buffered.IsEmpty)
                {
                    Refuse("request head timeout");
                    await WriteErrorAsync(408, $"The request head did not arrive within {Context.HandshakeTimeout.TotalSeconds:0.#} s.", cancellationToken).ConfigureAwait(false);
                }

                return;
            }
            finally
            {
                if (headTimeout != firstHead)
                {
                    headTimeout?.Dispose();
                }

                headTimeout = null;
            }

            if (head is null || !await HandleAsync(head, cancellationToken).ConfigureAwait(false))
            {
                return;
            }
        }
    }

    /// <summary>Writes an error response with a text body and <c>Connection: close</c>.</summary>
    public async Task WriteErrorAsync(int status, string message, CancellationToken cancellationToken, string? extraField = null)
    {
        var body = Encoding.UTF8.GetBytes(message + "\n");
        using var writer = new HeadWriter();
        writer.Append("HTTP/1.1 ").Append(status).Append(" ").Append(ReasonPhrase(status)).Append("\r\n")
            .Field("Content-Type", "text/plain; charset=utf-8")
            .Field("Content-Length", body.Length.ToString(System.Globalization.CultureInfo.InvariantCulture))
            .Field("Connection", "close");
        if (extraField is not null)
        {
            writer.Append(extraField).Append("\r\n");
        }

        writer.Append("\r\n");
        using var timeout = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        timeout.CancelAfter(Context.HandshakeTimeout);
        try
        {
            await _client.WriteAsync(writer.Written, timeout.Token).ConfigureAwait(false);
            await _client.WriteAsync(body, timeout.Token).ConfigureAwait(false);
            await _client.FlushAsync(timeout.Token).ConfigureAwait(false);
        }
        catch (Exception e) when (e is IOException or SocketException or ObjectDisposedException || (e is OperationCanceledException && !cancellationToken.IsCancellationRequested))
        {
            // The client is gone or does not read; the connection closes either way.
        }
    }

    public void Dispose() => _reader.Dispose();

    // Reads and validates one request head; null when the connection is to close (after an error response, if any).
    private async Task<HttpHead?> ReadRequestAsync(CancellationToken headToken, CancellationToken cancellationToken)
    {
        var (status, bytes) = await _reader.ReadHeadAsync(headToken).ConfigureAwait(false);
        switch (status)
        {
            case HeadStatus.Closed:
                return null;
            case HeadStatus.Truncated:
                Refuse("the client closed inside a request head");
                return null;
            case HeadStatus.TooLarge:
                Refuse("request head too large");
                await WriteErrorAsync(431, $"The request head is larger than {HttpReader.MaxHeadBytes / 1024} KiB.", cancellationToken).ConfigureAwait(false);
                return null;
        }

        var head = HttpHead.TryParseRequest(bytes.Span, out var error, out var badVersion);
        if (head is null)
        {
            Refuse(error!);
            await WriteErrorAsync(badVersion ? 505 : 400, "Bad request: " + error + ".", cancellationToken).ConfigureAwait(false);
        }

        return head;
    }

    // Handles one request; true when the connection may carry another.
    private async Task<bool> HandleAsync(HttpHead request, CancellationToken cancellationToken)
    {
        var framing = request.TryGetFraming(response: false, out var contentLength, out var error);
        if (framing is null)
        {
            Refuse(error!);
            await WriteErrorAsync(400, "Bad request: " + error + ".", cancellationToken).ConfigureAwait(false);
            return false;
        }

        if (!_server.IsAuthorized(request))
        {
            Refuse("missing or wrong proxy credentials");
            Log.AuthFailed(_logger, _remote);
            await WriteErrorAsync(407, "Proxy authentication required.", cancellationToken, "Proxy-Authenticate: Basic realm=\"sharptun\", charset=\"UTF-8\"").ConfigureAwait(false);
            return false;
        }

        var connect = request.First == "CONNECT";
        ProxyTarget target;
        var parsed = connect
            ? ProxyTarget.TryParseAuthority(request.Second, out target, out error)
            : ProxyTarget.TryParseAbsolute(request.Second, out target, out error);
        if (!parsed)
        {
            Refuse(error!);
            await WriteErrorAsync(400, "Bad request: " + error + ".", cancellationToken).ConfigureAwait(false);
            return false;
        }

        var origin = await ConnectAsync(target, cancellationToken).ConfigureAwait(false);
        if (origin is null)
        {
            return false;
        }

        await using (origin.ConfigureAwait(false))
        {
            if (connect)
            {
                await TunnelAsync(origin, target, cancellationToken).ConfigureAwait(false);
                return false;
            }

            return await ForwardAsync(request, framing.Value, contentLength, target, origin, cancellationToken).ConfigureAwait(false);
        }
    }

    private async Task<Stream?> ConnectAsync(ProxyTarget target, CancellationToken cancellationToken)
    {
        try
        {
            return IPAddress.TryParse(target.Host, out var address)
                ? await Context.Network.ConnectAsync(new IPEndPoint(address, target.Port), cancellationToken).ConfigureAwait(false)
                : await Context.Network.ConnectAsync(target.Host, target.Port, cancellationToken).ConfigureAwait(false);
        }
        catch (SocketException e)
        {
            Counters.OnFailed();
            Log.TargetFailed(_logger, _remote, target.Host, target.Port, e.SocketErrorCode, e.Message);
            var (status, text) = e.SocketErrorCode switch
            {
                SocketError.HostNotFound or SocketError.NoData or SocketError.TryAgain =>
                    (502, $"Cannot resolve '{target.Host}' through the tunnel."),
                SocketError.ConnectionRefused => (502, $"{target.Authority}: connection refused."),
                SocketError.TimedOut => (504, $"{target.Authority}: no answer within the connect timeout."),
                SocketError.NetworkUnreachable or SocketError.HostUnreachable => (502, $"{target.Authority}: unreachable through the tunnel."),
                _ => (502, $"{target.Authority}: cannot connect ({e.SocketErrorCode}: {e.Message})."),
            };
            await WriteErrorAsync(status, status == 504 ? "Gateway timeout: " + text : "Bad gateway: " + text, cancellationToken).ConfigureAwait(false);
            return null;
        }
    }

    // RFC 9110 §9.3.6: after a 2xx to CONNECT the connection becomes a tunnel; its end closes the client connection.
    private async Task TunnelAsync(Stream origin, ProxyTarget target, CancellationToken cancellationToken)
    {
        await _client.WriteAsync(ConnectionEstablished, cancellationToken).ConfigureAwait(false);
        await _client.FlushAsync(cancellationToken).ConfigureAwait(false);

        // Bytes the client sent right after the CONNECT head (without waiting for the 200) go first.
        var early = _reader.Buffered;
        if (!early.IsEmpty)
        {
            await origin.WriteAsync(early, cancellationToken).ConfigureAwait(false);
            _reader.Consume(early.Length);
        }

        var result = await StreamRelay.RunAsync(_client, origin, Context.Relay, cancellationToken).ConfigureAwait(false);
        Counters.AddBytes(result.ClientToServerBytes + early.Length, result.ServerToClientBytes);
        Log.Tunneled(_logger, _remote, target.Authority, result.ClientToServerBytes + early.Length, result.ServerToClientBytes, result.End);
    }

    private void Refuse(string reason)
    {
        Counters.OnRefused();
        Log.BadRequest(_logger, _remote, reason);
    }

    private static string ReasonPhrase(int status) => status switch
    {
        400 => "Bad Request",
        407 => "Proxy Authentication Required",
        408 => "Request Timeout",
        431 => "Request Header Fields Too Large",
        502 => "Bad Gateway",
        503 => "Service Unavailable",
        504 => "Gateway Timeout",
        505 => "HTTP Version Not Supported",
        _ => "Error",
    };

    private static partial class Log
    {
        [LoggerMessage(EventId = 1310, Level = LogLevel.Debug, Message = "HTTP proxy: refused a request from {Remote}: {Reason}")]
        public static partial void BadRequest(ILogger logger, string remote, string reason);

        [LoggerMessage(EventId = 1311, Level = LogLevel.Information, Message = "HTTP proxy: {Remote} sent missing or wrong credentials (407)")]
        public static partial void AuthFailed(ILogger logger, string remote);

        [LoggerMessage(EventId = 1312, Level = LogLevel.Information, Message = "HTTP proxy: {Remote} → {Host} port {Port} failed: {Code}: {Error}")]
        public static partial void TargetFailed(ILogger logger, string remote, string host, int port, SocketError code, string error);

        [LoggerMessage(EventId = 1313, Level = LogLevel.Debug, Message = "HTTP proxy: CONNECT {Remote} → {Authority} ended ({Up} bytes up, {Down} down, {End})")]
        public static partial void Tunneled(ILogger logger, string remote, string authority, long up, long down, RelayEnd end);

        [LoggerMessage(EventId = 1314, Level = LogLevel.Debug, Message = "HTTP proxy: {Remote} {Method} {Authority}{Path} → {Status}")]
        public static partial void Forwarded(ILogger logger, string remote, string method, string authority, string path, int status);

        [LoggerMessage(EventId = 1315, Level = LogLevel.Debug, Message = "HTTP proxy: {Remote} {Method} {Authority}: {Error}")]
        public static partial void ForwardFailed(ILogger logger, string remote, string method, string authority, string error);
    }
}
