using Sharptun.Device.Routing;
using System.Globalization;
using System.Net;
using System.Net.Sockets;

namespace Sharptun.Device.Config;

/// <summary>
/// A peer endpoint as written in a config file: <c>1.2.3.4:51820</c>, <c>[fd00::1]:51820</c> or
/// <c>vpn.example.com:51820</c>. Hostnames are kept as text and resolved later by whoever applies the config
/// (parsing never touches DNS).
/// </summary>
/// <param name="Host">An IPv4 literal, an IPv6 literal without brackets (optionally with a %scope), or a hostname.</param>
/// <param name="Port">The UDP port.</param>
public readonly record struct WgEndpoint(string Host, ushort Port)
{
    /// <summary>The address when <see cref="Host"/> is an IP literal, otherwise null.</summary>
    public IPAddress? Address => TryParseHostAddress(Host, out var a) ? a : null;

    /// <summary>The endpoint as an <see cref="IPEndPoint"/> when <see cref="Host"/> is an IP literal.</summary>
    public bool TryGetIPEndPoint(out IPEndPoint endPoint)
    {
        if (TryParseHostAddress(Host, out var address))
        {
            endPoint = new IPEndPoint(address, Port);
            return true;
        }

        endPoint = null!;
        return false;
    }

    /// <summary>wg's form: <c>host:port</c>, with IPv6 literals in brackets.</summary>
    public override string ToString() =>
        (Host.Contains(':') ? "[" + Host + "]" : Host) + ":" + Port.ToString(CultureInfo.InvariantCulture);

    /// <summary>Formats an <see cref="IPEndPoint"/> the way wg and wireguard-go print endpoints.</summary>
    public static string Format(IPEndPoint endPoint)
    {
        ArgumentNullException.ThrowIfNull(endPoint);
        return FromIPEndPoint(endPoint).ToString();
    }

    /// <summary>Converts an <see cref="IPEndPoint"/> (IPv4-mapped IPv6 stays IPv6, as on the wire).</summary>
    public static WgEndpoint FromIPEndPoint(IPEndPoint endPoint)
    {
        ArgumentNullException.ThrowIfNull(endPoint);
        return new WgEndpoint(endPoint.Address.ToString(), (ushort)endPoint.Port);
    }

    /// <summary>
    /// Parses <c>host:port</c> (the port after the last ':'), <c>[v6]:port</c>; an unbracketed IPv6 literal is
    /// rejected (its port would be ambiguous). The port is 1..5 decimal digits, at most 65535. A host that is
    /// not an IP literal must be a plausible DNS name (letters, digits, '-', '.', '_'). Never throws.
    /// </summary>
    public static bool TryParse(ReadOnlySpan<char> text, out WgEndpoint endpoint) => TryParse(text, allowHostname: true, out endpoint);

    /// <summary>The UAPI form (wireguard-go's netip.ParseAddrPort): the host must be an IP literal.</summary>
    public static bool TryParseIPEndPoint(ReadOnlySpan<char> text, out IPEndPoint endPoint)
    {
        endPoint = null!;
        return TryParse(text, allowHostname: false, out var e) && e.TryGetIPEndPoint(out endPoint);
    }

    private static bool TryParse(ReadOnlySpan<char> text, bool allowHostname, out WgEndpoint endpoint)
    {
        endpoint = default;
        ReadOnlySpan<char> host;
        ReadOnlySpan<char> portText;
        if (text.StartsWith("["))
        {
            var close = text.IndexOf(']');
            if (close < 0 || close + 1 >= text.Length || text[close + 1] != ':')
            {
                return false;
            }

            host = text[1..close];
            portText = text[(close + 2)..];
            if (!TryParseHostAddress(host, out var v6) || v6.AddressFamily != AddressFamily.InterNetworkV6)
            {
                return false;
            }
        }
        else
        {
            var colon = text.LastIndexOf(':');
            if (colon <= 0)
            {
                return false;
            }

            host = text[..colon];
            portText = text[(colon + 1)..];
            if (host.Contains(':'))
            {
                return false;
            }

            if (!TryParseHostAddress(host, out _) && (!allowHostname || !IsHostname(host)))
            {
                return false;
            }
        }

        if (portText.Length is 0 or > 5)
        {
            return false;
        }

        var port = 0;
        foreach (var c in portText)
        {
            if (!char.IsAsciiDigit(c))
            {
                return false;
            }

            port = (port * 10) + (c - '0');
        }

        if (port > ushort.MaxValue)
        {
            return false;
        }

        endpoint = new WgEndpoint(host.ToString(), (ushort)port);
        return true;
    }

    private static bool TryParseHostAddress(ReadOnlySpan<char> host, out IPAddress address)
    {
        var percent = host.IndexOf('%');
        if (percent < 0)
        {
            return IpPrefix.TryParseAddress(host, out address);
        }

        // IPv6 with a zone: fe80::1%eth0 (only link-local use makes sense, but wg accepts any).
        address = IPAddress.None;
        if (percent == host.Length - 1 || !IpPrefix.TryParseAddress(host[..percent], out var bare)
            || bare.AddressFamily != AddressFamily.InterNetworkV6)
        {
            return false;
        }

        foreach (var c in host[(percent + 1)..])
        {
            if (!(char.IsAsciiLetterOrDigit(c) || c is '-' or '_' or '.'))
            {
                return false;
            }
        }

        return IPAddress.TryParse(host, out address!);
    }

    private static bool IsHostname(ReadOnlySpan<char> host)
    {
        if (host.IsEmpty || host.Length > 253 || host[0] == '.' || host[0] == '-')
        {
            return false;
        }

        var hasLetter = false;
        foreach (var c in host)
        {
            if (!(char.IsAsciiLetterOrDigit(c) || c is '-' or '.' or '_'))
            {
                return false;
            }

            hasLetter |= !char.IsAsciiDigit(c) && c != '.';
        }

        return hasLetter; // "1.2.3.400" is a bad address, not a hostname
    }
}
