using System.Net;
using Sharptun.NetStack;
using Sharptun.NetStack.Dns;

namespace Sharptun;

/// <summary>
/// Resolves names through the config's <c>DNS</c> servers over the tunnel's own stack (<see cref="DnsResolver"/>), so a
/// lookup never leaks to the host's resolver.
/// </summary>
internal sealed class TunnelNameResolver(NetworkStack stack, IReadOnlyList<IPAddress> servers) : INameResolver
{
    public DnsResolver Resolver { get; } = new(stack, servers);

    public ValueTask<IPAddress[]> ResolveAsync(string host, System.Net.Sockets.AddressFamily family, CancellationToken cancellationToken) =>
        Resolver.ResolveAsync(host, family, cancellationToken);
}
