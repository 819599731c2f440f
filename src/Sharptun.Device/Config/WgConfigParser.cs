using Sharptun.Device.Routing;
using Sharptun.Protocol;
using System.Collections.Immutable;
using System.Globalization;

namespace Sharptun.Device.Config;

/// <summary>
/// Parses the wg(8) configuration format and the wg-quick(8) superset, the way those tools read it:
/// section names and keys are case-insensitive, '#' starts a comment, whitespace around keys and values is
/// ignored and — for the wg keys, as wg itself does — inside values too (<c>AllowedIPs = 10.0.0.0/8, fd00::/64</c>).
/// wg-quick hook commands (PreUp …) keep their inner whitespace. Single-valued keys that repeat: the last wins;
/// AllowedIPs, Address, DNS and the hooks accumulate.
/// </summary>
/// <remarks>
/// All-or-nothing: <see cref="TryParse"/> returns a complete <see cref="WgConfig"/> or every error found, never a
/// partial config. Hostname endpoints are kept as text (no DNS lookups). Pure and thread-safe.
/// </remarks>
public static class WgConfigParser
{
    private enum Section
    {
        None,
        Interface,
        Peer,
        Unknown,
    }

    /// <summary>Parses <paramref name="text"/>; <paramref name="fileName"/> only labels the errors.</summary>
    /// <param name="text">The whole file.</param>
    /// <param name="fileName">Name used in error messages, e.g. <c>wg0.conf</c>.</param>
    /// <param name="config">The config when there are no errors, else null.</param>
    /// <param name="errors">Every error, in line order (empty on success).</param>
    /// <param name="ignoreUnknownSections">Skip sections other than [Interface]/[Peer] (wireproxy's [Socks5] …) instead of failing.</param>
    public static bool TryParse(string text, string fileName, out WgConfig? config, out IReadOnlyList<ConfigError> errors, bool ignoreUnknownSections = false)
    {
        ArgumentNullException.ThrowIfNull(text);
        var state = new State(fileName);
        var section = Section.None;
        var lineNo = 0;
        foreach (var rawLine in text.Split('\n'))
        {
            lineNo++;
            var line = rawLine.AsSpan();
            var hash = line.IndexOf('#');
            if (hash >= 0)
            {
                line = line[..hash];
            }

            line = line.Trim();
            if (line.IsEmpty)
            {
                continue;
            }

            if (line[0] == '[')
            {
                var name = RemoveWhitespace(line);
                state.FinishPeer();
                if (name.Equals("[Interface]", StringComparison.OrdinalIgnoreCase))
                {
                    // wg merges repeated [Interface] sections; so do we (later keys win).
                    section = Section.Interface;
                }
                else if (name.Equals("[Peer]", StringComparison.OrdinalIgnoreCase))
                {
                    section = Section.Peer;
                    state.StartPeer(lineNo);
                }
                else if (ignoreUnknownSections)
                {
                    section = Section.Unknown;
                }
                else
                {
                    state.Error(lineNo, null, $"unknown section {Redaction.Text(name.ToString())}");
                    section = Section.Unknown;
                }

                continue;
            }

            if (section == Section.Unknown)
            {
                continue;
            }

            var eq = line.IndexOf('=');
            if (eq <= 0)
            {
                state.Error(lineNo, null, $"line unrecognized (no key = value): {Redaction.Hidden(line.ToString())}"); // the line may be a key
                continue;
            }

            var key = line[..eq].Trim().ToString();
            var value = line[(eq + 1)..].Trim();
            switch (section)
            {
                case Section.None:
                    state.Error(lineNo, key, "key outside of any section (expected [Interface] or [Peer] first)");
                    break;
                case Section.Interface:
                    state.InterfaceKey(lineNo, key, value);
                    break;
                case Section.Peer:
                    state.PeerKey(lineNo, key, value);
                    break;
            }
        }

        state.FinishPeer();
        errors = state.Errors;
        if (state.Errors.Count > 0)
        {
            state.ClearSecrets();
            config = null;
            return false;
        }

        config = new WgConfig(state.BuildInterface(), state.Peers.ToImmutable());
        return true;
    }

    /// <summary>Parses a file from disk (reads it whole; I/O errors become a single <see cref="ConfigError"/>).</summary>
    public static bool TryParseFile(string path, out WgConfig? config, out IReadOnlyList<ConfigError> errors, bool ignoreUnknownSections = false)
    {
        string text;
        try
        {
            text = File.ReadAllText(path);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException or ArgumentException or NotSupportedException)
        {
            config = null;
            errors = [new ConfigError(Path.GetFileName(path), 0, null, e.Message)];
            return false;
        }

        return TryParse(text, Path.GetFileName(path), out config, out errors, ignoreUnknownSections);
    }

