using Sharptun.Device.Routing;
using Sharptun.Protocol;

namespace Sharptun.Device.Config;

/// <summary>
/// A parsed wg / wg-quick configuration file: immutable, compared by value. Produced only whole by
/// <see cref="WgConfigParser"/> (never partially), printed by <see cref="WgConfigPrinter"/>.
/// Optional settings are null when the file does not set them.
/// </summary>
/// <param name="Interface">The [Interface] section.</param>
/// <param name="Peers">The [Peer] sections in file order.</param>
public sealed record WgConfig(WgInterfaceConfig Interface, EquatableArray<WgPeerConfig> Peers)
{
    /// <summary>True when any wg-quick-only setting is present (Address, DNS, MTU, Table, hooks, SaveConfig).</summary>
    public bool HasQuickSettings => Interface.HasQuickSettings;

    /// <summary>The same config without the wg-quick settings (what <c>wg-quick strip</c> prints).</summary>
    public WgConfig Strip() => this with { Interface = Interface.Strip() };
}

/// <summary>The [Interface] section. wg keys first, then the wg-quick superset.</summary>
public sealed record WgInterfaceConfig
{
    /// <summary>PrivateKey (base64). Owned by the config; <see cref="Key.Clear"/> it when done.</summary>
    public Key? PrivateKey { get; init; }

    /// <summary>ListenPort (0 means "pick a random port").</summary>
    public ushort? ListenPort { get; init; }

    /// <summary>FwMark (0 / "off" means none).</summary>
    public uint? FwMark { get; init; }

    /// <summary>wg-quick Address: interface addresses, host bits kept (10.0.0.2/24).</summary>
    public EquatableArray<IpPrefix> Addresses { get; init; }

    /// <summary>wg-quick DNS: server addresses and search domains, as written.</summary>
    public EquatableArray<string> Dns { get; init; }

    /// <summary>wg-quick MTU.</summary>
    public int? Mtu { get; init; }

    /// <summary>
    /// The tunnel MTU when a config sets none: 1420, wg-quick's choice for a 1500-byte path (the largest WireGuard
    /// overhead, 80 bytes over IPv6, taken off).
    /// </summary>
    public const int DefaultMtu = 1420;

    /// <summary>wg-quick Table: "off", "auto" or a table number/name, as written.</summary>
    public string? Table { get; init; }

    /// <summary>wg-quick PreUp commands in order (each line is one command).</summary>
    public EquatableArray<string> PreUp { get; init; }

    /// <summary>wg-quick PostUp commands.</summary>
    public EquatableArray<string> PostUp { get; init; }

    /// <summary>wg-quick PreDown commands.</summary>
    public EquatableArray<string> PreDown { get; init; }

    /// <summary>wg-quick PostDown commands.</summary>
    public EquatableArray<string> PostDown { get; init; }

    /// <summary>wg-quick SaveConfig.</summary>
    public bool? SaveConfig { get; init; }

    /// <summary>True when any wg-quick-only setting is present.</summary>
    public bool HasQuickSettings =>
        Addresses.Count > 0 || Dns.Count > 0 || Mtu is not null || Table is not null || PreUp.Count > 0
        || PostUp.Count > 0 || PreDown.Count > 0 || PostDown.Count > 0 || SaveConfig is not null;

    /// <summary>Only the wg settings.</summary>
    public WgInterfaceConfig Strip() => new() { PrivateKey = PrivateKey, ListenPort = ListenPort, FwMark = FwMark };
}

/// <summary>A [Peer] section.</summary>
public sealed record WgPeerConfig
{
    /// <summary>PublicKey (required).</summary>
    public required Key PublicKey { get; init; }

    /// <summary>PresharedKey.</summary>
    public Key? PresharedKey { get; init; }

    /// <summary>AllowedIPs in file order, as written (not masked).</summary>
    public EquatableArray<IpPrefix> AllowedIps { get; init; }

    /// <summary>Endpoint; a hostname stays unresolved.</summary>
    public WgEndpoint? Endpoint { get; init; }

    /// <summary>PersistentKeepalive in seconds (0 / "off" means disabled).</summary>
    public ushort? PersistentKeepalive { get; init; }
}

/// <summary>One configuration error: <c>wg0.conf:7: PublicKey: invalid key (must be 32 bytes of base64)</c>.</summary>
/// <param name="File">The file name given to the parser.</param>
/// <param name="Line">1-based line number (0 when the error concerns the whole file).</param>
/// <param name="Key">The key as written, or null for a line that has none.</param>
/// <param name="Message">What is wrong.</param>
public sealed record ConfigError(string File, int Line, string? Key, string Message)
{
    /// <inheritdoc/>
    public override string ToString() =>
        Key is null ? $"{File}:{Line}: {Message}" : $"{File}:{Line}: {Key}: {Message}";
}
