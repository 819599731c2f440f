using System.Net.Sockets;

namespace Sharptun.Proxy.Http;

/// <summary>
/// Forwarding one absolute-URI request (RFC 9112 §3.2.2) to its origin and its response back:
/// <code>
///   client ──head──▶ rewrite (origin-form, Host from the URI, hop-by-hop fields dropped, Via, Connection: close) ──▶ origin
///   client ──body──▶ upload task (Content-Length or chunked, checked and streamed)                         ──▶ origin
///   client ◀──1xx── ◀──final head (hop-by-hop dropped, framing for this client)── ◀──body (streamed)──      ◀── origin
/// </code>
/// The upload runs beside the response so that <c>Expect: 100-continue</c> works and an early origin answer (413)
/// reaches the client. Each origin connection carries one request (<c>Connection: close</c>); the client connection
/// stays open when both the request and the response were framed and completely relayed.
/// </summary>
internal sealed partial class HttpProxyConnection
{
    // RFC 9110 §7.6.1 names Connection and the fields it lists; Proxy-Connection, Keep-Alive, TE, Trailer, Upgrade and
    // Transfer-Encoding are the hop-by-hop fields of RFC 9112 §9.6 and RFC 2616 §13.5.1 still sent in practice.
    // Proxy-Authorization and Proxy-Authenticate are for this proxy, not the origin (RFC 9110 §11.7).
    private static readonly string[] HopByHop =
        ["Connection", "Proxy-Connection", "Keep-Alive", "TE", "Trailer", "Upgrade", "Transfer-Encoding", "Proxy-Authorization", "Proxy-Authenticate"];

    // The reason the current upload found the client's body malformed (written by the upload task).
    private string? _uploadError;

    private static readonly byte[] ConnectionEstablished = "HTTP/1.1 200 Connection established\r\n\r\n"u8.ToArray();

