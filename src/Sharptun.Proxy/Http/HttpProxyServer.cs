using System.Globalization;
using System.Net;
using System.Net.Security;
using System.Net.Sockets;
using System.Security.Authentication;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using System.Text;
using Microsoft.Extensions.Logging;
using Sharptun.Hosting;
using Sharptun.Proxy.Config;

namespace Sharptun.Proxy.Http;

/// <summary>
/// The HTTP proxy front-end (wireproxy's <c>[http]</c>): a listener on the host that takes HTTP/1.1 proxy requests
/// and carries them through <see cref="ProxyContext.Network"/>:
/// <list type="bullet">
/// <item>CONNECT host:port (RFC 9110 §9.3.6): <c>200 Connection established</c>, then bytes both ways with
/// half-close (<see cref="StreamRelay"/>);</item>
/// <item>a request of any method with an absolute <c>http://</c> URI (RFC 9112 §3.2.2): sent to the origin in
/// origin-form with hop-by-hop fields removed and bodies streamed both ways (Content-Length or chunked); the client
/// connection stays open for further requests, to any host.</item>
/// </list>
/// With <see cref="HttpProxyOptions.Username"/> set, requests need <c>Proxy-Authorization: Basic</c> (RFC 7617),
/// else 407. With a <see cref="HttpProxyOptions.Certificate"/> the listener speaks TLS first (an HTTPS proxy).
/// </summary>
/// <remarks>
/// Threading: the shared <see cref="AcceptLoop"/>; each connection runs on its own task and is admitted by
/// <see cref="ProxyContext.Gate"/> (503 past the cap). Counters are updated from any connection's task.
/// Memory per connection: a head buffer that starts at 4 KiB and grows to at most 64 KiB per direction, and one relay
/// buffer per direction of <see cref="RelayOptions.BufferSize"/>; bodies are never buffered whole.
/// </remarks>
public sealed partial class HttpProxyServer : IProxyService
{
    private readonly HttpProxyOptions _options;
    private readonly ProxyContext _context;
    private readonly ILogger _logger;
    private readonly byte[]? _credentialHash;
    private HostListener? _listener;

    /// <summary>A server with <paramref name="options"/> reaching targets through <paramref name="context"/>.</summary>
    /// <exception cref="ArgumentException">The user name contains ':'.</exception>
    public HttpProxyServer(HttpProxyOptions options, ProxyContext context)
    {
        ArgumentNullException.ThrowIfNull(options);
        ArgumentNullException.ThrowIfNull(context);
        ArgumentNullException.ThrowIfNull(options.BindAddress);
        _options = options;
        _context = context;
        _logger = context.LoggerFactory.CreateLogger("Sharptun.Proxy.Http");
        // As wireproxy: either value set means authentication is required (an empty user-id or password is valid).
        if (!string.IsNullOrEmpty(options.Username) || !string.IsNullOrEmpty(options.Password))
        {
            // RFC 7617 §2: the user-id cannot contain a colon.
            if (options.Username?.Contains(':', StringComparison.Ordinal) == true)
            {
                throw new ArgumentException("The user name of Basic authentication cannot contain ':'.", nameof(options));
            }

            _credentialHash = SHA256.HashData(Encoding.UTF8.GetBytes(options.Username + ":" + options.Password));
        }
    }

    /// <inheritdoc/>
    public string Kind => "http";

    /// <inheritdoc/>
    public string Endpoint => (LocalEndPoint ?? _options.BindAddress).ToString();

    /// <summary>The address and port listened on, once <see cref="Start"/> has bound; else <see langword="null"/>.</summary>
    public IPEndPoint? LocalEndPoint => _listener?.LocalEndPoint;

    /// <inheritdoc/>
    public ProxyServiceCounters Counters { get; } = new();

