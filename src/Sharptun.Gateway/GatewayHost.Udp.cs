using System.Collections.Concurrent;
using System.Net;
using System.Net.Sockets;

namespace Sharptun.Gateway;

// UDP: one connected host socket per (peer address and port, destination), closed when idle.
public sealed partial class GatewayHost
{
    private readonly ConcurrentDictionary<(IPEndPoint Source, IPEndPoint Destination), UdpFlow> _flows = new();

    /// <summary>UDP flows open now (for tests and diagnostics).</summary>
    internal int UdpFlowCount => _flows.Count;

    private async Task UdpLoopAsync()
    {
        var buffer = new byte[65536];
        while (!_stop.IsCancellationRequested)
        {
            TunnelDatagram d;
            try
            {
                d = await _udp.ReceiveAsync(buffer, _stop.Token).ConfigureAwait(false);
            }
            catch (Exception e) when (e is OperationCanceledException or ObjectDisposedException or IOException)
            {
                return;
            }

            var payload = buffer.AsMemory(0, d.Length);
            var destination = Normalize(d.Destination);
            var source = Normalize(d.Source);
            if (IsOwnAddress(destination.Address))
            {
                if (_options.Dns && destination.Port == DnsPort)
                {
                    AnswerDnsOverUdp(payload.ToArray(), source, destination);
                }
                else
                {
                    _udp.SendUnreachable(source, destination, payload.Span, prohibited: false);
                }

                continue;
            }

            var peer = _peers.Find(source.Address);
            var counters = Counters.For(peer);
            if (d.Truncated)
            {
                counters.CountUdpDropped();
                continue;
            }

            var key = (source, destination);
            for (var attempt = 0; attempt < 2; attempt++)
            {
                if (!_flows.TryGetValue(key, out var flow))
                {
                    if (_policy.Decide(destination) != GatewayVerdict.Allowed)
                    {
                        counters.CountUdpDenied();
                        _udp.SendUnreachable(source, destination, payload.Span, prohibited: true);
                        break;
                    }

                    flow = OpenFlow(source, destination, peer, counters);
                    if (flow is null)
                    {
                        _udp.SendUnreachable(source, destination, payload.Span, prohibited: true);
                        break;
                    }
                }

                if (flow.Send(payload.Span))
                {
                    break;
                }

                // The expiry closed it meanwhile: open a new one once.
                _flows.TryRemove(new KeyValuePair<(IPEndPoint, IPEndPoint), UdpFlow>(key, flow));
            }
        }
    }

    private UdpFlow? OpenFlow(IPEndPoint source, IPEndPoint destination, string peer, PeerCounters counters)
    {
        var lease = Counters.TryAdmit(peer);
        if (lease is null)
        {
            counters.CountUdpRefusedByCap();
            return null;
        }

        Socket socket;
        var target = _hostEndPoint(destination);
        try
        {
            socket = new Socket(target.AddressFamily, SocketType.Dgram, ProtocolType.Udp);
            socket.Connect(target);
        }
        catch (SocketException)
        {
            lease.Dispose();
            counters.CountUdpDropped();
            return null;
        }

        var flow = new UdpFlow(this, source, destination, socket, lease, counters);
        if (!_flows.TryAdd((source, destination), flow))
        {
            flow.Close(); // cannot happen: one receive loop adds flows
            return _flows.GetValueOrDefault((source, destination));
        }

        counters.CountUdpFlow();
        counters.AddOpenUdpFlows(1);
        flow.Start();
        return flow;
    }

    private void ExpireUdpFlows()
    {
        var idleMs = (long)_options.UdpIdleTimeout.TotalMilliseconds;
        var now = Environment.TickCount64;
        foreach (var (key, flow) in _flows)
        {
            if (now - flow.LastActivity >= idleMs && _flows.TryRemove(new KeyValuePair<(IPEndPoint, IPEndPoint), UdpFlow>(key, flow)))
            {
                flow.Close();
            }
        }
    }