    private async Task<bool> ForwardAsync(HttpHead request, BodyFraming framing, long contentLength, ProxyTarget target, Stream origin, CancellationToken cancellationToken)
    {
        using var originReader = new HttpReader(origin);
        using var exchange = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        var idle = Context.Relay.IdleTimeout;
        var counters = Counters;
        var up = new HttpBody.Progress(exchange, idle, n => counters.AddBytes(n, 0));
        var down = new HttpBody.Progress(exchange, idle, n => counters.AddBytes(0, n));
        up.Touch();
        var method = request.First;
        var responseStarted = false;
        var upload = Task.FromResult(new UploadResult(true, null));
        _uploadError = null;
        try
        {
            using (var writer = new HeadWriter())
            {
                writer.Append(method).Append(" ").Append(target.PathAndQuery).Append(" HTTP/1.1\r\n").Field("Host", target.Authority);
                foreach (var field in request.Fields)
                {
                    // RFC 9112 §3.2.2: the Host field is replaced by the URI's authority.
                    if (!IsHopByHop(field.Key, request) && !string.Equals(field.Key, "Host", StringComparison.OrdinalIgnoreCase)
                        && !string.Equals(field.Key, "Content-Length", StringComparison.OrdinalIgnoreCase))
                    {
                        writer.Field(field.Key, field.Value);
                    }
                }

                // Repeated equal Content-Length values (RFC 9110 §8.6) go on as one field.
                if (contentLength >= 0)
                {
                    writer.Field("Content-Length", contentLength.ToString(System.Globalization.CultureInfo.InvariantCulture));
                }

                if (framing == BodyFraming.Chunked)
                {
                    writer.Field("Transfer-Encoding", "chunked");
                }

                // RFC 9110 §7.6.3: a proxy MUST send Via.
                writer.Field("Via", request.MinorVersion == 1 ? "1.1 sharptun" : "1.0 sharptun").Field("Connection", "close").Append("\r\n");
                await origin.WriteAsync(writer.Written, exchange.Token).ConfigureAwait(false);
                up.Add(writer.Written.Length);
            }

            if (framing != BodyFraming.None)
            {
                upload = UploadAsync(framing, contentLength, origin, up, exchange);
            }

            var response = await ReadResponseHeadAsync(request, originReader, down, exchange.Token).ConfigureAwait(false);
            var status = response.StatusCode;
            long responseLength = 0;
            var responseFraming = method == "HEAD" || status is 204 or 304
                ? BodyFraming.None
                : response.TryGetFraming(response: true, out responseLength, out var framingError) ?? throw new OriginException(framingError!);

            // RFC 9112 §9.3: HTTP/1.1 connections persist unless "close"; an HTTP/1.0 client gets one response per
            // connection here, and a body delimited by close (or a chunked one decoded for an HTTP/1.0 client) ends it.
            var rechunk = responseFraming == BodyFraming.Chunked && request.MinorVersion == 1;
            var persistent = request.MinorVersion == 1
                && !request.HasToken("Connection", "close") && !request.HasToken("Proxy-Connection", "close");
            var keepAlive = persistent && (responseFraming is BodyFraming.None or BodyFraming.ContentLength || rechunk);

            // The client's body must have been read to its end before its next request can be: an origin that answers
            // before the body is through (413, 401) ends the connection.
            keepAlive &= upload.IsCompleted && upload.Result.Complete;

            using (var writer = new HeadWriter())
            {
                writer.Append("HTTP/1.1 ").Append(response.Second).Append(" ").Append(response.Third).Append("\r\n");
                foreach (var field in response.Fields)
                {
                    var keepCoding = responseFraming == BodyFraming.UntilClose && string.Equals(field.Key, "Transfer-Encoding", StringComparison.OrdinalIgnoreCase);
                    var staleLength = responseFraming == BodyFraming.Chunked && string.Equals(field.Key, "Content-Length", StringComparison.OrdinalIgnoreCase);
                    if ((keepCoding || !IsHopByHop(field.Key, response)) && !staleLength)
                    {
                        writer.Field(field.Key, field.Value);
                    }
                }

                if (rechunk)
                {
                    writer.Field("Transfer-Encoding", "chunked");
                }

                writer.Field("Via", response.MinorVersion == 1 ? "1.1 sharptun" : "1.0 sharptun");
                if (!keepAlive)
                {
                    writer.Field("Connection", "close");
                }

                writer.Append("\r\n");
                responseStarted = true;
                await _client.WriteAsync(writer.Written, exchange.Token).ConfigureAwait(false);
            }

            var buffer = HttpBody.RentBuffer(Context.Relay.BufferSize);
            try
            {
                switch (responseFraming)
                {
                    case BodyFraming.ContentLength:
                        await HttpBody.CopyExactAsync(originReader, _client, responseLength, buffer, down, exchange.Token).ConfigureAwait(false);
                        break;
                    case BodyFraming.Chunked:
                        await HttpBody.CopyChunkedAsync(originReader, _client, rechunk, buffer, down, exchange.Token).ConfigureAwait(false);
                        break;
                    case BodyFraming.UntilClose:
                        await HttpBody.CopyToEndAsync(originReader, _client, buffer, down, exchange.Token).ConfigureAwait(false);
                        break;
                }
            }
            finally
            {
                HttpBody.ReturnBuffer(buffer);
            }

            await _client.FlushAsync(exchange.Token).ConfigureAwait(false);
            Log.Forwarded(_logger, _remote, method, target.Authority, target.PathAndQuery, status);

            return keepAlive;
        }
        catch (OperationCanceledException) when (!cancellationToken.IsCancellationRequested)
        {
            // The upload found the client's body malformed (it cancelled the exchange), or the idle timeout passed.
            var uploadError = Volatile.Read(ref _uploadError);
            if (uploadError is not null)
            {
                Refuse(uploadError);
                if (!responseStarted)
                {
                    await WriteErrorAsync(400, "Bad request: " + uploadError + ".", cancellationToken).ConfigureAwait(false);
                }
            }
            else
            {
                Counters.OnFailed();
                Log.ForwardFailed(_logger, _remote, method, target.Authority, "idle timeout");
                if (!responseStarted)
                {
                    await WriteErrorAsync(504, $"Gateway timeout: {target.Authority} sent no response within {idle.TotalSeconds:0.#} s.", cancellationToken).ConfigureAwait(false);
                }
            }

            return false;
        }
        catch (Exception e) when (e is OriginException or HttpBodyException or IOException or SocketException or ObjectDisposedException)
        {
            Log.ForwardFailed(_logger, _remote, method, target.Authority, e.Message);
            if (!responseStarted)
            {
                Counters.OnFailed();
                await WriteErrorAsync(502, $"Bad gateway: {target.Authority}: {e.Message}", cancellationToken).ConfigureAwait(false);
            }

            return false;
        }
        finally
        {
            if (!upload.IsCompleted)
            {
                await exchange.CancelAsync().ConfigureAwait(false);
                await upload.ConfigureAwait(false);
            }
        }
    }