    private static string RemoveWhitespace(ReadOnlySpan<char> s)
    {
        Span<char> buffer = s.Length <= 256 ? stackalloc char[s.Length] : new char[s.Length];
        var n = 0;
        foreach (var c in s)
        {
            if (!char.IsWhiteSpace(c))
            {
                buffer[n++] = c;
            }
        }

        return buffer[..n].ToString();
    }

    private static IEnumerable<string> SplitList(ReadOnlySpan<char> value)
    {
        var items = new List<string>();
        foreach (var range in value.Split(','))
        {
            items.Add(value[range].Trim().ToString());
        }

        return items;
    }

    // wg's parse_fwmark: "off", decimal, or 0x-prefixed hex; at most 32 bits.
    private static bool TryParseFwMark(string value, out uint mark)
    {
        mark = 0;
        if (value.Equals("off", StringComparison.OrdinalIgnoreCase))
        {
            return true;
        }

        if (value.Length == 0 || !char.IsAsciiDigit(value[0]))
        {
            return false;
        }

        if (value.Length > 2 && value[0] == '0' && value[1] is 'x' or 'X')
        {
            return uint.TryParse(value.AsSpan(2), NumberStyles.AllowHexSpecifier, CultureInfo.InvariantCulture, out mark);
        }

        return uint.TryParse(value, NumberStyles.None, CultureInfo.InvariantCulture, out mark);
    }

    private static bool TryParseUInt16(string value, out ushort result) =>
        ushort.TryParse(value, NumberStyles.None, CultureInfo.InvariantCulture, out result);

    private sealed class State(string fileName)
    {
        public readonly List<ConfigError> Errors = [];
        public readonly ImmutableArray<WgPeerConfig>.Builder Peers = ImmutableArray.CreateBuilder<WgPeerConfig>();

        private readonly ImmutableArray<IpPrefix>.Builder _addresses = ImmutableArray.CreateBuilder<IpPrefix>();
        private readonly ImmutableArray<string>.Builder _dns = ImmutableArray.CreateBuilder<string>();
        private readonly ImmutableArray<string>.Builder _preUp = ImmutableArray.CreateBuilder<string>();
        private readonly ImmutableArray<string>.Builder _postUp = ImmutableArray.CreateBuilder<string>();
        private readonly ImmutableArray<string>.Builder _preDown = ImmutableArray.CreateBuilder<string>();
        private readonly ImmutableArray<string>.Builder _postDown = ImmutableArray.CreateBuilder<string>();
        private readonly List<Key> _secrets = [];
        private Key? _privateKey;
        private ushort? _listenPort;
        private uint? _fwMark;
        private int? _mtu;
        private string? _table;
        private bool? _saveConfig;

        private bool _inPeer;
        private int _peerLine;
        private Key? _publicKey;
        private Key? _presharedKey;
        private ImmutableArray<IpPrefix>.Builder _allowedIps = ImmutableArray.CreateBuilder<IpPrefix>();
        private WgEndpoint? _endpoint;
        private ushort? _keepalive;

        public void Error(int line, string? key, string message) =>
            Errors.Add(new ConfigError(fileName, line, key is null ? null : Redaction.Text(key), message)); // "KEY=" may be a bare base64 key

        public void InterfaceKey(int line, string key, ReadOnlySpan<char> rawValue)
        {
            var value = RemoveWhitespace(rawValue);
            switch (key.ToLowerInvariant())
            {
                case "privatekey":
                    if (ParseKey(line, key, value) is { } pk)
                    {
                        _privateKey = pk;
                    }

                    break;
                case "listenport":
                    if (TryParseUInt16(value, out var port))
                    {
                        _listenPort = port;
                    }
                    else
                    {
                        Error(line, key, $"invalid port `{Redaction.Text(value.ToString())}' (must be 0..65535)");
                    }

                    break;
                case "fwmark":
                    if (TryParseFwMark(value, out var mark))
                    {
                        _fwMark = mark;
                    }
                    else
                    {
                        Error(line, key, $"invalid fwmark `{Redaction.Text(value.ToString())}' (must be off, a number or 0x-hex up to 32 bits)");
                    }

                    break;
                case "address":
                    foreach (var item in SplitList(rawValue))
                    {
                        if (IpPrefix.TryParse(item, out var prefix))
                        {
                            _addresses.Add(prefix);
                        }
                        else
                        {
                            Error(line, key, $"invalid address `{Redaction.Text(item.ToString())}'");
                        }
                    }

                    break;
                case "dns":
                    foreach (var item in SplitList(rawValue))
                    {
                        if (item.Length == 0 || item.AsSpan().ContainsAny(" \t"))
                        {
                            Error(line, key, $"invalid DNS entry `{Redaction.Text(item.ToString())}'");
                        }
                        else
                        {
                            _dns.Add(item);
                        }
                    }

                    break;
                case "mtu":
                    if (int.TryParse(value, NumberStyles.None, CultureInfo.InvariantCulture, out var mtu) && mtu is >= 576 and <= 65535)
                    {
                        _mtu = mtu;
                    }
                    else
                    {
                        Error(line, key, $"invalid MTU `{Redaction.Text(value.ToString())}' (must be 576..65535)");
                    }

                    break;
                case "table":
                    if (value.Length == 0)
                    {
                        Error(line, key, "empty value");
                    }
                    else
                    {
                        _table = value;
                    }

                    break;
                case "preup":
                    _preUp.Add(rawValue.ToString());
                    break;
                case "postup":
                    _postUp.Add(rawValue.ToString());
                    break;
                case "predown":
                    _preDown.Add(rawValue.ToString());
                    break;
                case "postdown":
                    _postDown.Add(rawValue.ToString());
                    break;
                case "saveconfig":
                    if (value.Equals("true", StringComparison.OrdinalIgnoreCase))
                    {
                        _saveConfig = true;
                    }
                    else if (value.Equals("false", StringComparison.OrdinalIgnoreCase))
                    {
                        _saveConfig = false;
                    }
                    else
                    {
                        Error(line, key, $"invalid value `{Redaction.Text(value.ToString())}' (must be true or false)");
                    }

                    break;
                default:
                    Error(line, key, "unknown key in [Interface]");
                    break;
            }
        }

