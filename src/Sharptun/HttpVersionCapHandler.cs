namespace Sharptun;

/// <summary>
/// Keeps requests on HTTP/1.1 or HTTP/2: HTTP/3 runs over QUIC sockets of the host, which would bypass
/// <see cref="System.Net.Http.SocketsHttpHandler.ConnectCallback"/> and so the tunnel. A request asking for 3.0 is sent
/// as 2.0 with <see cref="HttpVersionPolicy.RequestVersionOrLower"/>.
/// </summary>
internal sealed class HttpVersionCapHandler(HttpMessageHandler inner) : DelegatingHandler(inner)
{
    protected override Task<HttpResponseMessage> SendAsync(HttpRequestMessage request, CancellationToken cancellationToken)
    {
        Cap(request);
        return base.SendAsync(request, cancellationToken);
    }

    protected override HttpResponseMessage Send(HttpRequestMessage request, CancellationToken cancellationToken)
    {
        Cap(request);
        return base.Send(request, cancellationToken);
    }

    private static void Cap(HttpRequestMessage request)
    {
        if (request.Version.Major >= 3)
        {
            request.Version = System.Net.HttpVersion.Version20;
            request.VersionPolicy = HttpVersionPolicy.RequestVersionOrLower;
        }
        else if (request.VersionPolicy == HttpVersionPolicy.RequestVersionOrHigher)
        {
            request.VersionPolicy = HttpVersionPolicy.RequestVersionExact;
        }
    }
}
