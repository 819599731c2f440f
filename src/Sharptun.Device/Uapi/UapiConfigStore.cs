using Sharptun.Device.Routing;
using Sharptun.Protocol;
using System.Collections.Immutable;
using Sharptun.Crypto;

namespace Sharptun.Device.Uapi;

/// <summary>
/// An <see cref="IUapiDevice"/> that only holds configuration: it applies change sets with the device's rules
/// (ordering, replace_peers, remove, update_only, the own-key rule, allowed IPs moving between peers) and reports
/// them back, but moves no packets, binds no port and never handshakes (counters stay zero).
/// </summary>
/// <remarks>
/// Tests use it as the reference model of the UAPI semantics and as the device behind a UAPI server (the daemon
/// serves the real <c>WireGuardDevice</c>). Thread-safe: <see cref="Apply"/> builds the new state aside and swaps it
/// in under a lock, so a failed apply changes nothing and readers never see half a change. An apply is linear in the
/// size of the state plus the request (see <c>PeerTable</c>), so a large move does not hold the lock for long.
/// </remarks>
internal sealed class UapiConfigStore : IUapiDevice
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

            var peers = new PeerTable(changes.ReplacePeers ? ImmutableArray<PeerSnapshot>.Empty : _state.Peers.Items);
            foreach (var change in changes.Peers)
            {
                if (ownPublic is { } own && own == change.PublicKey)
                {
                    continue; // wireguard-go ignores a peer section naming the device's own key
                }

                var entry = peers.Find(change.PublicKey);
                if (change.Remove)
                {
                    if (entry is not null)
                    {
                        peers.Remove(entry);
                    }

                    continue;
                }

                if (entry is null)
                {
                    if (change.UpdateOnly)
                    {
                        continue;
                    }

                    entry = peers.Add(new PeerSnapshot { PublicKey = Copy(change.PublicKey)!.Value, AllowedIps = ImmutableArray<IpPrefix>.Empty });
                }

                var peer = entry.Snapshot;
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

                entry.Snapshot = peer;
                if (change.ReplaceAllowedIps)
                {
                    peers.ClearAllowedIps(entry);
                }

                foreach (var prefix in change.AllowedIps)
                {
                    peers.AddAllowedIp(entry, prefix.Masked()); // moves it from whichever peer holds it
                }
            }

            _state = new DeviceSnapshot { PrivateKey = privateKey, ListenPort = listenPort, FwMark = fwMark, Peers = peers.Build() };
            ApplyCount++;
            return null;
        }
    }

    /// <summary>
    /// The peers while one change set is applied, with the lookups that keep <see cref="Apply"/> linear in the size of
    /// the state plus the request (issue 7 follow-up to item 10: it used to scan every peer's list per prefix and rebuild
    /// the losing peer's array per move, quadratic for a large move): peers by public key, and — built on the first
    /// allowed-IP operation — each prefix's owner and its slot in the owner's insertion-ordered list. A prefix that
    /// leaves a peer leaves a stale slot behind (its owner entry names another peer or a later slot), dropped when
    /// the snapshot is built, so the remaining prefixes keep their order and a prefix that comes back goes to the end,
    /// exactly as removing it from a list and appending it would.
    /// </summary>
    private sealed class PeerTable
    {
        private readonly List<Entry> _peers;
        private readonly Dictionary<Key, Entry> _byKey;
        private Dictionary<IpPrefix, (Entry Owner, int Slot)>? _owners;

        public PeerTable(ImmutableArray<PeerSnapshot> peers)
        {
            _peers = new List<Entry>(peers.Length);
            _byKey = new Dictionary<Key, Entry>(peers.Length);
            foreach (var p in peers)
            {
                Add(p);
            }
        }

        public Entry? Find(Key publicKey) => _byKey.GetValueOrDefault(publicKey);

        /// <summary>Appends a peer (the caller checked that its key is not present).</summary>
        public Entry Add(PeerSnapshot snapshot)
        {
            var e = new Entry(snapshot);
            if (_owners is not null)
            {
                Materialize(e);
            }

            _peers.Add(e);
            _byKey.Add(snapshot.PublicKey, e);
            return e;
        }

        public void Remove(Entry e)
        {
            if (_owners is not null)
            {
                ReleaseAll(e);
            }

            e.Removed = true;
            _byKey.Remove(e.Snapshot.PublicKey);
        }

        public void ClearAllowedIps(Entry e)
        {
            EnsureOwners();
            ReleaseAll(e);
            e.Order!.Clear();
            e.AllowedChanged = true;
        }

        /// <summary>Gives <paramref name="prefix"/> (masked) to <paramref name="e"/>; a no-op when it already holds it.</summary>
        public void AddAllowedIp(Entry e, IpPrefix prefix)
        {
            var owners = EnsureOwners();
            if (owners.TryGetValue(prefix, out var current))
            {
                if (ReferenceEquals(current.Owner, e))
                {
                    return; // already this peer's: keeps its place
                }

                current.Owner.AllowedChanged = true; // its slot goes stale
            }

            e.Order!.Add(prefix);
            owners[prefix] = (e, e.Order.Count - 1);
            e.AllowedChanged = true;
        }

        public ImmutableArray<PeerSnapshot> Build()
        {
            var result = ImmutableArray.CreateBuilder<PeerSnapshot>(_peers.Count);
            foreach (var e in _peers)
            {
                if (e.Removed)
                {
                    continue;
                }

                if (!e.AllowedChanged)
                {
                    result.Add(e.Snapshot);
                    continue;
                }

                var allowed = ImmutableArray.CreateBuilder<IpPrefix>(e.Order!.Count);
                for (var i = 0; i < e.Order.Count; i++)
                {
                    if (IsLive(e, i))
                    {
                        allowed.Add(e.Order[i]);
                    }
                }

                result.Add(e.Snapshot with { AllowedIps = allowed.ToImmutable() });
            }

            return result.ToImmutable();
        }

        private Dictionary<IpPrefix, (Entry Owner, int Slot)> EnsureOwners()
        {
            if (_owners is null)
            {
                _owners = new Dictionary<IpPrefix, (Entry, int)>();
                foreach (var e in _peers)
                {
                    if (!e.Removed)
                    {
                        Materialize(e);
                    }
                }
            }

            return _owners;
        }

        private void Materialize(Entry e)
        {
            var prefixes = e.Snapshot.AllowedIps.Items;
            e.Order = new List<IpPrefix>(prefixes.Length);
            foreach (var prefix in prefixes)
            {
                e.Order.Add(prefix);
                _owners![prefix] = (e, e.Order.Count - 1);
            }
        }

        private bool IsLive(Entry e, int slot) =>
            _owners!.TryGetValue(e.Order![slot], out var o) && ReferenceEquals(o.Owner, e) && o.Slot == slot;

        private void ReleaseAll(Entry e)
        {
            for (var i = 0; i < e.Order!.Count; i++)
            {
                if (IsLive(e, i))
                {
                    _owners!.Remove(e.Order[i]);
                }
            }
        }

        public sealed class Entry(PeerSnapshot snapshot)
        {
            /// <summary>The peer's state; its AllowedIps is stale once <see cref="AllowedChanged"/> is set.</summary>
            public PeerSnapshot Snapshot { get; set; } = snapshot;

            public bool Removed { get; set; }

            public bool AllowedChanged { get; set; }

            /// <summary>The allowed IPs in insertion order, including stale slots (null until the owner map exists).</summary>
            public List<IpPrefix>? Order { get; set; }
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
