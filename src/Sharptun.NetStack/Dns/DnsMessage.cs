using System.Buffers.Binary;
using System.Net;

namespace Sharptun.NetStack.Dns;

/// <summary>DNS record types the resolver asks for or follows (RFC 1035 §3.2.2, RFC 3596 §2.1).</summary>
internal enum DnsRecordType : ushort
{
    A = 1,
    Cname = 5,
    Aaaa = 28,

    /// <summary>The EDNS(0) pseudo-record (RFC 6891 §6.1.1).</summary>
    Opt = 41,
}

/// <summary>What <see cref="DnsMessage.ParseResponse"/> made of a datagram.</summary>
internal enum DnsParseStatus
{
    /// <summary>A well-formed response to our query (look at <see cref="DnsResponse.ResponseCode"/>).</summary>
    Ok,

    /// <summary>The TC bit is set: the answer did not fit; ask again over TCP (RFC 1035 §4.2.1, RFC 7766 §5).</summary>
    Truncated,

    /// <summary>Not a response to our query (other ID, QR clear, other question): ignore it and keep waiting.</summary>
    Mismatch,

    /// <summary>
    /// Malformed: cut short, bad label, pointer loop or out-of-range pointer, count beyond the data, a misplaced,
    /// repeated or garbled OPT record (RFC 6891 §6.1.1, §6.1.2).
    /// </summary>
    Malformed,
}

/// <summary>
/// A parsed response: the response code (12 bits when the response carries an OPT record, RFC 6891 §6.1.3) and the
/// addresses at the end of the CNAME chain.
/// </summary>
internal readonly record struct DnsResponse(DnsParseStatus Status, int ResponseCode, IPAddress[] Addresses, uint MinTtl);

/// <summary>
/// DNS wire format (RFC 1035 §4): builds one-question queries (optionally with an EDNS(0) OPT record, RFC 6891 §6)
/// and parses responses. Never throws on network input: every problem is reported as a <see cref="DnsParseStatus"/>. Names are compared case-insensitively in their wire
/// form (RFC 4343 §3); compression pointers must point backwards, which rules out loops (RFC 1035 §4.1.4), and a name
/// is at most 255 octets (RFC 1035 §2.3.4).
/// </summary>
internal static class DnsMessage
{
    /// <summary>Header length (RFC 1035 §4.1.1).</summary>
    public const int HeaderLength = 12;

    /// <summary>Most octets in an encoded name, length octets included (RFC 1035 §2.3.4).</summary>
    public const int MaxNameLength = 255;

    /// <summary>Most octets in a label (RFC 1035 §2.3.4).</summary>
    public const int MaxLabelLength = 63;

    /// <summary>Longest CNAME chain followed inside one answer.</summary>
    public const int MaxCnameChain = 16;

    /// <summary>Most addresses taken from one response.</summary>
    public const int MaxAddresses = 64;

    /// <summary>Response code NOERROR (RFC 1035 §4.1.1).</summary>
    public const int NoError = 0;

    /// <summary>Response code FORMERR, "Format error" (RFC 1035 §4.1.1): what a server without EDNS may answer to an OPT record (RFC 6891 §7).</summary>
    public const int FormatError = 1;

    /// <summary>Response code NXDOMAIN, "Name Error" (RFC 1035 §4.1.1).</summary>
    public const int NameError = 3;

    /// <summary>Response code NOTIMP, "Not Implemented" (RFC 1035 §4.1.1): some servers without EDNS answer an OPT record with it.</summary>
    public const int NotImplemented = 4;

    /// <summary>Extended response code BADVERS (RFC 6891 §6.1.3, §9): the server does not speak our EDNS version.</summary>
    public const int BadVersion = 16;

    /// <summary>
    /// The UDP payload size advertised in the OPT record: 1232 octets, the DNS flag day 2020 value (a 1280-octet IPv6
    /// minimum MTU less the IPv6 and UDP headers), which keeps answers from being fragmented (RFC 6891 §6.2.5).
    /// </summary>
    public const ushort EdnsUdpPayloadSize = 1232;

    /// <summary>Octets of an OPT record without options: root name, TYPE, CLASS, TTL, RDLENGTH (RFC 6891 §6.1.2).</summary>
    public const int OptRecordLength = 11;

    private const ushort ClassIn = 1; // RFC 1035 §3.2.4
    private const ushort FlagQr = 0x8000;
    private const ushort FlagTc = 0x0200;
    private const ushort FlagRd = 0x0100;

