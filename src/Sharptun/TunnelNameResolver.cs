using System.Net;
using Sharptun.NetStack;
using Sharptun.NetStack.Dns;

namespace Sharptun;

/// <summary>
/// Resolves names through the config's <c>DNS</c> servers over the tunnel's own stack (<see cref="DnsResolver"/>), so a
/// lookup never leaks to the host's resolver. <paramref name="searchDomains"/> (the config's non-address <c>DNS</c>
/// entries) are tried for single-label names first (<see cref="DnsResolverOptions.SearchDomains"/>); <c>localhost</c>
/// is answered as loopback without a query (RFC 6761 §6.3).
/// </summary>
internal sealed class TunnelNameResolver(NetworkStack stack, IReadOnlyList<IPAddress> servers, IReadOnlyList<string>? searchDomains = null) : INameResolver
{
    public DnsResolver Resolver { get; } = new(stack, servers, Options(searchDomains));

    public ValueTask<IPAddress[]> ResolveAsync(string host, System.Net.Sockets.AddressFamily family, CancellationToken cancellationToken) =>
        Resolver.ResolveAsync(host, family, cancellationToken);

    private static DnsResolverOptions Options(IReadOnlyList<string>? searchDomains)
    {
        var options = new DnsResolverOptions();
        foreach (var domain in searchDomains ?? [])
        {
            options.SearchDomains.Add(domain);
        }

        return options;
    }
}
