using System.Collections.Immutable;
using System.Net;
using Sharptun.Device.Config;
using Sharptun.Device.Routing;
using Sharptun.Protocol;

namespace Sharptun;

/// <summary>
/// Builds a <see cref="WireGuardTunnel"/> from keys and addresses held in code rather than a config text. It produces
/// the same config model the INI parser does, so both take one path into the device.
/// </summary>
public sealed class WireGuardTunnelBuilder
{
    private readonly List<IpPrefix> _addresses = [];
    private readonly List<string> _dns = [];
    private readonly List<WgPeerConfig> _peers = [];
    private Key? _privateKey;
    private ushort? _listenPort;
    private int? _mtu;

    /// <summary>Sets the interface's private key (base64, as <c>wg genkey</c> prints it).</summary>
    /// <exception cref="FormatException">Not a base64 32-byte key.</exception>
    public WireGuardTunnelBuilder WithPrivateKey(string privateKey)
    {
        ArgumentNullException.ThrowIfNull(privateKey);
        _privateKey = ParseKey(privateKey, nameof(privateKey));
        return this;
    }

    /// <summary>Adds an interface address with its prefix length (<c>10.0.0.2/24</c>, or an address alone for a host route).</summary>
    /// <exception cref="FormatException">Not an address or prefix.</exception>
    public WireGuardTunnelBuilder AddAddress(string addressWithPrefix)
    {
        ArgumentNullException.ThrowIfNull(addressWithPrefix);
        _addresses.Add(ParsePrefix(addressWithPrefix));
        return this;
    }

    /// <summary>Adds a DNS server to resolve names through the tunnel.</summary>
    public WireGuardTunnelBuilder WithDns(IPAddress server)
    {
        ArgumentNullException.ThrowIfNull(server);
        _dns.Add(server.ToString());
        return this;
    }

    /// <summary>
    /// Adds a DNS search domain (what a non-address wg-quick <c>DNS =</c> entry is): names without a dot are tried in
    /// the search domains first, in the order added, then as they are. Used only with at least one <see cref="WithDns"/> server.
    /// </summary>
    /// <exception cref="FormatException"><paramref name="domain"/> is not a DNS name.</exception>
    public WireGuardTunnelBuilder WithDnsSearchDomain(string domain)
    {
        ArgumentNullException.ThrowIfNull(domain);
        if (IPAddress.TryParse(domain, out _) || Uri.CheckHostName(domain.TrimEnd('.')) != UriHostNameType.Dns)
        {
            throw new FormatException($"'{domain}' is not a DNS search domain.");
        }

        _dns.Add(domain);
        return this;
    }

