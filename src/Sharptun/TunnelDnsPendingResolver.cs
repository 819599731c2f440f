using System.Net;
using System.Net.Sockets;

namespace Sharptun;

/// <summary>
/// Stands where the resolver through the tunnel's DNS servers goes until it is bound (see <see cref="INameResolver"/>):
/// it refuses every name, so a config with <c>DNS =</c> never leaks a lookup to the host's resolver. IP literals
/// never reach a resolver.
/// </summary>
internal sealed class TunnelDnsPendingResolver(IReadOnlyList<IPAddress> servers) : INameResolver
{
    public IReadOnlyList<IPAddress> Servers { get; } = servers;

    public ValueTask<IPAddress[]> ResolveAsync(string host, CancellationToken cancellationToken) =>
        ValueTask.FromException<IPAddress[]>(new SocketException((int)SocketError.HostNotFound,
            $"Cannot resolve '{host}': resolving through the tunnel's DNS servers ({string.Join(", ", Servers)}) is not available in this build; connect by IP address."));
}
