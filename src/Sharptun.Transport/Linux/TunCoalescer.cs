using System.Buffers.Binary;

namespace Sharptun.Transport.Linux;

/// <summary>
/// GRO for TUN writes: finds, in one batch of IP packets, runs of TCP segments of one flow that the kernel can take as
/// one super-packet (a virtio_net_hdr with VIRTIO_NET_HDR_GSO_TCPV4/TCPV6, include/uapi/linux/virtio_net.h), so one
/// write(2) carries up to 64 KB instead of one segment. The batch need not be in flow order: a small table of open
/// groups (one per recent flow) collects each flow's segments wherever they are in the batch, keeping each flow's order.
/// </summary>
/// <remarks>
/// <para>A segment joins a group when segmenting the super-packet again (<see cref="TunSegmenter.Segment"/>) gives back
/// exactly the original packets: same addresses, ports, acknowledgment number, window, TCP options and flags (ACK, with PSH
/// allowed only on the group's last segment); the next sequence number; the same payload size as the group's first segment
/// (only the last may be shorter); for IPv4 no options, no fragmentation, the same TOS, TTL and flags and consecutive
/// Identification values; for IPv6 the same traffic class, flow label and hop limit and no extension headers. Each segment's
/// own TCP checksum must be valid before it joins: the super-packet goes in with VIRTIO_NET_HDR_F_NEEDS_CSUM, which the
/// kernel trusts as checked (CHECKSUM_PARTIAL), so a bad checksum must not be hidden by merging.</para>
/// <para>All state lives in arrays sized once for the batch size: planning and building allocate nothing.</para>
/// </remarks>
internal sealed class TunCoalescer
{
    /// <summary>Most flows with an open group at once; an older group is closed (left as it is) when a new flow needs a slot.</summary>
    public const int FlowSlots = 8;

    private const byte RoleSingle = 0;
    private const byte RoleHead = 1;
    private const byte RoleMember = 2;
    private const byte TcpAck = 0x10;
    private const byte TcpPsh = 0x08;

    private readonly byte[] _role;
    private readonly int[] _next;      // next member of the group (-1: last)
    private readonly int[] _tail;      // per head: its last member
    private readonly int[] _count;     // per head: packets in the group
    private readonly int[] _length;    // per head: bytes of the super-packet (IP)
    private readonly bool[] _checked;  // per head: its own checksum was verified
    private readonly int[] _slots = new int[FlowSlots];
    private int _slotCount;
    private int _evict;

