using System.Buffers.Binary;
using System.Net;

namespace Sharptun.NetStack.Dns;

/// <summary>DNS record types the resolver asks for or follows (RFC 1035 §3.2.2, RFC 3596 §2.1).</summary>
internal enum DnsRecordType : ushort
{
    A = 1,
    Cname = 5,
    Aaaa = 28,
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

    /// <summary>Malformed: cut short, bad label, pointer loop or out-of-range pointer, count beyond the data.</summary>
    Malformed,
}

/// <summary>A parsed response: the response code and the addresses at the end of the CNAME chain.</summary>
internal readonly record struct DnsResponse(DnsParseStatus Status, int ResponseCode, IPAddress[] Addresses, uint MinTtl);

/// <summary>
/// DNS wire format (RFC 1035 §4): builds one-question queries and parses responses. Never throws on network input:
/// every problem is reported as a <see cref="DnsParseStatus"/>. Names are compared case-insensitively in their wire
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

    /// <summary>Response code NXDOMAIN, "Name Error" (RFC 1035 §4.1.1).</summary>
    public const int NameError = 3;

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

    /// <summary>Writes a standard query (opcode 0, RD set, one question, class IN) into a new array (RFC 1035 §4.1).</summary>
    public static byte[] BuildQuery(ushort id, ReadOnlySpan<byte> name, DnsRecordType type)
    {
        var query = new byte[HeaderLength + name.Length + 4];
        BinaryPrimitives.WriteUInt16BigEndian(query, id);
        BinaryPrimitives.WriteUInt16BigEndian(query.AsSpan(2), FlagRd); // RFC 1035 §4.1.1: QR=0, OPCODE=0, RD=1
        BinaryPrimitives.WriteUInt16BigEndian(query.AsSpan(4), 1);      // QDCOUNT
        name.CopyTo(query.AsSpan(HeaderLength));
        BinaryPrimitives.WriteUInt16BigEndian(query.AsSpan(HeaderLength + name.Length), (ushort)type);
        BinaryPrimitives.WriteUInt16BigEndian(query.AsSpan(HeaderLength + name.Length + 2), ClassIn);
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
        var rcode = flags & 0xF;
        if (qdCount != 1)
        {
            // A truncated or error response may omit the question; without it we cannot tie it to our query.
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

        if (rcode != NoError)
        {
            return new DnsResponse(DnsParseStatus.Ok, rcode, [], 0);
        }

        // First pass: validate every answer record and find where each starts (bounded by the data, not the count).
        Span<byte> current = stackalloc byte[MaxNameLength];
        name.CopyTo(current);
        var currentLength = name.Length;
        var answersStart = offset;
        for (var i = 0; i < anCount; i++)
        {
            if (ReadName(message, ref offset, owner) < 0 || !SkipRecordBody(message, ref offset, out _, out _, out _, out _))
            {
                return Fail(DnsParseStatus.Malformed);
            }
        }

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
                SkipRecordBody(message, ref offset, out var rrType, out var rrClass, out var ttl, out var rdata);
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
                    minTtl = Math.Min(minTtl, ttl);
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
            SkipRecordBody(message, ref offset, out var rrType, out var rrClass, out var ttl, out var rdata);
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
            minTtl = Math.Min(minTtl, ttl);
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

    /// <summary>Moves past TYPE, CLASS, TTL, RDLENGTH and RDATA of a resource record (RFC 1035 §4.1.3).</summary>
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
        if (ttl > int.MaxValue)
        {
            ttl = 0; // RFC 2181 §8: a TTL with the top bit set is treated as zero
        }

        var rdLength = BinaryPrimitives.ReadUInt16BigEndian(message[(offset + 8)..]);
        rdata = offset + 10;
        if (rdata + rdLength > message.Length)
        {
            return false;
        }

        offset = rdata + rdLength;
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
