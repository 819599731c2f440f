using Sharptun.Device.Config;
using System.Globalization;
using System.Text;
using System.Text.Json;
using Sharptun.Device;
using Sharptun.Device.Uapi;

namespace Sharptun.Cli.Show;

/// <summary>
/// Prints a device the way <c>wg show</c> does without colour (wg's show.c pretty_print): interface with its
/// public key (derived from the private key), "(hidden)" private key, listening port and fwmark; peers most recent
/// handshake first, each with endpoint, allowed ips, latest handshake ("1 minute, 5 seconds ago"), transfer
/// ("1.20 MiB received, 3.40 KiB sent") and persistent keepalive ("every 25 seconds"). Also a JSON form.
/// </summary>
internal static class ShowFormatter
{
    /// <summary>One interface as text; <paramref name="nowUnixSeconds"/> is the wall clock for "ago".</summary>
    public static string Format(string name, DeviceSnapshot device, long nowUnixSeconds, bool hideKeys = true)
    {
        var sb = new StringBuilder();
        sb.Append("interface: ").Append(name).Append('\n');
        if (device.PrivateKey is { IsZero: false } privateKey)
        {
            using var publicKey = privateKey.DerivePublicKey();
            sb.Append("  public key: ").Append(publicKey.ToString()).Append('\n');
            sb.Append("  private key: ").Append(hideKeys ? "(hidden)" : privateKey.ToString()).Append('\n');
        }

        if (device.ListenPort != 0)
        {
            sb.Append("  listening port: ").Append(device.ListenPort.ToString(CultureInfo.InvariantCulture)).Append('\n');
        }

        if (device.FwMark != 0)
        {
            sb.Append("  fwmark: 0x").Append(device.FwMark.ToString("x", CultureInfo.InvariantCulture)).Append('\n');
        }

        var peers = SortedPeers(device);
        if (peers.Count > 0)
        {
            sb.Append('\n');
        }

        for (var i = 0; i < peers.Count; i++)
        {
            var peer = peers[i];
            sb.Append("peer: ").Append(peer.PublicKey.ToString()).Append('\n');
            if (peer.PresharedKey is { IsZero: false } psk)
            {
                sb.Append("  preshared key: ").Append(hideKeys ? "(hidden)" : psk.ToString()).Append('\n');
            }

            if (peer.Endpoint is { } endpoint)
            {
                sb.Append("  endpoint: ").Append(WgEndpoint.Format(endpoint)).Append('\n');
            }

            sb.Append("  allowed ips: ");
            if (peer.AllowedIps.Count == 0)
            {
                sb.Append("(none)");
            }

            for (var j = 0; j < peer.AllowedIps.Count; j++)
            {
                sb.Append(j == 0 ? string.Empty : ", ").Append(peer.AllowedIps[j].ToString());
            }

            sb.Append('\n');
            var handshakeSeconds = peer.LastHandshakeUnixNanoseconds / 1_000_000_000;
            if (handshakeSeconds != 0)
            {
                sb.Append("  latest handshake: ").Append(Ago(handshakeSeconds, nowUnixSeconds)).Append('\n');
            }

            if (peer.RxBytes != 0 || peer.TxBytes != 0)
            {
                sb.Append("  transfer: ").Append(Bytes(peer.RxBytes)).Append(" received, ").Append(Bytes(peer.TxBytes)).Append(" sent\n");
            }

            if (peer.PersistentKeepaliveInterval != 0)
            {
                sb.Append("  persistent keepalive: every ").Append(PrettyTime(peer.PersistentKeepaliveInterval)).Append('\n');
            }

            if (i + 1 < peers.Count)
            {
                sb.Append('\n');
            }
        }

        return sb.ToString();
    }