    // Reads the origin's response head, passing interim 1xx responses on to an HTTP/1.1 client (RFC 9110 §15.2).
    private async Task<HttpHead> ReadResponseHeadAsync(HttpHead request, HttpReader originReader, HttpBody.Progress down, CancellationToken cancellationToken)
    {
        while (true)
        {
            var (status, bytes) = await originReader.ReadHeadAsync(cancellationToken).ConfigureAwait(false);
            down.Touch();
            if (status != HeadStatus.Ok)
            {
                throw new OriginException(status == HeadStatus.TooLarge
                    ? $"the response head is larger than {HttpReader.MaxHeadBytes / 1024} KiB"
                    : "the origin closed the connection without a complete response");
            }

            var response = HttpHead.TryParseResponse(bytes.Span, out var error) ?? throw new OriginException(error!);
            down.Add(bytes.Length);
            var code = response.StatusCode;
            if (code >= 200)
            {
                return response;
            }

            // Upgrade was not forwarded, so a 101 is a protocol error of the origin.
            if (code == 101)
            {
                throw new OriginException("the origin switched protocols without being asked");
            }

            if (request.MinorVersion == 1)
            {
                using var writer = new HeadWriter();
                writer.Append("HTTP/1.1 ").Append(response.Second).Append(" ").Append(response.Third).Append("\r\n");
                foreach (var field in response.Fields)
                {
                    if (!IsHopByHop(field.Key, response))
                    {
                        writer.Field(field.Key, field.Value);
                    }
                }

                writer.Append("\r\n");
                await _client.WriteAsync(writer.Written, cancellationToken).ConfigureAwait(false);
                await _client.FlushAsync(cancellationToken).ConfigureAwait(false);
            }
        }
    }

    // Relays the client's body to the origin. A malformed or cut-off body cancels the exchange (the connection is then
    // answered 400 or aborted); an origin that stops reading (it answered early and closed) only ends the upload.
    private async Task<UploadResult> UploadAsync(BodyFraming framing, long contentLength, Stream origin, HttpBody.Progress up, CancellationTokenSource exchange)
    {
        await Task.Yield();
        var buffer = HttpBody.RentBuffer(Context.Relay.BufferSize);
        var sink = new SinkStream(origin);
        try
        {
            if (framing == BodyFraming.ContentLength)
            {
                await HttpBody.CopyExactAsync(_reader, sink, contentLength, buffer, up, exchange.Token).ConfigureAwait(false);
            }
            else
            {
                await HttpBody.CopyChunkedAsync(_reader, sink, rechunk: true, buffer, up, exchange.Token).ConfigureAwait(false);
            }

            await origin.FlushAsync(exchange.Token).ConfigureAwait(false);
            return new UploadResult(true, null);
        }
        catch (SinkException)
        {
            return new UploadResult(false, null);
        }
        catch (HttpBodyException e)
        {
            // Published before the cancel, so the response side (woken by it) finds the reason.
            Volatile.Write(ref _uploadError, e.Message);
            await CancelQuietlyAsync(exchange).ConfigureAwait(false);
            return new UploadResult(false, e.Message);
        }
        catch (Exception e) when (e is IOException or SocketException or ObjectDisposedException or OperationCanceledException)
        {
            // The client broke off (or the exchange ended): nothing more can happen on this connection.
            await CancelQuietlyAsync(exchange).ConfigureAwait(false);
            return new UploadResult(false, null);
        }
        finally
        {
            HttpBody.ReturnBuffer(buffer);
        }
    }

    private static async Task CancelQuietlyAsync(CancellationTokenSource source)
    {
        try
        {
            await source.CancelAsync().ConfigureAwait(false);
        }
        catch (ObjectDisposedException)
        {
        }
    }

    private static bool IsHopByHop(string name, HttpHead head)
    {
        foreach (var hop in HopByHop)
        {
            if (string.Equals(name, hop, StringComparison.OrdinalIgnoreCase))
            {
                return true;
            }
        }

        return head.HasToken("Connection", name);
    }

    private readonly record struct UploadResult(bool Complete, string? ClientError);

    private sealed class OriginException(string message) : Exception(message);

    private sealed class SinkException(Exception inner) : Exception(inner.Message, inner);

    // Marks write failures toward the origin, so the upload can tell "the origin stopped reading" from "the client broke".
    private sealed class SinkStream(Stream inner) : Stream
    {
        public override bool CanRead => false;

        public override bool CanSeek => false;

        public override bool CanWrite => true;

        public override long Length => throw new NotSupportedException();

        public override long Position { get => throw new NotSupportedException(); set => throw new NotSupportedException(); }

        public override async ValueTask WriteAsync(ReadOnlyMemory<byte> buffer, CancellationToken cancellationToken = default)
        {
            try
            {
                await inner.WriteAsync(buffer, cancellationToken).ConfigureAwait(false);
            }
            catch (Exception e) when (e is IOException or SocketException or ObjectDisposedException)
            {
                throw new SinkException(e);
            }
        }

        public override Task WriteAsync(byte[] buffer, int offset, int count, CancellationToken cancellationToken) =>
            WriteAsync(buffer.AsMemory(offset, count), cancellationToken).AsTask();

        public override void Write(byte[] buffer, int offset, int count) => throw new NotSupportedException();

        public override void Flush()
        {
        }

        public override int Read(byte[] buffer, int offset, int count) => throw new NotSupportedException();

        public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();

        public override void SetLength(long value) => throw new NotSupportedException();
    }
}
