using System.Globalization;
using System.Net;
using System.Net.Sockets;

namespace Sharptun.Gateway;

/// <summary>
/// One entry of a gateway's <c>Allow</c> or <c>Deny</c> list: a destination prefix and an optional port range, written
/// <c>10.1.0.0/16</c>, <c>10.1.0.0/16:443</c>, <c>192.0.2.7:8000-8100</c>, <c>2001:db8::/32</c> or
/// <c>[2001:db8::]/32:443</c> (an IPv6 rule with a port needs the brackets). A bare address is a /32 or /128.
/// </summary>
/// <param name="Prefix">The destination prefix.</param>
/// <param name="FirstPort">The first port the rule covers (0 with <paramref name="LastPort"/> 65535: every port).</param>
/// <param name="LastPort">The last port the rule covers.</param>
public readonly record struct DestinationRule(IPNetwork Prefix, int FirstPort, int LastPort)
{
    /// <summary>True when the rule names ports (not every port).</summary>
    public bool HasPorts => FirstPort != 0 || LastPort != 65535;

    /// <summary>True when <paramref name="address"/> is inside <see cref="Prefix"/> (IPv4-mapped IPv6 addresses count as IPv4).</summary>
    public bool ContainsAddress(IPAddress address)
    {
        ArgumentNullException.ThrowIfNull(address);
        return Prefix.Contains(Normalize(address));
    }

    /// <summary>True when the rule covers <paramref name="destination"/> (address and port).</summary>
    public bool Matches(IPEndPoint destination)
    {
        ArgumentNullException.ThrowIfNull(destination);
        return destination.Port >= FirstPort && destination.Port <= LastPort && ContainsAddress(destination.Address);
    }

    /// <summary>The rule as the config writes it.</summary>
    public override string ToString()
    {
        if (!HasPorts)
        {
            return Prefix.ToString();
        }

        var ports = FirstPort == LastPort ? FirstPort.ToString(CultureInfo.InvariantCulture) : string.Create(CultureInfo.InvariantCulture, $"{FirstPort}-{LastPort}");
        return Prefix.BaseAddress.AddressFamily == AddressFamily.InterNetworkV6
            ? $"[{Prefix.BaseAddress}]/{Prefix.PrefixLength}:{ports}"
            : $"{Prefix}:{ports}";
    }

    /// <summary>Parses one rule; false with a reason when it is malformed.</summary>
    public static bool TryParse(string text, out DestinationRule rule, out string? error)
    {
        ArgumentNullException.ThrowIfNull(text);
        rule = default;
        var s = text.Trim();
        string prefixText;
        string? portText = null;
        if (s.StartsWith('['))
        {
            // [addr]/len:port or [addr/len]:port
            var close = s.IndexOf(']', StringComparison.Ordinal);
            if (close < 0)
            {
                error = $"'{text}': missing ']'";
                return false;
            }

            var inner = s[1..close];
            var rest = s[(close + 1)..];
            if (rest.StartsWith('/'))
            {
                var colon = rest.IndexOf(':', StringComparison.Ordinal);
                prefixText = inner + (colon < 0 ? rest : rest[..colon]);
                portText = colon < 0 ? null : rest[(colon + 1)..];
            }
            else
            {
                prefixText = inner;
                portText = rest.Length == 0 ? null : rest.StartsWith(':') ? rest[1..] : rest;
                if (rest.Length > 0 && !rest.StartsWith(':'))
                {
                    error = $"'{text}': expected ':PORT' after ']'";
                    return false;
                }
            }
        }
        else if (s.Count(c => c == ':') == 1)
        {
            var colon = s.IndexOf(':', StringComparison.Ordinal);
            prefixText = s[..colon];
            portText = s[(colon + 1)..];
        }
        else
        {
            prefixText = s;
        }

        if (!TryParsePrefix(prefixText, out var prefix))
        {
            error = $"'{text}': '{prefixText}' is not an address or prefix (ADDRESS or ADDRESS/LENGTH)";
            return false;
        }

        var (first, last) = (0, 65535);
        if (portText is not null && !TryParsePorts(portText, out first, out last))
        {
            error = $"'{text}': '{portText}' is not a port or port range (1-65535, FIRST-LAST)";
            return false;
        }

        rule = new DestinationRule(prefix, first, last);
        error = null;
        return true;
    }

    internal static IPAddress Normalize(IPAddress address) => address.IsIPv4MappedToIPv6 ? address.MapToIPv4() : address;

    private static bool TryParsePrefix(string text, out IPNetwork prefix)
    {
        prefix = default;
        var slash = text.IndexOf('/', StringComparison.Ordinal);
        var addressText = slash < 0 ? text : text[..slash];
        if (!IPAddress.TryParse(addressText, out var address) || addressText.Contains('%', StringComparison.Ordinal))
        {
            return false;
        }

        address = Normalize(address);
        var max = address.AddressFamily == AddressFamily.InterNetwork ? 32 : 128;
        var length = max;
        if (slash >= 0 && (!int.TryParse(text.AsSpan(slash + 1), NumberStyles.None, CultureInfo.InvariantCulture, out length) || length > max))
        {
            return false;
        }

        // Host bits set (10.1.2.3/16) are cleared, as wg's AllowedIPs does.
        prefix = new IPNetwork(Mask(address, length), length);
        return true;
    }

    private static IPAddress Mask(IPAddress address, int length)
    {
        var bytes = address.GetAddressBytes();
        for (var i = 0; i < bytes.Length; i++)
        {
            var keep = Math.Clamp(length - (i * 8), 0, 8);
            bytes[i] &= (byte)(0xFF << (8 - keep));
        }

        return new IPAddress(bytes);
    }

    private static bool TryParsePorts(string text, out int first, out int last)
    {
        var dash = text.IndexOf('-', StringComparison.Ordinal);
        first = last = 0;
        if (dash < 0)
        {
            return TryParsePort(text, out first) && (last = first) > 0;
        }

        return TryParsePort(text[..dash], out first) && TryParsePort(text[(dash + 1)..], out last) && first <= last;
    }

    private static bool TryParsePort(string text, out int port) =>
        int.TryParse(text.Trim(), NumberStyles.None, CultureInfo.InvariantCulture, out port) && port is >= 1 and <= 65535;
}