    public TunCoalescer(int batchSize)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(batchSize, 1);
        _role = new byte[batchSize];
        _next = new int[batchSize];
        _tail = new int[batchSize];
        _count = new int[batchSize];
        _length = new int[batchSize];
        _checked = new bool[batchSize];
    }

    /// <summary>The most packets one <see cref="Plan"/> handles.</summary>
    public int Capacity => _role.Length;

    /// <summary>After <see cref="Plan"/>: packet <paramref name="index"/> starts a group of more than one packet.</summary>
    public bool IsHead(int index) => _role[index] == RoleHead;

    /// <summary>After <see cref="Plan"/>: packet <paramref name="index"/> is carried inside an earlier packet's group.</summary>
    public bool IsMember(int index) => _role[index] == RoleMember;

    /// <summary>After <see cref="Plan"/>: the packets in the group that <paramref name="head"/> starts.</summary>
    public int GroupCount(int head) => _count[head];

    /// <summary>After <see cref="Plan"/>: the member after <paramref name="index"/> in its group, or -1.</summary>
    public int Next(int index) => _next[index];

    /// <summary>After <see cref="Plan"/>: the bytes <see cref="Build"/> writes for the group of <paramref name="head"/>.</summary>
    public int BuiltLength(int head) => VirtioNetHeader.Size + _length[head];

    /// <summary>
    /// Groups the first <paramref name="count"/> packets (<c>buffers[i][offset .. offset + sizes[i]]</c>, read only).
    /// Returns the number of groups of more than one packet.
    /// </summary>
    public int Plan(byte[][] buffers, ReadOnlySpan<int> sizes, int offset, int count)
    {
        ArgumentOutOfRangeException.ThrowIfGreaterThan(count, Capacity);
        _slotCount = 0;
        _evict = 0;
        var groups = 0;
        for (var i = 0; i < count; i++)
        {
            _role[i] = RoleSingle;
            _next[i] = -1;
            var packet = buffers[i].AsSpan(offset, sizes[i]);
            if (!IsCandidate(packet))
            {
                // A segment of a flow with an open group (a FIN, a pure ACK) closes that group, so nothing of the
                // flow written after it (at the group's place) overtakes it.
                if (IsTcp(packet) && FindFlow(buffers, offset, packet) is var open and >= 0)
                {
                    _slots[open] = _slots[--_slotCount];
                    _evict = 0;
                }

                continue;
            }

            var slot = FindFlow(buffers, offset, packet);
            if (slot >= 0)
            {
                var head = _slots[slot];
                var headPacket = buffers[head].AsSpan(offset, sizes[head]);
                var tailPacket = buffers[_tail[head]].AsSpan(offset, sizes[_tail[head]]);
                if (CanAppend(headPacket, tailPacket, packet, _count[head], _length[head]))
                {
                    if (!_checked[head])
                    {
                        _checked[head] = true;
                        if (!ChecksumValid(headPacket))
                        {
                            // The head cannot carry others: the new packet (if itself valid) opens the flow's group.
                            if (ChecksumValid(packet))
                            {
                                StartGroup(slot, i, packet.Length, verified: true);
                            }

                            continue;
                        }
                    }

                    if (!ChecksumValid(packet))
                    {
                        continue; // written alone; the kernel drops it as it would have anyway
                    }

                    if (_count[head] == 1)
                    {
                        _role[head] = RoleHead;
                        groups++;
                    }

                    _role[i] = RoleMember;
                    _next[_tail[head]] = i;
                    _tail[head] = i;
                    _count[head]++;
                    _length[head] += packet.Length - HeaderLength(packet);
                    continue;
                }

                // Same flow, not contiguous (or the group is full): this packet opens the flow's next group, so the
                // flow's packets keep their order (this group is written after the earlier one).
                StartGroup(slot, i, packet.Length, verified: false);
                continue;
            }

            if (_slotCount < FlowSlots)
            {
                slot = _slotCount++;
            }
            else
            {
                slot = _evict;
                _evict = (_evict + 1) % FlowSlots;
            }

            StartGroup(slot, i, packet.Length, verified: false);
        }

        return groups;
    }

    /// <summary>
    /// Writes the virtio_net_hdr and the super-packet of the group <paramref name="head"/> starts into
    /// <paramref name="destination"/> (at least <see cref="BuiltLength"/> bytes); the packets are not modified.
    /// Returns the bytes written.
    /// </summary>
    public int Build(int head, byte[][] buffers, ReadOnlySpan<int> sizes, int offset, Span<byte> destination)
    {
        var first = buffers[head].AsSpan(offset, sizes[head]);
        var headerLength = HeaderLength(first);
        var ipv6 = first[0] >> 4 == 6;
        var l4 = ipv6 ? 40 : 20;
        var packet = destination[VirtioNetHeader.Size..];
        first.CopyTo(packet);
        var at = first.Length;
        var last = head;
        for (var i = _next[head]; i >= 0; i = _next[i])
        {
            var member = buffers[i].AsSpan(offset, sizes[i]);
            member[headerLength..].CopyTo(packet[at..]);
            at += member.Length - headerLength;
            last = i;
        }

        packet = packet[..at];
        if (ipv6)
        {
            BinaryPrimitives.WriteUInt16BigEndian(packet[4..], (ushort)(at - 40)); // RFC 8200 section 3: Payload Length
        }
        else
        {
            // RFC 791 section 3.1: Total Length and Header Checksum of the whole super-packet.
            BinaryPrimitives.WriteUInt16BigEndian(packet[2..], (ushort)at);
            packet[10] = 0;
            packet[11] = 0;
            BinaryPrimitives.WriteUInt16BigEndian(packet[10..], (ushort)~InternetChecksum.Fold(InternetChecksum.Add(packet[..20], 0)));
        }

        // PSH travels with the last segment (RFC 9293 section 3.9.1); segmentation keeps it on the last one only.
        packet[l4 + 13] |= (byte)(buffers[last][offset + l4 + 13] & TcpPsh);

        // VIRTIO_NET_HDR_F_NEEDS_CSUM: the checksum field holds the folded pseudo-header sum over the whole transport
        // length (not complemented), as the kernel's CHECKSUM_PARTIAL expects; it adjusts it per segment.
        BinaryPrimitives.WriteUInt16BigEndian(packet[(l4 + 16)..], InternetChecksum.Fold(InternetChecksum.PseudoHeader(packet, ipv6, 6, at - l4)));

        new VirtioNetHeader(
            VirtioNetHeader.FlagNeedsCsum,
            ipv6 ? VirtioNetHeader.GsoTcpV6 : VirtioNetHeader.GsoTcpV4,
            (ushort)headerLength,
            (ushort)(first.Length - headerLength),
            (ushort)l4,
            16).Write(destination);
        return VirtioNetHeader.Size + at;
    }

    private void StartGroup(int slot, int index, int length, bool verified)
    {
        _slots[slot] = index;
        _tail[index] = index;
        _count[index] = 1;
        _length[index] = length;
        _checked[index] = verified;
    }

    /// <summary>The slot whose open group belongs to the flow of <paramref name="packet"/> (addresses and ports), or -1.</summary>
    private int FindFlow(byte[][] buffers, int offset, ReadOnlySpan<byte> packet)
    {
        var ipv6 = packet[0] >> 4 == 6;
        var addresses = ipv6 ? packet.Slice(8, 32) : packet.Slice(12, 8);
        var ports = packet.Slice(ipv6 ? 40 : 20, 4);
        for (var s = 0; s < _slotCount; s++)
        {
            var other = buffers[_slots[s]].AsSpan(offset);
            if (other[0] >> 4 != packet[0] >> 4)
            {
                continue;
            }

            if (addresses.SequenceEqual(ipv6 ? other.Slice(8, 32) : other.Slice(12, 8)) && ports.SequenceEqual(other.Slice(ipv6 ? 40 : 20, 4)))
            {
                return s;
            }
        }

        return -1;
    }

    /// <summary>A TCP segment with data and only ACK (or ACK+PSH) set, in an IPv4 packet without options or fragmentation or an IPv6 packet without extension headers, whose IP length matches.</summary>
    internal static bool IsCandidate(ReadOnlySpan<byte> packet)
    {
        if (packet.Length < 40)
        {
            return false;
        }

        int l4;
        if (packet[0] == 0x45)
        {
            // RFC 791 section 3.1: no options, protocol TCP, Total Length exact, MF clear and Fragment Offset zero.
            if (packet[9] != 6 || BinaryPrimitives.ReadUInt16BigEndian(packet[2..]) != packet.Length || (BinaryPrimitives.ReadUInt16BigEndian(packet[6..]) & 0x3FFF) != 0)
            {
                return false;
            }

            l4 = 20;
        }
        else if (packet[0] >> 4 == 6)
        {
            // RFC 8200 section 3: Next Header TCP directly, Payload Length exact.
            if (packet.Length < 60 || packet[6] != 6 || BinaryPrimitives.ReadUInt16BigEndian(packet[4..]) != packet.Length - 40)
            {
                return false;
            }

            l4 = 40;
        }
        else
        {
            return false;
        }

        var dataOffset = (packet[l4 + 12] >> 4) * 4;
        if (dataOffset < 20 || l4 + dataOffset >= packet.Length || (packet[l4 + 12] & 0x0F) != 0)
        {
            return false;
        }

        var flags = packet[l4 + 13];
        return flags == TcpAck || flags == (TcpAck | TcpPsh);
    }

    /// <summary>An IPv4 or IPv6 packet carrying TCP (no IPv6 extension headers) long enough to hold its ports.</summary>
    private static bool IsTcp(ReadOnlySpan<byte> packet) =>
        (packet.Length >= 24 && packet[0] == 0x45 && packet[9] == 6) || (packet.Length >= 44 && packet[0] >> 4 == 6 && packet[6] == 6);

    private static int HeaderLength(ReadOnlySpan<byte> packet)
    {
        var l4 = packet[0] >> 4 == 6 ? 40 : 20;
        return l4 + ((packet[l4 + 12] >> 4) * 4);
    }

    /// <summary>Whether <paramref name="packet"/> can follow <paramref name="tail"/> in the group <paramref name="head"/> starts (see the remarks).</summary>
    private static bool CanAppend(ReadOnlySpan<byte> head, ReadOnlySpan<byte> tail, ReadOnlySpan<byte> packet, int count, int length)
    {
        var ipv6 = head[0] >> 4 == 6;
        var l4 = ipv6 ? 40 : 20;
        var headerLength = HeaderLength(head);
        if (HeaderLength(packet) != headerLength)
        {
            return false;
        }

        var segmentSize = head.Length - headerLength;
        var payload = packet.Length - headerLength;
        if (tail.Length - headerLength != segmentSize || payload > segmentSize || length + payload > ushort.MaxValue)
        {
            return false; // only the last segment may be shorter; the super-packet must stay a valid IP packet
        }

        if ((tail[l4 + 13] & TcpPsh) != 0 || head[l4 + 13] != TcpAck)
        {
            return false;
        }

        // RFC 9293 section 3.1: contiguous Sequence Numbers; same Acknowledgment Number, Data Offset/flags word, Window;
        // same options (timestamps included).
        var expected = unchecked(BinaryPrimitives.ReadUInt32BigEndian(tail[(l4 + 4)..]) + (uint)(tail.Length - headerLength));
        if (BinaryPrimitives.ReadUInt32BigEndian(packet[(l4 + 4)..]) != expected
            || !packet.Slice(l4 + 8, 4).SequenceEqual(head.Slice(l4 + 8, 4))
            || packet[l4 + 12] != head[l4 + 12]
            || !packet.Slice(l4 + 14, 2).SequenceEqual(head.Slice(l4 + 14, 2))
            || !packet.Slice(l4 + 20, headerLength - l4 - 20).SequenceEqual(head.Slice(l4 + 20, headerLength - l4 - 20)))
        {
            return false;
        }

        if (ipv6)
        {
            // Version, Traffic Class, Flow Label; Hop Limit.
            return packet[..4].SequenceEqual(head[..4]) && packet[7] == head[7];
        }

        // TOS, flags, TTL equal; Identification consecutive from the head's.
        return packet[1] == head[1]
            && packet[6] == head[6]
            && packet[8] == head[8]
            && BinaryPrimitives.ReadUInt16BigEndian(packet[4..]) == (ushort)(BinaryPrimitives.ReadUInt16BigEndian(head[4..]) + count);
    }

    /// <summary>Whether the TCP checksum of <paramref name="packet"/> (a candidate) verifies (RFC 9293 section 3.1).</summary>
    private static bool ChecksumValid(ReadOnlySpan<byte> packet)
    {
        var ipv6 = packet[0] >> 4 == 6;
        var l4 = ipv6 ? 40 : 20;
        var sum = InternetChecksum.PseudoHeader(packet, ipv6, 6, packet.Length - l4);
        return InternetChecksum.Fold(InternetChecksum.Add(packet[l4..], sum)) == 0xFFFF;
    }
}
