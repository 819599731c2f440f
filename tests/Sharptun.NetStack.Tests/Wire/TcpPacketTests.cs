using System.Buffers.Binary;
using Sharptun.NetStack.Tcp;
using Sharptun.NetStack.Tests.Tcp;
using Sharptun.NetStack.Wire;
using Sharptun.Transport;

namespace Sharptun.NetStack.Tests.Wire;

public sealed class TcpPacketTests
{
    private static readonly IpAddr Src = IpAddr.Parse("192.168.1.10");
    private static readonly IpAddr Dst = IpAddr.Parse("192.168.1.20");

    /// <summary>Naive RFC 1071 reference: 16-bit big-endian words summed in a 64-bit accumulator.</summary>
    private static ushort NaiveChecksum(IpAddr src, IpAddr dst, ReadOnlySpan<byte> segment)
    {
        var pseudo = new List<byte>();
        var a = new byte[16];
        pseudo.AddRange(a.AsSpan(0, src.WriteTo(a)).ToArray());
        pseudo.AddRange(a.AsSpan(0, dst.WriteTo(a)).ToArray());
        if (src.IsV4)
        {
            pseudo.AddRange(new byte[] { 0, 6, (byte)(segment.Length >> 8), (byte)segment.Length });
        }
        else
        {
            pseudo.AddRange(new byte[] { (byte)(segment.Length >> 24), (byte)(segment.Length >> 16), (byte)(segment.Length >> 8), (byte)segment.Length, 0, 0, 0, 6 });
        }

        pseudo.AddRange(segment.ToArray());
        if (pseudo.Count % 2 == 1)
        {
            pseudo.Add(0);
        }

        ulong sum = 0;
        for (int i = 0; i < pseudo.Count; i += 2)
        {
            sum += (ulong)((pseudo[i] << 8) | pseudo[i + 1]);
        }

        while (sum > 0xFFFF)
        {
            sum = (sum & 0xFFFF) + (sum >> 16);
        }

        return (ushort)~sum;
    }

    // A SYN as Linux sends it: MSS 1460, SACK-permitted, timestamps, NOP, window scale 7.
    private static byte[] LinuxSynFixture()
    {
        byte[] seg =
        [
            0xC3, 0x50, 0x00, 0x50,             // ports 50000 → 80
            0x12, 0x34, 0x56, 0x78,             // seq
            0x00, 0x00, 0x00, 0x00,             // ack
            0xA0, 0x02, 0xFA, 0xF0,             // data offset 10 (40 bytes), SYN, window 64240
            0x00, 0x00, 0x00, 0x00,             // checksum (filled below), urgent
            0x02, 0x04, 0x05, 0xB4,             // MSS 1460
            0x04, 0x02,                         // SACK permitted
            0x08, 0x0A, 0x00, 0x01, 0xE2, 0x40, 0x00, 0x00, 0x00, 0x00, // TS val=123456 ecr=0
            0x01,                               // NOP
            0x03, 0x03, 0x07,                   // WS 7
        ];
        BinaryPrimitives.WriteUInt16BigEndian(seg.AsSpan(16), NaiveChecksum(Src, Dst, seg));
        return seg;
    }

    [Fact]
    public void TryParse_LinuxSynFixture_ParsesEveryOption()
    {
        var seg = LinuxSynFixture();
        Assert.True(TcpRepr.TryParse(seg, Src, Dst, verifyChecksum: true, out var r, out int off));
        Assert.Equal(40, off);
        Assert.Equal(50000, r.SourcePort);
        Assert.Equal(80, r.DestinationPort);
        Assert.Equal(0x12345678u, r.Seq.Value);
        Assert.Equal(TcpFlags.Syn, r.Flags);
        Assert.Equal(64240, r.Window);
        Assert.Equal(1460, r.Mss);
        Assert.True(r.SackPermitted);
        Assert.True(r.HasTimestamp);
        Assert.Equal(123456u, r.TsVal);
        Assert.Equal(0u, r.TsEcr);
        Assert.Equal(7, r.WindowScale);
    }

    [Fact]
    public void TryParse_FlippedBit_ChecksumRejects()
    {
        var seg = LinuxSynFixture();
        seg[5] ^= 0x01;
        Assert.False(TcpRepr.TryParse(seg, Src, Dst, verifyChecksum: true, out _, out _));
    }

