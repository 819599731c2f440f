using Sharptun.Device.Routing;
using Sharptun.Protocol;
using System.Collections.Immutable;
using System.Globalization;
using System.Net;
using Sharptun.Device.Config;

namespace Sharptun.Device.Uapi;

/// <summary>
/// Sans-I/O parser for the cross-platform configuration protocol (wireguard.com/xplatform), with wireguard-go's
/// rules (device/uapi.go): keys are lowercase and case-sensitive, keys and hashes are hex, unknown keys and bad
/// values are <see cref="UapiErrno.Invalid"/>, a line without '=' is <see cref="UapiErrno.Protocol"/>, a blank line
/// ends the request.
/// </summary>
/// <remarks>
/// Unlike wireguard-go, which applies each line as it reads it (so a bad line leaves the earlier ones applied),
/// parsing is all-or-nothing: a request with any bad line produces no change set. Pure and thread-safe.
/// </remarks>
public static class UapiParser
{
    /// <summary>
    /// Parses the body of a <c>set=1</c> request: the <c>key=value</c> lines after the <c>set=1</c> line, up to the
    /// first blank line (or the end of <paramref name="body"/>). A trailing '\r' on a line is ignored.
    /// </summary>
    /// <returns>True with a change set, or false with the error to reply with (and no change set).</returns>
    public static bool TryParseSet(string body, out UapiChangeSet? changes, out UapiError? error)
    {
        ArgumentNullException.ThrowIfNull(body);
        changes = null;
        error = null;

        Key? privateKey = null;
        ushort? listenPort = null;
        uint? fwMark = null;
        var replacePeers = false;
        var peers = ImmutableArray.CreateBuilder<UapiPeerChange>();
        PeerBuilder? peer = null;
        var secrets = new List<Key>();

        foreach (var rawLine in body.Split('\n'))
        {
            var line = rawLine.EndsWith('\r') ? rawLine[..^1] : rawLine;
            if (line.Length == 0)
            {
                break; // a blank line terminates the operation
            }

            var eq = line.IndexOf('=');
            if (eq < 0)
            {
                error = new UapiError(UapiErrno.Protocol, $"failed to parse line {Redaction.Hidden(line)}: no '='"); // the line may be a key
                break;
            }

            var key = line[..eq];
            var value = line[(eq + 1)..];
            if (key == "public_key")
            {
                if (peer is not null)
                {
                    peers.Add(peer.Build());
                }

                if (!Key.TryParseHex(value, out var pub))
                {
                    error = Invalid($"failed to get peer by public key: invalid hex key {Redaction.Hidden(value)}");
                    break;
                }

                peer = new PeerBuilder(pub);
                continue;
            }

            error = peer is null
                ? DeviceLine(key, value, ref privateKey, ref listenPort, ref fwMark, ref replacePeers, secrets)
                : peer.Line(key, value, secrets);
            if (error is not null)
            {
                break;
            }
        }

        if (error is not null)
        {
            foreach (var secret in secrets)
            {
                secret.Clear();
            }

            return false;
        }

        if (peer is not null)
        {
            peers.Add(peer.Build());
        }

        changes = new UapiChangeSet
        {
            PrivateKey = privateKey,
            ListenPort = listenPort,
            FwMark = fwMark,
            ReplacePeers = replacePeers,
            Peers = peers.ToImmutable(),
        };
        return true;
    }

