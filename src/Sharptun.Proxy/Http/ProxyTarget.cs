using System.Globalization;
using System.Net;

namespace Sharptun.Proxy.Http;

/// <summary>
/// Where a proxy request goes: the host and port from a CONNECT's authority-form (RFC 9112 §3.2.3) or an
/// absolute-form <c>http://</c> URI (RFC 9112 §3.2.2), with the origin-form path to send on.
/// </summary>
/// <param name="Host">A DNS name, or an IP literal without brackets.</param>
/// <param name="Port">The TCP port.</param>
/// <param name="Authority">host[:port] as it goes into the Host field (IPv6 in brackets, no userinfo).</param>
/// <param name="PathAndQuery">The origin-form (RFC 9112 §3.2.1) for the origin; empty for CONNECT.</param>
internal readonly record struct ProxyTarget(string Host, int Port, string Authority, string PathAndQuery)
{
    /// <summary>Parses a CONNECT target: host:port, port required (RFC 9110 §9.3.6).</summary>
    public static bool TryParseAuthority(string target, out ProxyTarget result, out string? error)
    {
        result = default;
        if (!TrySplitHostPort(target, defaultPort: -1, out var host, out var port, out error))
        {
            return false;
        }

        result = new ProxyTarget(host, port, target, string.Empty);
        return true;
    }

    /// <summary>Parses an absolute-form request target. Only the <c>http</c> scheme is proxied this way.</summary>
    public static bool TryParseAbsolute(string target, out ProxyTarget result, out string? error)
    {
        result = default;
        var schemeEnd = target.IndexOf("://", StringComparison.Ordinal);
        if (target.StartsWith('/') || target == "*")
        {
            error = "this is a proxy: the request-target must be an absolute URI (http://host/path) or, for CONNECT, host:port";
            return false;
        }

        if (schemeEnd <= 0)
        {
            error = $"the request-target '{target}' is not an absolute URI";
            return false;
        }

        var scheme = target.AsSpan(0, schemeEnd);
        if (!scheme.Equals("http", StringComparison.OrdinalIgnoreCase))
        {
            error = scheme.Equals("https", StringComparison.OrdinalIgnoreCase)
                ? "https:// URIs are not proxied as requests; use CONNECT (clients do this for https URLs)"
                : $"the URI scheme '{scheme}' is not supported (only http)";
            return false;
        }

        var rest = target.AsSpan(schemeEnd + 3);
        var authorityEnd = rest.IndexOfAny('/', '?', '#');
        var authority = authorityEnd < 0 ? rest : rest[..authorityEnd];
        var path = authorityEnd < 0 ? ReadOnlySpan<char>.Empty : rest[authorityEnd..];

        // RFC 9110 §4.2.4: userinfo in an http URI is to be treated as an error (it leaks credentials).
        if (authority.Contains('@'))
        {
            error = "the URI contains userinfo (user@host), which HTTP does not allow";
            return false;
        }

        var fragment = path.IndexOf('#');
        if (fragment >= 0)
        {
            path = path[..fragment];
        }

        var authorityText = authority.ToString();
        if (!TrySplitHostPort(authorityText, defaultPort: 80, out var host, out var port, out error))
        {
            return false;
        }

        var origin = path.IsEmpty ? "/" : path[0] == '?' ? "/" + path.ToString() : path.ToString();
        result = new ProxyTarget(host, port, authorityText, origin);
        return true;
    }

    private static bool TrySplitHostPort(string authority, int defaultPort, out string host, out int port, out string? error)
    {
        host = string.Empty;
        port = defaultPort;
        ReadOnlySpan<char> hostPart;
        ReadOnlySpan<char> portPart;
        if (authority.StartsWith('['))
        {
            var close = authority.IndexOf(']', StringComparison.Ordinal);
            if (close < 0 || !IPAddress.TryParse(authority.AsSpan(1, close - 1), out var v6) || v6.AddressFamily != System.Net.Sockets.AddressFamily.InterNetworkV6)
            {
                error = $"'{authority}' is not a valid [IPv6]:port";
                return false;
            }

            hostPart = authority.AsSpan(1, close - 1);
            var after = authority.AsSpan(close + 1);
            if (!after.IsEmpty && after[0] != ':')
            {
                error = $"'{authority}' is not a valid [IPv6]:port";
                return false;
            }

            portPart = after.IsEmpty ? ReadOnlySpan<char>.Empty : after[1..];
        }
        else
        {
            var colon = authority.LastIndexOf(':');
            if (colon >= 0 && authority.IndexOf(':', StringComparison.Ordinal) != colon)
            {
                error = $"'{authority}' is not host:port (an IPv6 address needs brackets)";
                return false;
            }

            hostPart = colon < 0 ? authority : authority.AsSpan(0, colon);
            portPart = colon < 0 ? ReadOnlySpan<char>.Empty : authority.AsSpan(colon + 1);
            if (!IsRegName(hostPart))
            {
                error = $"'{hostPart}' is not a valid host name or IPv4 address";
                return false;
            }
        }

        if (portPart.IsEmpty)
        {
            if (defaultPort < 0)
            {
                error = $"'{authority}' has no port (CONNECT needs host:port)";
                return false;
            }
        }
        else if (portPart.Length > 5 || !int.TryParse(portPart, NumberStyles.None, CultureInfo.InvariantCulture, out port) || port is < 1 or > 65535)
        {
            error = $"'{portPart}' is not a port from 1 to 65535";
            return false;
        }

        host = hostPart.ToString();
        error = null;
        return true;
    }

    // A DNS name or an IPv4 literal: letters, digits, '-', '.', '_' (seen in real names), at most 253 characters.
    private static bool IsRegName(ReadOnlySpan<char> host)
    {
        if (host.IsEmpty || host.Length > 253 || host[0] == '.' || host[0] == '-')
        {
            return false;
        }

        foreach (var c in host)
        {
            if (!(char.IsAsciiLetterOrDigit(c) || c is '-' or '.' or '_'))
            {
                return false;
            }
        }

        return true;
    }
}