    [Fact]
    public void Emit_DataSegmentWithSack_MatchesExpectedBytes()
    {
        var r = new TcpRepr
        {
            SourcePort = 80, DestinationPort = 50000, Seq = new SeqNumber(1), Ack = new SeqNumber(0x01020304),
            Flags = TcpFlags.Ack | TcpFlags.Psh, Window = 0x1000,
            HasTimestamp = true, TsVal = 7, TsEcr = 9, SackCount = 1, Sack0 = new SackBlock(new SeqNumber(100), new SeqNumber(200)),
        };
        var buf = new byte[r.HeaderLength + 3];
        int n = r.Emit(buf, new byte[] { 0xAA, 0xBB, 0xCC }, Src, Dst);
        byte[] expectedHeader =
        [
            0x00, 0x50, 0xC3, 0x50, 0x00, 0x00, 0x00, 0x01, 0x01, 0x02, 0x03, 0x04,
            0xB0, 0x18, 0x10, 0x00, 0x00, 0x00, 0x00, 0x00, // offset 11 words (44 bytes), ACK|PSH
            0x01, 0x01, 0x08, 0x0A, 0, 0, 0, 7, 0, 0, 0, 9, // NOP NOP TS
            0x01, 0x01, 0x05, 0x0A, 0, 0, 0, 100, 0, 0, 0, 200, // NOP NOP SACK 1 block
        ];
        Assert.Equal(expectedHeader.Length + 3, n);
        var copy = (byte[])buf.Clone();
        copy[16] = copy[17] = 0;
        Assert.Equal(expectedHeader, copy[..expectedHeader.Length]);
        Assert.Equal(NaiveChecksum(Src, Dst, copy), BinaryPrimitives.ReadUInt16BigEndian(buf.AsSpan(16)));
    }

    [Fact]
    public void Emit_Ipv6Segment_ChecksumMatchesNaiveReference()
    {
        var s6 = IpAddr.Parse("fd00::1");
        var d6 = IpAddr.Parse("fd00::2");
        var r = new TcpRepr { SourcePort = 1, DestinationPort = 2, Seq = new SeqNumber(5), Flags = TcpFlags.Syn, Mss = 1440 };
        var buf = new byte[r.HeaderLength + 5];
        r.Emit(buf, new byte[] { 1, 2, 3, 4, 5 }, s6, d6);
        var copy = (byte[])buf.Clone();
        copy[16] = copy[17] = 0;
        Assert.Equal(NaiveChecksum(s6, d6, copy), BinaryPrimitives.ReadUInt16BigEndian(buf.AsSpan(16)));
        Assert.True(TcpRepr.TryParse(buf, s6, d6, true, out _, out _));
    }

    [Fact]
    public void TryParse_UnknownOptionKind_SkippedByLength()
    {
        // kind 30 (MPTCP) length 4, then MSS
        byte[] seg = [0, 1, 0, 2, 0, 0, 0, 1, 0, 0, 0, 0, 0x70, 0x02, 0x10, 0x00, 0, 0, 0, 0, 30, 4, 0xFF, 0xFF, 2, 4, 0x05, 0x00];
        Assert.True(TcpRepr.TryParse(seg, Src, Dst, verifyChecksum: false, out var r, out _));
        Assert.Equal(0x500, r.Mss);
    }

    [Theory]
    [InlineData(new byte[] { 1, 1, 2, 4 })]       // option runs past the header
    [InlineData(new byte[] { 1, 1, 1, 2 })]       // no room for the length byte
    [InlineData(new byte[] { 30, 1, 0, 0 })]      // length below 2
    [InlineData(new byte[] { 8, 10, 0, 0 })]      // timestamps truncated
    [InlineData(new byte[] { 2, 3, 0, 0 })]       // MSS with the wrong length
    public void TryParse_MalformedOptions_ReturnsFalse(byte[] options)
    {
        int hl = 20 + ((options.Length + 3) / 4 * 4);
        var seg = new byte[hl];
        seg[12] = (byte)((hl / 4) << 4);
        options.CopyTo(seg, 20);
        Assert.False(TcpRepr.TryParse(seg, Src, Dst, verifyChecksum: false, out _, out _));
    }

