using System.Globalization;
using System.Text;

namespace Sharptun.Gateway;

/// <summary>
/// A gateway's config file: a wg-quick config (<c>[Interface]</c> with PrivateKey, ListenPort and the gateway's
/// tunnel Address; a <c>[Peer]</c> per client) plus one optional <c>[Gateway]</c> section:
/// <code>
/// [Gateway]
/// Allow = 192.168.50.0/24, 10.1.0.0/16:443     # destination prefixes[:port or FIRST-LAST]; lines add up
/// Deny = 203.0.113.0/24, 0.0.0.0/0:25          # deny wins over allow
/// Default = allow                               # public destinations no rule names: allow (default) or deny
/// MaxConnections = 4096                         # TCP connections + UDP flows, all peers
/// MaxConnectionsPerPeer = 1024
/// IdleTimeout = 600                             # seconds without a byte before a TCP relay is reset
/// UdpIdleTimeout = 60                           # seconds before an idle UDP flow is closed
/// ConnectTimeout = 10                           # seconds for the host's TCP connect
/// DNS = on                                      # answer DNS to the tunnel address (host nameservers, host resolver)
/// </code>
/// The <c>[Interface]</c> may say <c>Via = entry.conf</c>: the gateway's WireGuard UDP (its <c>ListenPort</c>) then
/// lives on the netstack of that wg-quick config's tunnel, which the gateway starts first (<see cref="Via"/>).
/// Reserved destinations (loopback, private, link-local, ...) are denied unless an <c>Allow</c> rule inside them
/// opens them (<see cref="GatewayPolicy"/>).
/// </summary>
public sealed class GatewayConfig
{
    private GatewayConfig(string wireGuardText, GatewayOptions options, ViaTunnelConfig? via, bool mtuFromVia, int mtu)
    {
        WireGuardText = wireGuardText;
        Options = options;
        Via = via;
        MtuFromVia = mtuFromVia;
        Mtu = mtu;
    }

    /// <summary>
    /// The config without its <c>[Gateway]</c> section (blank lines in its place, so line numbers stay) and without its
    /// <c>Via</c> line (blank, or the picked <c>MTU</c>), for the WireGuard parser.
    /// </summary>
    public string WireGuardText { get; }

    /// <summary>
    /// The tunnel named by <c>[Interface] Via = FILE</c> (relative to the config's folder), or null: the gateway starts
    /// it (and its own <see cref="ViaTunnelConfig.Via"/> chain) first and listens for its peers on that tunnel's
    /// netstack instead of a host socket, so clients reach the gateway through that WireGuard hop only.
    /// </summary>
    public ViaTunnelConfig? Via { get; }

    /// <summary>The config gave no <c>MTU</c> and the gateway tunnel's MTU was picked to fit through <see cref="Via"/>.</summary>
    internal bool MtuFromVia { get; }

    /// <summary>The gateway tunnel's MTU when it has a <see cref="Via"/> (given or picked).</summary>
    internal int Mtu { get; }

    /// <summary>The <c>[Gateway]</c> settings (defaults when the section is absent).</summary>
    public GatewayOptions Options { get; }

    /// <summary>Splits and parses a gateway config text; with <c>Via</c>, reads the Via files too.</summary>
    /// <param name="text">The file's text.</param>
    /// <param name="fileName">Used in error messages (<c>FILE:LINE: ...</c>); a relative <c>Via</c> path is relative to its folder.</param>
    /// <exception cref="FormatException">
    /// The <c>[Gateway]</c> section is invalid (the message names each bad line), or the <c>Via</c> chain is (a loop, a
    /// missing or invalid file, an MTU that does not fit, an endpoint it cannot carry: <c>FILE:LINE: ...</c>).
    /// </exception>
    public static GatewayConfig Parse(string text, string fileName = "config")
    {
        ArgumentNullException.ThrowIfNull(text);
        ArgumentNullException.ThrowIfNull(fileName);
        var options = new GatewayOptions();
        var errors = new List<string>();
        var rest = new StringBuilder(text.Length);
        var inGateway = false;
        var sawGateway = false;
        var lines = text.Split('\n');
        for (var i = 0; i < lines.Length; i++)
        {
            var raw = lines[i].TrimEnd('\r');
            var line = StripComment(raw).Trim();
            var where = $"{fileName}:{i + 1}";
            if (line.StartsWith('[') && line.EndsWith(']'))
            {
                inGateway = line[1..^1].Trim().Equals("Gateway", StringComparison.OrdinalIgnoreCase);
                if (inGateway)
                {
                    if (sawGateway)
                    {
                        errors.Add($"{where}: a second [Gateway] section (put every setting in one)");
                    }

                    sawGateway = true;
                }
            }
            else if (inGateway && line.Length > 0)
            {
                ParseSetting(line, where, options, errors);
            }

            rest.Append(inGateway ? string.Empty : raw);
            if (i < lines.Length - 1)
            {
                rest.Append('\n');
            }
        }

        if (errors.Count > 0)
        {
            throw new FormatException("Invalid [Gateway] section: " + string.Join("; ", errors));
        }

        var wireGuard = rest.ToString();
        if (!HasVia(wireGuard))
        {
            return new GatewayConfig(wireGuard, options, via: null, mtuFromVia: false, mtu: 0);
        }

        var applied = ViaTunnelConfig.Apply(wireGuard, fileName, []);
        return new GatewayConfig(applied.WireGuardText, options, applied.Via, applied.MtuPicked, applied.Mtu);
    }

