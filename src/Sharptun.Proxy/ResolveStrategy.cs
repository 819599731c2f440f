namespace Sharptun.Proxy;

/// <summary>Which address family a host name resolves to (wireproxy's <c>[Resolve] ResolveStrategy</c>).</summary>
public enum ResolveStrategy
{
    /// <summary>Any family the tunnel has an address of, in the DNS server's order (wireproxy's <c>auto</c>).</summary>
    Auto,

    /// <summary>IPv4 addresses only (<c>ipv4</c>).</summary>
    Ipv4,

    /// <summary>IPv6 addresses only (<c>ipv6</c>).</summary>
    Ipv6,
}
