using System.Buffers.Binary;
using System.Net;
using Sharptun.Transport;

namespace Sharptun.Device.Routing;

/// <summary>
/// The cryptokey routing table (whitepaper §2): IPv4 and IPv6 prefixes → peer, longest-prefix match.
/// </summary>
/// <remarks>
/// <para>Structure: one path-compressed binary trie per address family (the shape of wireguard-go's
/// allowedips.go and the kernel's). Both families share one 128-bit key space: an IPv4 address is placed in
/// the top 32 bits, so a node's key is a <see cref="UInt128"/> compared with one XOR and a mask.</para>
/// <para>Thread-safety: <see cref="Lookup(ReadOnlySpan{byte})"/> is lock-free and wait-free — it reads the current root once and
/// walks immutable nodes, so it may run on any number of threads concurrently with writers and never sees a
/// half-made change. Writers (<see cref="Insert"/>, <see cref="Remove"/>, <see cref="RemoveByPeer"/>,
/// <see cref="Clear"/>) serialise on an internal lock, copy the O(depth) nodes on the changed path and publish
/// the new root with a release write. A lookup racing a write sees either the old or the new table.
/// <see cref="EntriesForPeer"/> takes the writer lock.</para>
/// <para>Peers are compared by reference. Lookup allocates nothing; writes allocate O(depth) nodes and do O(1)
/// work on the per-peer lists, so moving n prefixes from one peer to another is O(n · depth).</para>
/// </remarks>
internal sealed class AllowedIps<TPeer>
    where TPeer : class
{
    private readonly Lock _writeLock = new();

    // Per-peer prefixes in insertion order (what `wg show` and UAPI get list, like wireguard-go's per-peer list),
    // with O(1) removal: moving n prefixes between peers is O(n), not a List.Remove scan per prefix.
    private readonly Dictionary<TPeer, PrefixList> _byPeer = new(ReferenceEqualityComparer.Instance);

    private Node? _root4;
    private Node? _root6;

    /// <summary>Number of prefixes in the table.</summary>
    public int Count
    {
        get
        {
            lock (_writeLock)
            {
                var n = 0;
                foreach (var list in _byPeer.Values)
                {
                    n += list.Count;
                }

                return n;
            }
        }
    }

    /// <summary>
    /// Longest-prefix match. <paramref name="destination"/> is an IPv4 (4 bytes) or IPv6 (16 bytes) address in
    /// network byte order; any other length returns null. Returns the owning peer or null. Lock-free, no allocation.
    /// </summary>
    public TPeer? Lookup(ReadOnlySpan<byte> destination)
    {
        Node? node;
        UInt128 key;
        if (destination.Length == 4)
        {
            node = Volatile.Read(ref _root4);
            key = (UInt128)BinaryPrimitives.ReadUInt32BigEndian(destination) << 96;
        }
        else if (destination.Length == 16)
        {
            node = Volatile.Read(ref _root6);
            key = BinaryPrimitives.ReadUInt128BigEndian(destination);
        }
        else
        {
            return null;
        }

        // Two 64-bit halves instead of UInt128 operators: no variable-width shift on the hot path.
        var hi = (ulong)(key >> 64);
        var lo = (ulong)key;
        TPeer? found = null;
        while (node is not null)
        {
            if ((((hi ^ node.KeyHi) & node.MaskHi) | ((lo ^ node.KeyLo) & node.MaskLo)) != 0)
            {
                break;
            }

            if (node.Peer is not null)
            {
                found = node.Peer;
            }

            // A /128 node has no bit to test (BitHi = BitLo = 0) and no children: the walk ends at Child0 = null.
            node = ((hi & node.BitHi) | (lo & node.BitLo)) == 0 ? node.Child0 : node.Child1;
        }

        return found;
    }

    /// <summary>Longest-prefix match for an <see cref="IPAddress"/> (convenience; allocates nothing beyond the stack).</summary>
    public TPeer? Lookup(IPAddress destination)
    {
        ArgumentNullException.ThrowIfNull(destination);
        Span<byte> bytes = stackalloc byte[16];
        return Lookup(bytes[..IpAddr.FromIPAddress(destination).WriteTo(bytes)]);
    }

    /// <summary>
    /// Maps <paramref name="prefix"/> (host bits masked first: 10.0.0.1/24 becomes 10.0.0.0/24) to
    /// <paramref name="peer"/>. If the identical prefix already belongs to another peer, it moves to this one.
    /// </summary>
    /// <exception cref="ArgumentException">The prefix length is outside the family's range.</exception>
    public void Insert(IpPrefix prefix, TPeer peer)
    {
        ArgumentNullException.ThrowIfNull(peer);
        var (masked, key, cidr, v4) = Normalize(prefix);
        lock (_writeLock)
        {
            TPeer? previous = null;
            var root = v4 ? _root4 : _root6;
            var newRoot = InsertNode(root, key, cidr, peer, ref previous);
            if (previous is not null)
            {
                if (ReferenceEquals(previous, peer))
                {
                    return;
                }

                var oldList = _byPeer[previous];
                oldList.Remove(masked);
                if (oldList.Count == 0)
                {
                    _byPeer.Remove(previous);
                }
            }

            if (!_byPeer.TryGetValue(peer, out var list))
            {
                list = new PrefixList();
                _byPeer.Add(peer, list);
            }

            list.Add(masked);
            Publish(v4, newRoot);
        }
    }

    /// <summary>
    /// Removes <paramref name="prefix"/> (host bits masked) if it currently belongs to <paramref name="peer"/>.
    /// Returns false (and changes nothing) when the prefix is absent or owned by another peer.
    /// </summary>
    public bool Remove(IpPrefix prefix, TPeer peer)
    {
        ArgumentNullException.ThrowIfNull(peer);
        var (masked, key, cidr, v4) = Normalize(prefix);
        lock (_writeLock)
        {
            if (!RemoveLocked(key, cidr, v4, peer))
            {
                return false;
            }

            var list = _byPeer[peer];
            list.Remove(masked);
            if (list.Count == 0)
            {
                _byPeer.Remove(peer);
            }

            return true;
        }
    }

    /// <summary>Removes every prefix owned by <paramref name="peer"/> (when a peer is removed or replace_allowed_ips).</summary>
    public void RemoveByPeer(TPeer peer)
    {
        ArgumentNullException.ThrowIfNull(peer);
        lock (_writeLock)
        {
            if (!_byPeer.Remove(peer, out var list))
            {
                return;
            }

            foreach (var prefix in list)
            {
                var (_, key, cidr, v4) = Normalize(prefix);
                RemoveLocked(key, cidr, v4, peer);
            }
        }
    }

    /// <summary>The prefixes owned by <paramref name="peer"/>, masked, in insertion order (a new array).</summary>
    public IpPrefix[] EntriesForPeer(TPeer peer)
    {
        ArgumentNullException.ThrowIfNull(peer);
        lock (_writeLock)
        {
            return _byPeer.TryGetValue(peer, out var list) ? list.ToArray() : [];
        }
    }

    /// <summary>Removes everything.</summary>
    public void Clear()
    {
        lock (_writeLock)
        {
            _byPeer.Clear();
            Volatile.Write(ref _root4, null);
            Volatile.Write(ref _root6, null);
        }
    }

    private bool RemoveLocked(UInt128 key, int cidr, bool v4, TPeer peer)
    {
        var removed = false;
        var root = v4 ? _root4 : _root6;
        var newRoot = RemoveNode(root, key, cidr, peer, ref removed);
        if (removed)
        {
            Publish(v4, newRoot);
        }

        return removed;
    }

    private void Publish(bool v4, Node? root)
    {
        if (v4)
        {
            Volatile.Write(ref _root4, root);
        }
        else
        {
            Volatile.Write(ref _root6, root);
        }
    }

    private static (IpPrefix Masked, UInt128 Key, int Cidr, bool V4) Normalize(IpPrefix prefix)
    {
        var v4 = prefix.IsIPv4;
        if (prefix.Length < 0 || prefix.Length > (v4 ? 32 : 128))
        {
            throw new ArgumentException($"Prefix length {prefix.Length} is out of range.", nameof(prefix));
        }

        var masked = prefix.Masked(); // also drops any IPv6 scope id
        return (masked, IpPrefix.ToKey(masked.Address), prefix.Length, v4);
    }

    private static int Bit(UInt128 key, int index) => (int)(key >> (127 - index)) & 1;

    private static UInt128 MaskOf(int cidr) => cidr == 0 ? UInt128.Zero : UInt128.MaxValue << (128 - cidr);

    private static int CommonBits(UInt128 a, UInt128 b) => (int)UInt128.LeadingZeroCount(a ^ b);

    // Copy-on-write insert: returns the new subtree root; nodes off the path are shared with the old tree.
    private static Node InsertNode(Node? node, UInt128 key, int cidr, TPeer peer, ref TPeer? previous)
    {
        if (node is null)
        {
            return new Node(key, cidr, peer, null, null);
        }

        var common = Math.Min(Math.Min(CommonBits(node.Key, key), node.Cidr), cidr);
        if (common == node.Cidr && node.Cidr == cidr)
        {
            previous = node.Peer;
            return ReferenceEquals(node.Peer, peer) ? node : new Node(node.Key, node.Cidr, peer, node.Child0, node.Child1);
        }

        if (common == node.Cidr)
        {
            // The new prefix lies below this node.
            return Bit(key, node.Cidr) == 0
                ? new Node(node.Key, node.Cidr, node.Peer, InsertNode(node.Child0, key, cidr, peer, ref previous), node.Child1)
                : new Node(node.Key, node.Cidr, node.Peer, node.Child0, InsertNode(node.Child1, key, cidr, peer, ref previous));
        }

        if (common == cidr)
        {
            // The new prefix is an ancestor of this node.
            return Bit(node.Key, cidr) == 0
                ? new Node(key, cidr, peer, node, null)
                : new Node(key, cidr, peer, null, node);
        }

        // They diverge at bit `common`: a peerless branch node joins them.
        var leaf = new Node(key, cidr, peer, null, null);
        return Bit(key, common) == 0
            ? new Node(key & MaskOf(common), common, null, leaf, node)
            : new Node(key & MaskOf(common), common, null, node, leaf);
    }

    private static Node? RemoveNode(Node? node, UInt128 key, int cidr, TPeer peer, ref bool removed)
    {
        if (node is null || node.Cidr > cidr || ((key ^ node.Key) & node.Mask) != UInt128.Zero)
        {
            return node;
        }

        if (node.Cidr == cidr)
        {
            if (!ReferenceEquals(node.Peer, peer))
            {
                return node;
            }

            removed = true;
            return Collapse(null, node.Child0, node.Child1, node);
        }

        if (Bit(key, node.Cidr) == 0)
        {
            var child = RemoveNode(node.Child0, key, cidr, peer, ref removed);
            return removed ? Collapse(node.Peer, child, node.Child1, node) : node;
        }
        else
        {
            var child = RemoveNode(node.Child1, key, cidr, peer, ref removed);
            return removed ? Collapse(node.Peer, node.Child0, child, node) : node;
        }
    }

    // A peerless node with fewer than two children carries no information: splice it out (path compression).
    private static Node? Collapse(TPeer? peer, Node? child0, Node? child1, Node template)
    {
        if (peer is null)
        {
            if (child0 is null)
            {
                return child1;
            }

            if (child1 is null)
            {
                return child0;
            }
        }

        return new Node(template.Key, template.Cidr, peer, child0, child1);
    }

    /// <summary>
    /// One peer's prefixes in insertion order: a linked list for the order plus a prefix → node index, so add,
    /// remove and contains are O(1) (wireguard-go unlinks a node from the peer's list the same way).
    /// </summary>
    private sealed class PrefixList
    {
        private readonly LinkedList<IpPrefix> _order = new();
        private readonly Dictionary<IpPrefix, LinkedListNode<IpPrefix>> _index = new();

        public int Count => _index.Count;

        public void Add(IpPrefix prefix)
        {
            if (!_index.ContainsKey(prefix))
            {
                _index.Add(prefix, _order.AddLast(prefix));
            }
        }

        public bool Remove(IpPrefix prefix)
        {
            if (!_index.Remove(prefix, out var node))
            {
                return false;
            }

            _order.Remove(node);
            return true;
        }

        public IpPrefix[] ToArray()
        {
            var result = new IpPrefix[_order.Count];
            _order.CopyTo(result, 0);
            return result;
        }

        public LinkedList<IpPrefix>.Enumerator GetEnumerator() => _order.GetEnumerator();
    }

    private sealed class Node(UInt128 key, int cidr, TPeer? peer, Node? child0, Node? child1)
    {
        public readonly UInt128 Key = key;
        public readonly UInt128 Mask = MaskOf(cidr);
        public readonly ulong KeyHi = (ulong)(key >> 64);
        public readonly ulong KeyLo = (ulong)key;
        public readonly ulong MaskHi = (ulong)(MaskOf(cidr) >> 64);
        public readonly ulong MaskLo = (ulong)MaskOf(cidr);

        // The bit after the prefix, which picks the child (zero for /128).
        public readonly ulong BitHi = cidr < 64 ? 1UL << (63 - cidr) : 0;
        public readonly ulong BitLo = cidr is >= 64 and < 128 ? 1UL << (127 - cidr) : 0;
        public readonly int Cidr = cidr;
        public readonly TPeer? Peer = peer;
        public readonly Node? Child0 = child0;
        public readonly Node? Child1 = child1;
    }
}