    [Fact]
    public void TryParse_EolStopsOptionParsing()
    {
        byte[] seg = [0, 1, 0, 2, 0, 0, 0, 1, 0, 0, 0, 0, 0x60, 0x02, 0x10, 0x00, 0, 0, 0, 0, 0, 0xFF, 0xFF, 0xFF];
        Assert.True(TcpRepr.TryParse(seg, Src, Dst, verifyChecksum: false, out var r, out _));
        Assert.Equal(0, r.Mss);
    }

    [Theory]
    [InlineData(0)]
    [InlineData(19)]
    public void TryCreate_ShorterThanFixedHeader_ReturnsFalse(int length)
    {
        Assert.False(TcpPacket.TryCreate(new byte[length], out _));
    }

    [Theory]
    [InlineData(0x40)] // data offset 4 (< 5)
    [InlineData(0xF0)] // data offset 15 (60 bytes) > buffer
    public void TryCreate_BadDataOffset_ReturnsFalse(byte offsetByte)
    {
        var seg = new byte[40];
        seg[12] = offsetByte;
        Assert.False(TcpPacket.TryCreate(seg, out _));
    }

    [Fact]
    public void EmitThenParse_RandomReprs_RoundTrip()
    {
        const int seed = 1234;
        var rng = new Random(seed);
        for (int i = 0; i < 2000; i++)
        {
            var r = new TcpRepr
            {
                SourcePort = (ushort)rng.Next(65536),
                DestinationPort = (ushort)rng.Next(65536),
                Seq = new SeqNumber((uint)rng.NextInt64(1L << 32)),
                Ack = new SeqNumber((uint)rng.NextInt64(1L << 32)),
                Flags = (TcpFlags)rng.Next(256) | TcpFlags.Ack,
                Window = (ushort)rng.Next(65536),
                UrgentPointer = (ushort)rng.Next(65536),
                Mss = rng.Next(2) == 0 ? (ushort)0 : (ushort)rng.Next(1, 65536),
                WindowScale = (sbyte)(rng.Next(2) == 0 ? -1 : rng.Next(15)),
                SackPermitted = rng.Next(2) == 0,
                HasTimestamp = rng.Next(2) == 0,
            };
            if (r.HasTimestamp)
            {
                r = r with { TsVal = (uint)rng.NextInt64(1L << 32), TsEcr = (uint)rng.NextInt64(1L << 32) };
            }

            int blocks = rng.Next(r.MaxSackBlocks + 1);
            for (int b = 0; b < blocks; b++)
            {
                r = r.WithSack(b, new SackBlock(new SeqNumber((uint)rng.NextInt64(1L << 32)), new SeqNumber((uint)rng.NextInt64(1L << 32))));
            }

            r = r with { SackCount = blocks };
            Assert.True(r.HeaderLength <= TcpPacket.MaxLength, $"seed {seed} iteration {i}");
            var payload = new byte[rng.Next(100)];
            rng.NextBytes(payload);
            var buf = new byte[r.HeaderLength + payload.Length];
            r.Emit(buf, payload, Src, Dst);
            Assert.True(TcpRepr.TryParse(buf, Src, Dst, verifyChecksum: true, out var parsed, out int off), $"seed {seed} iteration {i}");
            Assert.Equal(r, parsed);
            Assert.Equal(payload, buf[off..]);
        }
    }

    [Fact]
    public void TryParse_FuzzedSegments_NeverThrowsOrReadsOutOfRange()
    {
        const int seed = 4321;
        var rng = new Random(seed);
        var valid = LinuxSynFixture();
        for (int i = 0; i < 50_000; i++)
        {
            byte[] seg;
            if (i % 2 == 0)
            {
                seg = new byte[rng.Next(0, 80)];
                rng.NextBytes(seg);
            }
            else
            {
                seg = (byte[])valid.Clone();
                int flips = rng.Next(1, 6);
                for (int f = 0; f < flips; f++)
                {
                    seg[rng.Next(seg.Length)] = (byte)rng.Next(256);
                }

                seg = seg[..rng.Next(seg.Length + 1)];
            }

            try
            {
                if (TcpRepr.TryParse(seg, Src, Dst, verifyChecksum: rng.Next(2) == 0, out var r, out int off))
                {
                    Assert.InRange(off, 20, seg.Length);
                    Assert.InRange(r.SackCount, 0, 4);
                }
            }
            catch (Exception e)
            {
                Assert.Fail($"seed {seed} iteration {i}: {e}");
            }
        }
    }

