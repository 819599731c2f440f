using System.Buffers.Binary;
using Sharptun.Transport.Linux;

namespace Sharptun.Transport.Tests;

/// <summary>
/// The TUN offload halves as pure functions: <see cref="TunSegmenter"/> (super-segments the kernel hands out, cut into
/// packets) and <see cref="TunCoalescer"/> (segments of one flow merged into a super-packet for the kernel). Checksums are
/// checked with <see cref="Reference"/>, a plain RFC 1071 routine written independently of the code under test.
/// </summary>
public sealed class TunOffloadTests
{
    private const int Offset = 16;

    private static readonly byte[] Timestamps = [1, 1, 8, 10, 0, 0, 0x12, 0x34, 0, 0, 0x56, 0x78];

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void Segment_TcpSuperSegment_MssPacketsWithValidChecksumsAndFlags(bool ipv6)
    {
        var payload = RandomBytes(4999, 1); // 1388 * 3 + 835: an odd last segment
        const uint seq = 0xFFFFF000; // wraps inside the super-segment
        var flags = (byte)(Ack | Psh | Fin | Cwr);
        var super = Packets.Tcp(ipv6, 1000, seq, 77, flags, Timestamps, payload);
        var hdr = TsoHeader(super, ipv6, 1388, ecn: true);

        var buffers = Buffers(8, 2048);
        var sizes = new int[8];
        Assert.Equal(TunReadKind.Gso, TunSegmenter.Parse(hdr, super, out var state));
        long dropped = 0;
        var n = TunSegmenter.Segment(super, ref state, buffers, sizes, 0, 8, Offset, null, ref dropped);

        Assert.Equal(4, n);
        Assert.Equal(0, dropped);
        Assert.False(state.Pending);
        var l4 = ipv6 ? 40 : 20;
        var headers = l4 + 32;
        var joined = new List<byte>();
        for (var i = 0; i < n; i++)
        {
            var segment = buffers[i].AsSpan(Offset, sizes[i]);
            Assert.Equal(headers + (i < 3 ? 1388 : 835), segment.Length);
            Assert.True(Reference.TransportChecksumValid(segment, 6), $"TCP checksum of segment {i}");
            if (ipv6)
            {
                Assert.Equal(segment.Length - 40, BinaryPrimitives.ReadUInt16BigEndian(segment[4..]));
            }
            else
            {
                Assert.Equal(segment.Length, BinaryPrimitives.ReadUInt16BigEndian(segment[2..]));
                Assert.Equal(1000 + i, BinaryPrimitives.ReadUInt16BigEndian(segment[4..]));
                Assert.Equal(0, Reference.Checksum(segment[..20]));
            }

            Assert.Equal(unchecked(seq + (uint)(1388 * i)), BinaryPrimitives.ReadUInt32BigEndian(segment[(l4 + 4)..]));
            var expectedFlags = (byte)(Ack | (i == 3 ? Psh | Fin : 0) | (i == 0 ? Cwr : 0));
            Assert.Equal(expectedFlags, segment[l4 + 13]);
            Assert.True(segment.Slice(l4 + 20, 12).SequenceEqual(Timestamps));
            joined.AddRange(segment[headers..].ToArray());
        }

        Assert.Equal(payload, joined.ToArray());
    }

