using System.Net;
using System.Net.Sockets;

namespace Sharptun;

/// <summary>The host's resolver (<see cref="Dns"/>): used only when the tunnel's config names no DNS servers.</summary>
internal sealed class HostNameResolver : INameResolver
{
    public static HostNameResolver Instance { get; } = new();

    public async ValueTask<IPAddress[]> ResolveAsync(string host, AddressFamily family, CancellationToken cancellationToken) =>
        await Dns.GetHostAddressesAsync(host, family, cancellationToken).ConfigureAwait(false);
}