    /// <summary>
    /// Builds a server from a wireproxy <c>[http]</c> section: <c>BindAddress</c> (required, host:port as wireproxy
    /// takes it: <c>127.0.0.1:8080</c>, <c>[::1]:8080</c>, <c>:8080</c> for every interface, <c>localhost:8080</c>),
    /// <c>Username</c> and <c>Password</c> (either set: Basic authentication required, as wireproxy), <c>CertFile</c> and <c>KeyFile</c> (PEM, both or
    /// neither; paths as given, relative to the working directory as wireproxy reads them).
    /// </summary>
    /// <exception cref="ProxyConfigException">An unknown key or a bad value, naming its line.</exception>
    public static HttpProxyServer FromSection(ConfigSection section, ProxyContext context)
    {
        ArgumentNullException.ThrowIfNull(section);
        ArgumentNullException.ThrowIfNull(context);
        section.RejectUnknownKeys("BindAddress", "Username", "Password", "CertFile", "KeyFile");
        var bind = section.Require("BindAddress");
        var bindLine = section.Find("BindAddress")!.Value.Line;
        if (!BindAddressParser.TryParse(bind, out var endPoint))
        {
            throw section.Error(bindLine, $"BindAddress '{bind}' is not host:port (e.g. 127.0.0.1:8080, [::1]:8080, :8080)");
        }

        var user = section.Find("Username");
        var password = section.Find("Password");
        if (user?.Value.Contains(':', StringComparison.Ordinal) == true)
        {
            throw section.Error(user.Value.Line, "Username cannot contain ':' (RFC 7617)");
        }

        var certFile = section.Find("CertFile");
        var keyFile = section.Find("KeyFile");
        X509Certificate2? certificate = null;
        if (string.IsNullOrEmpty(certFile?.Value) != string.IsNullOrEmpty(keyFile?.Value))
        {
            throw section.Error((certFile ?? keyFile)!.Value.Line, $"[{section.Name}] needs both CertFile and KeyFile, or neither");
        }

        if (!string.IsNullOrEmpty(certFile?.Value))
        {
            try
            {
                certificate = X509Certificate2.CreateFromPemFile(certFile.Value.Value, keyFile!.Value.Value);
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException or CryptographicException or ArgumentException)
            {
                throw section.Error(certFile.Value.Line, $"cannot load the certificate '{certFile.Value.Value}' with key '{keyFile!.Value.Value}': {e.Message}");
            }

            if (!certificate.HasPrivateKey)
            {
                certificate.Dispose();
                throw section.Error(keyFile.Value.Line, $"KeyFile '{keyFile.Value.Value}' holds no private key for the certificate");
            }
        }

        return new HttpProxyServer(
            new HttpProxyOptions { BindAddress = endPoint, Username = user?.Value, Password = password?.Value, Certificate = certificate },
            context);
    }

    /// <inheritdoc/>
    public void Start()
    {
        if (_listener is not null)
        {
            throw new InvalidOperationException("The HTTP proxy is already started.");
        }

        var bind = _options.BindAddress;
        try
        {
            _listener = HostListener.Bind(bind);
        }
        catch (SocketException e) when (bind.Address.Equals(IPAddress.IPv6Any) && e.SocketErrorCode == SocketError.AddressFamilyNotSupported)
        {
            // "every interface" on a host without IPv6.
            _listener = HostListener.Bind(new IPEndPoint(IPAddress.Any, bind.Port));
        }

        Log.Listening(_logger, Endpoint, _options.Certificate is null ? "HTTP" : "HTTPS");
    }

    /// <inheritdoc/>
    public async Task RunAsync(CancellationToken cancellationToken)
    {
        var listener = _listener ?? throw new InvalidOperationException("Start the HTTP proxy before running it.");
        await AcceptLoop.ServeAsync(listener, ServeAsync, _context.Gate, Counters, _logger, Kind, Endpoint, cancellationToken).ConfigureAwait(false);
    }

    /// <summary>One client connection; past the cap (<paramref name="admitted"/> false, counted by the loop) it gets a 503.</summary>
    private async Task ServeAsync(AcceptedConnection accepted, bool admitted, CancellationToken cancellationToken)
    {
        var socket = accepted.Socket!;
        var remote = accepted.Client ?? "?";
        var stream = accepted.Stream;
        if (admitted)
        {
            Counters.OnAccepted();
        }
        else
        {
            Log.OverCapacity(_logger, remote, _context.Gate.Capacity);
        }

        try
        {
            using var head = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
            head.CancelAfter(_context.HandshakeTimeout);
            if (_options.Certificate is { } certificate)
            {
                var tls = new SslStream(stream, leaveInnerStreamOpen: false);
                stream = tls;
                var tlsOptions = new SslServerAuthenticationOptions
                {
                    ServerCertificate = certificate,
                    ApplicationProtocols = [SslApplicationProtocol.Http11],
                };
                await tls.AuthenticateAsServerAsync(tlsOptions, head.Token).ConfigureAwait(false);
            }

            var connection = new HttpProxyConnection(this, stream, remote);
            try
            {
                if (!admitted)
                {
                    await connection.WriteErrorAsync(503, $"The proxy is at its limit of {_context.Gate.Capacity} connections; try again later.", cancellationToken).ConfigureAwait(false);
                }
                else
                {
                    await connection.RunAsync(head, cancellationToken).ConfigureAwait(false);
                }
            }
            finally
            {
                connection.Dispose();
            }

            await LingerAsync(socket, stream, cancellationToken).ConfigureAwait(false);
        }
        catch (Exception e) when (e is IOException or SocketException or AuthenticationException or ObjectDisposedException
                                      || (e is OperationCanceledException && !cancellationToken.IsCancellationRequested))
        {
            Log.ConnectionEnded(_logger, remote, e.Message);
        }
        finally
        {
            if (admitted)
            {
                Counters.OnClosed();
            }

            await stream.DisposeAsync().ConfigureAwait(false);
        }
    }