    /// <summary>Sets the tunnel MTU (default 1420).</summary>
    public WireGuardTunnelBuilder WithMtu(int mtu)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(mtu, 1280);
        ArgumentOutOfRangeException.ThrowIfGreaterThan(mtu, 65535);
        _mtu = mtu;
        return this;
    }

    /// <summary>Sets the UDP listen port (default: a random free port).</summary>
    public WireGuardTunnelBuilder WithListenPort(int port)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(port);
        ArgumentOutOfRangeException.ThrowIfGreaterThan(port, 65535);
        _listenPort = (ushort)port;
        return this;
    }

    /// <summary>Adds a peer.</summary>
    /// <param name="publicKey">The peer's public key (base64).</param>
    /// <param name="endpoint">The peer's UDP endpoint, or null to wait for it to connect first.</param>
    /// <param name="allowedIps">Prefixes routed to the peer and accepted from it (<c>10.0.0.0/24</c>, <c>0.0.0.0/0</c>).</param>
    /// <param name="persistentKeepalive">Keepalive interval (whole seconds, 1-65535), or null for none.</param>
    /// <param name="presharedKey">An optional preshared key (base64).</param>
    /// <exception cref="FormatException">A key or prefix does not parse.</exception>
    public WireGuardTunnelBuilder AddPeer(string publicKey, IPEndPoint? endpoint, IEnumerable<string> allowedIps, TimeSpan? persistentKeepalive = null, string? presharedKey = null)
    {
        ArgumentNullException.ThrowIfNull(publicKey);
        ArgumentNullException.ThrowIfNull(allowedIps);
        ushort? keepalive = null;
        if (persistentKeepalive is { } k)
        {
            ArgumentOutOfRangeException.ThrowIfLessThan(k, TimeSpan.FromSeconds(1), nameof(persistentKeepalive));
            ArgumentOutOfRangeException.ThrowIfGreaterThan(k, TimeSpan.FromSeconds(ushort.MaxValue), nameof(persistentKeepalive));
            keepalive = (ushort)k.TotalSeconds;
        }

        _peers.Add(new WgPeerConfig
        {
            PublicKey = ParseKey(publicKey, nameof(publicKey)),
            PresharedKey = presharedKey is null ? null : ParseKey(presharedKey, nameof(presharedKey)),
            Endpoint = endpoint is null ? null : new WgEndpoint(endpoint.Address.ToString(), (ushort)endpoint.Port),
            AllowedIps = allowedIps.Select(ParsePrefix).ToImmutableArray(),
            PersistentKeepalive = keepalive,
        });
        return this;
    }

    /// <summary>
    /// Adds a peer whose endpoint is a host name (or an IP literal) and port, as a config's <c>Endpoint = host:port</c>:
    /// the name is resolved through the host's resolver when the tunnel starts, and again when handshakes keep failing
    /// (<see cref="WireGuardTunnelOptions.EndpointReresolveInterval"/>).
    /// </summary>
    /// <param name="publicKey">The peer's public key (base64).</param>
    /// <param name="endpointHost">A DNS name (<c>vpn.example.com</c>) or an IP address.</param>
    /// <param name="endpointPort">The peer's UDP port (1-65535).</param>
    /// <param name="allowedIps">Prefixes routed to the peer and accepted from it.</param>
    /// <param name="persistentKeepalive">Keepalive interval (whole seconds, 1-65535), or null for none.</param>
    /// <param name="presharedKey">An optional preshared key (base64).</param>
    /// <exception cref="FormatException">A key or prefix does not parse, or <paramref name="endpointHost"/> is not a plausible host name or address.</exception>
    public WireGuardTunnelBuilder AddPeerWithHostName(string publicKey, string endpointHost, int endpointPort, IEnumerable<string> allowedIps, TimeSpan? persistentKeepalive = null, string? presharedKey = null)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(endpointHost);
        ArgumentOutOfRangeException.ThrowIfLessThan(endpointPort, 1);
        ArgumentOutOfRangeException.ThrowIfGreaterThan(endpointPort, 65535);
        var host = endpointHost.Trim();
        var text = host.Contains(':') && !host.StartsWith('[') ? $"[{host}]:{endpointPort}" : $"{host}:{endpointPort}";
        if (!WgEndpoint.TryParse(text, out var endpoint))
        {
            throw new FormatException($"'{endpointHost}' is not a host name or IP address.");
        }

        AddPeer(publicKey, null, allowedIps, persistentKeepalive, presharedKey);
        _peers[^1] = _peers[^1] with { Endpoint = endpoint };
        return this;
    }

    /// <summary>Starts the tunnel (see <see cref="WireGuardTunnel.StartAsync(string, WireGuardTunnelOptions?, CancellationToken)"/>).</summary>
    /// <exception cref="InvalidOperationException">No private key was set.</exception>
    public Task<WireGuardTunnel> StartAsync(WireGuardTunnelOptions? options = null, CancellationToken cancellationToken = default)
    {
        if (_privateKey is null)
        {
            throw new InvalidOperationException("The tunnel needs a private key: call WithPrivateKey first.");
        }

        var config = new WgConfig(
            new WgInterfaceConfig
            {
                PrivateKey = _privateKey,
                ListenPort = _listenPort,
                Addresses = _addresses.ToImmutableArray(),
                Dns = _dns.ToImmutableArray(),
                Mtu = _mtu,
            },
            _peers.ToImmutableArray());
        return WireGuardTunnel.StartAsync(config, options, cancellationToken);
    }

    private static Key ParseKey(string text, string parameter) =>
        Key.TryParse(text.Trim(), out var key) ? key : throw new FormatException($"{parameter}: not a base64 WireGuard key.");

    private static IpPrefix ParsePrefix(string text) =>
        IpPrefix.TryParse(text.Trim(), out var prefix) ? prefix : throw new FormatException($"'{text}' is not an IP address or prefix.");
}
