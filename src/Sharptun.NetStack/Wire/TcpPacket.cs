using System.Buffers.Binary;
using Sharptun.Transport;

namespace Sharptun.NetStack.Wire;

/// <summary>TCP control bits (RFC 9293 §3.1; ECE/CWR from RFC 3168).</summary>
[Flags]
internal enum TcpFlags : byte
{
    None = 0,
    Fin = 0x01,
    Syn = 0x02,
    Rst = 0x04,
    Psh = 0x08,
    Ack = 0x10,
    Urg = 0x20,
    Ece = 0x40,
    Cwr = 0x80,
}

/// <summary>One SACK block (RFC 2018 §3): [Left, Right) in sequence space.</summary>
internal readonly record struct SackBlock(SeqNumber Left, SeqNumber Right);

/// <summary>
/// Checked view over a TCP header (RFC 9293 §3.1). <see cref="TryCreate"/> validates the lengths
/// (fixed header present, 5 &lt;= Data Offset, header fits in the buffer) before any field is read.
/// <code>
///  0                   1                   2                   3
///  0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
/// +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
/// |          Source Port          |       Destination Port        |   0
/// +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
/// |                        Sequence Number                        |   4
/// +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
/// |                    Acknowledgment Number                      |   8
/// +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
/// |  Data |       |C|E|U|A|P|R|S|F|                               |
/// | Offset| Rsrvd |W|C|R|C|S|S|Y|I|            Window             |  12
/// |       |       |R|E|G|K|H|T|N|N|                               |
/// +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
/// |           Checksum            |         Urgent Pointer        |  16
/// +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
/// |                           [Options]                           |  20
/// +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
/// </code>
/// </summary>
internal readonly ref struct TcpPacket
{
    public const int SrcPortOffset = 0;
    public const int DstPortOffset = 2;
    public const int SeqOffset = 4;
    public const int AckOffset = 8;
    public const int DataOffsetOffset = 12;
    public const int FlagsOffset = 13;
    public const int WindowOffset = 14;
    public const int ChecksumOffset = 16;
    public const int UrgentOffset = 18;
    public const int MinLength = 20;
    public const int MaxLength = 60;

    private readonly ReadOnlySpan<byte> _segment;

    private TcpPacket(ReadOnlySpan<byte> segment) => _segment = segment;

    /// <summary>Validates lengths; never reads outside <paramref name="segment"/>.</summary>
    public static bool TryCreate(ReadOnlySpan<byte> segment, out TcpPacket header)
    {
        header = default;
        if (segment.Length < MinLength)
        {
            return false;
        }

        int hl = (segment[DataOffsetOffset] >> 4) * 4;
        if (hl < MinLength || hl > segment.Length)
        {
            return false;
        }

        header = new TcpPacket(segment);
        return true;
    }

    public ushort SourcePort => BinaryPrimitives.ReadUInt16BigEndian(_segment[SrcPortOffset..]);
    public ushort DestinationPort => BinaryPrimitives.ReadUInt16BigEndian(_segment[DstPortOffset..]);
    public SeqNumber SequenceNumber => new(BinaryPrimitives.ReadUInt32BigEndian(_segment[SeqOffset..]));
    public SeqNumber AckNumber => new(BinaryPrimitives.ReadUInt32BigEndian(_segment[AckOffset..]));
    public int HeaderLength => (_segment[DataOffsetOffset] >> 4) * 4;
    public TcpFlags Flags => (TcpFlags)_segment[FlagsOffset];
    public ushort Window => BinaryPrimitives.ReadUInt16BigEndian(_segment[WindowOffset..]);
    public ushort Checksum => BinaryPrimitives.ReadUInt16BigEndian(_segment[ChecksumOffset..]);
    public ushort UrgentPointer => BinaryPrimitives.ReadUInt16BigEndian(_segment[UrgentOffset..]);
    public ReadOnlySpan<byte> Options => _segment[MinLength..HeaderLength];
    public ReadOnlySpan<byte> Payload => _segment[HeaderLength..];

    /// <summary>RFC 9293 §3.1: checksum over pseudo-header, header and data must fold to zero.</summary>
    public bool VerifyChecksum(in IpAddr source, in IpAddr destination)
    {
        uint sum = Wire.Checksum.PseudoHeader(source, destination, IpProtocol.Tcp, _segment.Length);
        return Wire.Checksum.Finish(Wire.Checksum.Add(_segment, sum)) == 0;
    }
}

