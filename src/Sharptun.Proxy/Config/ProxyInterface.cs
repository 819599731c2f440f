using System.Net;

namespace Sharptun.Proxy.Config;

/// <summary>The <c>[Interface]</c> section of a proxy config (inline or in the <c>WGConfig</c> file).</summary>
public sealed class ProxyInterface
{
    /// <summary>The default <c>MTU</c> (wireproxy's and wg-quick's).</summary>
    public const int DefaultMtu = Sharptun.Device.Config.WgInterfaceConfig.DefaultMtu;

    /// <summary>The default <c>CheckAliveInterval</c>.</summary>
    public static readonly TimeSpan DefaultCheckAliveInterval = TimeSpan.FromSeconds(5);

    internal ProxyInterface(string privateKey, IReadOnlyList<AddressPrefix> addresses, IReadOnlyList<IPAddress> dns, int mtu,
        int? listenPort, IReadOnlyList<IPAddress> checkAlive, TimeSpan checkAliveInterval)
    {
        PrivateKey = privateKey;
        Addresses = addresses;
        Dns = dns;
        Mtu = mtu;
        ListenPort = listenPort;
        CheckAlive = checkAlive;
        CheckAliveInterval = checkAliveInterval;
    }

    /// <summary>The same interface with another MTU (picked to fit through a <c>Via</c> tunnel).</summary>
    internal ProxyInterface WithMtu(int mtu) => new(PrivateKey, Addresses, Dns, mtu, ListenPort, CheckAlive, CheckAliveInterval);

    /// <summary><c>PrivateKey</c> (base64 of 32 bytes).</summary>
    public string PrivateKey { get; }

    /// <summary><c>Address</c>: the tunnel's own addresses (a bare address is <c>/32</c> or <c>/128</c>).</summary>
    public IReadOnlyList<AddressPrefix> Addresses { get; }

    /// <summary><c>DNS</c>: the servers names are resolved through, inside the tunnel.</summary>
    public IReadOnlyList<IPAddress> Dns { get; }

    /// <summary>
    /// <c>MTU</c> (default <see cref="DefaultMtu"/>; with <c>Via</c> and no <c>MTU</c>, the <c>Via</c> tunnel's MTU less
    /// 80 bytes, room for its IPv6, UDP and WireGuard headers).
    /// </summary>
    public int Mtu { get; }

    /// <summary><c>ListenPort</c>; <see langword="null"/> for a random port.</summary>
    public int? ListenPort { get; }

    /// <summary><c>CheckAlive</c>: addresses pinged through the tunnel for the health endpoint.</summary>
    public IReadOnlyList<IPAddress> CheckAlive { get; }

    /// <summary><c>CheckAliveInterval</c> (default 5 s).</summary>
    public TimeSpan CheckAliveInterval { get; }
}
