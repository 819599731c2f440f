using System.Buffers.Binary;

namespace Sharptun.Transport.Linux;

/// <summary>What <see cref="TunSegmenter.Parse"/> made of a packet read with a virtio_net_hdr.</summary>
internal enum TunReadKind
{
    /// <summary>One IP packet, its checksum completed if the kernel left it partial.</summary>
    Plain,

    /// <summary>A TCP or UDP super-segment to cut with <see cref="TunSegmenter.Segment"/>.</summary>
    Gso,

    /// <summary>The header contradicts the packet: drop and count.</summary>
    Malformed,
}

/// <summary>A super-segment being cut into packets, possibly over several Read calls.</summary>
internal struct GsoState
{
    /// <summary>Length of the super-segment (IP packet, without the virtio header).</summary>
    public int Length;

    /// <summary>Where the next segment's payload starts.</summary>
    public int Cursor;

    /// <summary>IP + transport header bytes copied in front of every segment.</summary>
    public int HeaderLength;

    /// <summary>Offset of the TCP/UDP header (csum_start).</summary>
    public int TransportStart;

    /// <summary>Payload bytes per segment (gso_size, the MSS for TCP).</summary>
    public int SegmentSize;

    /// <summary>Index of the next segment (IPv4 ID increment, CWR only on segment 0).</summary>
    public int Index;

    public bool IsIpv6;

    public bool IsTcp;

    /// <summary>Segments still to be produced.</summary>
    public readonly bool Pending => Cursor < Length;
}

/// <summary>
/// Cuts the super-segments a TUN with TUNSETOFFLOAD (TUN_F_TSO4/TSO6/USO4/USO6) hands out into MTU-sized IP packets:
/// what a NIC's segmentation offload does (the kernel's tcp_gso_segment / __udp_gso_segment), as pure functions over spans.
/// </summary>
internal static class TunSegmenter
{
    private const byte ProtocolTcp = 6;
    private const byte ProtocolUdp = 17;

    // RFC 9293 section 3.1: control bits in byte 13 of the TCP header.
    private const byte TcpFin = 0x01;
    private const byte TcpPsh = 0x08;
    private const byte TcpCwr = 0x80;