        public void StartPeer(int line)
        {
            _inPeer = true;
            _peerLine = line;
            _publicKey = null;
            _presharedKey = null;
            _allowedIps = ImmutableArray.CreateBuilder<IpPrefix>();
            _endpoint = null;
            _keepalive = null;
        }

        public void PeerKey(int line, string key, ReadOnlySpan<char> rawValue)
        {
            var value = RemoveWhitespace(rawValue);
            switch (key.ToLowerInvariant())
            {
                case "publickey":
                    if (ParseKey(line, key, value) is { } pub)
                    {
                        _publicKey = pub;
                    }

                    break;
                case "presharedkey":
                    if (ParseKey(line, key, value) is { } psk)
                    {
                        _presharedKey = psk;
                    }

                    break;
                case "allowedips":
                    if (value.Length == 0)
                    {
                        break;
                    }

                    foreach (var range in value.AsSpan().Split(','))
                    {
                        var item = value.AsSpan()[range];
                        if (IpPrefix.TryParse(item, out var prefix))
                        {
                            _allowedIps.Add(prefix);
                        }
                        else
                        {
                            Error(line, key, $"invalid prefix `{Redaction.Text(item.ToString())}'");
                        }
                    }

                    break;
                case "endpoint":
                    if (WgEndpoint.TryParse(value, out var endpoint))
                    {
                        _endpoint = endpoint;
                    }
                    else
                    {
                        Error(line, key, $"invalid endpoint `{Redaction.Text(value.ToString())}' (must be host:port, a.b.c.d:port or [v6]:port)");
                    }

                    break;
                case "persistentkeepalive":
                    if (value.Equals("off", StringComparison.OrdinalIgnoreCase))
                    {
                        _keepalive = 0;
                    }
                    else if (TryParseUInt16(value, out var seconds))
                    {
                        _keepalive = seconds;
                    }
                    else
                    {
                        Error(line, key, $"invalid persistent keepalive `{Redaction.Text(value.ToString())}' (must be off or 0..65535)");
                    }

                    break;
                default:
                    Error(line, key, "unknown key in [Peer]");
                    break;
            }
        }

        public void FinishPeer()
        {
            if (!_inPeer)
            {
                return;
            }

            _inPeer = false;
            if (_publicKey is not { } pub)
            {
                Error(_peerLine, "PublicKey", "peer has no PublicKey");
                return;
            }

            Peers.Add(new WgPeerConfig
            {
                PublicKey = pub,
                PresharedKey = _presharedKey,
                AllowedIps = _allowedIps.ToImmutable(),
                Endpoint = _endpoint,
                PersistentKeepalive = _keepalive,
            });
        }

        public WgInterfaceConfig BuildInterface() => new()
        {
            PrivateKey = _privateKey,
            ListenPort = _listenPort,
            FwMark = _fwMark,
            Addresses = _addresses.ToImmutable(),
            Dns = _dns.ToImmutable(),
            Mtu = _mtu,
            Table = _table,
            PreUp = _preUp.ToImmutable(),
            PostUp = _postUp.ToImmutable(),
            PreDown = _preDown.ToImmutable(),
            PostDown = _postDown.ToImmutable(),
            SaveConfig = _saveConfig,
        };

        public void ClearSecrets()
        {
            foreach (var key in _secrets)
            {
                key.Clear();
            }
        }

        private Key? ParseKey(int line, string key, string value)
        {
            if (!Key.TryParse(value, out var parsed))
            {
                Error(line, key, "invalid key (must be 32 bytes of base64)");
                return null;
            }

            if (key.Equals("privatekey", StringComparison.OrdinalIgnoreCase) || key.Equals("presharedkey", StringComparison.OrdinalIgnoreCase))
            {
                _secrets.Add(parsed);
            }

            return parsed;
        }
    }
}
