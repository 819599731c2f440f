using System.Collections.Immutable;
using Sharptun.Crypto;

namespace Sharptun.Device.Uapi;

/// <summary>
/// An <see cref="IUapiDevice"/> that only holds configuration: it applies change sets with the device's rules
/// (ordering, replace_peers, remove, update_only, the own-key rule, allowed IPs moving between peers) and reports
/// them back, but moves no packets, binds no port and never handshakes (counters stay zero).
/// </summary>
/// <remarks>
/// The daemon hosts it until the WireGuard device pipeline plugs in, and tests use it as the reference model of
/// the UAPI semantics. Thread-safe: <see cref="Apply"/> builds the new state aside and swaps it in under a lock,
/// so a failed apply changes nothing and readers never see half a change.
/// </remarks>
public sealed class UapiConfigStore : IUapiDevice
{
    private readonly Lock _gate = new();
    private DeviceSnapshot _state = new() { Peers = ImmutableArray<PeerSnapshot>.Empty };

    /// <summary>Number of successful applies (for tests and diagnostics).</summary>
    public int ApplyCount { get; private set; }

    /// <inheritdoc/>
    public DeviceSnapshot GetSnapshot()
    {
        lock (_gate)
        {
            // Copies of the keys: the caller clears what it gets.
            return _state with
            {
                PrivateKey = Copy(_state.PrivateKey),
                Peers = _state.Peers.Select(p => p with { PublicKey = Copy(p.PublicKey)!.Value, PresharedKey = Copy(p.PresharedKey) }).ToImmutableArray(),
            };
        }
    }

    /// <inheritdoc/>
    public UapiError? Apply(UapiChangeSet changes)
    {
        ArgumentNullException.ThrowIfNull(changes);
        lock (_gate)
        {
            var privateKey = _state.PrivateKey;
            if (changes.PrivateKey is { } newKey)
            {
                privateKey = newKey.IsZero ? null : Copy(newKey);
            }

            var listenPort = changes.ListenPort ?? _state.ListenPort;
            var fwMark = changes.FwMark ?? _state.FwMark;
            var ownPublic = PublicKeyOf(privateKey);

            var peers = changes.ReplacePeers ? new List<PeerSnapshot>() : [.. _state.Peers];
            foreach (var change in changes.Peers)
            {
                if (ownPublic is { } own && own == change.PublicKey)
                {
                    continue; // wireguard-go ignores a peer section naming the device's own key
                }

                var index = peers.FindIndex(p => p.PublicKey == change.PublicKey);
                if (change.Remove)
                {
                    if (index >= 0)
                    {
                        peers.RemoveAt(index);
                    }

                    continue;
                }

                if (index < 0)
                {
                    if (change.UpdateOnly)
                    {
                        continue;
                    }

                    peers.Add(new PeerSnapshot { PublicKey = Copy(change.PublicKey)!.Value, AllowedIps = ImmutableArray<IpPrefix>.Empty });
                    index = peers.Count - 1;
                }

                var peer = peers[index];
                if (change.PresharedKey is { } psk)
                {
                    peer = peer with { PresharedKey = psk.IsZero ? null : Copy(psk) };
                }

                if (change.Endpoint is { } endpoint)
                {
                    peer = peer with { Endpoint = endpoint };
                }

                if (change.PersistentKeepaliveInterval is { } keepalive)
                {
                    peer = peer with { PersistentKeepaliveInterval = keepalive };
                }

                var allowed = change.ReplaceAllowedIps ? new List<IpPrefix>() : [.. peer.AllowedIps];
                foreach (var prefix in change.AllowedIps)
                {
                    var masked = prefix.Masked();
                    for (var i = 0; i < peers.Count; i++)
                    {
                        if (i != index && peers[i].AllowedIps.Contains(masked))
                        {
                            peers[i] = peers[i] with { AllowedIps = peers[i].AllowedIps.Items.Remove(masked) };
                        }
                    }

                    if (!allowed.Contains(masked))
                    {
                        allowed.Add(masked);
                    }
                }

                peers[index] = peer with { AllowedIps = allowed.ToImmutableArray() };
            }

            _state = new DeviceSnapshot { PrivateKey = privateKey, ListenPort = listenPort, FwMark = fwMark, Peers = peers.ToImmutableArray() };
            ApplyCount++;
            return null;
        }
    }

    private static Key? Copy(Key? key) => key is { IsDefault: false } k ? new Key(k.AsSpan()) : null;

    private static Key? PublicKeyOf(Key? privateKey)
    {
        if (privateKey is not { IsZero: false } k)
        {
            return null;
        }

        Span<byte> pub = stackalloc byte[Key.Size];
        X25519.PublicKey(k.AsSpan(), pub);
        return new Key(pub);
    }
}
