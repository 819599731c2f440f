using System.Globalization;
using System.Net;
using System.Text;
using Sharptun.Hosting;

namespace Sharptun.Proxy.Config;

/// <summary>
/// A <c>sharptun proxy</c> config: wireproxy's format, read as wireproxy reads it. The WireGuard part is either a
/// root <c>WGConfig = FILE</c> (a wg-quick file, read with the same reader; a relative path is relative to the main
/// config's folder) or inline <c>[Interface]</c> and <c>[Peer]</c> sections; <c>[Resolve] ResolveStrategy</c> picks
/// the address family names resolve to; every other section is a front-end (<c>[Socks5]</c>, <c>[http]</c>, ...)
/// kept for <see cref="ProxyServiceCatalog"/>, which must know its name.
/// </summary>
/// <remarks>
/// Unknown sections and keys are errors naming file and line. wg-quick's host settings (Table, PreUp, PostUp,
/// PreDown, PostDown, SaveConfig, FwMark) mean nothing to a proxy without an interface: they are accepted, so a
/// wg-quick file works unchanged as <c>WGConfig</c>, and listed in <see cref="IgnoredKeys"/>.
/// </remarks>
public sealed class ProxyConfig
{
    private static readonly string[] InterfaceKeys = ["PrivateKey", "Address", "DNS", "MTU", "ListenPort", "CheckAlive", "CheckAliveInterval", "Via"];
    private static readonly string[] WgQuickHostKeys = ["Table", "PreUp", "PostUp", "PreDown", "PostDown", "SaveConfig", "FwMark"];
    private const int MinimumMtu = ViaRules.MinimumMtu;
    private static readonly string[] PeerKeys = ["PublicKey", "PresharedKey", "Endpoint", "AllowedIPs", "PersistentKeepalive"];

    private ProxyConfig(string path, string wireGuardPath, ProxyInterface @interface, IReadOnlyList<ProxyPeer> peers,
        ResolveStrategy strategy, IReadOnlyList<ConfigSection> services, IReadOnlyList<ConfigEntry> ignored, ViaHop? via = null)
    {
        Via = via?.Config;
        ViaLine = via?.Line ?? 0;
        MtuFromVia = via?.MtuPicked ?? false;
        Path = path;
        WireGuardPath = wireGuardPath;
        Interface = @interface;
        Peers = peers;
        ResolveStrategy = strategy;
        Services = services;
        IgnoredKeys = ignored;
    }

    /// <summary>The main config file's path as given.</summary>
    public string Path { get; }

    /// <summary>The file the <c>[Interface]</c> and <c>[Peer]</c> sections came from (<see cref="Path"/> or the <c>WGConfig</c> file).</summary>
    public string WireGuardPath { get; }

    /// <summary>The <c>[Interface]</c> section.</summary>
    public ProxyInterface Interface { get; }

    /// <summary>The <c>[Peer]</c> sections in file order.</summary>
    public IReadOnlyList<ProxyPeer> Peers { get; }

    /// <summary><c>[Resolve] ResolveStrategy</c> (default <see cref="Proxy.ResolveStrategy.Auto"/>).</summary>
    public ResolveStrategy ResolveStrategy { get; }

    /// <summary>The front-end sections in file order (repeated sections stay separate), for <see cref="ProxyServiceCatalog"/>.</summary>
    public IReadOnlyList<ConfigSection> Services { get; }

    /// <summary>wg-quick host settings found and ignored (the host logs a warning for each).</summary>
    public IReadOnlyList<ConfigEntry> IgnoredKeys { get; }

    /// <summary>
    /// The config that <c>[Interface] Via = FILE</c> names (a wg-quick file, relative to the file that names it), or
    /// <see langword="null"/>: its tunnel is started first and carries this tunnel's WireGuard UDP (multihop in one
    /// process, <see cref="WireGuardTunnel.CreateDatagramBindFactory"/>). It has no front-ends; it may name a
    /// <see cref="Via"/> of its own (a chain; a loop is a config error).
    /// </summary>
    public ProxyConfig? Via { get; }

    /// <summary>The line of the <c>Via</c> key in <see cref="WireGuardPath"/> (0 without one).</summary>
    internal int ViaLine { get; }

    /// <summary>The config gave no <c>MTU</c> and the interface's MTU was picked to fit through <see cref="Via"/>.</summary>
    internal bool MtuFromVia { get; }

