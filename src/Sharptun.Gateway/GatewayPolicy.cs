using System.Net;

namespace Sharptun.Gateway;

/// <summary>The outcome of <see cref="GatewayPolicy.Decide"/>.</summary>
public enum GatewayVerdict
{
    /// <summary>The flow may be relayed.</summary>
    Allowed,

    /// <summary>A <c>Deny</c> rule covers the destination.</summary>
    DeniedByRule,

    /// <summary>The destination is in a reserved range (loopback, private, link-local, ...) no <c>Allow</c> rule opens.</summary>
    DeniedReserved,

    /// <summary>No rule names the destination and <see cref="GatewayOptions.AllowUnlisted"/> is false.</summary>
    DeniedUnlisted,
}

/// <summary>
/// A gateway's destination policy. In order: a <c>Deny</c> rule covering the destination denies it (deny wins);
/// a destination in a reserved range (<see cref="ReservedRanges"/>: loopback, RFC 1918, shared address space, link-local,
/// ULA, multicast, documentation, ...) is allowed only by an <c>Allow</c> rule that lies inside that range (so
/// <c>Allow = 10.1.0.0/16</c> opens part of 10.0.0.0/8, while <c>Allow = 0.0.0.0/0</c> opens no reserved range); any
/// other destination is allowed by a covering <c>Allow</c> rule, else by <see cref="GatewayOptions.AllowUnlisted"/>.
/// </summary>
/// <remarks>Immutable and thread-safe; <see cref="Decide"/> takes no lock.</remarks>
public sealed class GatewayPolicy
{
    private readonly DestinationRule[] _allow;
    private readonly DestinationRule[] _deny;
    private readonly bool _allowUnlisted;

    /// <summary>A policy from <paramref name="options"/>' rules (copied).</summary>
    public GatewayPolicy(GatewayOptions options)
    {
        ArgumentNullException.ThrowIfNull(options);
        _allow = [.. options.Allow];
        _deny = [.. options.Deny];
        _allowUnlisted = options.AllowUnlisted;
    }

    /// <summary>
    /// The ranges a gateway never relays to unless an <c>Allow</c> rule inside them says so (IANA special-purpose
    /// registries, RFC 6890): this host, loopback, private use (RFC 1918), shared address space (RFC 6598), link-local
    /// (RFC 3927, RFC 4291), IETF protocol assignments, documentation (RFC 5737, RFC 3849), benchmarking (RFC 2544),
    /// multicast, reserved and broadcast; IPv6 unspecified, loopback, IPv4-mapped, NAT64 local use (RFC 8215), discard
    /// (RFC 6666), unique local (RFC 4193) and multicast.
    /// </summary>
    public static IReadOnlyList<IPNetwork> ReservedRanges { get; } =
    [
        IPNetwork.Parse("0.0.0.0/8"),
        IPNetwork.Parse("10.0.0.0/8"),
        IPNetwork.Parse("100.64.0.0/10"),
        IPNetwork.Parse("127.0.0.0/8"),
        IPNetwork.Parse("169.254.0.0/16"),
        IPNetwork.Parse("172.16.0.0/12"),
        IPNetwork.Parse("192.0.0.0/24"),
        IPNetwork.Parse("192.0.2.0/24"),
        IPNetwork.Parse("192.168.0.0/16"),
        IPNetwork.Parse("198.18.0.0/15"),
        IPNetwork.Parse("198.51.100.0/24"),
        IPNetwork.Parse("203.0.113.0/24"),
        IPNetwork.Parse("224.0.0.0/4"),
        IPNetwork.Parse("240.0.0.0/4"),
        IPNetwork.Parse("::/128"),
        IPNetwork.Parse("::1/128"),
        IPNetwork.Parse("::ffff:0:0/96"),
        IPNetwork.Parse("64:ff9b:1::/48"),
        IPNetwork.Parse("100::/64"),
        IPNetwork.Parse("2001:db8::/32"),
        IPNetwork.Parse("fc00::/7"),
        IPNetwork.Parse("fe80::/10"),
        IPNetwork.Parse("ff00::/8"),
    ];

    /// <summary>Decides whether a flow to <paramref name="destination"/> may be relayed.</summary>
    public GatewayVerdict Decide(IPEndPoint destination)
    {
        ArgumentNullException.ThrowIfNull(destination);
        var address = DestinationRule.Normalize(destination.Address);
        var endpoint = ReferenceEquals(address, destination.Address) ? destination : new IPEndPoint(address, destination.Port);
        foreach (var rule in _deny)
        {
            if (rule.Matches(endpoint))
            {
                return GatewayVerdict.DeniedByRule;
            }
        }

        return DecideAllow(address, rule => rule.Matches(endpoint));
    }

    /// <summary>
    /// Whether some port of <paramref name="address"/> may be reached (the gateway answers ICMP echo for such
    /// destinations): no port-less <c>Deny</c> rule covers it and an <c>Allow</c> rule of any port, or the default, allows it.
    /// </summary>
    public bool AllowsAnyPort(IPAddress address)
    {
        ArgumentNullException.ThrowIfNull(address);
        address = DestinationRule.Normalize(address);
        foreach (var rule in _deny)
        {
            if (!rule.HasPorts && rule.ContainsAddress(address))
            {
                return false;
            }
        }

        return DecideAllow(address, rule => rule.ContainsAddress(address)) == GatewayVerdict.Allowed;
    }

    private GatewayVerdict DecideAllow(IPAddress address, Func<DestinationRule, bool> covers)
    {
        if (ReservedRangeOf(address) is { } reserved)
        {
            foreach (var rule in _allow)
            {
                if (rule.Prefix.PrefixLength >= reserved.PrefixLength && covers(rule))
                {
                    return GatewayVerdict.Allowed;
                }
            }

            return GatewayVerdict.DeniedReserved;
        }

        foreach (var rule in _allow)
        {
            if (covers(rule))
            {
                return GatewayVerdict.Allowed;
            }
        }

        return _allowUnlisted ? GatewayVerdict.Allowed : GatewayVerdict.DeniedUnlisted;
    }

    /// <summary>The reserved range <paramref name="address"/> lies in, if any (the most specific one).</summary>
    internal static IPNetwork? ReservedRangeOf(IPAddress address)
    {
        IPNetwork? best = null;
        foreach (var range in ReservedRanges)
        {
            if (range.Contains(address) && (best is null || range.PrefixLength > best.Value.PrefixLength))
            {
                best = range;
            }
        }

        return best;
    }
}