    /// <summary>
    /// Parses a <c>get=1</c> reply (the lines up to <c>errno=N</c> or a blank line) back into a snapshot — for a
    /// client such as <c>sharptun show</c> talking to any UAPI implementation. Unknown keys are ignored (newer
    /// implementations add keys); a non-zero errno or a malformed value is an error.
    /// </summary>
    public static bool TryParseGet(string reply, out DeviceSnapshot? snapshot, out UapiError? error)
    {
        ArgumentNullException.ThrowIfNull(reply);
        snapshot = null;
        error = null;
        var device = new DeviceSnapshot();
        var peers = ImmutableArray.CreateBuilder<PeerSnapshot>();
        PeerSnapshot? peer = null;
        List<IpPrefix>? allowed = null;

        void FlushPeer()
        {
            if (peer is not null)
            {
                peers.Add(peer with { AllowedIps = allowed!.ToImmutableArray() });
            }
        }

        foreach (var rawLine in reply.Split('\n'))
        {
            var line = rawLine.EndsWith('\r') ? rawLine[..^1] : rawLine;
            if (line.Length == 0)
            {
                break;
            }

            var eq = line.IndexOf('=');
            if (eq < 0)
            {
                error = new UapiError(UapiErrno.Protocol, $"failed to parse line {Redaction.Hidden(line)}: no '='");
                return false;
            }

            var key = line[..eq];
            var value = line[(eq + 1)..];
            var ok = true;
            switch (key)
            {
                case "errno":
                    ok = int.TryParse(value, NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture, out var errno);
                    if (ok && errno != 0)
                    {
                        error = new UapiError(errno, "the device reported an error");
                        return false;
                    }

                    break;
                case "public_key":
                    FlushPeer();
                    ok = Key.TryParseHex(value, out var pub);
                    peer = new PeerSnapshot { PublicKey = pub };
                    allowed = [];
                    break;
                case "private_key" when peer is null:
                    ok = Key.TryParseHex(value, out var priv);
                    device = device with { PrivateKey = priv };
                    break;
                case "listen_port" when peer is null:
                    ok = ushort.TryParse(value, NumberStyles.None, CultureInfo.InvariantCulture, out var port);
                    device = device with { ListenPort = port };
                    break;
                case "fwmark" when peer is null:
                    ok = uint.TryParse(value, NumberStyles.None, CultureInfo.InvariantCulture, out var mark);
                    device = device with { FwMark = mark };
                    break;
                case "preshared_key" when peer is not null:
                    ok = Key.TryParseHex(value, out var psk);
                    peer = peer with { PresharedKey = psk.IsZero ? null : psk };
                    break;
                case "endpoint" when peer is not null:
                    ok = WgEndpoint.TryParseIPEndPoint(value, out var endpoint);
                    peer = peer with { Endpoint = endpoint };
                    break;
                case "last_handshake_time_sec" when peer is not null:
                    ok = long.TryParse(value, NumberStyles.None, CultureInfo.InvariantCulture, out var sec);
                    peer = peer with { LastHandshakeUnixNanoseconds = (sec * 1_000_000_000) + (peer.LastHandshakeUnixNanoseconds % 1_000_000_000) };
                    break;
                case "last_handshake_time_nsec" when peer is not null:
                    ok = long.TryParse(value, NumberStyles.None, CultureInfo.InvariantCulture, out var nsec) && nsec < 1_000_000_000;
                    peer = peer with { LastHandshakeUnixNanoseconds = (peer.LastHandshakeUnixNanoseconds / 1_000_000_000 * 1_000_000_000) + nsec };
                    break;
                case "tx_bytes" when peer is not null:
                    ok = ulong.TryParse(value, NumberStyles.None, CultureInfo.InvariantCulture, out var tx);
                    peer = peer with { TxBytes = tx };
                    break;
                case "rx_bytes" when peer is not null:
                    ok = ulong.TryParse(value, NumberStyles.None, CultureInfo.InvariantCulture, out var rx);
                    peer = peer with { RxBytes = rx };
                    break;
                case "persistent_keepalive_interval" when peer is not null:
                    ok = ushort.TryParse(value, NumberStyles.None, CultureInfo.InvariantCulture, out var pka);
                    peer = peer with { PersistentKeepaliveInterval = pka };
                    break;
                case "allowed_ip" when peer is not null:
                    ok = IpPrefix.TryParse(value, out var prefix);
                    allowed!.Add(prefix);
                    break;
                default:
                    break; // protocol_version and keys from newer implementations
            }

            if (!ok)
            {
                error = Invalid(key.EndsWith("_key", StringComparison.Ordinal)
                    ? $"invalid value for {Redaction.Text(key)}: {Redaction.Hidden(value)}"
                    : $"invalid value for {Redaction.Text(key)}: \"{Redaction.Text(value)}\"");
                return false;
            }
        }

        FlushPeer();
        snapshot = device with { Peers = peers.ToImmutable() };
        return true;
    }

    private static UapiError Invalid(string message) => new(UapiErrno.Invalid, message);

