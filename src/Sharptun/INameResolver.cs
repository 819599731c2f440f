using System.Net;
using System.Net.Sockets;

namespace Sharptun;

/// <summary>
/// Resolves host names for <see cref="WireGuardTunnel.ConnectAsync(string, int, CancellationToken)"/>.
/// </summary>
/// <remarks>
/// The seam for name resolution through the tunnel: with <c>DNS =</c> servers in the config the tunnel must ask those
/// servers through its own netstack (<see cref="TunnelNameResolver"/>), never the host resolver, which would leak the
/// lookup. With no DNS servers configured the host's resolver is used (<see cref="HostNameResolver"/>).
/// </remarks>
internal interface INameResolver
{
    /// <summary>
    /// The addresses of <paramref name="host"/> of <paramref name="family"/> (<see cref="AddressFamily.Unspecified"/>:
    /// both); empty when it has none.
    /// </summary>
    ValueTask<IPAddress[]> ResolveAsync(string host, AddressFamily family, CancellationToken cancellationToken);
}