    /// <summary>
    /// Checks <paramref name="header"/> against <paramref name="packet"/>. A plain packet's partial checksum
    /// (VIRTIO_NET_HDR_F_NEEDS_CSUM without GSO) is completed in place. For a super-segment fills <paramref name="state"/>;
    /// the header length is taken from the packet (csum_start + the TCP data offset, or + 8 for UDP), not from hdr_len,
    /// which only has to lie inside the packet.
    /// </summary>
    public static TunReadKind Parse(in VirtioNetHeader header, Span<byte> packet, out GsoState state)
    {
        state = default;
        if (packet.Length < 20)
        {
            return TunReadKind.Malformed;
        }

        var version = packet[0] >> 4;
        if (version != 4 && version != 6)
        {
            return TunReadKind.Malformed;
        }

        var gsoType = (byte)(header.GsoType & ~VirtioNetHeader.GsoEcn);
        var needsCsum = (header.Flags & VirtioNetHeader.FlagNeedsCsum) != 0;
        if (gsoType == VirtioNetHeader.GsoNone)
        {
            if (!needsCsum)
            {
                return TunReadKind.Plain;
            }

            if (header.CsumStart + header.CsumOffset + 2 > packet.Length)
            {
                return TunReadKind.Malformed;
            }

            CompletePartialChecksum(packet, header.CsumStart, header.CsumOffset);
            return TunReadKind.Plain;
        }

        bool tcp;
        if (gsoType == VirtioNetHeader.GsoTcpV4)
        {
            tcp = true;
            if (version != 4)
            {
                return TunReadKind.Malformed;
            }
        }
        else if (gsoType == VirtioNetHeader.GsoTcpV6)
        {
            tcp = true;
            if (version != 6)
            {
                return TunReadKind.Malformed;
            }
        }
        else if (gsoType == VirtioNetHeader.GsoUdpL4)
        {
            tcp = false;
        }
        else
        {
            return TunReadKind.Malformed; // VIRTIO_NET_HDR_GSO_UDP (UFO) and unknown types: never enabled here
        }

        var ipv6 = version == 6;
        int ipHeaderLength;
        if (ipv6)
        {
            // RFC 8200 section 3: fixed 40-byte header; extension headers (if any) end at csum_start.
            if (packet.Length < 40)
            {
                return TunReadKind.Malformed;
            }

            ipHeaderLength = 40;
        }
        else
        {
            // RFC 791 section 3.1: IHL in 32-bit words, at least 5.
            ipHeaderLength = (packet[0] & 0xF) * 4;
            if (ipHeaderLength < 20 || packet[9] != (tcp ? ProtocolTcp : ProtocolUdp))
            {
                return TunReadKind.Malformed;
            }
        }

        var transportStart = needsCsum ? header.CsumStart : ipHeaderLength;
        if (transportStart < ipHeaderLength || (!ipv6 && transportStart != ipHeaderLength))
        {
            return TunReadKind.Malformed;
        }

        if (ipv6 && transportStart == 40 && packet[6] != (tcp ? ProtocolTcp : ProtocolUdp))
        {
            return TunReadKind.Malformed;
        }

        int headerLength;
        if (tcp)
        {
            if (transportStart + 20 > packet.Length || (needsCsum && header.CsumOffset != 16))
            {
                return TunReadKind.Malformed;
            }

            var dataOffset = (packet[transportStart + 12] >> 4) * 4; // RFC 9293 section 3.1: Data Offset
            if (dataOffset < 20)
            {
                return TunReadKind.Malformed;
            }

            headerLength = transportStart + dataOffset;
        }
        else
        {
            if (needsCsum && header.CsumOffset != 6)
            {
                return TunReadKind.Malformed;
            }

            headerLength = transportStart + 8;
        }

        if (headerLength > packet.Length || header.HdrLen > packet.Length || header.GsoSize == 0 || headerLength + header.GsoSize > ushort.MaxValue)
        {
            return TunReadKind.Malformed;
        }

        if (headerLength == packet.Length)
        {
            // No payload: one packet, as is (checksum completed).
            if (needsCsum)
            {
                CompletePartialChecksum(packet, header.CsumStart, header.CsumOffset);
            }

            return TunReadKind.Plain;
        }

        state = new GsoState
        {
            Length = packet.Length,
            Cursor = headerLength,
            HeaderLength = headerLength,
            TransportStart = transportStart,
            SegmentSize = header.GsoSize,
            IsIpv6 = ipv6,
            IsTcp = tcp,
        };
        return TunReadKind.Gso;
    }

    /// <summary>
    /// Completes a partial checksum (CHECKSUM_PARTIAL): the field at <paramref name="start"/> + <paramref name="offset"/>
    /// already holds the pseudo-header sum, so the ones' complement of the sum from <paramref name="start"/> to the end goes there.
    /// </summary>
    public static void CompletePartialChecksum(Span<byte> packet, int start, int offset)
    {
        var value = (ushort)~InternetChecksum.Fold(InternetChecksum.Add(packet[start..], 0));
        if (value == 0 && offset == 6)
        {
            value = 0xFFFF; // RFC 768: a computed UDP checksum of zero is sent as all ones
        }

        BinaryPrimitives.WriteUInt16BigEndian(packet[(start + offset)..], value);
    }

    /// <summary>
    /// Writes the next segments of the super-segment <paramref name="packet"/> into <c>buffers[first..max)</c> at
    /// <paramref name="offset"/> and their lengths into <paramref name="sizes"/>, advancing <paramref name="state"/>;
    /// stops when the batch is full (the rest stays in <paramref name="state"/> for the next call) or the super-segment
    /// is used up. A segment that does not fit its buffer goes into a buffer rented from <paramref name="oversize"/>
    /// (which replaces <c>buffers[i]</c>), or is dropped and counted in <paramref name="dropped"/>.
    /// Returns the number of packets written.
    /// </summary>
    public static int Segment(ReadOnlySpan<byte> packet, ref GsoState state, byte[][] buffers, Span<int> sizes, int first, int max, int offset, PacketBufferPool? oversize, ref long dropped)
    {
        var n = first;
        while (state.Cursor < state.Length && n < max)
        {
            var payload = Math.Min(state.SegmentSize, state.Length - state.Cursor);
            var total = state.HeaderLength + payload;
            var buffer = buffers[n];
            if (buffer.Length - offset < total)
            {
                if (!TryRentOversize(oversize, offset + total, out buffer))
                {
                    dropped++;
                    state.Cursor += payload;
                    state.Index++;
                    continue;
                }

                buffers[n] = buffer;
            }

            var segment = buffer.AsSpan(offset, total);
            packet[..state.HeaderLength].CopyTo(segment);
            packet.Slice(state.Cursor, payload).CopyTo(segment[state.HeaderLength..]);
            FixSegment(segment, state, state.Cursor - state.HeaderLength, state.Cursor + payload >= state.Length);
            sizes[n++] = total;
            state.Cursor += payload;
            state.Index++;
        }

        return n - first;
    }

