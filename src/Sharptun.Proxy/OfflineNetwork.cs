using System.Net;

namespace Sharptun.Proxy;

/// <summary>
/// A network that refuses all use: <c>sharptun proxy -n</c> builds every front-end over it to validate their
/// sections without starting a tunnel (factories must not touch the network; see <see cref="ProxyServiceCatalog"/>).
/// </summary>
internal sealed class OfflineNetwork : ITunnelNetwork
{
    public static OfflineNetwork Instance { get; } = new();

    public ValueTask<Stream> ConnectAsync(string host, int port, CancellationToken cancellationToken) => throw NotRunning();

    public ValueTask<Stream> ConnectAsync(IPEndPoint remote, CancellationToken cancellationToken) => throw NotRunning();

    public ValueTask<IPAddress> ResolveAsync(string host, CancellationToken cancellationToken) => throw NotRunning();

    public IDatagramChannel BindUdp() => throw NotRunning();

    public IStreamAcceptor ListenTcp(int port) => throw NotRunning();

    private static InvalidOperationException NotRunning() => new("The config is only being checked: no tunnel is running.");
}
