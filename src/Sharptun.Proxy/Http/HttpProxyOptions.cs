using System.Net;
using System.Security.Cryptography.X509Certificates;

namespace Sharptun.Proxy.Http;

/// <summary>Settings of an <see cref="HttpProxyServer"/> (wireproxy's <c>[http]</c> section).</summary>
public sealed class HttpProxyOptions
{
    /// <summary>The host address and port to listen on (port 0: any free port, see <see cref="HttpProxyServer.LocalEndPoint"/>).</summary>
    public required IPEndPoint BindAddress { get; init; }

    /// <summary>
    /// The user name clients must send in <c>Proxy-Authorization: Basic</c> (RFC 7617). With this and
    /// <see cref="Password"/> both null or empty there is no authentication; with either set, both must match
    /// (an empty one as empty). It must not contain ':'.
    /// </summary>
    public string? Username { get; init; }

    /// <summary>The password that goes with <see cref="Username"/>.</summary>
    public string? Password { get; init; }

    /// <summary>
    /// A certificate with its private key: when set, the listener speaks TLS (an HTTPS proxy, <c>curl --proxy
    /// https://...</c>) and then the same protocol inside it. The caller keeps ownership and disposes it after the
    /// server has stopped.
    /// </summary>
    public X509Certificate2? Certificate { get; init; }
}