    private void AnswerDnsOverUdp(byte[] query, IPEndPoint source, IPEndPoint destination)
    {
        if (!_dnsSlots.Wait(0))
        {
            Counters.For(_peers.Find(source.Address)).CountUdpDropped(); // more than MaxConcurrentDnsQueries pending
            return;
        }

        Track(async () =>
        {
            try
            {
                var response = await _dns.AnswerAsync(query, udp: true, _stop.Token).ConfigureAwait(false);
                if (response is not null)
                {
                    Counters.For(_peers.Find(source.Address)).CountDnsQuery();
                    await _udp.SendAsync(response, destination, source, _stop.Token).ConfigureAwait(false);
                }
            }
            catch (Exception e) when (e is OperationCanceledException or ObjectDisposedException or IOException or SocketException)
            {
                // stopping, or the reply does not fit the tunnel
            }
            finally
            {
                _dnsSlots.Release();
            }
        });
    }

    /// <summary>One UDP flow: a connected host socket and the loop that carries its replies back through the tunnel.</summary>
    private sealed class UdpFlow(GatewayHost host, IPEndPoint source, IPEndPoint destination, Socket socket, IDisposable lease, PeerCounters counters)
    {
        private long _lastActivity = Environment.TickCount64;
        private int _closed;

        public long LastActivity => Volatile.Read(ref _lastActivity);

        public void Start() => host.Track(ReceiveLoopAsync);

        /// <summary>Sends one datagram to the destination; false when the flow is already closed.</summary>
        public bool Send(ReadOnlySpan<byte> payload)
        {
            if (Volatile.Read(ref _closed) != 0)
            {
                return false;
            }

            Volatile.Write(ref _lastActivity, Environment.TickCount64);
            try
            {
                socket.Send(payload);
                counters.AddBytes(payload.Length, 0);
            }
            catch (SocketException e) when (e.SocketErrorCode == SocketError.ConnectionRefused)
            {
                // An earlier datagram drew a port unreachable from the destination (Linux reports it on the next call).
                host._udp.SendUnreachable(source, destination, payload, prohibited: false);
            }
            catch (SocketException)
            {
                counters.CountUdpDropped();
            }
            catch (ObjectDisposedException)
            {
                return false;
            }

            return true;
        }

        public void Close()
        {
            if (Interlocked.Exchange(ref _closed, 1) != 0)
            {
                return;
            }

            socket.Dispose();
            lease.Dispose();
            counters.AddOpenUdpFlows(-1);
        }

        private async Task ReceiveLoopAsync()
        {
            var buffer = new byte[host._tunnel.Mtu];
            try
            {
                while (true)
                {
                    int n;
                    try
                    {
                        n = await socket.ReceiveAsync(buffer, SocketFlags.None, host._stop.Token).ConfigureAwait(false);
                    }
                    catch (SocketException e) when (e.SocketErrorCode == SocketError.ConnectionRefused)
                    {
                        // RFC 1122 §4.1.3.3: pass the destination's port unreachable on to the peer.
                        host._udp.SendUnreachable(source, destination, [], prohibited: false);
                        continue;
                    }

                    Volatile.Write(ref _lastActivity, Environment.TickCount64);
                    try
                    {
                        await host._udp.SendAsync(buffer.AsMemory(0, n), destination, source, host._stop.Token).ConfigureAwait(false);
                        counters.AddBytes(0, n);
                    }
                    catch (SocketException)
                    {
                        counters.CountUdpDropped(); // larger than fits the tunnel MTU in one packet
                    }
                }
            }
            catch (Exception e) when (e is OperationCanceledException or ObjectDisposedException or SocketException or IOException)
            {
                // closed (idle expiry, stop) or the tunnel went away
            }
            finally
            {
                if (host._flows.TryRemove(new KeyValuePair<(IPEndPoint, IPEndPoint), UdpFlow>((source, destination), this)))
                {
                    Close();
                }
            }
        }
    }
}
