using System.Buffers;
using System.Net;
using System.Net.Sockets;

namespace Sharptun.Proxy.Socks5;

/// <summary>
/// One UDP ASSOCIATE (RFC 1928 §7): a host UDP socket (the relay) bound to the address the client reached the server
/// at, and one UDP channel of the tunnel. Datagrams from the client (its control connection's address and, when it
/// named one, its port; otherwise the port of its first datagram) lose their SOCKS header and go into the tunnel;
/// datagrams from the tunnel gain a header naming their sender and go back to the client. Anything else is a counted
/// drop. The association ends when the control connection closes, after the idle timeout, or when the server stops.
/// </summary>
/// <remarks>
/// Memory per association is fixed: one 64 KiB pooled buffer per direction and at most
/// <see cref="MaxCachedNames"/> resolved names.
/// </remarks>
internal sealed class Socks5UdpAssociation : IDisposable
{
    /// <summary>Names resolved for datagrams with ATYP 0x03 kept per association (cleared when full).</summary>
    internal const int MaxCachedNames = 16;

    private const int MaxDatagram = 65535;
    private static readonly TimeSpan NameLifetime = TimeSpan.FromSeconds(60);

    private readonly Socks5Server _server;
    private readonly Socket _relay;
    private readonly IDatagramChannel _channel;
    private readonly IPAddress _clientAddress;
    private readonly TimeSpan _idleTimeout;
    private readonly Dictionary<string, (IPAddress Address, long Expires)> _names = new(StringComparer.OrdinalIgnoreCase);
    private int _clientPort;
    private IPEndPoint? _client;
    private long _lastActivity = Environment.TickCount64;
    private long _bytesUp;
    private long _bytesDown;

    public Socks5UdpAssociation(Socks5Server server, Socket relay, IDatagramChannel channel, IPAddress clientAddress, int clientPort, TimeSpan idleTimeout)
    {
        _server = server;
        _relay = relay;
        _channel = channel;
        _clientAddress = clientAddress;
        _clientPort = clientPort;
        _idleTimeout = idleTimeout;
    }

    /// <summary>Payload bytes sent into the tunnel.</summary>
    public long BytesUp => Interlocked.Read(ref _bytesUp);

    /// <summary>Payload bytes sent back to the client.</summary>
    public long BytesDown => Interlocked.Read(ref _bytesDown);

    /// <summary>Relays until <paramref name="control"/> closes, the idle timeout passes or <paramref name="cancellationToken"/> is cancelled; returns why it ended.</summary>
    public async Task<string> RunAsync(Stream control, CancellationToken cancellationToken)
    {
        using var stop = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        var up = ClientToTunnelAsync(stop.Token);
        var down = TunnelToClientAsync(stop.Token);
        var watch = WatchControlAsync(control, stop.Token);
        var reason = "the server stopped";
        try
        {
            while (true)
            {
                Task delay;
                if (_idleTimeout == Timeout.InfiniteTimeSpan)
                {
                    delay = Task.Delay(Timeout.Infinite, stop.Token);
                }
                else
                {
                    var quiet = Environment.TickCount64 - Volatile.Read(ref _lastActivity);
                    var left = (long)_idleTimeout.TotalMilliseconds - quiet;
                    if (left <= 0)
                    {
                        reason = "idle timeout";
                        break;
                    }

                    delay = Task.Delay(TimeSpan.FromMilliseconds(left), stop.Token);
                }

                var first = await Task.WhenAny(up, down, watch, delay).ConfigureAwait(false);
                if (first == watch)
                {
                    reason = "the control connection closed";
                    break;
                }

                if (first == up || first == down)
                {
                    reason = "a relay socket failed";
                    break;
                }

                if (cancellationToken.IsCancellationRequested)
                {
                    break;
                }
            }
        }
        finally
        {
            await stop.CancelAsync().ConfigureAwait(false);
            _relay.Dispose();
            _channel.Dispose();
            await Task.WhenAll(up, down, watch).ConfigureAwait(false);
        }

        return reason;
    }

    public void Dispose()
    {
        _relay.Dispose();
        _channel.Dispose();
    }

    private void Touch() => Volatile.Write(ref _lastActivity, Environment.TickCount64);

    private async Task WatchControlAsync(Stream control, CancellationToken cancellationToken)
    {
        // RFC 1928 §7: "A UDP association terminates when the TCP connection that the UDP ASSOCIATE request
        // arrived on terminates." Bytes the client sends on it meanwhile mean nothing and are discarded.
        var buffer = new byte[64];
        try
        {
            while (await control.ReadAsync(buffer, cancellationToken).ConfigureAwait(false) > 0)
            {
            }
        }
        catch (Exception e) when (e is IOException or SocketException or ObjectDisposedException or OperationCanceledException)
        {
        }
    }

