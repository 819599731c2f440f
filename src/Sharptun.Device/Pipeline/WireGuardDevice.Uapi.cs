using System.Collections.Immutable;
using System.Net;
using System.Net.Sockets;
using Sharptun.Device.Config;
using Sharptun.Device.Routing;
using Sharptun.Device.Uapi;
using Sharptun.Protocol;
using Sharptun.Transport;

namespace Sharptun.Device.Pipeline;

// Configuration (UAPI get/set, config files). Everything here runs under _configLock.
//
// Apply is all-or-nothing: the steps that can fail (opening a bind on the new listen_port, setting the fwmark) run
// first, on the side; only when they succeeded is anything changed — then private key, bind swap, fwmark,
// replace_peers and the peer sections in request order (UapiChangeSet's documented order, wireguard-go's semantics).
// The data path sees each change atomically: the allowed-IPs table publishes whole tables, endpoints are swapped
// boxes, peers are marked removed before their keys are wiped.
public sealed partial class WireGuardDevice
{
    /// <inheritdoc/>
    public DeviceSnapshot GetSnapshot()
    {
        lock (_configLock)
        {
            var peers = ImmutableArray.CreateBuilder<PeerSnapshot>(_peerList.Length);
            foreach (var peer in _peerList)
            {
                var psk = peer.Protocol.PresharedKey;
                var last = peer.Protocol.LastHandshakeTime;
                peers.Add(new PeerSnapshot
                {
                    PublicKey = peer.PublicKey.Copy(),
                    PresharedKey = psk.IsZero ? null : psk,
                    Endpoint = peer.TryGetEndpoint(out var endpoint) ? endpoint.ToIPEndPoint() : null,
                    LastHandshakeUnixNanoseconds = last is { } t ? (t - DateTime.UnixEpoch).Ticks * 100 : 0,
                    TxBytes = (ulong)peer.TxBytes,
                    RxBytes = (ulong)peer.RxBytes,
                    PersistentKeepaliveInterval = peer.PersistentKeepaliveSeconds,
                    AllowedIps = ImmutableArray.Create(_allowedIps.EntriesForPeer(peer)),
                });
            }

            return new DeviceSnapshot
            {
                PrivateKey = _hasPrivateKey ? _protocol.PrivateKey : null, // a fresh copy
                ListenPort = ListenPort,
                FwMark = _fwMark,
                Peers = peers.ToImmutable(),
                Drops = DropCounts(),
            };
        }
    }

    private ImmutableArray<DropCount> DropCounts()
    {
        var drops = ImmutableArray.CreateBuilder<DropCount>();
        foreach (var reason in Enum.GetValues<DropReason>())
        {
            var n = Counters[reason];
            if (n != 0)
            {
                drops.Add(new DropCount(reason.ToString(), n));
            }
        }

        return drops.ToImmutable();
    }

    /// <inheritdoc/>
    public UapiError? Apply(UapiChangeSet changes)
    {
        ArgumentNullException.ThrowIfNull(changes);
        ObjectDisposedException.ThrowIf(IsDisposed, this);
        lock (_configLock)
        {
            // 1. Everything that can fail, on the side.
            IDatagramBind? newBind = null;
            if (changes.ListenPort is { } port && (_bind is null || port == 0 || port != _bind.LocalPort))
            {
                if (port != 0 || _bind is null)
                {
                    try
                    {
                        newBind = OpenBind(port);
                    }
                    catch (Exception e) when (e is IOException or SocketException or InvalidOperationException or UnauthorizedAccessException)
                    {
                        return new UapiError(UapiErrno.PortInUse, $"Failed to set listen_port: {e.Message}");
                    }
                }
            }

            var mark = changes.FwMark ?? _fwMark;
            if (changes.FwMark is not null || (newBind is not null && mark != 0))
            {
                try
                {
                    (newBind ?? _bind)?.SetMark(mark);
                }
                catch (Exception e) when (e is IOException or SocketException or InvalidOperationException or UnauthorizedAccessException)
                {
                    newBind?.Dispose();
                    return new UapiError(UapiErrno.PortInUse, $"Failed to update fwmark: {e.Message}");
                }
            }

            // 2. Commit: nothing below fails.
            var now = _clock.Now;
            if (changes.PrivateKey is { } privateKey)
            {
                SetPrivateKeyLocked(privateKey);
            }

            if (newBind is not null)
            {
                var old = _bind;
                _bind = newBind; // before disposing the old one: its receiver wakes with 0 and picks up the new bind
                old?.Dispose();
                Log.BindUpdated(_log, newBind.LocalPort);
            }

            _fwMark = mark;
            if (changes.ReplacePeers)
            {
                foreach (var peer in _peerList)
                {
                    RemovePeerLocked(peer);
                }
            }

            var own = _hasPrivateKey ? _protocol.PublicKey : (Key?)null;
            foreach (var change in changes.Peers)
            {
                var key = change.PublicKey;
                if (own is { } o && o == key)
                {
                    continue; // wireguard-go ignores a section naming our own public key
                }

                _peers.TryGetValue(key, out var peer);
                if (change.Remove)
                {
                    if (peer is not null)
                    {
                        RemovePeerLocked(peer);
                    }

                    continue;
                }

                if (peer is null)
                {
                    if (change.UpdateOnly)
                    {
                        continue;
                    }

                    peer = AddPeerLocked(key);
                }

                if (change.PresharedKey is { } psk)
                {
                    peer.Protocol.SetPresharedKey(psk); // copied; all-zero = none
                }

                if (change.Endpoint is { } endpoint)
                {
                    peer.SetEndpoint(UdpEndpoint.FromIPEndPoint(endpoint));
                }

                if (change.PersistentKeepaliveInterval is { } keepalive && keepalive != peer.PersistentKeepaliveSeconds)
                {
                    peer.PersistentKeepaliveSeconds = keepalive;
                    peer.Protocol.SetPersistentKeepalive(TimeSpan.FromSeconds(keepalive), now);
                }

                if (change.ReplaceAllowedIps)
                {
                    _allowedIps.RemoveByPeer(peer);
                }

                foreach (var prefix in change.AllowedIps)
                {
                    _allowedIps.Insert(prefix, peer);
                }
            }
        }

        WakeTimers();
        return null;
    }

