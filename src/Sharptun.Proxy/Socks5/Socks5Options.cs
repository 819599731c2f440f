using System.Net;
using System.Text;

namespace Sharptun.Proxy.Socks5;

/// <summary>Settings of a <see cref="Socks5Server"/> (wireproxy's <c>[Socks5]</c> section).</summary>
public sealed class Socks5Options
{
    /// <summary>Settings for a SOCKS5 server listening on <paramref name="bindAddress"/> of the host.</summary>
    /// <param name="bindAddress">The host address and port to listen on (port 0: any free port); <c>[::]</c> listens on IPv4 and IPv6.</param>
    public Socks5Options(IPEndPoint bindAddress)
    {
        ArgumentNullException.ThrowIfNull(bindAddress);
        BindAddress = bindAddress;
    }

    /// <summary>The host address and port the server listens on.</summary>
    public IPEndPoint BindAddress { get; }

    /// <summary>
    /// The username clients must give (RFC 1929). When <see cref="Username"/> or <see cref="Password"/> is set,
    /// username/password authentication is the only method offered; when both are empty, only "no authentication".
    /// </summary>
    public string? Username { get; init; }

    /// <summary>The password clients must give (RFC 1929); see <see cref="Username"/>.</summary>
    public string? Password { get; init; }

    /// <summary>
    /// How long a UDP association may pass no datagram either way before it ends and its control connection is
    /// closed (default 2 minutes). An association also ends when its control connection closes (RFC 1928 §7).
    /// </summary>
    public TimeSpan UdpIdleTimeout { get; init; } = TimeSpan.FromMinutes(2);

    internal bool RequiresAuthentication => !string.IsNullOrEmpty(Username) || !string.IsNullOrEmpty(Password);

    internal void Validate()
    {
        // RFC 1929 §2: ULEN and PLEN are one byte each.
        if (Encoding.UTF8.GetByteCount(Username ?? "") > 255)
        {
            throw new ArgumentException("The SOCKS5 username is longer than 255 bytes (RFC 1929).", nameof(Username));
        }

        if (Encoding.UTF8.GetByteCount(Password ?? "") > 255)
        {
            throw new ArgumentException("The SOCKS5 password is longer than 255 bytes (RFC 1929).", nameof(Password));
        }

        if (UdpIdleTimeout <= TimeSpan.Zero && UdpIdleTimeout != Timeout.InfiniteTimeSpan)
        {
            throw new ArgumentOutOfRangeException(nameof(UdpIdleTimeout), "The UDP idle timeout must be positive or infinite.");
        }
    }
}