    private async Task ClientToTunnelAsync(CancellationToken cancellationToken)
    {
        await Task.Yield();
        var buffer = ArrayPool<byte>.Shared.Rent(MaxDatagram);
        var any = new IPEndPoint(_relay.AddressFamily == AddressFamily.InterNetwork ? IPAddress.Any : IPAddress.IPv6Any, 0);
        try
        {
            while (true)
            {
                var received = await _relay.ReceiveFromAsync(buffer.AsMemory(0, MaxDatagram), SocketFlags.None, any, cancellationToken).ConfigureAwait(false);
                var from = (IPEndPoint)received.RemoteEndPoint;
                from = new IPEndPoint(Socks5Protocol.Unmap(from.Address), from.Port);
                if (!from.Address.Equals(_clientAddress) || (_clientPort != 0 && from.Port != _clientPort))
                {
                    // RFC 1928 §7: datagrams from any source other than the client are dropped.
                    _server.CountDrop(from, "not from the client's address and port");
                    continue;
                }

                if (_client is null)
                {
                    // The client named no port (or the one it named): the first datagram fixes it.
                    _clientPort = from.Port;
                    Volatile.Write(ref _client, from);
                }

                Touch();
                var datagram = buffer.AsSpan(0, received.ReceivedBytes);
                var parse = Socks5UdpHeader.TryParse(datagram, out var header);
                if (parse != Socks5UdpParse.Ok)
                {
                    _server.CountDrop(from, parse switch
                    {
                        Socks5UdpParse.Fragmented => "fragmented (FRAG is not 0; reassembly is not supported)",
                        Socks5UdpParse.UnknownAddressType => "unknown address type",
                        _ => "malformed header",
                    });
                    continue;
                }

                if (header.Port == 0)
                {
                    _server.CountDrop(from, "destination port 0");
                    continue;
                }

                var address = header.Address is { } literal ? Socks5Protocol.Unmap(literal) : await ResolveAsync(header.Host!, cancellationToken).ConfigureAwait(false);
                if (address is null)
                {
                    _server.CountDrop(from, $"'{header.Host}' does not resolve through the tunnel");
                    continue;
                }

                var payload = received.ReceivedBytes - header.PayloadOffset;
                try
                {
                    await _channel.SendToAsync(buffer.AsMemory(header.PayloadOffset, payload), new IPEndPoint(address, header.Port), cancellationToken).ConfigureAwait(false);
                }
                catch (SocketException e)
                {
                    _server.CountDrop(from, $"sending to {address} port {header.Port} failed: {e.SocketErrorCode}");
                    continue;
                }

                Interlocked.Add(ref _bytesUp, payload);
                _server.Counters.AddBytes(payload, 0);
            }
        }
        catch (Exception e) when (e is OperationCanceledException or ObjectDisposedException or SocketException or InvalidOperationException)
        {
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(buffer);
        }
    }

    private async Task TunnelToClientAsync(CancellationToken cancellationToken)
    {
        await Task.Yield();
        const int headroom = Socks5UdpHeader.MaxAddressHeader;
        var buffer = ArrayPool<byte>.Shared.Rent(headroom + MaxDatagram);
        try
        {
            while (true)
            {
                var received = await _channel.ReceiveFromAsync(buffer.AsMemory(headroom, MaxDatagram), cancellationToken).ConfigureAwait(false);
                Touch();
                var client = Volatile.Read(ref _client);
                var sender = (IPEndPoint)received.RemoteEndPoint;
                if (client is null)
                {
                    _server.CountDrop(sender, "a reply before the client sent anything");
                    continue;
                }

                var headerLength = Socks5Protocol.Unmap(sender.Address).AddressFamily == AddressFamily.InterNetwork ? 10 : 22;
                var start = headroom - headerLength;
                Socks5UdpHeader.Write(buffer.AsSpan(start, headerLength), sender);
                try
                {
                    await _relay.SendToAsync(buffer.AsMemory(start, headerLength + received.ReceivedBytes), SocketFlags.None, client, cancellationToken).ConfigureAwait(false);
                }
                catch (SocketException e) when (e.SocketErrorCode is not SocketError.OperationAborted)
                {
                    _server.CountDrop(client, $"sending to the client failed: {e.SocketErrorCode}");
                    continue;
                }

                Interlocked.Add(ref _bytesDown, received.ReceivedBytes);
                _server.Counters.AddBytes(0, received.ReceivedBytes);
            }
        }
        catch (Exception e) when (e is OperationCanceledException or ObjectDisposedException or SocketException or InvalidOperationException)
        {
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(buffer);
        }
    }

    private async ValueTask<IPAddress?> ResolveAsync(string host, CancellationToken cancellationToken)
    {
        var now = Environment.TickCount64;
        if (_names.TryGetValue(host, out var cached) && cached.Expires > now)
        {
            return cached.Address;
        }

        IPAddress address;
        try
        {
            address = Socks5Protocol.Unmap(await _server.Context.Network.ResolveAsync(host, cancellationToken).ConfigureAwait(false));
        }
        catch (SocketException)
        {
            return null;
        }

        if (_names.Count >= MaxCachedNames)
        {
            _names.Clear();
        }

        _names[host] = (address, now + (long)NameLifetime.TotalMilliseconds);
        return address;
    }
}