    [Fact]
    public void Segment_MoreSegmentsThanBuffers_RemainderComesWithTheNextCall()
    {
        var payload = RandomBytes(1000 * 5, 2);
        var super = Packets.Tcp(false, 7, 100, 5, Ack, [], payload);
        var hdr = TsoHeader(super, false, 1000);
        Assert.Equal(TunReadKind.Gso, TunSegmenter.Parse(hdr, super, out var state));
        var buffers = Buffers(3, 2048);
        var sizes = new int[3];
        long dropped = 0;

        Assert.Equal(3, TunSegmenter.Segment(super, ref state, buffers, sizes, 0, 3, Offset, null, ref dropped));
        Assert.True(state.Pending);
        Assert.Equal(100u + 2000, Seq(buffers[2].AsSpan(Offset, sizes[2])));
        Assert.Equal(2, TunSegmenter.Segment(super, ref state, buffers, sizes, 1, 3, Offset, null, ref dropped));
        Assert.False(state.Pending);
        Assert.Equal(100u + 3000, Seq(buffers[1].AsSpan(Offset, sizes[1])));
        Assert.Equal(100u + 4000, Seq(buffers[2].AsSpan(Offset, sizes[2])));
        Assert.Equal(10, BinaryPrimitives.ReadUInt16BigEndian(buffers[1].AsSpan(Offset + 4))); // IPv4 ID 7 + segment 3
        Assert.True(Reference.TransportChecksumValid(buffers[2].AsSpan(Offset, sizes[2]), 6));
        Assert.Equal(0, dropped);
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void Segment_UdpSuperSegment_DatagramsWithLengthAndChecksum(bool ipv6)
    {
        var payload = RandomBytes(1200 * 3 + 7, 3);
        var super = Packets.Udp(ipv6, 42, payload);
        var l4 = ipv6 ? 40 : 20;
        var partial = Reference.PseudoHeaderSum(super, 17, super.Length - l4);
        BinaryPrimitives.WriteUInt16BigEndian(super.AsSpan(l4 + 6), partial);
        var hdr = new VirtioNetHeader(VirtioNetHeader.FlagNeedsCsum, VirtioNetHeader.GsoUdpL4, (ushort)(l4 + 8), 1200, (ushort)l4, 6);
        Assert.Equal(TunReadKind.Gso, TunSegmenter.Parse(hdr, super, out var state));
        var buffers = Buffers(8, 2048);
        var sizes = new int[8];
        long dropped = 0;

        var n = TunSegmenter.Segment(super, ref state, buffers, sizes, 0, 8, Offset, null, ref dropped);

        Assert.Equal(4, n);
        for (var i = 0; i < n; i++)
        {
            var datagram = buffers[i].AsSpan(Offset, sizes[i]);
            Assert.Equal(i < 3 ? 1208 : 15, BinaryPrimitives.ReadUInt16BigEndian(datagram[(l4 + 4)..]));
            Assert.True(Reference.TransportChecksumValid(datagram, 17));
            Assert.True(datagram[(l4 + 8)..].SequenceEqual(payload.AsSpan(i * 1200, Math.Min(1200, payload.Length - (i * 1200)))));
        }
    }

    [Fact]
    public void Parse_PartialChecksumWithoutGso_Completed()
    {
        var packet = Packets.Tcp(false, 1, 5, 6, Ack | Psh, [], RandomBytes(333, 4));
        Assert.True(Reference.TransportChecksumValid(packet, 6));
        BinaryPrimitives.WriteUInt16BigEndian(packet.AsSpan(36), Reference.PseudoHeaderSum(packet, 6, packet.Length - 20));
        Assert.False(Reference.TransportChecksumValid(packet, 6));

        var kind = TunSegmenter.Parse(new VirtioNetHeader(VirtioNetHeader.FlagNeedsCsum, 0, 40, 0, 20, 16), packet, out _);

        Assert.Equal(TunReadKind.Plain, kind);
        Assert.True(Reference.TransportChecksumValid(packet, 6));
    }

    [Fact]
    public void Parse_MalformedHeaders_Rejected()
    {
        var super = Packets.Tcp(false, 1, 5, 6, Ack, [], RandomBytes(3000, 5));
        var good = TsoHeader(super, false, 1000);
        Assert.Equal(TunReadKind.Gso, TunSegmenter.Parse(good, super, out _));

        Assert.Equal(TunReadKind.Malformed, TunSegmenter.Parse(good with { HdrLen = (ushort)(super.Length + 1) }, super, out _));
        Assert.Equal(TunReadKind.Malformed, TunSegmenter.Parse(good with { GsoSize = 0 }, super, out _));
        Assert.Equal(TunReadKind.Malformed, TunSegmenter.Parse(good with { GsoType = 3 }, super, out _)); // UFO: never negotiated
        Assert.Equal(TunReadKind.Malformed, TunSegmenter.Parse(good with { GsoType = VirtioNetHeader.GsoTcpV6 }, super, out _));
        Assert.Equal(TunReadKind.Malformed, TunSegmenter.Parse(good with { CsumStart = 24 }, super, out _));
        Assert.Equal(TunReadKind.Malformed, TunSegmenter.Parse(good with { CsumOffset = 6 }, super, out _));
        Assert.Equal(TunReadKind.Malformed, TunSegmenter.Parse(good with { GsoType = 0, CsumStart = (ushort)(super.Length - 1) }, super, out _));
        Assert.Equal(TunReadKind.Malformed, TunSegmenter.Parse(good, super.AsSpan(0, 30).ToArray(), out _));
        var badOffset = (byte[])super.Clone();
        badOffset[32] = 0x30; // TCP data offset 3 words
        Assert.Equal(TunReadKind.Malformed, TunSegmenter.Parse(good, badOffset, out _));
    }

    [Fact]
    public void ParseAndSegment_RandomHeadersAndBytes_NeverThrow()
    {
        var random = new Random(1234);
        var buffers = Buffers(4, 2048);
        var sizes = new int[4];
        for (var round = 0; round < 20_000; round++)
        {
            var packet = Packets.Tcp(random.Next(2) == 0, 1, 1, 1, Ack, [], RandomBytes(random.Next(0, 6000), round));
            var corrupt = random.Next(4);
            for (var k = 0; k < corrupt; k++)
            {
                packet[random.Next(Math.Min(packet.Length, 80))] = (byte)random.Next(256);
            }

            var length = random.Next(3) == 0 ? random.Next(packet.Length + 1) : packet.Length;
            var hdr = new VirtioNetHeader(
                (byte)random.Next(3),
                (byte)new[] { 0, 1, 3, 4, 5, 0x81, 0x84, random.Next(256) }[random.Next(8)],
                (ushort)random.Next(0, 200),
                (ushort)new[] { 0, 1, 536, 1388, 1440, 2100, 65535, random.Next(65536) }[random.Next(8)],
                (ushort)random.Next(0, 80),
                (ushort)new[] { 6, 16, random.Next(100) }[random.Next(3)]);
            var span = packet.AsSpan(0, length);
            if (TunSegmenter.Parse(hdr, span, out var state) == TunReadKind.Gso)
            {
                long dropped = 0;
                while (state.Pending)
                {
                    var n = TunSegmenter.Segment(span, ref state, buffers, sizes, 0, 4, Offset, null, ref dropped);
                    for (var i = 0; i < n; i++)
                    {
                        Assert.InRange(sizes[i], 20, 2048 - Offset);
                    }
                }
            }
        }
    }

    [Fact]
    public void Segment_SegmentLargerThanBuffer_CountedDrop()
    {
        var super = Packets.Tcp(false, 1, 5, 6, Ack, [], RandomBytes(9000, 6));
        var hdr = TsoHeader(super, false, 3000);
        Assert.Equal(TunReadKind.Gso, TunSegmenter.Parse(hdr, super, out var state));
        var buffers = Buffers(4, 2048);
        var sizes = new int[4];
        long dropped = 0;

        Assert.Equal(0, TunSegmenter.Segment(super, ref state, buffers, sizes, 0, 4, Offset, null, ref dropped));
        Assert.Equal(3, dropped);

        var large = new PacketBufferPool(1 << 20, 8192);
        Assert.Equal(TunReadKind.Gso, TunSegmenter.Parse(hdr, super, out state));
        dropped = 0;
        Assert.Equal(3, TunSegmenter.Segment(super, ref state, buffers, sizes, 0, 4, Offset, large, ref dropped));
        Assert.Equal(0, dropped);
        Assert.Equal(8192, buffers[0].Length);
        Assert.True(Reference.TransportChecksumValid(buffers[2].AsSpan(Offset, sizes[2]), 6));
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void Coalesce_InterleavedFlows_OneSuperPacketPerFlowThatSegmentsBack(bool ipv6)
    {
        // flow A: 4 full segments + a short PSH one; flow B (other port): 3 segments; a UDP datagram between.
        var a = Flow(ipv6, port: 1000, seq: 5000, id: 10, sizes: [1300, 1300, 1300, 1300, 77], pshLast: true);
        var b = Flow(ipv6, port: 2000, seq: 1, id: 500, sizes: [1300, 1300, 1300], pshLast: false);
        var udp = Packets.Udp(ipv6, 3, RandomBytes(100, 9));
        byte[][] batch = [a[0], b[0], a[1], udp, a[2], b[1], a[3], b[2], a[4]];
        var (buffers, sizes) = Place(batch);
        var coalescer = new TunCoalescer(16);

        Assert.Equal(2, coalescer.Plan(buffers, sizes, Offset, batch.Length));

        Assert.True(coalescer.IsHead(0));
        Assert.True(coalescer.IsHead(1));
        Assert.Equal(5, coalescer.GroupCount(0));
        Assert.Equal(3, coalescer.GroupCount(1));
        Assert.False(coalescer.IsHead(3) || coalescer.IsMember(3));
        Assert.Equal(a, Resegment(coalescer, 0, buffers, sizes));
        Assert.Equal(b, Resegment(coalescer, 1, buffers, sizes));

        // The super-packet is what the kernel expects: checksum field = folded pseudo-header sum over the whole length.
        var built = new byte[coalescer.BuiltLength(0)];
        coalescer.Build(0, buffers, sizes, Offset, built);
        var header = VirtioNetHeader.Read(built);
        var packet = built.AsSpan(VirtioNetHeader.Size);
        var l4 = ipv6 ? 40 : 20;
        Assert.Equal(VirtioNetHeader.FlagNeedsCsum, header.Flags);
        Assert.Equal(ipv6 ? VirtioNetHeader.GsoTcpV6 : VirtioNetHeader.GsoTcpV4, header.GsoType);
        Assert.Equal(1300, header.GsoSize);
        Assert.Equal(l4, header.CsumStart);
        Assert.Equal(16, header.CsumOffset);
        Assert.Equal(Reference.PseudoHeaderSum(packet, 6, packet.Length - l4), BinaryPrimitives.ReadUInt16BigEndian(packet[(l4 + 16)..]));
        if (!ipv6)
        {
            Assert.Equal(0, Reference.Checksum(packet[..20]));
        }
    }

    [Fact]
    public void Coalesce_BreaksAtGapsPshFinBadChecksumsAndChangedHeaders()
    {
        var f = Flow(false, port: 1000, seq: 0, id: 1, sizes: [1000, 1000, 1000, 1000, 1000, 1000, 1000, 1000, 1000], pshLast: false);
        Packets.SetFlags(f[2], Ack | Psh);           // PSH ends a group: 0,1,2 | 3...
        Packets.Corrupt(f[4]);                         // bad checksum: alone
        var fin = Packets.Tcp(false, 99, 9000, 1, Ack | Fin, [], []); // other flow, not a candidate
        byte[][] batch = [f[0], f[1], f[2], f[3], f[4], f[5], f[7], f[8], fin];
        var (buffers, sizes) = Place(batch);
        var coalescer = new TunCoalescer(16);

        coalescer.Plan(buffers, sizes, Offset, batch.Length);

        Assert.True(coalescer.IsHead(0));
        Assert.Equal(3, coalescer.GroupCount(0));
        Assert.False(coalescer.IsHead(3)); // f[3] then f[4] (bad checksum) then f[5]: 3 stays alone ...
        Assert.False(coalescer.IsMember(4));
        Assert.False(coalescer.IsMember(5)); // ... f[5] does not follow f[3] in sequence (f[4] is missing)
        Assert.True(coalescer.IsHead(6));  // f[7], f[8]: a gap before them (f[6] missing), a new group
        Assert.Equal(2, coalescer.GroupCount(6));
        Assert.False(coalescer.IsHead(8) || coalescer.IsMember(8));
    }

    [Fact]
    public void Coalesce_NonCandidateOfAnOpenFlow_ClosesItsGroup()
    {
        var f = Flow(false, port: 1000, seq: 0, id: 1, sizes: [1000, 1000, 1000, 1000], pshLast: false);
        var ackOnly = Packets.Tcp(false, 50, 4000, 1000, Ack, [], []); // same flow, no data
        byte[][] batch = [f[0], f[1], ackOnly, f[2], f[3]];
        var (buffers, sizes) = Place(batch);
        var coalescer = new TunCoalescer(8);

        coalescer.Plan(buffers, sizes, Offset, batch.Length);

        Assert.Equal(2, coalescer.GroupCount(0));
        Assert.True(coalescer.IsHead(3)); // f[2] may not be written before the pure ACK: a new group after it
        Assert.Equal(2, coalescer.GroupCount(3));
    }

    /// <summary>Property: for random batches of random flows, the packets written (super-packets cut again by the segmenter, others as they are) are the batch, each flow in its order.</summary>
    [Fact]
    public void SegmentOfCoalesce_RandomFlows_GivesBackEveryFlowInOrder()
    {
        var random = new Random(20261206);
        var coalescer = new TunCoalescer(128);
        var totalGroups = 0;
        for (var round = 0; round < 300; round++)
        {
            var flowCount = random.Next(1, 12);
            var flows = new List<byte[]>[flowCount];
            for (var f = 0; f < flowCount; f++)
            {
                var mss = random.Next(1, 1400);
                var count = random.Next(1, 20);
                var segmentSizes = new int[count];
                for (var k = 0; k < count; k++)
                {
                    segmentSizes[k] = k == count - 1 ? random.Next(1, mss + 1) : random.Next(4) == 0 ? random.Next(1, mss + 1) : mss;
                }

                flows[f] = Flow(random.Next(2) == 0, port: (ushort)(1000 + f), seq: (uint)random.NextInt64(0, uint.MaxValue), id: (ushort)random.Next(65536), segmentSizes, pshLast: random.Next(2) == 0, options: random.Next(2) == 0);
            }

            // interleave, keeping each flow's order
            var batch = new List<byte[]>();
            var cursors = new int[flowCount];
            while (batch.Count < 128)
            {
                var open = Enumerable.Range(0, flowCount).Where(f => cursors[f] < flows[f].Count).ToArray();
                if (open.Length == 0)
                {
                    break;
                }

                var pick = open[random.Next(open.Length)];
                batch.Add(flows[pick][cursors[pick]++]);
            }

            var (buffers, sizes) = Place(batch.ToArray());
            totalGroups += coalescer.Plan(buffers, sizes, Offset, batch.Count);
            var written = new List<byte[]>();
            for (var i = 0; i < batch.Count; i++)
            {
                if (coalescer.IsMember(i))
                {
                    continue;
                }

                if (coalescer.IsHead(i))
                {
                    written.AddRange(Resegment(coalescer, i, buffers, sizes));
                }
                else
                {
                    written.Add(buffers[i].AsSpan(Offset, sizes[i]).ToArray());
                }
            }

            Assert.Equal(batch.Count, written.Count);
            for (var f = 0; f < flowCount; f++)
            {
                var port = (ushort)(1000 + f);
                var sent = batch.Where(p => Packets.SourcePort(p) == port).ToList();
                var got = written.Where(p => Packets.SourcePort(p) == port).ToList();
                Assert.Equal(sent.Count, got.Count);
                for (var k = 0; k < sent.Count; k++)
                {
                    Assert.True(sent[k].AsSpan().SequenceEqual(got[k]), $"round {round} flow {f} packet {k}");
                }
            }
        }

        Assert.True(totalGroups > 300, $"only {totalGroups} groups coalesced");
    }

    [Fact]
    public void SegmentAndCoalesce_Warm_AllocateNothing()
    {
        var super = Packets.Tcp(false, 1, 5, 6, Ack, Timestamps, RandomBytes(40_000, 8));
        var hdr = TsoHeader(super, false, 1368);
        var flow = Flow(true, port: 1000, seq: 1, id: 1, sizes: [1300, 1300, 1300, 1300, 1300, 1300, 1300, 200], pshLast: true);
        var (batch, batchSizes) = Place([.. flow]);
        var coalescer = new TunCoalescer(32);
        var buffers = Buffers(32, 2048);
        var sizes = new int[32];
        var built = new byte[65536 + 10];

        long dropped = 0;
        for (var round = 0; round < 2; round++)
        {
            var before = GC.GetAllocatedBytesForCurrentThread();
            var segments = 0;
            var groups = 0;
            for (var i = 0; i < 100; i++)
            {
                _ = TunSegmenter.Parse(hdr, super, out var state);
                while (state.Pending)
                {
                    segments += TunSegmenter.Segment(super, ref state, buffers, sizes, 0, 32, Offset, null, ref dropped);
                }

                groups += coalescer.Plan(batch, batchSizes, Offset, flow.Count);
                coalescer.Build(0, batch, batchSizes, Offset, built);
            }

            var allocated = GC.GetAllocatedBytesForCurrentThread() - before;
            Assert.Equal(100 * 30, segments); // 40 000 / 1368 -> 30 segments
            Assert.Equal(100, groups);
            if (round == 1)
            {
                Assert.Equal(0, allocated);
            }
        }
    }

    private const byte Fin = 0x01;
    private const byte Psh = 0x08;
    private const byte Ack = 0x10;
    private const byte Cwr = 0x80;

    private static uint Seq(ReadOnlySpan<byte> ipv4Packet) => BinaryPrimitives.ReadUInt32BigEndian(ipv4Packet[24..]);

    private static VirtioNetHeader TsoHeader(byte[] super, bool ipv6, ushort mss, bool ecn = false)
    {
        // As the kernel hands it over: the TCP checksum field holds the pseudo-header sum (CHECKSUM_PARTIAL).
        var l4 = ipv6 ? 40 : 20;
        var headers = l4 + ((super[l4 + 12] >> 4) * 4);
        BinaryPrimitives.WriteUInt16BigEndian(super.AsSpan(l4 + 16), Reference.PseudoHeaderSum(super, 6, super.Length - l4));
        var type = (byte)((ipv6 ? VirtioNetHeader.GsoTcpV6 : VirtioNetHeader.GsoTcpV4) | (ecn ? VirtioNetHeader.GsoEcn : 0));
        return new VirtioNetHeader(VirtioNetHeader.FlagNeedsCsum, type, (ushort)headers, mss, (ushort)l4, 16);
    }

    private static List<byte[]> Flow(bool ipv6, ushort port, uint seq, ushort id, int[] sizes, bool pshLast, bool options = false)
    {
        var packets = new List<byte[]>();
        for (var k = 0; k < sizes.Length; k++)
        {
            var flags = (byte)(Ack | (pshLast && k == sizes.Length - 1 ? Psh : 0));
            packets.Add(Packets.Tcp(ipv6, (ushort)(id + k), seq, port, flags, options ? Timestamps : [], RandomBytes(sizes[k], (int)seq + k)));
            seq = unchecked(seq + (uint)sizes[k]);
        }

        return packets;
    }

    private static List<byte[]> Resegment(TunCoalescer coalescer, int head, byte[][] buffers, int[] sizes)
    {
        var built = new byte[coalescer.BuiltLength(head)];
        var length = coalescer.Build(head, buffers, sizes, Offset, built);
        Assert.Equal(built.Length, length);
        var packet = built.AsSpan(VirtioNetHeader.Size);
        Assert.Equal(TunReadKind.Gso, TunSegmenter.Parse(VirtioNetHeader.Read(built), packet, out var state));
        var outBuffers = Buffers(128, 2048);
        var outSizes = new int[128];
        long dropped = 0;
        var n = TunSegmenter.Segment(packet, ref state, outBuffers, outSizes, 0, 128, Offset, null, ref dropped);
        Assert.False(state.Pending);
        Assert.Equal(0, dropped);
        return Enumerable.Range(0, n).Select(i => outBuffers[i].AsSpan(Offset, outSizes[i]).ToArray()).ToList();
    }

    private static (byte[][] Buffers, int[] Sizes) Place(byte[][] packets)
    {
        var buffers = Buffers(packets.Length, 2048);
        var sizes = new int[packets.Length];
        for (var i = 0; i < packets.Length; i++)
        {
            packets[i].CopyTo(buffers[i].AsSpan(Offset));
            sizes[i] = packets[i].Length;
        }

        return (buffers, sizes);
    }

    private static byte[][] Buffers(int count, int size) => Enumerable.Range(0, count).Select(_ => new byte[size]).ToArray();

    private static byte[] RandomBytes(int length, int seed)
    {
        var bytes = new byte[length];
        new Random(seed).NextBytes(bytes);
        return bytes;
    }

    /// <summary>Builds IPv4/IPv6 TCP and UDP packets with valid checksums (computed with <see cref="Reference"/>).</summary>
    private static class Packets
    {
        public static byte[] Tcp(bool ipv6, ushort id, uint seq, ushort sourcePort, byte flags, ReadOnlySpan<byte> options, ReadOnlySpan<byte> payload)
        {
            var l4 = ipv6 ? 40 : 20;
            var packet = new byte[l4 + 20 + options.Length + payload.Length];
            IpHeader(packet, ipv6, 6, id);
            var tcp = packet.AsSpan(l4);
            BinaryPrimitives.WriteUInt16BigEndian(tcp, sourcePort);
            BinaryPrimitives.WriteUInt16BigEndian(tcp[2..], 5201);
            BinaryPrimitives.WriteUInt32BigEndian(tcp[4..], seq);
            BinaryPrimitives.WriteUInt32BigEndian(tcp[8..], 0xA0B0C0D0);
            tcp[12] = (byte)((20 + options.Length) / 4 << 4);
            tcp[13] = flags;
            BinaryPrimitives.WriteUInt16BigEndian(tcp[14..], 501);
            options.CopyTo(tcp[20..]);
            payload.CopyTo(tcp[(20 + options.Length)..]);
            SetTransportChecksum(packet, 6, l4 + 16);
            return packet;
        }

        public static byte[] Udp(bool ipv6, ushort id, ReadOnlySpan<byte> payload)
        {
            var l4 = ipv6 ? 40 : 20;
            var packet = new byte[l4 + 8 + payload.Length];
            IpHeader(packet, ipv6, 17, id);
            BinaryPrimitives.WriteUInt16BigEndian(packet.AsSpan(l4), 4444);
            BinaryPrimitives.WriteUInt16BigEndian(packet.AsSpan(l4 + 2), 53);
            BinaryPrimitives.WriteUInt16BigEndian(packet.AsSpan(l4 + 4), (ushort)(8 + payload.Length));
            payload.CopyTo(packet.AsSpan(l4 + 8));
            SetTransportChecksum(packet, 17, l4 + 6);
            return packet;
        }

        public static ushort SourcePort(byte[] packet) => BinaryPrimitives.ReadUInt16BigEndian(packet.AsSpan(packet[0] >> 4 == 6 ? 40 : 20));

        public static void SetFlags(byte[] packet, byte flags)
        {
            var l4 = packet[0] >> 4 == 6 ? 40 : 20;
            packet[l4 + 13] = flags;
            SetTransportChecksum(packet, 6, l4 + 16);
        }

        public static void Corrupt(byte[] packet) => packet[^1] ^= 0x5A;

        private static void IpHeader(byte[] packet, bool ipv6, byte protocol, ushort id)
        {
            if (ipv6)
            {
                packet[0] = 0x60;
                BinaryPrimitives.WriteUInt16BigEndian(packet.AsSpan(4), (ushort)(packet.Length - 40));
                packet[6] = protocol;
                packet[7] = 64;
                packet[8] = 0xFD;
                packet[23] = 1;
                packet[24] = 0xFD;
                packet[39] = 2;
                return;
            }

            packet[0] = 0x45;
            BinaryPrimitives.WriteUInt16BigEndian(packet.AsSpan(2), (ushort)packet.Length);
            BinaryPrimitives.WriteUInt16BigEndian(packet.AsSpan(4), id);
            packet[6] = 0x40; // DF
            packet[8] = 64;
            packet[9] = protocol;
            packet[12] = 10;
            packet[15] = 1;
            packet[16] = 10;
            packet[19] = 2;
            BinaryPrimitives.WriteUInt16BigEndian(packet.AsSpan(10), Reference.Checksum(packet.AsSpan(0, 20)));
        }

        private static void SetTransportChecksum(byte[] packet, byte protocol, int at)
        {
            packet[at] = 0;
            packet[at + 1] = 0;
            var value = Reference.TransportChecksum(packet, protocol);
            BinaryPrimitives.WriteUInt16BigEndian(packet.AsSpan(at), protocol == 17 && value == 0 ? (ushort)0xFFFF : value);
        }
    }

    /// <summary>RFC 1071, the simplest way: 16-bit big-endian words summed in 32 bits, carries folded at the end.</summary>
    private static class Reference
    {
        public static ushort Checksum(ReadOnlySpan<byte> data) => (ushort)~Fold(Sum(data, 0));

        public static ushort PseudoHeaderSum(ReadOnlySpan<byte> packet, byte protocol, int length) => Fold(PseudoSum(packet, protocol, length));

        /// <summary>The checksum a transport header should carry (its field zero in <paramref name="packet"/>).</summary>
        public static ushort TransportChecksum(ReadOnlySpan<byte> packet, byte protocol)
        {
            var l4 = packet[0] >> 4 == 6 ? 40 : 20;
            return (ushort)~Fold(Sum(packet[l4..], PseudoSum(packet, protocol, packet.Length - l4)));
        }

        public static bool TransportChecksumValid(ReadOnlySpan<byte> packet, byte protocol)
        {
            var l4 = packet[0] >> 4 == 6 ? 40 : 20;
            return Fold(Sum(packet[l4..], PseudoSum(packet, protocol, packet.Length - l4))) == 0xFFFF;
        }

        private static uint PseudoSum(ReadOnlySpan<byte> packet, byte protocol, int length)
        {
            var ipv6 = packet[0] >> 4 == 6;
            var addresses = ipv6 ? packet.Slice(8, 32) : packet.Slice(12, 8);
            return Sum(addresses, (uint)protocol + (uint)(length >> 16) + (uint)(length & 0xFFFF));
        }

        private static uint Sum(ReadOnlySpan<byte> data, uint sum)
        {
            for (var i = 0; i < data.Length; i += 2)
            {
                sum += (uint)(data[i] << 8) + (i + 1 < data.Length ? data[i + 1] : 0u);
                if (sum > 0x7FFFFFFF)
                {
                    sum = (sum & 0xFFFF) + (sum >> 16);
                }
            }

            return sum;
        }

        private static ushort Fold(uint sum)
        {
            while (sum > 0xFFFF)
            {
                sum = (sum & 0xFFFF) + (sum >> 16);
            }

            return (ushort)sum;
        }
    }
}