    /// <summary>
    /// Interfaces as one JSON document. Never contains a private or preshared key, only whether one is set:
    /// <c>{"interfaces":[{"name","publicKey","hasPrivateKey","listenPort","fwmark","peers":[{"publicKey",
    /// "hasPresharedKey","endpoint","allowedIps":[...],"latestHandshake" (Unix seconds or null),
    /// "rxBytes","txBytes","persistentKeepalive"}]}]}</c>. Hand-written with Utf8JsonWriter (AOT-safe).
    /// </summary>
    public static string FormatJson(IReadOnlyList<(string Name, DeviceSnapshot Device)> interfaces)
    {
        using var buffer = new MemoryStream();
        using (var json = new Utf8JsonWriter(buffer, new JsonWriterOptions { Indented = true }))
        {
            json.WriteStartObject();
            json.WriteStartArray("interfaces");
            foreach (var (name, device) in interfaces)
            {
                json.WriteStartObject();
                json.WriteString("name", name);
                if (device.PrivateKey is { IsZero: false } privateKey)
                {
                    using var publicKey = privateKey.DerivePublicKey();
                    json.WriteString("publicKey", publicKey.ToString());
                    json.WriteBoolean("hasPrivateKey", true);
                }
                else
                {
                    json.WriteNull("publicKey");
                    json.WriteBoolean("hasPrivateKey", false);
                }

                json.WriteNumber("listenPort", device.ListenPort);
                json.WriteNumber("fwmark", device.FwMark);
                json.WriteStartArray("peers");
                foreach (var peer in SortedPeers(device))
                {
                    json.WriteStartObject();
                    json.WriteString("publicKey", peer.PublicKey.ToString());
                    json.WriteBoolean("hasPresharedKey", peer.PresharedKey is { IsZero: false });
                    if (peer.Endpoint is { } endpoint)
                    {
                        json.WriteString("endpoint", WgEndpoint.Format(endpoint));
                    }
                    else
                    {
                        json.WriteNull("endpoint");
                    }

                    json.WriteStartArray("allowedIps");
                    foreach (var prefix in peer.AllowedIps)
                    {
                        json.WriteStringValue(prefix.ToString());
                    }

                    json.WriteEndArray();
                    var handshakeSeconds = peer.LastHandshakeUnixNanoseconds / 1_000_000_000;
                    if (handshakeSeconds != 0)
                    {
                        json.WriteNumber("latestHandshake", handshakeSeconds);
                    }
                    else
                    {
                        json.WriteNull("latestHandshake");
                    }

                    json.WriteNumber("rxBytes", peer.RxBytes);
                    json.WriteNumber("txBytes", peer.TxBytes);
                    json.WriteNumber("persistentKeepalive", peer.PersistentKeepaliveInterval);
                    json.WriteEndObject();
                }

                json.WriteEndArray();
                json.WriteEndObject();
            }

            json.WriteEndArray();
            json.WriteEndObject();
        }

        return Encoding.UTF8.GetString(buffer.GetBuffer(), 0, (int)buffer.Length) + "\n";
    }

    /// <summary>wg's order: most recent handshake first, peers without a handshake last (stable otherwise).</summary>
    public static List<PeerSnapshot> SortedPeers(DeviceSnapshot device)
    {
        var peers = new List<PeerSnapshot>(device.Peers);
        var ordered = peers
            .Select((peer, index) => (peer, index))
            .OrderBy(p => p.peer.LastHandshakeUnixNanoseconds == 0 ? 1 : 0)
            .ThenByDescending(p => p.peer.LastHandshakeUnixNanoseconds)
            .ThenBy(p => p.index)
            .Select(p => p.peer)
            .ToList();
        return ordered;
    }

    /// <summary>wg's bytes(): "123 B", "1.50 KiB", "1.20 MiB", "2.00 GiB", "1.00 TiB".</summary>
    public static string Bytes(ulong b)
    {
        const double K = 1024;
        return b switch
        {
            < 1024UL => b.ToString(CultureInfo.InvariantCulture) + " B",
            < 1024UL * 1024 => (b / K).ToString("F2", CultureInfo.InvariantCulture) + " KiB",
            < 1024UL * 1024 * 1024 => (b / (K * K)).ToString("F2", CultureInfo.InvariantCulture) + " MiB",
            < 1024UL * 1024 * 1024 * 1024 => (b / (K * K * K)).ToString("F2", CultureInfo.InvariantCulture) + " GiB",
            _ => (b / (K * K * K) / K).ToString("F2", CultureInfo.InvariantCulture) + " TiB",
        };
    }

    /// <summary>wg's ago(): "Now", "1 minute, 5 seconds ago", or the clock-went-backwards warning.</summary>
    public static string Ago(long thenUnixSeconds, long nowUnixSeconds)
    {
        if (nowUnixSeconds == thenUnixSeconds)
        {
            return "Now";
        }

        if (nowUnixSeconds < thenUnixSeconds)
        {
            return "(System clock wound backward; connection problems may ensue.)";
        }

        return PrettyTime((ulong)(nowUnixSeconds - thenUnixSeconds)) + " ago";
    }

    /// <summary>wg's pretty_time(): "1 year, 2 days, 3 hours, 1 minute, 5 seconds", zero parts omitted.</summary>
    public static string PrettyTime(ulong left)
    {
        var years = left / (365 * 24 * 60 * 60);
        left %= 365 * 24 * 60 * 60;
        var days = left / (24 * 60 * 60);
        left %= 24 * 60 * 60;
        var hours = left / (60 * 60);
        left %= 60 * 60;
        var minutes = left / 60;
        var seconds = left % 60;

        var sb = new StringBuilder();
        Part(sb, years, "year");
        Part(sb, days, "day");
        Part(sb, hours, "hour");
        Part(sb, minutes, "minute");
        Part(sb, seconds, "second");
        return sb.ToString();

        static void Part(StringBuilder sb, ulong value, string unit)
        {
            if (value == 0)
            {
                return;
            }

            sb.Append(sb.Length > 0 ? ", " : string.Empty).Append(value.ToString(CultureInfo.InvariantCulture)).Append(' ').Append(unit);
            if (value != 1)
            {
                sb.Append('s');
            }
        }
    }
}
