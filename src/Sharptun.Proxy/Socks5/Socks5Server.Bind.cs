using System.Net;
using System.Net.Sockets;
using Sharptun.Hosting;

namespace Sharptun.Proxy.Socks5;

// BIND (RFC 1928 §4, §6): a listener on the tunnel's side for one connection from a host behind the tunnel.
public sealed partial class Socks5Server
{
    /// <summary>Ports a BIND listens on when the request names none or the named one is taken (the IANA dynamic range, RFC 6335 §6).</summary>
    internal const int EphemeralPortLow = 49152;

    /// <summary>Random ports of the dynamic range tried before a BIND fails with 0x01.</summary>
    internal const int EphemeralPortAttempts = 64;

    private long _bindPeersRefused;

    /// <summary>
    /// Connections to a BIND listener refused (reset) because they came from a host other than the one the BIND
    /// request named in DST.ADDR; the listener keeps waiting for the expected host.
    /// </summary>
    public long BindPeersRefused => Interlocked.Read(ref _bindPeersRefused);

    /// <summary>
    /// RFC 1928 §4 BIND: listens on a port of the tunnel's netstack (DST.PORT when non-zero and free, else a random
    /// port of the dynamic range), sends the first reply (§6) with the tunnel address and that port, waits
    /// <see cref="ProxyContext.AcceptTimeout"/> for one incoming connection, sends the second reply with the
    /// connecting host's address and port, closes the listener and relays both ways as CONNECT does.
    /// </summary>
    /// <remarks>
    /// DST.ADDR names the host expected to connect ("the client's expected address", §4): when it is not 0.0.0.0 or
    /// :: (a name is resolved through the tunnel), connections from any other host are reset and counted in
    /// <see cref="BindPeersRefused"/>, and the wait goes on. No connection in time: reply 0x06 ("TTL expired": the wait
    /// expired), the listener closed. The client closing its connection while waiting closes the listener at once.
    /// </remarks>
    private async Task BindAsync(Socket socket, NetworkStream stream, EndPoint? client, Socks5Request request, CancellationToken cancellationToken)
    {
        var expected = request.Address;
        if (request.Host is { } host)
        {
            try
            {
                expected = await _context.Network.ResolveAsync(host, cancellationToken).ConfigureAwait(false);
            }
            catch (Exception e) when (!cancellationToken.IsCancellationRequested && e is not OutOfMemoryException)
            {
                await FailBindAsync(stream, client, host, e is SocketException s ? s.SocketErrorCode : SocketError.SocketError, cancellationToken).ConfigureAwait(false);
                return;
            }
        }

        if (expected is not null && (expected.Equals(IPAddress.Any) || expected.Equals(IPAddress.IPv6Any)))
        {
            expected = null; // §4: the client does not know who will connect.
        }

        IStreamAcceptor listener;
        try
        {
            listener = ListenForBind(request.Port);
        }
        catch (Exception e) when (e is SocketException or IOException or InvalidOperationException or ObjectDisposedException)
        {
            await FailBindAsync(stream, client, "a listener", e is SocketException s ? s.SocketErrorCode : SocketError.SocketError, cancellationToken).ConfigureAwait(false);
            return;
        }

        Stream? peer;
        IPEndPoint? from;
        try
        {
            var bound = new IPEndPoint(BindReplyAddress(listener.LocalEndPoint.Address, expected), listener.LocalEndPoint.Port);
            await ReplyAsync(stream, Socks5Protocol.ReplySucceeded, bound, cancellationToken).ConfigureAwait(false);
            Log.BindListening(_logger, client, bound, expected?.ToString() ?? "any host");
            (peer, from) = await AcceptPeerAsync(listener, socket, client, expected, cancellationToken).ConfigureAwait(false);
        }
        finally
        {
            // Exactly one connection per BIND: the listener closes before any relaying (or on failure).
            await listener.DisposeAsync().ConfigureAwait(false);
        }

        if (peer is null)
        {
            if (from is null)
            {
                // The client went away while waiting.
                Counters.OnFailed();
                Log.BindEnded(_logger, client, "client closed while waiting", 0, 0);
                return;
            }

            // Timed out (from is the listener's end point, for the log).
            Counters.OnFailed();
            Log.BindTimedOut(_logger, client, from, _context.AcceptTimeout.TotalSeconds);
            await ReplyAsync(stream, Socks5Protocol.ReplyTtlExpired, null, cancellationToken).ConfigureAwait(false);
            return;
        }

        await using (peer.ConfigureAwait(false))
        {
            // §6: "The second reply occurs only after the anticipated incoming connection succeeds or fails";
            // BND.ADDR/BND.PORT name the connecting host.
            await ReplyAsync(stream, Socks5Protocol.ReplySucceeded, from, cancellationToken).ConfigureAwait(false);
            var result = await StreamRelay.RunAsync(stream, peer, _context.Relay, cancellationToken).ConfigureAwait(false);
            Counters.AddBytes(result.ClientToServerBytes, result.ServerToClientBytes);
            Log.BindEnded(_logger, client, result.End.ToString(), result.ClientToServerBytes, result.ServerToClientBytes);
        }
    }

