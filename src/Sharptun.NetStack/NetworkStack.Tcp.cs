using System.Net;
using Sharptun.NetStack.Tcp;
using Sharptun.Transport;

namespace Sharptun.NetStack;

// TCP integration (netstack contract): IP protocol 6 goes to TcpLayer.OnSegment (which verifies the checksum and
// answers closed ports with RST), its timers run from Poll, and its deadline joins NextDeadline. The TCP layer sends
// through IStackContext.TrySendIp and takes Gate itself in its socket API.
public sealed partial class NetworkStack
{
    private TcpLayer _tcp = null!;

    /// <summary>True once a TCP layer is attached (always, since the TCP layer exists).</summary>
    internal bool HasTcp => _tcp is not null;

    /// <summary>The TCP layer (for tests and diagnostics).</summary>
    internal TcpLayer TcpLayer => _tcp;

    /// <summary>
    /// Opens a TCP connection (RFC 9293 active open). <paramref name="local"/> null or unspecified picks a configured
    /// source address of the remote's family and an ephemeral port. Completes when established; fails with
    /// <see cref="System.Net.Sockets.SocketException"/> (ConnectionRefused, TimedOut, ...).
    /// </summary>
    public ValueTask<TcpStream> ConnectTcpAsync(IPEndPoint remote, IPEndPoint? local = null, CancellationToken cancellationToken = default)
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        return _tcp.ConnectAsync(remote, local, cancellationToken);
    }

    /// <summary>
    /// Listens for TCP connections on <paramref name="local"/> (address Any = every local address). In promiscuous mode,
    /// port 0 makes a wildcard listener that accepts connections to any address and port (tun2socks use).
    /// </summary>
    public TcpStreamListener ListenTcp(IPEndPoint local, int backlog = 128)
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        return _tcp.Listen(local, backlog);
    }

    private void InitializeTcp()
    {
        _tcp = new TcpLayer(this, _options.Tcp ?? new TcpOptions()) { SelectSource = TrySelectSource };
    }

    private void PollTcp(TimeSpan now) => _tcp.Poll(now);

    private void RetryBlockedTcp(TimeSpan now) => _tcp.RetryBlocked(now);

    private void BeginTcpBatch() => _tcp.BeginBatch();

    private void EndTcpBatch(TimeSpan now) => _tcp.EndBatch(now);

    private TimeSpan TcpNextDeadline() => _tcp.NextDeadline;

    /// <summary>Stack shutdown: resets connections, fails pending TCP operations, stops listeners.</summary>
    private void DisposeTcp() => _tcp.AbortAll();

    private void DeliverTcp(in IpAddr source, in IpAddr destination, ReadOnlySpan<byte> segment) =>
        _tcp.OnSegment(source, destination, segment);
}
