using System.Net;
using System.Net.Sockets;

namespace Sharptun.Hosting;

/// <summary>
/// The rules of <c>[Interface] Via = FILE</c> (multihop in one process, issue 11 item 4), shared by
/// <c>sharptun proxy</c> and <c>sharptun gateway</c>, each of which reads the files with its own config reader and turns
/// the messages here into its own <c>FILE:LINE: message</c> errors: where the file is, loops, the MTU picked or
/// checked to fit through the outer tunnel, and whether an endpoint address is routed through it.
/// </summary>
internal static class ViaRules
{
    /// <summary>What the outer tunnel adds to an inner packet over IPv4: IPv4 header (20), UDP (8), WireGuard data header and tag (32).</summary>
    public const int OverheadIpv4 = 60;

    /// <summary>As <see cref="OverheadIpv4"/> with an IPv6 outer header (40).</summary>
    public const int OverheadIpv6 = 80;

    /// <summary>The smallest MTU a tunnel may have (IPv4's minimum datagram every host must accept, RFC 791).</summary>
    public const int MinimumMtu = 576;

    /// <summary>The Via file's path: <paramref name="value"/> as given when rooted, else relative to <paramref name="referrer"/>'s folder.</summary>
    public static string ResolvePath(string referrer, string value) =>
        Path.IsPathRooted(value)
            ? value
            : Path.Combine(Path.GetDirectoryName(Path.GetFullPath(referrer)) ?? ".", value);

    /// <summary>
    /// The error for a Via naming <paramref name="fullPath"/> when <paramref name="chain"/> (the full paths of the files
    /// that led here, the referrer last) already holds it, else null.
    /// </summary>
    public static string? LoopError(IReadOnlyList<string> chain, string fullPath, string value)
    {
        if (!chain.Contains(fullPath, StringComparer.Ordinal))
        {
            return null;
        }

        if (string.Equals(chain[^1], fullPath, StringComparison.Ordinal))
        {
            return $"Via = {value} names this file itself: a tunnel cannot carry its own UDP";
        }

        var loop = string.Join(" -> ", chain.SkipWhile(c => !string.Equals(c, fullPath, StringComparison.Ordinal)).Append(fullPath).Select(Path.GetFileName));
        return $"Via = {value} makes a loop ({loop})";
    }

    /// <summary>
    /// What the outer tunnel adds to each inner packet: <see cref="OverheadIpv6"/> when some endpoint host is an IPv6
    /// address, or a name while the outer tunnel has an IPv6 address (the name may resolve to one); else
    /// <see cref="OverheadIpv4"/>.
    /// </summary>
    public static int Overhead(IEnumerable<string> endpointHosts, bool outerHasIpv6)
    {
        foreach (var host in endpointHosts)
        {
            if (IPAddress.TryParse(host.Trim('[', ']'), out var address)
                ? address.AddressFamily == AddressFamily.InterNetworkV6
                : outerHasIpv6)
            {
                return OverheadIpv6;
            }
        }

        return OverheadIpv4;
    }

    /// <summary>
    /// The MTU picked when the inner config gives none: the outer MTU less <see cref="OverheadIpv6"/> (room for an IPv6
    /// outer header whichever family the endpoints turn out to have); null with <paramref name="error"/> when that is
    /// below <see cref="MinimumMtu"/>.
    /// </summary>
    public static int? PickMtu(int viaMtu, string value, out string? error)
    {
        var mtu = viaMtu - OverheadIpv6;
        if (mtu < MinimumMtu)
        {
            error = $"Via = {value}: its MTU {viaMtu} leaves less than the minimum MTU {MinimumMtu} for this tunnel ({OverheadIpv6} bytes go to the outer headers)";
            return null;
        }

        error = null;
        return mtu;
    }

    /// <summary>The error for an explicit <paramref name="mtu"/> that does not fit through an outer tunnel of <paramref name="viaMtu"/>, else null.</summary>
    public static string? MtuError(int mtu, int viaMtu, int overhead, string value)
    {
        var fits = viaMtu - overhead;
        return mtu <= fits
            ? null
            : $"MTU {mtu} does not fit through Via = {value} (MTU {viaMtu}): at most {fits} " +
              $"({overhead} bytes go to the outer IP{(overhead == OverheadIpv6 ? "v6" : "v4")}, UDP and WireGuard headers), or leave MTU out to have it picked";
    }

    /// <summary>
    /// The error for a peer whose endpoint is an address no <c>AllowedIPs</c> prefix of the outer tunnel's peers holds
    /// (its UDP could not go through), else null; a host name is checked when it resolves, not here.
    /// </summary>
    public static string? EndpointError(string endpoint, string host, IEnumerable<(IPAddress Address, int PrefixLength)> viaAllowedIps, string value)
    {
        if (!IPAddress.TryParse(host.Trim('[', ']'), out var address) || viaAllowedIps.Any(p => Contains(p.Address, p.PrefixLength, address)))
        {
            return null;
        }

        return $"Endpoint {endpoint} is not in the AllowedIPs of any [Peer] of Via = {value}: the tunnel's UDP could not go through it";
    }

    /// <summary>Whether <paramref name="address"/> (IPv4-mapped addresses as IPv4) lies inside the prefix.</summary>
    public static bool Contains(IPAddress prefix, int prefixLength, IPAddress address)
    {
        if (address.IsIPv4MappedToIPv6)
        {
            address = address.MapToIPv4();
        }

        if (prefix.AddressFamily != address.AddressFamily)
        {
            return false;
        }

        var a = prefix.GetAddressBytes();
        var b = address.GetAddressBytes();
        var bits = prefixLength;
        for (var i = 0; i < a.Length && bits > 0; i++, bits -= 8)
        {
            var mask = bits >= 8 ? 0xFF : (byte)(0xFF << (8 - bits));
            if ((a[i] & mask) != (b[i] & mask))
            {
                return false;
            }
        }

        return true;
    }

    /// <summary>
    /// Disposes a started Via chain (<paramref name="tunnels"/> in the order they started, the farthest first), the
    /// nearest first: each carried the UDP of the one started after it.
    /// </summary>
    public static async Task DisposeChainAsync(IReadOnlyList<WireGuardTunnel> tunnels)
    {
        for (var i = tunnels.Count - 1; i >= 0; i--)
        {
            await tunnels[i].DisposeAsync().ConfigureAwait(false);
        }
    }
}
