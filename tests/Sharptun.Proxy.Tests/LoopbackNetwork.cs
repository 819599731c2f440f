using System.Net;
using System.Net.Sockets;
using Sharptun.Proxy;

namespace Sharptun.Proxy.Tests;

/// <summary>
/// <see cref="ITunnelNetwork"/> over the host's loopback, for front-end unit tests: names resolve from a fixed table
/// (<see cref="Names"/>; anything else is HostNotFound), connects use real sockets with the given timeout.
/// </summary>
public sealed class LoopbackNetwork(TimeSpan? connectTimeout = null) : ITunnelNetwork
{
    private readonly TimeSpan _connectTimeout = connectTimeout ?? TimeSpan.FromSeconds(5);

    /// <summary>Names the network resolves, e.g. "web.test" → 127.0.0.1.</summary>
    public Dictionary<string, IPAddress> Names { get; } = new(StringComparer.OrdinalIgnoreCase) { ["localhost.test"] = IPAddress.Loopback };

    /// <summary>Every host name or address a connect was asked for, in order.</summary>
    public List<string> Connects { get; } = [];

    public async ValueTask<Stream> ConnectAsync(string host, int port, CancellationToken cancellationToken)
    {
        var address = await ResolveAsync(host, cancellationToken);
        lock (Connects)
        {
            Connects.Add(host);
        }

        return await ConnectCoreAsync(new IPEndPoint(address, port), cancellationToken);
    }

    public ValueTask<Stream> ConnectAsync(IPEndPoint remote, CancellationToken cancellationToken)
    {
        lock (Connects)
        {
            Connects.Add(remote.ToString());
        }

        return ConnectCoreAsync(remote, cancellationToken);
    }

    public ValueTask<IPAddress> ResolveAsync(string host, CancellationToken cancellationToken)
    {
        if (IPAddress.TryParse(host.Trim('[', ']'), out var literal))
        {
            return ValueTask.FromResult(literal);
        }

        return Names.TryGetValue(host, out var address)
            ? ValueTask.FromResult(address)
            : ValueTask.FromException<IPAddress>(new SocketException((int)SocketError.HostNotFound));
    }

    public IDatagramChannel BindUdp() => new Channel(IPAddress.Loopback);

    public IStreamAcceptor ListenTcp(int port) => new Acceptor(port);

    private async ValueTask<Stream> ConnectCoreAsync(IPEndPoint remote, CancellationToken cancellationToken)
    {
        var socket = new Socket(remote.AddressFamily, SocketType.Stream, ProtocolType.Tcp);
        using var timeout = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        timeout.CancelAfter(_connectTimeout);
        try
        {
            await socket.ConnectAsync(remote, timeout.Token);
            return new NetworkStream(socket, ownsSocket: true);
        }
        catch (OperationCanceledException) when (!cancellationToken.IsCancellationRequested)
        {
            socket.Dispose();
            throw new SocketException((int)SocketError.TimedOut);
        }
        catch
        {
            socket.Dispose();
            throw;
        }
    }

    private sealed class Channel : IDatagramChannel
    {
        private readonly Socket _socket;

        public Channel(IPAddress address)
        {
            _socket = new Socket(address.AddressFamily, SocketType.Dgram, ProtocolType.Udp);
            _socket.Bind(new IPEndPoint(address, 0));
        }

        public IPEndPoint LocalEndPoint => (IPEndPoint)_socket.LocalEndPoint!;

        public async ValueTask SendToAsync(ReadOnlyMemory<byte> datagram, IPEndPoint remote, CancellationToken cancellationToken) =>
            await _socket.SendToAsync(datagram, SocketFlags.None, remote, cancellationToken);

        public ValueTask<SocketReceiveFromResult> ReceiveFromAsync(Memory<byte> buffer, CancellationToken cancellationToken) =>
            _socket.ReceiveFromAsync(buffer, SocketFlags.None, new IPEndPoint(IPAddress.Any, 0), cancellationToken);

        public void Dispose() => _socket.Dispose();
    }

    private sealed class Acceptor : IStreamAcceptor
    {
        private readonly TcpListener _listener;

        public Acceptor(int port)
        {
            _listener = new TcpListener(IPAddress.Loopback, port);
            _listener.Start();
        }

        public IPEndPoint LocalEndPoint => (IPEndPoint)_listener.LocalEndpoint;

        public async ValueTask<Stream> AcceptAsync(CancellationToken cancellationToken)
        {
            var socket = await _listener.AcceptSocketAsync(cancellationToken);
            return new NetworkStream(socket, ownsSocket: true);
        }

        public ValueTask DisposeAsync()
        {
            _listener.Stop();
            return ValueTask.CompletedTask;
        }
    }
}