    /// <summary>
    /// Server mode (wireproxy's term): the interface has a <c>ListenPort</c> and some peer has no <c>Endpoint</c>, so
    /// that peer must reach us first.
    /// </summary>
    public bool IsServerMode => Interface.ListenPort is not null && Peers.Any(p => p.EndpointHost is null);

    /// <summary>Reads the config at <paramref name="path"/> (and its <c>WGConfig</c> file, if any).</summary>
    /// <param name="path">The main config file.</param>
    /// <param name="environment">Looks up <c>$NAME</c> values (<see langword="null"/>: the process environment).</param>
    /// <exception cref="ProxyConfigException">A file cannot be read or is wrong; the message names file and line.</exception>
    public static ProxyConfig Load(string path, Func<string, string?>? environment = null)
    {
        ArgumentException.ThrowIfNullOrEmpty(path);
        return Parse(ReadFile(path, path, 0), path, environment);
    }

    /// <summary>Reads a config from <paramref name="text"/>; a relative <c>WGConfig</c> is looked up beside <paramref name="path"/>.</summary>
    /// <param name="text">The main config's contents.</param>
    /// <param name="path">Its path, for errors and for a relative <c>WGConfig</c>.</param>
    /// <param name="environment">Looks up <c>$NAME</c> values (<see langword="null"/>: the process environment).</param>
    /// <exception cref="ProxyConfigException">The config is wrong; the message names file and line.</exception>
    public static ProxyConfig Parse(string text, string path, Func<string, string?>? environment = null)
    {
        ArgumentNullException.ThrowIfNull(text);
        ArgumentException.ThrowIfNullOrEmpty(path);
        var main = ConfigFile.Parse(text, path, environment);
        main.Root.RejectUnknownKeys("WGConfig");

        var wireGuard = main;
        if (main.Root.Find("WGConfig") is { } wgEntry)
        {
            if (wgEntry.Value.Length == 0)
            {
                throw main.Root.Error(wgEntry.Line, "WGConfig = needs a file name");
            }

            if (main.Sections.FirstOrDefault(IsWireGuardSection) is { } inline)
            {
                throw inline.Error(inline.Line, $"[{inline.Name}] is given inline and WGConfig (line {wgEntry.Line}) names a WireGuard config too: use one of them");
            }

            var wgPath = System.IO.Path.IsPathRooted(wgEntry.Value)
                ? wgEntry.Value
                : System.IO.Path.Combine(System.IO.Path.GetDirectoryName(System.IO.Path.GetFullPath(path)) ?? ".", wgEntry.Value);
            wireGuard = ConfigFile.Parse(ReadFile(wgPath, path, wgEntry.Line, "WGConfig"), wgPath, environment);
            RequireWireGuardOnly(wireGuard);
        }

        var ignored = new List<ConfigEntry>();
        var (@interface, peers, via) = ParseWireGuard(wireGuard, main == wireGuard
            ? "no [Interface] section and no WGConfig = line: the WireGuard part of the config is missing"
            : "no [Interface] section", ignored, [], environment);

        var strategy = ResolveStrategy.Auto;
        var services = new List<ConfigSection>();
        foreach (var section in main.Sections)
        {
            if (IsWireGuardSection(section))
            {
                continue;
            }

            if (string.Equals(section.Name, "Resolve", StringComparison.OrdinalIgnoreCase))
            {
                section.RejectUnknownKeys("ResolveStrategy");
                if (section.Find("ResolveStrategy") is { } s)
                {
                    strategy = s.Value.ToLowerInvariant() switch
                    {
                        "auto" or "" => ResolveStrategy.Auto,
                        "ipv4" => ResolveStrategy.Ipv4,
                        "ipv6" => ResolveStrategy.Ipv6,
                        _ => throw section.Error(s.Line, $"ResolveStrategy must be auto, ipv4 or ipv6, not '{s.Value}'"),
                    };
                }

                continue;
            }

            if (!ProxyServiceCatalog.IsRegistered(section.Name))
            {
                throw ProxyServiceCatalog.UnknownSection(section);
            }

            services.Add(section);
        }

        return new ProxyConfig(path, wireGuard.Path, @interface, peers, strategy, services, ignored, via);
    }