    // Only a config with a Via line goes through ViaTunnelConfig (which parses the WireGuard part early).
    private static bool HasVia(string text)
    {
        foreach (var raw in text.Split('\n'))
        {
            var line = StripComment(raw).Trim();
            var eq = line.IndexOf('=', StringComparison.Ordinal);
            if (eq > 0 && line[..eq].Trim().Equals("Via", StringComparison.OrdinalIgnoreCase))
            {
                return true;
            }
        }

        return false;
    }

    private static string StripComment(string line)
    {
        var hash = line.IndexOf('#', StringComparison.Ordinal);
        return hash < 0 ? line : line[..hash];
    }

    private static void ParseSetting(string line, string where, GatewayOptions options, List<string> errors)
    {
        var eq = line.IndexOf('=', StringComparison.Ordinal);
        if (eq < 0)
        {
            errors.Add($"{where}: expected 'Key = Value'");
            return;
        }

        var key = line[..eq].Trim();
        var value = line[(eq + 1)..].Trim();
        switch (key.ToLowerInvariant())
        {
            case "allow":
                ParseRules(value, where, options.Allow, errors);
                break;
            case "deny":
                ParseRules(value, where, options.Deny, errors);
                break;
            case "default":
                if (value.Equals("allow", StringComparison.OrdinalIgnoreCase))
                {
                    options.AllowUnlisted = true;
                }
                else if (value.Equals("deny", StringComparison.OrdinalIgnoreCase))
                {
                    options.AllowUnlisted = false;
                }
                else
                {
                    errors.Add($"{where}: Default must be 'allow' or 'deny', not '{value}'");
                }

                break;
            case "maxconnections":
                options.MaxConnections = ParseCount(value, where, key, errors) ?? options.MaxConnections;
                break;
            case "maxconnectionsperpeer":
                options.MaxConnectionsPerPeer = ParseCount(value, where, key, errors) ?? options.MaxConnectionsPerPeer;
                break;
            case "idletimeout":
                options.TcpIdleTimeout = ParseSeconds(value, where, key, errors) ?? options.TcpIdleTimeout;
                break;
            case "udpidletimeout":
                options.UdpIdleTimeout = ParseSeconds(value, where, key, errors) ?? options.UdpIdleTimeout;
                break;
            case "connecttimeout":
                options.ConnectTimeout = ParseSeconds(value, where, key, errors) ?? options.ConnectTimeout;
                break;
            case "dns":
                if (value.ToLowerInvariant() is "on" or "true" or "yes")
                {
                    options.Dns = true;
                }
                else if (value.ToLowerInvariant() is "off" or "false" or "no")
                {
                    options.Dns = false;
                }
                else
                {
                    errors.Add($"{where}: DNS must be 'on' or 'off', not '{value}'");
                }

                break;
            default:
                errors.Add($"{where}: unknown key '{key}' (Allow, Deny, Default, MaxConnections, MaxConnectionsPerPeer, IdleTimeout, UdpIdleTimeout, ConnectTimeout, DNS)");
                break;
        }
    }

    private static void ParseRules(string value, string where, IList<DestinationRule> into, List<string> errors)
    {
        foreach (var item in value.Split(',', StringSplitOptions.TrimEntries | StringSplitOptions.RemoveEmptyEntries))
        {
            if (DestinationRule.TryParse(item, out var rule, out var error))
            {
                into.Add(rule);
            }
            else
            {
                errors.Add($"{where}: {error}");
            }
        }
    }

    private static int? ParseCount(string value, string where, string key, List<string> errors)
    {
        if (int.TryParse(value, NumberStyles.None, CultureInfo.InvariantCulture, out var n) && n >= 1)
        {
            return n;
        }

        errors.Add($"{where}: {key} must be a whole number of at least 1, not '{value}'");
        return null;
    }

    private static TimeSpan? ParseSeconds(string value, string where, string key, List<string> errors)
    {
        if (int.TryParse(value, NumberStyles.None, CultureInfo.InvariantCulture, out var n) && n is >= 1 and <= 86400 * 7)
        {
            return TimeSpan.FromSeconds(n);
        }

        errors.Add($"{where}: {key} must be a number of seconds from 1 to 604800, not '{value}'");
        return null;
    }
}
