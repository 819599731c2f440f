using System.Globalization;
using System.Text;

namespace Sharptun.Device.Config;

/// <summary>
/// Prints a <see cref="WgConfig"/> in wg's format (the <c>wg showconf</c> shape) or wg-quick's. Every setting that
/// is present is printed, so <c>WgConfigParser.TryParse(Print(x))</c> gives back <c>x</c>. Lines end in '\n'.
/// </summary>
/// <remarks>Output contains the private and preshared keys: treat it as secret.</remarks>
public static class WgConfigPrinter
{
    /// <summary>wg's format (wg-quick settings are left out), the shape of <c>wg showconf</c>.</summary>
    public static string PrintWg(WgConfig config)
    {
        ArgumentNullException.ThrowIfNull(config);
        var sb = new StringBuilder();
        sb.Append("[Interface]\n");
        AppendWgInterface(sb, config.Interface);
        AppendPeers(sb, config);
        return sb.ToString();
    }

    /// <summary>wg-quick's format: the wg-quick settings first (as wg-quick's SaveConfig writes them), then wg's.</summary>
    public static string PrintQuick(WgConfig config)
    {
        ArgumentNullException.ThrowIfNull(config);
        var iface = config.Interface;
        var sb = new StringBuilder();
        sb.Append("[Interface]\n");
        if (iface.Addresses.Count > 0)
        {
            sb.Append("Address = ").AppendJoin(", ", iface.Addresses).Append('\n');
        }

        if (iface.Dns.Count > 0)
        {
            sb.Append("DNS = ").AppendJoin(", ", iface.Dns).Append('\n');
        }

        if (iface.Mtu is { } mtu)
        {
            sb.Append("MTU = ").Append(mtu.ToString(CultureInfo.InvariantCulture)).Append('\n');
        }

        if (iface.Table is { } table)
        {
            sb.Append("Table = ").Append(table).Append('\n');
        }

        AppendHooks(sb, "PreUp", iface.PreUp);
        AppendHooks(sb, "PostUp", iface.PostUp);
        AppendHooks(sb, "PreDown", iface.PreDown);
        AppendHooks(sb, "PostDown", iface.PostDown);
        if (iface.SaveConfig is { } save)
        {
            sb.Append("SaveConfig = ").Append(save ? "true" : "false").Append('\n');
        }

        AppendWgInterface(sb, iface);
        AppendPeers(sb, config);
        return sb.ToString();
    }

    private static void AppendWgInterface(StringBuilder sb, WgInterfaceConfig iface)
    {
        if (iface.ListenPort is { } port)
        {
            sb.Append("ListenPort = ").Append(port.ToString(CultureInfo.InvariantCulture)).Append('\n');
        }

        if (iface.FwMark is { } mark)
        {
            sb.Append("FwMark = ").Append(mark == 0 ? "off" : "0x" + mark.ToString("x", CultureInfo.InvariantCulture)).Append('\n');
        }

        if (iface.PrivateKey is { } key)
        {
            sb.Append("PrivateKey = ").Append(key.ToString()).Append('\n');
        }
    }

    private static void AppendPeers(StringBuilder sb, WgConfig config)
    {
        foreach (var peer in config.Peers)
        {
            sb.Append("\n[Peer]\n");
            sb.Append("PublicKey = ").Append(peer.PublicKey.ToString()).Append('\n');
            if (peer.PresharedKey is { } psk)
            {
                sb.Append("PresharedKey = ").Append(psk.ToString()).Append('\n');
            }

            if (peer.AllowedIps.Count > 0)
            {
                sb.Append("AllowedIPs = ").AppendJoin(", ", peer.AllowedIps).Append('\n');
            }

            if (peer.Endpoint is { } endpoint)
            {
                sb.Append("Endpoint = ").Append(endpoint.ToString()).Append('\n');
            }

            if (peer.PersistentKeepalive is { } keepalive)
            {
                sb.Append("PersistentKeepalive = ").Append(keepalive == 0 ? "off" : keepalive.ToString(CultureInfo.InvariantCulture)).Append('\n');
            }
        }
    }

    private static void AppendHooks(StringBuilder sb, string name, EquatableArray<string> commands)
    {
        foreach (var command in commands)
        {
            sb.Append(name).Append(" = ").Append(command).Append('\n');
        }
    }
}