    /// <summary>
    /// The WireGuard part as a wg-quick config text, the form <see cref="WireGuardTunnel.StartAsync(string, WireGuardTunnelOptions?, CancellationToken)"/>
    /// takes (endpoint names stay names; the tunnel resolves them when it starts).
    /// </summary>
    public string ToWgQuickText()
    {
        var text = new StringBuilder();
        var i = Interface;
        text.Append("[Interface]\nPrivateKey = ").Append(i.PrivateKey).Append('\n');
        if (i.Addresses.Count > 0)
        {
            text.Append("Address = ").AppendJoin(", ", i.Addresses).Append('\n');
        }

        if (i.Dns.Count > 0)
        {
            text.Append("DNS = ").AppendJoin(", ", i.Dns).Append('\n');
        }

        text.Append(CultureInfo.InvariantCulture, $"MTU = {i.Mtu}\n");
        if (i.ListenPort is { } port)
        {
            text.Append(CultureInfo.InvariantCulture, $"ListenPort = {port}\n");
        }

        foreach (var p in Peers)
        {
            text.Append("\n[Peer]\nPublicKey = ").Append(p.PublicKey).Append('\n');
            if (p.PresharedKey is not null)
            {
                text.Append("PresharedKey = ").Append(p.PresharedKey).Append('\n');
            }

            if (p.Endpoint is not null)
            {
                text.Append("Endpoint = ").Append(p.Endpoint).Append('\n');
            }

            if (p.AllowedIPs.Count > 0)
            {
                text.Append("AllowedIPs = ").AppendJoin(", ", p.AllowedIPs).Append('\n');
            }

            if (p.PersistentKeepalive > 0)
            {
                text.Append(CultureInfo.InvariantCulture, $"PersistentKeepalive = {p.PersistentKeepalive}\n");
            }
        }

        return text.ToString();
    }

    private static bool IsWireGuardSection(ConfigSection section) =>
        string.Equals(section.Name, "Interface", StringComparison.OrdinalIgnoreCase)
        || string.Equals(section.Name, "Peer", StringComparison.OrdinalIgnoreCase);

    // A WGConfig or Via file: [Interface] and [Peer] sections only.
    private static void RequireWireGuardOnly(ConfigFile wireGuard)
    {
        if (wireGuard.Root.Entries.Count > 0)
        {
            var entry = wireGuard.Root.Entries[0];
            throw wireGuard.Root.Error(entry.Line, $"'{entry.Key}' is outside any section");
        }

        if (wireGuard.Sections.FirstOrDefault(s => !IsWireGuardSection(s)) is { } other)
        {
            throw other.Error(other.Line, $"unknown section [{other.Name}] in a WireGuard config (known: [Interface], [Peer])");
        }
    }

    // The [Interface] and [Peer] sections of one file, and the chain of Via files below it. `chain` holds the full
    // paths of the files that led here (a Via naming one of them is a loop).
    private static (ProxyInterface Interface, List<ProxyPeer> Peers, ViaHop? Via) ParseWireGuard(
        ConfigFile wireGuard, string noInterface, List<ConfigEntry> ignored, List<string> chain, Func<string, string?>? environment)
    {
        var interfaces = wireGuard.Named("Interface").ToList();
        if (interfaces.Count == 0)
        {
            throw new ProxyConfigException(wireGuard.Path, 0, noInterface);
        }

        if (interfaces.Count > 1)
        {
            throw interfaces[1].Error(interfaces[1].Line, $"a second [Interface] section (the first is at line {interfaces[0].Line})");
        }

        var section = interfaces[0];
        var @interface = ParseInterface(section, ignored);
        var peers = wireGuard.Named("Peer").Select(ParsePeer).ToList();
        if (section.Find("Via") is not { } viaEntry)
        {
            return (@interface, peers, null);
        }

        var via = LoadVia(section, viaEntry, [.. chain, System.IO.Path.GetFullPath(wireGuard.Path)], environment);
        var picked = section.Find("MTU") is null;
        if (picked)
        {
            var mtu = ViaRules.PickMtu(via.Interface.Mtu, viaEntry.Value, out var error) ?? throw section.Error(viaEntry.Line, error!);
            @interface = @interface.WithMtu(mtu);
        }
        else if (ViaRules.MtuError(@interface.Mtu, via.Interface.Mtu, ViaOverhead(peers, via), viaEntry.Value) is { } error)
        {
            throw section.Error(section.Find("MTU")!.Value.Line, error);
        }

        var viaAllowed = via.Peers.SelectMany(p => p.AllowedIPs).Select(a => (a.Address, a.PrefixLength)).ToList();
        foreach (var peer in peers)
        {
            if (peer.EndpointHost is { } host && ViaRules.EndpointError(peer.Endpoint!, host, viaAllowed, viaEntry.Value) is { } error)
            {
                throw new ProxyConfigException(peer.File, peer.Line, error);
            }
        }

        return (@interface, peers, new ViaHop(via, viaEntry.Line, picked));
    }