    /// <summary>
    /// Waits for the connection from <paramref name="expected"/> (any host when null). Returns it and its source;
    /// (null, listener end point) on timeout; (null, null) when the client closed its connection first.
    /// </summary>
    private async Task<(Stream? Peer, IPEndPoint? From)> AcceptPeerAsync(IStreamAcceptor listener, Socket socket, EndPoint? client, IPAddress? expected, CancellationToken cancellationToken)
    {
        using var wait = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        wait.CancelAfter(_context.AcceptTimeout);
        using var stopWatching = new CancellationTokenSource();
        var clientGone = 0;
        var watcher = WatchClientAsync(socket, wait, () => Volatile.Write(ref clientGone, 1), stopWatching.Token);
        try
        {
            while (true)
            {
                Stream peer;
                try
                {
                    peer = await listener.AcceptAsync(wait.Token).ConfigureAwait(false);
                }
                catch (OperationCanceledException) when (!cancellationToken.IsCancellationRequested)
                {
                    return Volatile.Read(ref clientGone) != 0 ? (null, null) : (null, listener.LocalEndPoint);
                }

                var from = RemoteEndPointOf(peer);
                if (expected is not null && (from is null || !Socks5Protocol.Unmap(from.Address).Equals(Socks5Protocol.Unmap(expected))))
                {
                    Interlocked.Increment(ref _bindPeersRefused);
                    Log.BindPeerRefused(_logger, client, from, expected);
                    StreamRelay.Abort(peer);
                    continue;
                }

                return (peer, from ?? new IPEndPoint(IPAddress.Any, 0));
            }
        }
        finally
        {
            await stopWatching.CancelAsync().ConfigureAwait(false);
            await watcher.ConfigureAwait(false);
        }
    }

    /// <summary>
    /// Peeks at the client's connection while the BIND waits: its end (or a reset) cancels <paramref name="wait"/>
    /// after calling <paramref name="onGone"/>. Bytes the client sends early stay in the socket for the relay (a peek
    /// consumes nothing); once some arrived, the client is alive and watching stops.
    /// </summary>
    private static async Task WatchClientAsync(Socket socket, CancellationTokenSource wait, Action onGone, CancellationToken stop)
    {
        var probe = new byte[1];
        try
        {
            if (await socket.ReceiveAsync(probe, SocketFlags.Peek, stop).ConfigureAwait(false) > 0)
            {
                return;
            }
        }
        catch (OperationCanceledException)
        {
            return;
        }
        catch (Exception e) when (e is SocketException or ObjectDisposedException)
        {
            // A reset: gone as well.
        }

        onGone();
        try
        {
            await wait.CancelAsync().ConfigureAwait(false);
        }
        catch (ObjectDisposedException)
        {
        }
    }

    /// <summary>A listener on <paramref name="requested"/> when non-zero and free, else on a random port of the dynamic range.</summary>
    private IStreamAcceptor ListenForBind(int requested)
    {
        if (requested != 0)
        {
            try
            {
                return _context.Network.ListenTcp(requested);
            }
            catch (SocketException)
            {
                // Taken: an ephemeral port instead (the reply names the real one).
            }
        }

        for (var attempt = 1; ; attempt++)
        {
            try
            {
                return _context.Network.ListenTcp(Random.Shared.Next(EphemeralPortLow, 65536));
            }
            catch (SocketException) when (attempt < EphemeralPortAttempts)
            {
            }
        }
    }

    /// <summary>
    /// BND.ADDR of the first reply: the listener's address when it is a concrete one, else the network's own address
    /// (the tunnel address) of the expected host's family, IPv4 first when no host is expected.
    /// </summary>
    private IPAddress BindReplyAddress(IPAddress listening, IPAddress? expected)
    {
        listening = Socks5Protocol.Unmap(listening);
        if (!listening.Equals(IPAddress.Any) && !listening.Equals(IPAddress.IPv6Any))
        {
            return listening;
        }

        IReadOnlyList<IPAddress> own = _context.Network is TunnelNetwork tunnel ? tunnel.Tunnel.Addresses : [];
        var family = expected is null ? AddressFamily.InterNetwork : Socks5Protocol.Unmap(expected).AddressFamily;
        return own.FirstOrDefault(a => a.AddressFamily == family) ?? own.FirstOrDefault() ?? listening;
    }

    private static IPEndPoint? RemoteEndPointOf(Stream stream) => stream switch
    {
        TunnelStream tunnel => tunnel.RemoteEndPoint,
        NetworkStream network => network.Socket.RemoteEndPoint as IPEndPoint,
        _ => null,
    };

    private async Task FailBindAsync(NetworkStream stream, EndPoint? client, string what, SocketError error, CancellationToken cancellationToken)
    {
        var reply = error == SocketError.HostNotFound ? Socks5Protocol.ReplyHostUnreachable : Socks5Protocol.ReplyGeneralFailure;
        Counters.OnFailed();
        Log.BindFailed(_logger, client, what, error, Socks5Protocol.ReplyName(reply));
        await ReplyAsync(stream, reply, null, cancellationToken).ConfigureAwait(false);
    }
}
