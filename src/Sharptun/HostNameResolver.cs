using System.Net;

namespace Sharptun;

/// <summary>The host's resolver (<see cref="Dns"/>): used only when the tunnel's config names no DNS servers.</summary>
internal sealed class HostNameResolver : INameResolver
{
    public static HostNameResolver Instance { get; } = new();

    public async ValueTask<IPAddress[]> ResolveAsync(string host, CancellationToken cancellationToken) =>
        await Dns.GetHostAddressesAsync(host, cancellationToken).ConfigureAwait(false);
}
