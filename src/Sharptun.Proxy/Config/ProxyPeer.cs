namespace Sharptun.Proxy.Config;

/// <summary>One <c>[Peer]</c> section of a proxy config.</summary>
public sealed class ProxyPeer
{
    internal ProxyPeer(string publicKey, string? presharedKey, string? endpointHost, int endpointPort,
        IReadOnlyList<AddressPrefix> allowedIPs, int persistentKeepalive, string file, int line)
    {
        PublicKey = publicKey;
        PresharedKey = presharedKey;
        EndpointHost = endpointHost;
        EndpointPort = endpointPort;
        AllowedIPs = allowedIPs;
        PersistentKeepalive = persistentKeepalive;
        File = file;
        Line = line;
    }

    /// <summary><c>PublicKey</c> (base64 of 32 bytes).</summary>
    public string PublicKey { get; }

    /// <summary><c>PresharedKey</c>, if any.</summary>
    public string? PresharedKey { get; }

    /// <summary>
    /// The host of <c>Endpoint</c>: an IP literal (IPv6 without brackets) or a name, kept as a name (resolved when the
    /// tunnel starts, and again when handshakes keep failing). <see langword="null"/> without an endpoint: the peer
    /// connects to us (server mode, with the interface's <c>ListenPort</c>).
    /// </summary>
    public string? EndpointHost { get; }

    /// <summary>The UDP port of <c>Endpoint</c> (0 without one).</summary>
    public int EndpointPort { get; }

    /// <summary><c>Endpoint</c> in wg's form (<c>host:port</c>, <c>[v6]:port</c>), or <see langword="null"/>.</summary>
    public string? Endpoint => EndpointHost is null
        ? null
        : (EndpointHost.Contains(':', StringComparison.Ordinal) ? "[" + EndpointHost + "]" : EndpointHost) + ":" + EndpointPort.ToString(System.Globalization.CultureInfo.InvariantCulture);

    /// <summary><c>AllowedIPs</c> (wireproxy's default when absent: <c>0.0.0.0/0</c> and <c>::/0</c>).</summary>
    public IReadOnlyList<AddressPrefix> AllowedIPs { get; }

    /// <summary><c>PersistentKeepalive</c> in seconds (0: off).</summary>
    public int PersistentKeepalive { get; }

    /// <summary>The file of the <c>[Peer]</c> header.</summary>
    public string File { get; }

    /// <summary>The line of the <c>[Peer]</c> header.</summary>
    public int Line { get; }
}