    private static bool TryRentOversize(PacketBufferPool? oversize, int needed, out byte[] buffer)
    {
        buffer = null!;
        if (oversize is null || oversize.BufferSize < needed)
        {
            return false;
        }

        try
        {
            buffer = oversize.Rent(TimeSpan.FromMilliseconds(250));
            return true;
        }
        catch (TimeoutException)
        {
            return false;
        }
    }

    /// <summary>Per-segment header fields: lengths, IPv4 ID and header checksum, TCP sequence number and flags, the transport checksum.</summary>
    private static void FixSegment(Span<byte> segment, in GsoState state, int payloadOffset, bool last)
    {
        var total = segment.Length;
        var l4 = state.TransportStart;
        if (state.IsIpv6)
        {
            // RFC 8200 section 3: Payload Length counts everything after the fixed header, extension headers included.
            BinaryPrimitives.WriteUInt16BigEndian(segment[4..], (ushort)(total - 40));
        }
        else
        {
            // RFC 791 section 3.1: Total Length, Identification (consecutive per segment, as the kernel's TSO does),
            // Header Checksum over the header with the field zeroed.
            var ihl = (segment[0] & 0xF) * 4;
            BinaryPrimitives.WriteUInt16BigEndian(segment[2..], (ushort)total);
            var id = BinaryPrimitives.ReadUInt16BigEndian(segment[4..]);
            BinaryPrimitives.WriteUInt16BigEndian(segment[4..], (ushort)(id + state.Index));
            segment[10] = 0;
            segment[11] = 0;
            BinaryPrimitives.WriteUInt16BigEndian(segment[10..], (ushort)~InternetChecksum.Fold(InternetChecksum.Add(segment[..ihl], 0)));
        }

        int checksumAt;
        byte protocol;
        if (state.IsTcp)
        {
            // RFC 9293 section 3.1: each segment's Sequence Number is that of its first data octet. FIN and PSH belong
            // to the last segment only; CWR (RFC 3168 section 6.1.2) to the first only.
            var seq = BinaryPrimitives.ReadUInt32BigEndian(segment[(l4 + 4)..]);
            BinaryPrimitives.WriteUInt32BigEndian(segment[(l4 + 4)..], unchecked(seq + (uint)payloadOffset));
            if (!last)
            {
                segment[l4 + 13] &= unchecked((byte)~(TcpFin | TcpPsh));
            }

            if (state.Index > 0)
            {
                segment[l4 + 13] &= unchecked((byte)~TcpCwr);
            }

            checksumAt = l4 + 16;
            protocol = ProtocolTcp;
        }
        else
        {
            // RFC 768: Length covers the UDP header and data.
            BinaryPrimitives.WriteUInt16BigEndian(segment[(l4 + 4)..], (ushort)(total - l4));
            checksumAt = l4 + 6;
            protocol = ProtocolUdp;
        }

        segment[checksumAt] = 0;
        segment[checksumAt + 1] = 0;
        var sum = InternetChecksum.PseudoHeader(segment, state.IsIpv6, protocol, total - l4);
        var value = (ushort)~InternetChecksum.Fold(InternetChecksum.Add(segment[l4..], sum));
        if (value == 0 && !state.IsTcp)
        {
            value = 0xFFFF;
        }

        BinaryPrimitives.WriteUInt16BigEndian(segment[checksumAt..], value);
    }
}
