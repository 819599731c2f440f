using System.Globalization;
using System.Text;
using Sharptun.Device.Config;

namespace Sharptun.Device.Uapi;

/// <summary>
/// Writes UAPI text: <c>get=1</c> replies from a <see cref="DeviceSnapshot"/> (the lines and order wireguard-go
/// writes), <c>set=1</c> requests from a <see cref="UapiChangeSet"/> (the order the wg tool writes), and the
/// <c>errno=N</c> trailer. Lines end in '\n'. Pure and thread-safe; the output holds secrets.
/// </summary>
public static class UapiFormatter
{
    private const string ZeroKeyHex = "0000000000000000000000000000000000000000000000000000000000000000";

    /// <summary>The complete reply to <c>get=1</c>: <see cref="FormatGet"/> followed by <c>errno=0</c> and a blank line.</summary>
    public static string FormatGetResponse(DeviceSnapshot snapshot) => FormatGet(snapshot) + FormatErrno(UapiErrno.None);

    /// <summary>The reply trailer <c>errno=N\n\n</c>.</summary>
    public static string FormatErrno(int errno) => "errno=" + errno.ToString(CultureInfo.InvariantCulture) + "\n\n";

    /// <summary>
    /// The key=value lines of a get reply: private_key, listen_port and fwmark only when set (non-zero); then per
    /// peer public_key, preshared_key (zeros when none), protocol_version=1, endpoint when known,
    /// last_handshake_time_sec/nsec, tx_bytes, rx_bytes, persistent_keepalive_interval, allowed_ip lines.
    /// </summary>
    public static string FormatGet(DeviceSnapshot snapshot)
    {
        ArgumentNullException.ThrowIfNull(snapshot);
        var sb = new StringBuilder();
        if (snapshot.PrivateKey is { IsZero: false } privateKey)
        {
            Line(sb, "private_key", privateKey.ToHex());
        }

        if (snapshot.ListenPort != 0)
        {
            Line(sb, "listen_port", snapshot.ListenPort);
        }

        if (snapshot.FwMark != 0)
        {
            Line(sb, "fwmark", snapshot.FwMark);
        }

        foreach (var peer in snapshot.Peers)
        {
            Line(sb, "public_key", peer.PublicKey.ToHex());
            Line(sb, "preshared_key", peer.PresharedKey is { IsZero: false } psk ? psk.ToHex() : ZeroKeyHex);
            Line(sb, "protocol_version", 1);
            if (peer.Endpoint is { } endpoint)
            {
                Line(sb, "endpoint", WgEndpoint.Format(endpoint));
            }

            Line(sb, "last_handshake_time_sec", peer.LastHandshakeUnixNanoseconds / 1_000_000_000);
            Line(sb, "last_handshake_time_nsec", peer.LastHandshakeUnixNanoseconds % 1_000_000_000);
            Line(sb, "tx_bytes", peer.TxBytes);
            Line(sb, "rx_bytes", peer.RxBytes);
            Line(sb, "persistent_keepalive_interval", peer.PersistentKeepaliveInterval);
            foreach (var prefix in peer.AllowedIps)
            {
                Line(sb, "allowed_ip", prefix.ToString());
            }
        }

        return sb.ToString();
    }

    /// <summary>
    /// The body of a <c>set=1</c> request for <paramref name="changes"/> (without the <c>set=1</c> line and the
    /// terminating blank line), so that <c>UapiParser.TryParseSet(FormatSet(x))</c> gives back <c>x</c>.
    /// </summary>
    public static string FormatSet(UapiChangeSet changes)
    {
        ArgumentNullException.ThrowIfNull(changes);
        var sb = new StringBuilder();
        if (changes.PrivateKey is { } privateKey)
        {
            Line(sb, "private_key", privateKey.ToHex());
        }

        if (changes.ListenPort is { } port)
        {
            Line(sb, "listen_port", port);
        }

        if (changes.FwMark is { } mark)
        {
            Line(sb, "fwmark", mark);
        }

        if (changes.ReplacePeers)
        {
            Line(sb, "replace_peers", "true");
        }

        foreach (var peer in changes.Peers)
        {
            Line(sb, "public_key", peer.PublicKey.ToHex());
            if (peer.UpdateOnly)
            {
                Line(sb, "update_only", "true");
            }

            if (peer.Remove)
            {
                Line(sb, "remove", "true");
            }

            if (peer.PresharedKey is { } psk)
            {
                Line(sb, "preshared_key", psk.ToHex());
            }

            if (peer.Endpoint is { } endpoint)
            {
                Line(sb, "endpoint", WgEndpoint.Format(endpoint));
            }

            if (peer.PersistentKeepaliveInterval is { } keepalive)
            {
                Line(sb, "persistent_keepalive_interval", keepalive);
            }

            if (peer.ReplaceAllowedIps)
            {
                Line(sb, "replace_allowed_ips", "true");
            }

            foreach (var prefix in peer.AllowedIps)
            {
                Line(sb, "allowed_ip", prefix.ToString());
            }
        }

        return sb.ToString();
    }

    private static void Line(StringBuilder sb, string key, string value) => sb.Append(key).Append('=').Append(value).Append('\n');

    private static void Line(StringBuilder sb, string key, long value) => Line(sb, key, value.ToString(CultureInfo.InvariantCulture));

    private static void Line(StringBuilder sb, string key, ulong value) => Line(sb, key, value.ToString(CultureInfo.InvariantCulture));
}