    /// <summary>
    /// Encodes <paramref name="host"/> (already validated: ASCII, labels 1–63 octets, no trailing dot) as a wire-form
    /// name (RFC 1035 §3.1). Returns null when it does not fit the limits.
    /// </summary>
    public static byte[]? EncodeName(string host)
    {
        if (host.Length == 0 || host.Length > 253)
        {
            return null;
        }

        var name = new byte[host.Length + 2];
        var at = 0;
        foreach (var label in host.Split('.'))
        {
            if (label.Length is 0 or > MaxLabelLength)
            {
                return null;
            }

            name[at++] = (byte)label.Length;
            foreach (var c in label)
            {
                if (c is <= ' ' or >= (char)0x7F)
                {
                    return null;
                }

                name[at++] = (byte)c;
            }
        }

        name[at] = 0;
        return name;
    }

    /// <summary>
    /// Writes a standard query (opcode 0, RD set, one question, class IN) into a new array (RFC 1035 §4.1). With
    /// <paramref name="edns"/>, an OPT record in the additional section advertises <see cref="EdnsUdpPayloadSize"/>
    /// (RFC 6891 §6.1.2: root owner, CLASS = payload size, TTL = extended RCODE 0, version 0, DO clear; no options).
    /// </summary>
    public static byte[] BuildQuery(ushort id, ReadOnlySpan<byte> name, DnsRecordType type, bool edns = false)
    {
        var questionEnd = HeaderLength + name.Length + 4;
        var query = new byte[questionEnd + (edns ? OptRecordLength : 0)];
        BinaryPrimitives.WriteUInt16BigEndian(query, id);
        BinaryPrimitives.WriteUInt16BigEndian(query.AsSpan(2), FlagRd); // RFC 1035 §4.1.1: QR=0, OPCODE=0, RD=1
        BinaryPrimitives.WriteUInt16BigEndian(query.AsSpan(4), 1);      // QDCOUNT
        name.CopyTo(query.AsSpan(HeaderLength));
        BinaryPrimitives.WriteUInt16BigEndian(query.AsSpan(HeaderLength + name.Length), (ushort)type);
        BinaryPrimitives.WriteUInt16BigEndian(query.AsSpan(HeaderLength + name.Length + 2), ClassIn);
        if (edns)
        {
            BinaryPrimitives.WriteUInt16BigEndian(query.AsSpan(10), 1); // ARCOUNT
            var opt = query.AsSpan(questionEnd);                       // opt[0] = 0: the root name
            BinaryPrimitives.WriteUInt16BigEndian(opt[1..], (ushort)DnsRecordType.Opt);
            BinaryPrimitives.WriteUInt16BigEndian(opt[3..], EdnsUdpPayloadSize);
        }

        return query;
    }