    /// <summary>
    /// Applies a wg config file (<c>wg setconf</c> when <paramref name="replace"/>, else <c>wg addconf</c>), resolving
    /// endpoint host names now (<see cref="WireGuardDeviceOptions.ResolveHostname"/>, default DNS). wg-quick settings
    /// are ignored. Returns null on success; nothing changes on failure.
    /// </summary>
    public UapiError? ApplyConfig(WgConfig config, bool replace = true)
    {
        ArgumentNullException.ThrowIfNull(config);
        var resolve = _options.ResolveHostname ?? ResolveWithDns;
        if (!UapiConfigConverter.TryToChangeSet(config, e => resolve(e.Host) is { } a ? new IPEndPoint(a, e.Port) : null, replace, out var changes, out var errors))
        {
            return new UapiError(UapiErrno.Invalid, string.Join("; ", errors));
        }

        try
        {
            return Apply(changes!);
        }
        finally
        {
            changes!.ClearSecrets();
        }
    }

    private static IPAddress? ResolveWithDns(string host)
    {
        try
        {
            var addresses = Dns.GetHostAddresses(host);
            foreach (var a in addresses)
            {
                if (a.AddressFamily == AddressFamily.InterNetwork)
                {
                    return a; // wg prefers the first IPv4 result (getaddrinfo order, AF_UNSPEC)
                }
            }

            return addresses.Length > 0 ? addresses[0] : null;
        }
        catch (SocketException)
        {
            return null;
        }
    }

    /// <summary>Test hook: the protocol core.</summary>
    internal ProtocolDevice ProtocolForTest => _protocol;

    private void SetPrivateKeyLocked(Key privateKey)
    {
        if (privateKey.IsZero)
        {
            if (_hasPrivateKey)
            {
                _hasPrivateKey = false;
                _protocol.ClearPrivateKey(); // wipes the key, every session and every static-static secret
                foreach (var peer in _peerList)
                {
                    DropStaged(peer);
                }
            }

            return;
        }

        var key = privateKey;
        using (var current = _protocol.PrivateKey) // a copy, wiped on leaving
        {
            if (_hasPrivateKey && current == key)
            {
                return;
            }
        }

        _protocol.SetPrivateKey(key);
        _hasPrivateKey = true;

        // wireguard-go: a peer with our new public key is removed.
        if (_peers.TryGetValue(_protocol.PublicKey, out var self))
        {
            RemovePeerLocked(self);
        }
    }

    private DevicePeer AddPeerLocked(Key key)
    {
        var protocolPeer = _protocol.AddPeer(key);
        protocolPeer.Mtu = _tun.Mtu; // padding never takes a packet past the tunnel MTU (wireguard-go calculatePaddingSize)
        var peer = new DevicePeer(protocolPeer, Math.Max(1, _options.StagedPacketsPerPeer), Math.Max(16, _options.PeerQueueCapacity),
            _options.QueueDelayTarget * _clock.Scale, _options.QueueDelayInterval * _clock.Scale); // real-time limits in clock time
        _peers.Add(protocolPeer.PublicKey, peer); // the peer's own copy: the change set's key is wiped by the caller
        _peerList = [.. _peerList, peer];
        return peer;
    }

    private void RemovePeerLocked(DevicePeer peer)
    {
        peer.MarkRemoved();
        _allowedIps.RemoveByPeer(peer);
        _protocol.RemovePeer(peer.PublicKey);
        _peers.Remove(peer.PublicKey);
        var list = new List<DevicePeer>(_peerList);
        list.Remove(peer);
        _peerList = [.. list];
        lock (peer.SendLock)
        {
            DropStaged(peer);
        }
    }
}