    [Fact]
    public void OnSegment_FuzzedSegmentsToLayer_NeverThrows()
    {
        const int seed = 99;
        var rng = new Random(seed);
        var p = new TcpPair(seed).Connect();
        var valid = LinuxSynFixture();
        for (int i = 0; i < 5000; i++)
        {
            var seg = (byte[])valid.Clone();
            seg[rng.Next(seg.Length)] = (byte)rng.Next(256);
            BinaryPrimitives.WriteUInt16BigEndian(seg.AsSpan(0), TcpPair.ServerPort);
            BinaryPrimitives.WriteUInt16BigEndian(seg.AsSpan(2), p.C.Tuple.LocalPort);
            seg[16] = seg[17] = 0;
            BinaryPrimitives.WriteUInt16BigEndian(seg.AsSpan(16), NaiveChecksum(p.Server.Address, p.Client.Address, seg));
            lock (p.Net.Gate)
            {
                p.Client.Tcp.OnSegment(p.Server.Address, p.Client.Address, seg);
            }
        }
    }

    [Fact]
    public void SeqNumber_ComparisonsAcrossWrap_UseSerialArithmetic()
    {
        var a = new SeqNumber(0xFFFF_FFF0);
        var b = a + 0x20;
        Assert.Equal(0x10u, b.Value);
        Assert.True(a < b);
        Assert.True(b > a);
        Assert.Equal(0x20, b - a);
        Assert.Equal(-0x20, a - b);
    }
}

public sealed class TcpBufferTests
{
    [Fact]
    public void ByteRing_WrapAround_PreservesOrder()
    {
        var ring = new ByteRing(10);
        Assert.Equal(7, ring.Enqueue(new byte[] { 1, 2, 3, 4, 5, 6, 7 }));
        var tmp = new byte[5];
        Assert.Equal(5, ring.Dequeue(tmp));
        Assert.Equal(8, ring.Enqueue(new byte[] { 8, 9, 10, 11, 12, 13, 14, 15, 16 }));
        var all = new byte[10];
        Assert.Equal(10, ring.Dequeue(all));
        Assert.Equal(new byte[] { 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 0, 0 }[..10], all);
    }

    [Fact]
    public void ByteRing_WriteAtBeyondEndThenCommit_BecomesReadable()
    {
        var ring = new ByteRing(8);
        ring.Enqueue(new byte[] { 1, 2 });
        ring.WriteAt(3, new byte[] { 6, 7 });   // out of order
        ring.WriteAt(0, new byte[] { 3, 4, 5 }); // fills the hole
        ring.Commit(5);
        var all = new byte[7];
        Assert.Equal(7, ring.Dequeue(all));
        Assert.Equal(new byte[] { 1, 2, 3, 4, 5, 6, 7 }, all);
    }

    [Fact]
    public void SeqRanges_RandomAdds_MatchNaiveBitmapModel()
    {
        const int seed = 77;
        var rng = new Random(seed);
        for (int round = 0; round < 200; round++)
        {
            var ranges = new SeqRanges(64);
            var model = new bool[600];
            var baseSeq = new SeqNumber((uint)rng.NextInt64(1L << 32));
            for (int i = 0; i < 20; i++)
            {
                int l = rng.Next(500);
                int len = rng.Next(1, 100);
                Assert.True(ranges.Add(baseSeq + l, baseSeq + l + len));
                for (int k = l; k < l + len; k++)
                {
                    model[k] = true;
                }
            }

            for (int k = 0; k < model.Length; k++)
            {
                Assert.True(model[k] == ranges.Contains(baseSeq + k), $"seed {seed} round {round} offset {k}");
            }

            Assert.Equal(model.Count(x => x), ranges.TotalBytes());
            for (int i = 1; i < ranges.Count; i++)
            {
                Assert.True(ranges[i - 1].Right < ranges[i].Left, "ranges must be disjoint, sorted and not adjacent");
            }
        }
    }

    [Fact]
    public void SeqRanges_Full_AddOfDisjointRangeFails()
    {
        var r = new SeqRanges(2);
        Assert.True(r.Add(new SeqNumber(0), new SeqNumber(10)));
        Assert.True(r.Add(new SeqNumber(20), new SeqNumber(30)));
        Assert.False(r.Add(new SeqNumber(40), new SeqNumber(50)));
        Assert.True(r.Add(new SeqNumber(10), new SeqNumber(20))); // merging still works
        Assert.Equal(1, r.Count);
    }
}