/// <summary>
/// A parsed TCP header with its options (payload excluded). Option kinds (RFC 9293 §3.2, RFC 7323, RFC 2018):
/// 0 EOL, 1 NOP, 2 MSS (len 4), 3 window scale (len 3), 4 SACK-permitted (len 2), 5 SACK (len 2+8n), 8 timestamps (len 10).
/// Unknown options are skipped by their length byte; a malformed length ends option parsing as invalid.
/// </summary>
internal readonly record struct TcpRepr
{
    public ushort SourcePort { get; init; }
    public ushort DestinationPort { get; init; }
    public SeqNumber Seq { get; init; }
    public SeqNumber Ack { get; init; }
    public TcpFlags Flags { get; init; }
    /// <summary>The raw (unscaled) 16-bit window field.</summary>
    public ushort Window { get; init; }
    public ushort UrgentPointer { get; init; }
    /// <summary>MSS option value; 0 when absent.</summary>
    public ushort Mss { get; init; }
    /// <summary>Window scale shift; -1 when absent.</summary>
    public sbyte WindowScale { get; init; }
    public bool SackPermitted { get; init; }
    public bool HasTimestamp { get; init; }
    public uint TsVal { get; init; }
    public uint TsEcr { get; init; }
    public int SackCount { get; init; }
    public SackBlock Sack0 { get; init; }
    public SackBlock Sack1 { get; init; }
    public SackBlock Sack2 { get; init; }
    public SackBlock Sack3 { get; init; }

    public TcpRepr()
    {
        WindowScale = -1;
    }

    public bool Has(TcpFlags f) => (Flags & f) == f;

    public SackBlock GetSack(int i) => i switch { 0 => Sack0, 1 => Sack1, 2 => Sack2, 3 => Sack3, _ => throw new ArgumentOutOfRangeException(nameof(i)) };

    public TcpRepr WithSack(int i, SackBlock b) => i switch
    {
        0 => this with { Sack0 = b },
        1 => this with { Sack1 = b },
        2 => this with { Sack2 = b },
        3 => this with { Sack3 = b },
        _ => throw new ArgumentOutOfRangeException(nameof(i)),
    };

    /// <summary>Most SACK blocks that fit next to the other options emitted.</summary>
    public int MaxSackBlocks => Math.Min(4, (TcpPacket.MaxLength - TcpPacket.MinLength - FixedOptionsLength - 4) / 8);

    private int FixedOptionsLength =>
        (Mss != 0 ? 4 : 0) + (WindowScale >= 0 ? 4 : 0) + (SackPermitted ? 4 : 0) + (HasTimestamp ? 12 : 0);

    /// <summary>Option bytes (with NOP padding) after the 20-byte fixed header; what RFC 6691 takes off the send MSS.</summary>
    public int OptionsLength => FixedOptionsLength + (SackCount > 0 ? 4 + 8 * SackCount : 0);

    /// <summary>Header length in bytes including options (multiple of 4).</summary>
    public int HeaderLength => TcpPacket.MinLength + OptionsLength;

    /// <summary>
    /// Parses and (optionally) checksum-verifies a segment. Returns false for a truncated header, bad
    /// checksum or malformed options. Never throws and never reads out of range.
    /// </summary>
    public static bool TryParse(ReadOnlySpan<byte> segment, in IpAddr source, in IpAddr destination, bool verifyChecksum,
        out TcpRepr repr, out int payloadOffset)
    {
        repr = default;
        payloadOffset = 0;
        if (!TcpPacket.TryCreate(segment, out var h))
        {
            return false;
        }

        if (verifyChecksum && !h.VerifyChecksum(source, destination))
        {
            return false;
        }

        if (!TryParseHeader(h, out repr))
        {
            return false;
        }

        payloadOffset = h.HeaderLength;
        return true;
    }

    /// <summary>Parses the header fields and options from an already length-checked view.</summary>
    public static bool TryParseHeader(TcpPacket h, out TcpRepr repr)
    {
        var r = new TcpRepr
        {
            SourcePort = h.SourcePort,
            DestinationPort = h.DestinationPort,
            Seq = h.SequenceNumber,
            Ack = h.AckNumber,
            Flags = h.Flags,
            Window = h.Window,
            UrgentPointer = h.UrgentPointer,
        };
        repr = default;
        var opts = h.Options;
        int i = 0;
        while (i < opts.Length)
        {
            byte kind = opts[i];
            if (kind == 0)
            {
                break; // EOL
            }

            if (kind == 1)
            {
                i++; // NOP
                continue;
            }

            if (i + 1 >= opts.Length)
            {
                return false;
            }

            int len = opts[i + 1];
            if (len < 2 || i + len > opts.Length)
            {
                return false;
            }

            var body = opts.Slice(i + 2, len - 2);
            switch (kind)
            {
                case 2 when len == 4:
                    r = r with { Mss = BinaryPrimitives.ReadUInt16BigEndian(body) };
                    break;
                case 3 when len == 3:
                    // RFC 7323 §2.3: a shift above 14 is treated as 14.
                    r = r with { WindowScale = (sbyte)Math.Min(body[0], (byte)14) };
                    break;
                case 4 when len == 2:
                    r = r with { SackPermitted = true };
                    break;
                case 5 when (len - 2) % 8 == 0:
                    {
                        int n = Math.Min((len - 2) / 8, 4);
                        for (int b = 0; b < n; b++)
                        {
                            var blk = new SackBlock(
                                new SeqNumber(BinaryPrimitives.ReadUInt32BigEndian(body[(b * 8)..])),
                                new SeqNumber(BinaryPrimitives.ReadUInt32BigEndian(body[(b * 8 + 4)..])));
                            r = r.WithSack(b, blk);
                        }

                        r = r with { SackCount = n };
                        break;
                    }

                case 8 when len == 10:
                    r = r with
                    {
                        HasTimestamp = true,
                        TsVal = BinaryPrimitives.ReadUInt32BigEndian(body),
                        TsEcr = BinaryPrimitives.ReadUInt32BigEndian(body[4..]),
                    };
                    break;
                case 2 or 3 or 4 or 5 or 8:
                    return false; // known option with a wrong length
                default:
                    break; // unknown option: skipped by length (RFC 9293 §3.2 MUST-6/7)
            }

            i += len;
        }

        repr = r;
        return true;
    }

    /// <summary>
    /// Writes header and checksum into <paramref name="segment"/>, whose bytes from <see cref="HeaderLength"/>
    /// on must already hold <paramref name="payloadLength"/> bytes of payload. Returns the segment length.
    /// </summary>
    public int Emit(Span<byte> segment, int payloadLength, in IpAddr source, in IpAddr destination)
    {
        int hl = HeaderLength;
        if (segment.Length < hl + payloadLength)
        {
            throw new ArgumentException("Buffer too small for the segment.", nameof(segment));
        }

        BinaryPrimitives.WriteUInt16BigEndian(segment[TcpPacket.SrcPortOffset..], SourcePort);
        BinaryPrimitives.WriteUInt16BigEndian(segment[TcpPacket.DstPortOffset..], DestinationPort);
        BinaryPrimitives.WriteUInt32BigEndian(segment[TcpPacket.SeqOffset..], Seq.Value);
        BinaryPrimitives.WriteUInt32BigEndian(segment[TcpPacket.AckOffset..], Has(TcpFlags.Ack) ? Ack.Value : 0);
        segment[TcpPacket.DataOffsetOffset] = (byte)((hl / 4) << 4);
        segment[TcpPacket.FlagsOffset] = (byte)Flags;
        BinaryPrimitives.WriteUInt16BigEndian(segment[TcpPacket.WindowOffset..], Window);
        BinaryPrimitives.WriteUInt16BigEndian(segment[TcpPacket.ChecksumOffset..], 0);
        BinaryPrimitives.WriteUInt16BigEndian(segment[TcpPacket.UrgentOffset..], UrgentPointer);
        int o = TcpPacket.MinLength;
        if (Mss != 0)
        {
            segment[o] = 2;
            segment[o + 1] = 4;
            BinaryPrimitives.WriteUInt16BigEndian(segment[(o + 2)..], Mss);
            o += 4;
        }

        if (WindowScale >= 0)
        {
            segment[o] = 1;
            segment[o + 1] = 3;
            segment[o + 2] = 3;
            segment[o + 3] = (byte)WindowScale;
            o += 4;
        }

        if (SackPermitted)
        {
            segment[o] = 1;
            segment[o + 1] = 1;
            segment[o + 2] = 4;
            segment[o + 3] = 2;
            o += 4;
        }

        if (HasTimestamp)
        {
            segment[o] = 1;
            segment[o + 1] = 1;
            segment[o + 2] = 8;
            segment[o + 3] = 10;
            BinaryPrimitives.WriteUInt32BigEndian(segment[(o + 4)..], TsVal);
            BinaryPrimitives.WriteUInt32BigEndian(segment[(o + 8)..], TsEcr);
            o += 12;
        }

        if (SackCount > 0)
        {
            segment[o] = 1;
            segment[o + 1] = 1;
            segment[o + 2] = 5;
            segment[o + 3] = (byte)(2 + 8 * SackCount);
            o += 4;
            for (int b = 0; b < SackCount; b++)
            {
                var blk = GetSack(b);
                BinaryPrimitives.WriteUInt32BigEndian(segment[o..], blk.Left.Value);
                BinaryPrimitives.WriteUInt32BigEndian(segment[(o + 4)..], blk.Right.Value);
                o += 8;
            }
        }

        int total = hl + payloadLength;
        uint sum = Checksum.PseudoHeader(source, destination, IpProtocol.Tcp, total);
        ushort ck = Checksum.Finish(Checksum.Add(segment[..total], sum));
        BinaryPrimitives.WriteUInt16BigEndian(segment[TcpPacket.ChecksumOffset..], ck);
        return total;
    }

    /// <summary>Writes header, copies <paramref name="payload"/> after it and checksums. Returns the segment length.</summary>
    public int Emit(Span<byte> segment, ReadOnlySpan<byte> payload, in IpAddr source, in IpAddr destination)
    {
        payload.CopyTo(segment[HeaderLength..]);
        return Emit(segment, payload.Length, source, destination);
    }

    /// <summary>Sequence space this segment occupies: payload + SYN + FIN (RFC 9293 §3.4 SEG.LEN).</summary>
    public int SegmentLength(int payloadLength) =>
        payloadLength + (Has(TcpFlags.Syn) ? 1 : 0) + (Has(TcpFlags.Fin) ? 1 : 0);
}