    /// <summary>
    /// Parses <paramref name="message"/> as the response to the query with <paramref name="id"/> for
    /// <paramref name="name"/> (wire form) and <paramref name="type"/>: checks the header (RFC 1035 §4.1.1), the echoed
    /// question (§4.1.2), then walks the answer section (§4.1.3) following CNAMEs from the question name (§3.6.2) and
    /// collecting the records of <paramref name="type"/> owned by the end of the chain.
    /// </summary>
    public static DnsResponse ParseResponse(ReadOnlySpan<byte> message, ushort id, ReadOnlySpan<byte> name, DnsRecordType type)
    {
        if (message.Length < HeaderLength)
        {
            return Fail(DnsParseStatus.Malformed);
        }

        var flags = BinaryPrimitives.ReadUInt16BigEndian(message[2..]);
        if (BinaryPrimitives.ReadUInt16BigEndian(message) != id || (flags & FlagQr) == 0 || ((flags >> 11) & 0xF) != 0)
        {
            return Fail(DnsParseStatus.Mismatch);
        }

        var qdCount = BinaryPrimitives.ReadUInt16BigEndian(message[4..]);
        var anCount = BinaryPrimitives.ReadUInt16BigEndian(message[6..]);
        var recordCount = anCount + BinaryPrimitives.ReadUInt16BigEndian(message[8..]) + BinaryPrimitives.ReadUInt16BigEndian(message[10..]);
        var rcode = flags & 0xF;
        if (qdCount != 1)
        {
            if (qdCount == 0 && (flags & FlagTc) == 0 && rcode is FormatError or NotImplemented)
            {
                // RFC 6891 §7: a server that does not know EDNS may answer FORMERR or NOTIMP without echoing the
                // question; the ID (and the connected socket) tie it to our query, and it carries no data to trust.
                return new DnsResponse(DnsParseStatus.Ok, rcode, [], 0);
            }

            // A truncated or other error response may omit the question; without it we cannot tie it to our query.
            return Fail(qdCount == 0 ? DnsParseStatus.Mismatch : DnsParseStatus.Malformed);
        }

        Span<byte> owner = stackalloc byte[MaxNameLength];
        var offset = HeaderLength;
        var ownerLength = ReadName(message, ref offset, owner);
        if (ownerLength < 0 || offset + 4 > message.Length)
        {
            return Fail(DnsParseStatus.Malformed);
        }

        if (!NamesEqual(owner[..ownerLength], name)
            || BinaryPrimitives.ReadUInt16BigEndian(message[offset..]) != (ushort)type
            || BinaryPrimitives.ReadUInt16BigEndian(message[(offset + 2)..]) != ClassIn)
        {
            return Fail(DnsParseStatus.Mismatch);
        }

        offset += 4;
        if ((flags & FlagTc) != 0)
        {
            return new DnsResponse(DnsParseStatus.Truncated, rcode, [], 0);
        }

        // First pass: validate every record of the answer, authority and additional sections (bounded by the data,
        // not the counts) and pick up the OPT record's extended RCODE.
        var answersStart = offset;
        var optSeen = false;
        for (var i = 0; i < recordCount; i++)
        {
            var ownerLength2 = ReadName(message, ref offset, owner);
            if (ownerLength2 < 0 || !SkipRecordBody(message, ref offset, out var rrType, out _, out var rawTtl, out var rdata))
            {
                return Fail(DnsParseStatus.Malformed);
            }

            if (rrType == (ushort)DnsRecordType.Opt)
            {
                // RFC 6891 §6.1.1: at most one OPT, in the additional section, owned by the root; §6.1.2: its RDATA
                // is a sequence of {OPTION-CODE, OPTION-LENGTH, OPTION-DATA} that fills RDLENGTH exactly.
                if (optSeen || i < recordCount - BinaryPrimitives.ReadUInt16BigEndian(message[10..]) || ownerLength2 != 1 || !OptionsWellFormed(message[rdata..offset]))
                {
                    return Fail(DnsParseStatus.Malformed);
                }

                optSeen = true;
                rcode |= (int)(rawTtl >> 24) << 4; // RFC 6891 §6.1.3: the upper 8 bits of a 12-bit RCODE
            }
        }

        if (rcode != NoError)
        {
            return new DnsResponse(DnsParseStatus.Ok, rcode, [], 0);
        }

        Span<byte> current = stackalloc byte[MaxNameLength];
        name.CopyTo(current);
        var currentLength = name.Length;

        // Follow the CNAME chain (RFC 1034 §3.6.2): the answer may list it in any order.
        Span<byte> target = stackalloc byte[MaxNameLength];
        var minTtl = uint.MaxValue;
        for (var hop = 0; hop <= MaxCnameChain; hop++)
        {
            var followed = false;
            offset = answersStart;
            for (var i = 0; i < anCount && !followed; i++)
            {
                var ownerLength2 = ReadName(message, ref offset, owner);
                SkipRecordBody(message, ref offset, out var rrType, out var rrClass, out var rawTtl, out var rdata);
                if (rrType == (ushort)DnsRecordType.Cname && rrClass == ClassIn && NamesEqual(owner[..ownerLength2], current[..currentLength]))
                {
                    var rdataOffset = rdata;
                    var targetLength = ReadName(message, ref rdataOffset, target);
                    if (targetLength < 0)
                    {
                        return Fail(DnsParseStatus.Malformed);
                    }

                    target[..targetLength].CopyTo(current);
                    currentLength = targetLength;
                    minTtl = Math.Min(minTtl, Ttl(rawTtl));
                    followed = true;
                }
            }

            if (!followed)
            {
                break;
            }

            if (hop == MaxCnameChain)
            {
                return Fail(DnsParseStatus.Malformed);
            }
        }

        var addresses = new List<IPAddress>();
        offset = answersStart;
        for (var i = 0; i < anCount && addresses.Count < MaxAddresses; i++)
        {
            var ownerLength2 = ReadName(message, ref offset, owner);
            SkipRecordBody(message, ref offset, out var rrType, out var rrClass, out var rawTtl, out var rdata);
            if (rrType != (ushort)type || rrClass != ClassIn || !NamesEqual(owner[..ownerLength2], current[..currentLength]))
            {
                continue;
            }

            var length = offset - rdata;
            var expected = type == DnsRecordType.A ? 4 : 16; // RFC 1035 §3.4.1, RFC 3596 §2.2
            if (length != expected)
            {
                return Fail(DnsParseStatus.Malformed);
            }

            addresses.Add(new IPAddress(message.Slice(rdata, length)));
            minTtl = Math.Min(minTtl, Ttl(rawTtl));
        }

        return new DnsResponse(DnsParseStatus.Ok, NoError, [.. addresses], addresses.Count == 0 ? 0 : minTtl);
    }

