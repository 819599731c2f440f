using System.Globalization;
using System.Net;
using Sharptun.Proxy.Config;

namespace Sharptun.Proxy.Forwards;

/// <summary>
/// The address values of the forward sections, read as wireproxy reads them (Go's <c>net.SplitHostPort</c>):
/// <c>Target = host:port</c> (a name, an IPv4 literal or a bracketed IPv6 literal) and
/// <c>BindAddress = ip:port</c> (an empty host or <c>localhost</c> as Go's <c>net.Listen</c> takes them).
/// </summary>
internal static class ForwardAddress
{
    /// <summary>Splits "host:port", "[v6]:port"; the host is returned without brackets.</summary>
    public static bool TrySplit(string value, out string host, out int port)
    {
        host = string.Empty;
        port = 0;
        var colon = value.LastIndexOf(':');
        if (colon < 0)
        {
            return false;
        }

        var hostPart = value.AsSpan(0, colon);
        var portPart = value.AsSpan(colon + 1);
        if (hostPart.StartsWith("[") && hostPart.EndsWith("]"))
        {
            hostPart = hostPart[1..^1];
            if (!IPAddress.TryParse(hostPart, out var v6) || v6.AddressFamily != System.Net.Sockets.AddressFamily.InterNetworkV6)
            {
                return false;
            }
        }
        else if (hostPart.Contains(':'))
        {
            // An unbracketed IPv6 literal is ambiguous ("::1:80"): Go rejects it too ("too many colons").
            return false;
        }

        if (!int.TryParse(portPart, NumberStyles.None, CultureInfo.InvariantCulture, out port) || port is < 0 or > 65535)
        {
            return false;
        }

        host = hostPart.ToString();
        return true;
    }

    /// <summary>A <c>Target = host:port</c> value: a non-empty host and a port from 1 to 65535.</summary>
    public static (string Host, int Port) RequireTarget(ConfigSection section, string key = "Target")
    {
        var value = section.Require(key);
        if (!TrySplit(value, out var host, out var port) || host.Length == 0 || port == 0 || !IsHostName(host))
        {
            throw section.Error(section.Find(key)!.Value.Line, $"{key} must be host:port (a name, an IPv4 address or [IPv6]:port), not '{value}'");
        }

        return (host, port);
    }

    /// <summary>A <c>BindAddress = ip:port</c> value for a host-side listener.</summary>
    public static IPEndPoint RequireBind(ConfigSection section, string key = "BindAddress")
    {
        var value = section.Require(key);
        var line = section.Find(key)!.Value.Line;
        if (!TrySplit(value, out var host, out var port))
        {
            throw section.Error(line, $"{key} must be ip:port (e.g. 127.0.0.1:25565 or [::1]:25565), not '{value}'");
        }

        if (host.Length == 0)
        {
            // Go's net.Listen(":port") listens on every address, IPv4 and IPv6 (IPv4 only where IPv6 is off).
            return new IPEndPoint(System.Net.Sockets.Socket.OSSupportsIPv6 ? IPAddress.IPv6Any : IPAddress.Any, port);
        }

        if (string.Equals(host, "localhost", StringComparison.OrdinalIgnoreCase))
        {
            return new IPEndPoint(IPAddress.Loopback, port);
        }

        if (!IPAddress.TryParse(host, out var address))
        {
            throw section.Error(line, $"{key} needs an IP address to listen on (or localhost), not '{host}'");
        }

        return new IPEndPoint(address, port);
    }

    /// <summary>Formats host and port as "host:port" or "[v6]:port".</summary>
    public static string Format(string host, int port) =>
        host.Contains(':') ? $"[{host}]:{port.ToString(CultureInfo.InvariantCulture)}" : $"{host}:{port.ToString(CultureInfo.InvariantCulture)}";

    /// <summary>
    /// A name or IP literal that may be handed to a resolver: ASCII letters, digits, '-', '.', '_' (and ':' for IPv6),
    /// at most 253 characters (RFC 1035 §2.3.4).
    /// </summary>
    public static bool IsHostName(string host)
    {
        if (host.Length is 0 or > 253)
        {
            return false;
        }

        foreach (var c in host)
        {
            if (!(char.IsAsciiLetterOrDigit(c) || c is '-' or '.' or '_' or ':'))
            {
                return false;
            }
        }

        return true;
    }
}
