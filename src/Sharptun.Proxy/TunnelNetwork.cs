using System.Net;
using System.Net.Sockets;

namespace Sharptun.Proxy;

/// <summary>
/// <see cref="ITunnelNetwork"/> over a <see cref="WireGuardTunnel"/>: names resolve through the tunnel's DNS servers
/// (never the host's resolver when the config has <c>DNS</c>), filtered by the <see cref="ResolveStrategy"/>; every
/// connect is bounded by the connect timeout.
/// </summary>
public sealed class TunnelNetwork : ITunnelNetwork
{
    private readonly WireGuardTunnel _tunnel;
    private readonly ResolveStrategy _strategy;
    private readonly TimeSpan _connectTimeout;

    /// <summary>Front-ends reach targets through <paramref name="tunnel"/>.</summary>
    /// <param name="tunnel">The started tunnel.</param>
    /// <param name="strategy">Which address family names resolve to.</param>
    /// <param name="connectTimeout">How long a TCP connect may take before it fails with <see cref="SocketError.TimedOut"/>.</param>
    public TunnelNetwork(WireGuardTunnel tunnel, ResolveStrategy strategy, TimeSpan connectTimeout)
    {
        ArgumentNullException.ThrowIfNull(tunnel);
        ArgumentOutOfRangeException.ThrowIfLessThanOrEqual(connectTimeout, TimeSpan.Zero);
        _tunnel = tunnel;
        _strategy = strategy;
        _connectTimeout = connectTimeout;
    }

    /// <summary>The tunnel.</summary>
    public WireGuardTunnel Tunnel => _tunnel;

    /// <inheritdoc/>
    public async ValueTask<Stream> ConnectAsync(string host, int port, CancellationToken cancellationToken)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(host);
        using var timeout = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        timeout.CancelAfter(_connectTimeout);
        try
        {
            var addresses = await _tunnel.ResolveAsync(host, Family, timeout.Token).ConfigureAwait(false);
            if (addresses.Length == 0)
            {
                throw new SocketException((int)SocketError.HostNotFound, $"'{host}' has no {FamilyName} address usable through the tunnel.");
            }

            SocketException? last = null;
            foreach (var address in addresses)
            {
                try
                {
                    return await _tunnel.ConnectAsync(new IPEndPoint(address, port), timeout.Token).ConfigureAwait(false);
                }
                catch (SocketException e)
                {
                    last = e;
                }
            }

            throw last!;
        }
        catch (OperationCanceledException) when (!cancellationToken.IsCancellationRequested)
        {
            throw TimedOut(host, port);
        }
    }

    /// <inheritdoc/>
    public async ValueTask<Stream> ConnectAsync(IPEndPoint remote, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(remote);
        using var timeout = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        timeout.CancelAfter(_connectTimeout);
        try
        {
            return await _tunnel.ConnectAsync(remote, timeout.Token).ConfigureAwait(false);
        }
        catch (OperationCanceledException) when (!cancellationToken.IsCancellationRequested)
        {
            throw TimedOut(remote.Address.ToString(), remote.Port);
        }
    }

    /// <inheritdoc/>
    public async ValueTask<IPAddress> ResolveAsync(string host, CancellationToken cancellationToken)
    {
        var addresses = await _tunnel.ResolveAsync(host, Family, cancellationToken).ConfigureAwait(false);
        return addresses.Length > 0
            ? addresses[0]
            : throw new SocketException((int)SocketError.HostNotFound, $"'{host}' has no {FamilyName} address usable through the tunnel.");
    }

    /// <inheritdoc/>
    public IDatagramChannel BindUdp() => new Channel(_tunnel.BindUdp());

    /// <inheritdoc/>
    public IStreamAcceptor ListenTcp(int port) => new Acceptor(_tunnel.ListenTcp(port));

    private AddressFamily Family => _strategy switch
    {
        ResolveStrategy.Ipv4 => AddressFamily.InterNetwork,
        ResolveStrategy.Ipv6 => AddressFamily.InterNetworkV6,
        _ => AddressFamily.Unspecified,
    };

    private string FamilyName => _strategy switch
    {
        ResolveStrategy.Ipv4 => "IPv4",
        ResolveStrategy.Ipv6 => "IPv6",
        _ => "IPv4 or IPv6",
    };

    private SocketException TimedOut(string host, int port) =>
        new((int)SocketError.TimedOut, $"Connecting to {host} port {port} through the tunnel timed out after {_connectTimeout.TotalSeconds:0.#} s.");

    private sealed class Channel(TunnelUdpSocket socket) : IDatagramChannel
    {
        public IPEndPoint LocalEndPoint => socket.LocalEndPoint;

        public ValueTask SendToAsync(ReadOnlyMemory<byte> datagram, IPEndPoint remote, CancellationToken cancellationToken) =>
            socket.SendToAsync(datagram, remote, cancellationToken);

        public ValueTask<SocketReceiveFromResult> ReceiveFromAsync(Memory<byte> buffer, CancellationToken cancellationToken) =>
            socket.ReceiveFromAsync(buffer, cancellationToken);

        public void Dispose() => socket.Dispose();
    }

    private sealed class Acceptor(TunnelTcpListener listener) : IStreamAcceptor
    {
        public IPEndPoint LocalEndPoint => listener.LocalEndPoint;

        public ValueTask<Stream> AcceptAsync(CancellationToken cancellationToken) => listener.AcceptAsync(cancellationToken);

        public ValueTask DisposeAsync() => listener.DisposeAsync();
    }
}