    private static ProxyConfig LoadVia(ConfigSection section, ConfigEntry viaEntry, List<string> chain, Func<string, string?>? environment)
    {
        if (viaEntry.Value.Length == 0)
        {
            throw section.Error(viaEntry.Line, "Via = needs a file name (a wg-quick config whose tunnel carries this one)");
        }

        var viaPath = ViaRules.ResolvePath(section.File, viaEntry.Value);
        if (ViaRules.LoopError(chain, System.IO.Path.GetFullPath(viaPath), viaEntry.Value) is { } loop)
        {
            throw section.Error(viaEntry.Line, loop);
        }

        var file = ConfigFile.Parse(ReadFile(viaPath, section.File, viaEntry.Line, "Via"), viaPath, environment);
        RequireWireGuardOnly(file);
        var ignored = new List<ConfigEntry>();
        var (@interface, peers, via) = ParseWireGuard(file, "no [Interface] section", ignored, chain, environment);
        return new ProxyConfig(viaPath, viaPath, @interface, peers, ResolveStrategy.Auto, [], ignored, via);
    }

    // What the outer tunnel adds to each of this tunnel's packets (ViaRules.Overhead).
    private static int ViaOverhead(List<ProxyPeer> peers, ProxyConfig via) =>
        ViaRules.Overhead(
            peers.Select(p => p.EndpointHost).OfType<string>(),
            via.Interface.Addresses.Any(a => a.Address.AddressFamily == System.Net.Sockets.AddressFamily.InterNetworkV6));

    private static string ReadFile(string path, string referrer, int line, string key = "WGConfig")
    {
        try
        {
            return File.ReadAllText(path);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException or NotSupportedException or ArgumentException)
        {
            var reason = e is FileNotFoundException or DirectoryNotFoundException ? "no such file" : e.Message;
            throw line == 0
                ? new ProxyConfigException(path, 0, $"cannot read the config: {reason}")
                : new ProxyConfigException(referrer, line, $"cannot read {key} file '{path}': {reason}");
        }
    }

    private static ProxyInterface ParseInterface(ConfigSection section, List<ConfigEntry> ignored)
    {
        foreach (var entry in section.Entries)
        {
            if (WgQuickHostKeys.Contains(entry.Key, StringComparer.OrdinalIgnoreCase))
            {
                ignored.Add(entry);
            }
            else if (!InterfaceKeys.Contains(entry.Key, StringComparer.OrdinalIgnoreCase))
            {
                throw section.Error(entry.Line, $"unknown key '{entry.Key}' in [Interface] (known: {string.Join(", ", InterfaceKeys)})");
            }
        }

        var privateKey = Key(section, "PrivateKey", required: true)!;
        var addresses = Prefixes(section, "Address");
        if (addresses.Count == 0)
        {
            throw section.Error(section.Line, "[Interface] needs Address = (the tunnel's own IP addresses)");
        }

        var dns = Addresses(section, "DNS");
        var mtu = section.GetInt("MTU", ProxyInterface.DefaultMtu, MinimumMtu, 65535);
        int? listenPort = section.Find("ListenPort") is null ? null : section.GetInt("ListenPort", 0, 0, 65535);
        var checkAlive = Addresses(section, "CheckAlive");
        var interval = section.GetSeconds("CheckAliveInterval", ProxyInterface.DefaultCheckAliveInterval);
        if (interval == TimeSpan.Zero)
        {
            throw section.Error(section.Find("CheckAliveInterval")!.Value.Line, "CheckAliveInterval must be at least 1 second");
        }

        return new ProxyInterface(privateKey, addresses, dns, mtu, listenPort, checkAlive, interval);
    }