    private static UapiError? DeviceLine(string key, string value, ref Key? privateKey, ref ushort? listenPort, ref uint? fwMark, ref bool replacePeers, List<Key> secrets)
    {
        switch (key)
        {
            case "private_key":
                if (!Key.TryParseHex(value, out var sk))
                {
                    return Invalid($"failed to set private_key: invalid hex key {Redaction.Hidden(value)}");
                }

                privateKey = sk.Clamped(); // wireguard-go clamps on set, so a get returns the clamped key
                sk.Clear();
                secrets.Add(privateKey.Value);
                return null;
            case "listen_port":
                if (!TryParseUInt(value, ushort.MaxValue, out var port))
                {
                    return Invalid($"failed to parse listen_port: \"{Redaction.Text(value)}\"");
                }

                listenPort = (ushort)port;
                return null;
            case "fwmark":
                if (!TryParseUInt(value, uint.MaxValue, out var mark))
                {
                    return Invalid($"invalid fwmark: \"{Redaction.Text(value)}\"");
                }

                fwMark = (uint)mark;
                return null;
            case "replace_peers":
                if (value != "true")
                {
                    return Invalid($"failed to set replace_peers, invalid value: {Redaction.Text(value)}");
                }

                replacePeers = true;
                return null;
            default:
                return Invalid($"invalid UAPI device key: {Redaction.Text(key)}");
        }
    }

    // Go's strconv.ParseUint(value, 10, bits): one or more ASCII digits (leading zeros allowed), no sign, no spaces.
    private static bool TryParseUInt(string value, ulong max, out ulong result)
    {
        result = 0;
        if (value.Length == 0)
        {
            return false;
        }

        foreach (var c in value)
        {
            if (!char.IsAsciiDigit(c))
            {
                return false;
            }

            result = (result * 10) + (ulong)(c - '0');
            if (result > max)
            {
                return false;
            }
        }

        return true;
    }

    private sealed class PeerBuilder(Key publicKey)
    {
        private readonly ImmutableArray<IpPrefix>.Builder _allowedIps = ImmutableArray.CreateBuilder<IpPrefix>();
        private bool _remove;
        private bool _updateOnly;
        private Key? _presharedKey;
        private IPEndPoint? _endpoint;
        private ushort? _keepalive;
        private bool _replaceAllowedIps;

        public UapiError? Line(string key, string value, List<Key> secrets)
        {
            switch (key)
            {
                case "update_only":
                    if (value != "true")
                    {
                        return Invalid($"failed to set update only, invalid value: {Redaction.Text(value)}");
                    }

                    _updateOnly = true;
                    return null;
                case "remove":
                    if (value != "true")
                    {
                        return Invalid($"failed to set remove, invalid value: {Redaction.Text(value)}");
                    }

                    _remove = true;
                    return null;
                case "preshared_key":
                    if (!Key.TryParseHex(value, out var psk))
                    {
                        return Invalid($"failed to set preshared key: invalid hex key {Redaction.Hidden(value)}");
                    }

                    secrets.Add(psk);
                    _presharedKey = psk;
                    return null;
                case "endpoint":
                    if (!WgEndpoint.TryParseIPEndPoint(value, out var endpoint))
                    {
                        return Invalid($"failed to set endpoint {Redaction.Text(value)}");
                    }

                    _endpoint = endpoint;
                    return null;
                case "persistent_keepalive_interval":
                    if (!TryParseUInt(value, ushort.MaxValue, out var secs))
                    {
                        return Invalid($"failed to set persistent keepalive interval: \"{Redaction.Text(value)}\"");
                    }

                    _keepalive = (ushort)secs;
                    return null;
                case "replace_allowed_ips":
                    if (value != "true")
                    {
                        return Invalid($"failed to replace allowedips, invalid value: {Redaction.Text(value)}");
                    }

                    // Prefixes added earlier in this section are dropped by the replace, as in wireguard-go.
                    _allowedIps.Clear();
                    _replaceAllowedIps = true;
                    return null;
                case "allowed_ip":
                    if (!IpPrefix.TryParseStrict(value, out var prefix))
                    {
                        return Invalid($"failed to set allowed ip: \"{Redaction.Text(value)}\"");
                    }

                    _allowedIps.Add(prefix);
                    return null;
                case "protocol_version":
                    return value == "1" ? null : Invalid($"invalid protocol version: {Redaction.Text(value)}");
                default:
                    return Invalid($"invalid UAPI peer key: {Redaction.Text(key)}");
            }
        }

        public UapiPeerChange Build() => new()
        {
            PublicKey = publicKey,
            Remove = _remove,
            UpdateOnly = _updateOnly,
            PresharedKey = _presharedKey,
            Endpoint = _endpoint,
            PersistentKeepaliveInterval = _keepalive,
            ReplaceAllowedIps = _replaceAllowedIps,
            AllowedIps = _allowedIps.ToImmutable(),
        };
    }
}