    /// <summary>
    /// Reads a possibly compressed name at <paramref name="offset"/> (RFC 1035 §4.1.4) into <paramref name="name"/>
    /// (wire form, ASCII lower-cased) and moves <paramref name="offset"/> past it. Returns the name's length, or -1
    /// when it runs past the data, uses a reserved label type, has a pointer that does not point strictly backwards
    /// (which makes loops impossible) or exceeds 255 octets.
    /// </summary>
    public static int ReadName(ReadOnlySpan<byte> message, ref int offset, Span<byte> name)
    {
        var at = offset;
        var length = 0;
        var end = -1;
        var limit = at; // a pointer must target data before the label that holds it
        while (true)
        {
            if (at >= message.Length)
            {
                return -1;
            }

            var b = message[at];
            if ((b & 0xC0) == 0xC0)
            {
                if (at + 1 >= message.Length)
                {
                    return -1;
                }

                var target = ((b & 0x3F) << 8) | message[at + 1];
                if (end < 0)
                {
                    end = at + 2;
                }

                if (target >= limit)
                {
                    return -1;
                }

                limit = target;
                at = target;
                continue;
            }

            if ((b & 0xC0) != 0)
            {
                return -1; // 01 and 10 label types are reserved / obsolete (RFC 6891 §5)
            }

            if (length + 1 + b > MaxNameLength || at + 1 + b > message.Length)
            {
                return -1;
            }

            name[length++] = b;
            if (b == 0)
            {
                offset = end < 0 ? at + 1 : end;
                return length;
            }

            for (var i = 1; i <= b; i++)
            {
                var c = message[at + i];
                name[length++] = c is >= (byte)'A' and <= (byte)'Z' ? (byte)(c + 32) : c;
            }

            at += 1 + b;
        }
    }

    /// <summary>
    /// Moves past TYPE, CLASS, TTL, RDLENGTH and RDATA of a resource record (RFC 1035 §4.1.3). The TTL is returned as
    /// sent (an OPT record keeps flags there); see <see cref="Ttl"/>.
    /// </summary>
    private static bool SkipRecordBody(ReadOnlySpan<byte> message, ref int offset, out ushort type, out ushort @class, out uint ttl, out int rdata)
    {
        type = 0;
        @class = 0;
        ttl = 0;
        rdata = 0;
        if (offset + 10 > message.Length)
        {
            return false;
        }

        type = BinaryPrimitives.ReadUInt16BigEndian(message[offset..]);
        @class = BinaryPrimitives.ReadUInt16BigEndian(message[(offset + 2)..]);
        ttl = BinaryPrimitives.ReadUInt32BigEndian(message[(offset + 4)..]);
        var rdLength = BinaryPrimitives.ReadUInt16BigEndian(message[(offset + 8)..]);
        rdata = offset + 10;
        if (rdata + rdLength > message.Length)
        {
            return false;
        }

        offset = rdata + rdLength;
        return true;
    }

    /// <summary>A record's TTL: one with the top bit set is treated as zero (RFC 2181 §8).</summary>
    private static uint Ttl(uint raw) => raw > int.MaxValue ? 0 : raw;

    /// <summary>True when <paramref name="rdata"/> is a whole number of EDNS options (RFC 6891 §6.1.2).</summary>
    internal static bool OptionsWellFormed(ReadOnlySpan<byte> rdata)
    {
        while (rdata.Length > 0)
        {
            if (rdata.Length < 4)
            {
                return false;
            }

            var length = BinaryPrimitives.ReadUInt16BigEndian(rdata[2..]);
            if (4 + length > rdata.Length)
            {
                return false;
            }

            rdata = rdata[(4 + length)..];
        }

        return true;
    }

    /// <summary>Wire-form names, compared ASCII case-insensitively (RFC 4343 §3); both sides are lower-cased here.</summary>
    private static bool NamesEqual(ReadOnlySpan<byte> a, ReadOnlySpan<byte> b)
    {
        if (a.Length != b.Length)
        {
            return false;
        }

        for (var i = 0; i < a.Length; i++)
        {
            if (Lower(a[i]) != Lower(b[i]))
            {
                return false;
            }
        }

        return true;
    }

    private static byte Lower(byte c) => c is >= (byte)'A' and <= (byte)'Z' ? (byte)(c + 32) : c;

    private static DnsResponse Fail(DnsParseStatus status) => new(status, -1, [], 0);
}