    private static ProxyPeer ParsePeer(ConfigSection section)
    {
        section.RejectUnknownKeys(PeerKeys);
        var publicKey = Key(section, "PublicKey", required: true)!;
        var presharedKey = Key(section, "PresharedKey", required: false);
        string? host = null;
        var port = 0;
        if (section.Find("Endpoint") is { } endpoint)
        {
            if (!TryParseEndpoint(endpoint.Value, out host, out port))
            {
                throw section.Error(endpoint.Line, $"Endpoint must be host:port, a.b.c.d:port or [v6]:port, not '{endpoint.Value}'");
            }
        }

        var allowed = Prefixes(section, "AllowedIPs");
        if (section.Find("AllowedIPs") is null)
        {
            // wireproxy's default: everything goes to the peer.
            allowed = [new AddressPrefix(IPAddress.Any, 0), new AddressPrefix(IPAddress.IPv6Any, 0)];
        }

        var keepalive = 0;
        if (section.Find("PersistentKeepalive") is { } k && !string.Equals(k.Value, "off", StringComparison.OrdinalIgnoreCase))
        {
            keepalive = section.GetInt("PersistentKeepalive", 0, 0, 65535);
        }

        return new ProxyPeer(publicKey, presharedKey, host, port, allowed, keepalive, section.File, section.Line);
    }

    // wg's endpoint forms: name:port, a.b.c.d:port, [v6]:port (an unbracketed IPv6 literal's port would be ambiguous).
    private static bool TryParseEndpoint(string text, out string? host, out int port)
    {
        host = null;
        port = 0;
        var colon = text.LastIndexOf(':');
        if (colon <= 0 || !int.TryParse(text.AsSpan(colon + 1), NumberStyles.None, CultureInfo.InvariantCulture, out port) || port is < 1 or > 65535)
        {
            return false;
        }

        var name = text[..colon];
        if (name.StartsWith('[') && name.EndsWith(']'))
        {
            name = name[1..^1];
            if (!IPAddress.TryParse(name, out var v6) || v6.AddressFamily != System.Net.Sockets.AddressFamily.InterNetworkV6)
            {
                return false;
            }
        }
        else if (name.Length > 253 || !name.All(c => char.IsAsciiLetterOrDigit(c) || c is '-' or '.' or '_')
                 || name.StartsWith('.') || name.StartsWith('-') || name.Contains("..", StringComparison.Ordinal))
        {
            return false;
        }
        else if (name.All(c => char.IsAsciiDigit(c) || c == '.') && !AddressPrefix.TryParse(name, out _))
        {
            return false; // "10.0.0" or "1.2.3.4.5": neither an address nor a name
        }

        host = name;
        return true;
    }

    private static string? Key(ConfigSection section, string key, bool required)
    {
        var entry = section.Find(key);
        if (entry is null)
        {
            return required ? throw section.Error(section.Line, $"[{section.Name}] needs {key} =") : null;
        }

        Span<byte> bytes = stackalloc byte[33];
        var value = entry.Value.Value;
        if (value.Length != 44 || !Convert.TryFromBase64String(value, bytes, out var written) || written != 32)
        {
            throw section.Error(entry.Value.Line, $"{key} must be a WireGuard key (base64 of 32 bytes, as `wg genkey` prints)");
        }

        return value;
    }

    // Address / AllowedIPs: comma lists, the key may repeat; an IP or a CIDR.
    private static List<AddressPrefix> Prefixes(ConfigSection section, string key)
    {
        var result = new List<AddressPrefix>();
        foreach (var entry in section.GetAll(key))
        {
            foreach (var item in Items(entry))
            {
                if (!AddressPrefix.TryParse(item, out var prefix))
                {
                    throw section.Error(entry.Line, $"{key}: '{item}' is not an IP address or CIDR prefix");
                }

                result.Add(prefix);
            }
        }

        return result;
    }

    private static List<IPAddress> Addresses(ConfigSection section, string key)
    {
        var result = new List<IPAddress>();
        foreach (var entry in section.GetAll(key))
        {
            foreach (var item in Items(entry))
            {
                if (!AddressPrefix.TryParse(item, out var prefix) || item.Contains('/', StringComparison.Ordinal))
                {
                    throw section.Error(entry.Line, $"{key}: '{item}' is not an IP address");
                }

                result.Add(prefix.Address);
            }
        }

        return result;
    }

    private static IEnumerable<string> Items(ConfigEntry entry) =>
        entry.Value.Split(',', StringSplitOptions.TrimEntries | StringSplitOptions.RemoveEmptyEntries);

    private sealed record ViaHop(ProxyConfig Config, int Line, bool MtuPicked);
}