    // Closing a socket with unread input sends RST, which can destroy an error response before the client reads it
    // (RFC 9112 §9.6): shut down the sending side, then read and drop what the client still sends, briefly.
    private static async ValueTask LingerAsync(Socket socket, Stream stream, CancellationToken cancellationToken)
    {
        if (stream is SslStream tls)
        {
            await tls.ShutdownAsync().ConfigureAwait(false);
        }

        socket.Shutdown(SocketShutdown.Send);
        using var linger = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        linger.CancelAfter(TimeSpan.FromSeconds(2));
        var buffer = HttpBody.RentBuffer(4096);
        try
        {
            for (var total = 0; total < 1 << 20;)
            {
                var n = await socket.ReceiveAsync(buffer, SocketFlags.None, linger.Token).ConfigureAwait(false);
                if (n == 0)
                {
                    break;
                }

                total += n;
            }
        }
        catch (OperationCanceledException) when (!cancellationToken.IsCancellationRequested)
        {
        }
        finally
        {
            HttpBody.ReturnBuffer(buffer);
        }
    }

    internal ProxyContext Context => _context;

    internal ILogger Logger => _logger;

    /// <summary>
    /// Whether the request carries the configured credentials (RFC 7617 Basic, scheme case-insensitive per RFC 9110
    /// §11.1); true when no credentials are configured. Compared as SHA-256 digests in constant time, so neither the
    /// content nor the length of the secret shows in the timing.
    /// </summary>
    internal bool IsAuthorized(HttpHead head)
    {
        if (_credentialHash is null)
        {
            return true;
        }

        var authorized = false;
        Span<byte> hash = stackalloc byte[32];
        foreach (var field in head.Fields)
        {
            if (!string.Equals(field.Key, "Proxy-Authorization", StringComparison.OrdinalIgnoreCase))
            {
                continue;
            }

            var value = field.Value.AsSpan();
            if (value.Length < 6 || !value[..6].Equals("Basic ", StringComparison.OrdinalIgnoreCase))
            {
                continue;
            }

            var encoded = value[6..].Trim(' ');
            var decoded = HttpBody.RentBuffer(encoded.Length);
            try
            {
                if (Convert.TryFromBase64Chars(encoded, decoded, out var length))
                {
                    SHA256.HashData(decoded.AsSpan(0, length), hash);
                    authorized |= CryptographicOperations.FixedTimeEquals(hash, _credentialHash);
                }
            }
            finally
            {
                CryptographicOperations.ZeroMemory(decoded);
                HttpBody.ReturnBuffer(decoded);
            }
        }

        return authorized;
    }

    private static partial class Log
    {
        [LoggerMessage(EventId = 1300, Level = LogLevel.Information, Message = "HTTP proxy listening on {Endpoint} ({Protocol})")]
        public static partial void Listening(ILogger logger, string endpoint, string protocol);

        [LoggerMessage(EventId = 1301, Level = LogLevel.Warning, Message = "HTTP proxy: refused {Remote}: {Capacity} connections are open (503)")]
        public static partial void OverCapacity(ILogger logger, string remote, int capacity);

        [LoggerMessage(EventId = 1303, Level = LogLevel.Debug, Message = "HTTP proxy: connection from {Remote} ended: {Error}")]
        public static partial void ConnectionEnded(ILogger logger, string remote, string error);
    }
}

/// <summary>Reads wireproxy's BindAddress values (Go's <c>net.Listen</c> address syntax).</summary>
internal static class BindAddressParser
{
    /// <summary>host:port with an IPv4 literal, [IPv6], "localhost" or nothing (every interface, IPv6 and IPv4) as host.</summary>
    public static bool TryParse(string text, out IPEndPoint endPoint)
    {
        endPoint = null!;
        var colon = text.LastIndexOf(':');
        if (colon < 0 || !int.TryParse(text.AsSpan(colon + 1), NumberStyles.None, CultureInfo.InvariantCulture, out var port) || port > 65535)
        {
            return false;
        }

        var host = text.AsSpan(0, colon);
        IPAddress? address;
        if (host.IsEmpty)
        {
            address = IPAddress.IPv6Any;
        }
        else if (host.Equals("localhost", StringComparison.OrdinalIgnoreCase))
        {
            address = IPAddress.Loopback;
        }
        else if (host.Length > 2 && host[0] == '[' && host[^1] == ']')
        {
            if (!IPAddress.TryParse(host[1..^1], out address) || address.AddressFamily != AddressFamily.InterNetworkV6)
            {
                return false;
            }
        }
        else if (!IPAddress.TryParse(host, out address) || address.AddressFamily != AddressFamily.InterNetwork)
        {
            return false;
        }

        endPoint = new IPEndPoint(address, port);
        return true;
    }
}
