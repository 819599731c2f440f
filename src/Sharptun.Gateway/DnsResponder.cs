using System.Buffers.Binary;
using System.Net;
using System.Net.Sockets;
using System.Text;

namespace Sharptun.Gateway;

/// <summary>
/// Answers DNS queries (RFC 1035 §4.1) sent to the gateway's tunnel address. Standard queries of any type and class
/// go to the host's nameservers (<see cref="Forwarder"/>, from <c>/etc/resolv.conf</c>) and their answers come back
/// as the servers gave them. When no nameserver is configured or none answers, and for A and AAAA queries the servers
/// answer with an error RCODE (NXDOMAIN, REFUSED, ...) or that ask for localhost names (RFC 6761 §6.3), A and AAAA
/// queries of class IN are answered through the host's resolver (<see cref="Dns.GetHostAddressesAsync(string, AddressFamily, CancellationToken)"/>,
/// which also reads <c>/etc/hosts</c>): the host's addresses (TTL 60 s, at most <see cref="MaxAnswers"/>), NXDOMAIN for a
/// name the host cannot resolve, SERVFAIL when it fails; other types then get SERVFAIL (RFC 1035 §4.1.1 RCODE 2) with
/// nameservers configured and NOTIMP (RCODE 4) without. Other opcodes get NOTIMP, malformed queries FORMERR.
/// </summary>
/// <remarks>
/// EDNS(0) (RFC 6891): a query's OPT record is read from the additional section; the response then carries an OPT
/// record of ours (§7) and, over UDP, may be as long as the requester's payload size (at least 512, §6.2.5) but never
/// more than <see cref="EdnsUdpPayloadSize"/>. Without OPT a UDP answer is at most 512 octets (RFC 1035 §4.2.1). An
/// answer that does not fit goes out with TC set and no records (RFC 2181 §9), so the client asks again over TCP
/// (RFC 7766 §5), where there is no such limit. A second OPT record, one not owned by the root or garbled options get
/// FORMERR (§6.1.1, §6.1.2); an EDNS version other than 0 gets BADVERS (§6.1.3).
/// </remarks>
internal sealed class DnsResponder(TimeSpan timeout)
{
    /// <summary>The most this responder puts in a UDP answer, whatever the client offers: the DNS flag day 2020 value.</summary>
    internal const int EdnsUdpPayloadSize = 1232;

    /// <summary>Most answer records in one response.</summary>
    internal const int MaxAnswers = 64;

    private const int HeaderLength = 12;
    private const int FormErr = 1;
    private const int ServFail = 2;
    private const int NxDomain = 3;
    private const int NotImp = 4;
    private const ushort TypeA = 1;
    private const ushort TypeAaaa = 28;
    private const ushort ClassIn = 1;
    private const int BadVers = 16; // RFC 6891 §6.1.3, §9
    private const ushort TypeOpt = 41;
    private const uint Ttl = 60;
    private const int MaxUdpResponse = 512; // RFC 1035 §2.3.4 without EDNS
    private const int OptLength = 11;       // root name, TYPE, CLASS, TTL, RDLENGTH; no options (RFC 6891 §6.1.2)

    /// <summary>The host's nameservers queries are forwarded to first, or null (the host resolver path only).</summary>
    internal DnsForwarder? Forwarder { get; init; }

    /// <summary>Test seam: the host resolver.</summary>
    internal Func<string, AddressFamily, CancellationToken, Task<IPAddress[]>> Resolve { get; init; } = Dns.GetHostAddressesAsync;

    /// <summary>The response to <paramref name="query"/>, or null when it must not be answered (a response, or shorter than a header).</summary>
    public async Task<byte[]?> AnswerAsync(ReadOnlyMemory<byte> query, bool udp, CancellationToken cancellationToken)
    {
        if (query.Length < HeaderLength || (query.Span[2] & 0x80) != 0)
        {
            return null; // RFC 1035 §4.1.1: QR set = a response; never answer one
        }

        var opcode = (query.Span[2] >> 3) & 0xF;
        if (opcode != 0)
        {
            return Error(query.Span, NotImp, questionEnd: HeaderLength, edns: -1);
        }

        if (BinaryPrimitives.ReadUInt16BigEndian(query.Span[4..]) != 1 || !TryReadQuestion(query.Span, out var name, out var type, out var @class, out var questionEnd))
        {
            return Error(query.Span, FormErr, questionEnd: HeaderLength, edns: -1);
        }

        var edns = ReadEdns(query.Span, questionEnd, out var version);
        if (edns == BadOpt)
        {
            return Error(query.Span, FormErr, questionEnd, edns: -1);
        }

        if (version != 0)
        {
            return Error(query.Span, BadVers, questionEnd, edns); // RFC 6891 §6.1.3: we speak version 0 only
        }

        var address = @class == ClassIn && type is TypeA or TypeAaaa;
        if (Forwarder is { Servers.Count: > 0 } forwarder && !(address && IsLocalhost(name)))
        {
            // RFC 6761 §6.3: localhost addresses come from the host (its resolver answers loopback), never a nameserver.
            if (await forwarder.ForwardAsync(query, questionEnd, edns, udp, timeout, cancellationToken).ConfigureAwait(false) is { } forwarded
                && !(address && (forwarded[3] & 0xF) != 0))
            {
                return forwarded;
            }

            // No server answered, or an address query they failed (NXDOMAIN, SERVFAIL, REFUSED, ...): the host resolver,
            // which also reads /etc/hosts as the host's own programs do, has the last word on addresses.

            if (!address)
            {
                return Error(query.Span, ServFail, questionEnd, edns); // no nameserver answered and the host resolver knows only addresses
            }
        }
        else if (!address)
        {
            return Error(query.Span, NotImp, questionEnd, edns);
        }

        var family = type == TypeA ? AddressFamily.InterNetwork : AddressFamily.InterNetworkV6;
        IPAddress[] addresses;
        int rcode;
        try
        {
            using var cts = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
            cts.CancelAfter(timeout);
            addresses = name.Length == 0 ? [] : await Resolve(name, family, cts.Token).ConfigureAwait(false);
            rcode = 0;
        }
        catch (SocketException e) when (e.SocketErrorCode == SocketError.HostNotFound)
        {
            addresses = [];
            rcode = NxDomain;
        }
        catch (SocketException e) when (e.SocketErrorCode is SocketError.NoData or SocketError.TryAgain)
        {
            addresses = [];
            rcode = e.SocketErrorCode == SocketError.NoData ? 0 : ServFail;
        }
        catch (Exception e) when (e is SocketException or OperationCanceledException or ArgumentException)
        {
            cancellationToken.ThrowIfCancellationRequested();
            addresses = [];
            rcode = ServFail;
        }

        return Build(query.Span, questionEnd, rcode, [.. addresses.Select(DestinationRule.Normalize).Where(a => a.AddressFamily == family).Distinct()], type, udp, edns);
    }

    private static bool IsLocalhost(string name) =>
        name.Equals("localhost", StringComparison.OrdinalIgnoreCase) || name.EndsWith(".localhost", StringComparison.OrdinalIgnoreCase);

    /// <summary>
    /// The most octets a UDP response to a query with this <paramref name="edns"/> payload size may have: 512 without
    /// OPT (RFC 1035 §4.2.1), else the requester's size, taken as 512 when below it (RFC 6891 §6.2.5), capped at
    /// <see cref="EdnsUdpPayloadSize"/>.
    /// </summary>
    internal static int UdpLimit(int edns) => edns < 0 ? MaxUdpResponse : Math.Clamp(edns, MaxUdpResponse, EdnsUdpPayloadSize);

    private static byte[] Build(ReadOnlySpan<byte> query, int questionEnd, int rcode, IPAddress[] answers, ushort type, bool udp, int edns)
    {
        var rdLength = type == TypeA ? 4 : 16;
        var answerLength = 2 + 2 + 2 + 4 + 2 + rdLength;
        var count = Math.Min(answers.Length, MaxAnswers);
        var optLength = edns < 0 ? 0 : OptLength;
        var truncated = udp && questionEnd + (count * answerLength) + optLength > UdpLimit(edns);
        if (truncated)
        {
            count = 0; // RFC 2181 §9: TC, and no partial RRset for the client to mistake for the whole answer
        }

        var response = new byte[questionEnd + (count * answerLength) + optLength];
        WriteHeader(query, response, rcode, questionCount: 1, answerCount: count, additionalCount: edns < 0 ? 0 : 1);
        if (truncated)
        {
            response[2] |= 0x02; // TC (RFC 1035 §4.1.1)
        }

        query[HeaderLength..questionEnd].CopyTo(response.AsSpan(HeaderLength));
        var at = questionEnd;
        for (var i = 0; i < count; i++)
        {
            var rr = response.AsSpan(at);
            BinaryPrimitives.WriteUInt16BigEndian(rr, 0xC000 | HeaderLength); // RFC 1035 §4.1.4: pointer to the question's name
            BinaryPrimitives.WriteUInt16BigEndian(rr[2..], type);
            BinaryPrimitives.WriteUInt16BigEndian(rr[4..], ClassIn);
            BinaryPrimitives.WriteUInt32BigEndian(rr[6..], Ttl);
            BinaryPrimitives.WriteUInt16BigEndian(rr[10..], (ushort)rdLength);
            answers[i].TryWriteBytes(rr[12..], out _);
            at += answerLength;
        }

        if (edns >= 0)
        {
            WriteOpt(response.AsSpan(at), rcode);
        }

        return response;
    }

    /// <summary>An error (or truncated) response with no records; with an OPT record when <paramref name="edns"/> is not negative.</summary>
    internal static byte[] Error(ReadOnlySpan<byte> query, int rcode, int questionEnd, int edns)
    {
        var response = new byte[questionEnd + (edns < 0 ? 0 : OptLength)];
        WriteHeader(query, response, rcode, questionCount: questionEnd > HeaderLength ? 1 : 0, answerCount: 0, additionalCount: edns < 0 ? 0 : 1);
        query[HeaderLength..questionEnd].CopyTo(response.AsSpan(HeaderLength));
        if (edns >= 0)
        {
            WriteOpt(response.AsSpan(questionEnd), rcode);
        }

        return response;
    }

    private static void WriteHeader(ReadOnlySpan<byte> query, Span<byte> response, int rcode, int questionCount, int answerCount, int additionalCount)
    {
        query[..2].CopyTo(response);                      // ID
        response[2] = (byte)(0x80 | (query[2] & 0x79));   // QR=1, same opcode, AA=0, TC=0, RD copied
        response[3] = (byte)(0x80 | (rcode & 0xF));       // RA=1, Z=0, RCODE (its lower 4 bits: RFC 6891 §6.1.3)
        BinaryPrimitives.WriteUInt16BigEndian(response[4..], (ushort)questionCount);
        BinaryPrimitives.WriteUInt16BigEndian(response[6..], (ushort)answerCount);
        BinaryPrimitives.WriteUInt16BigEndian(response[8..], 0);
        BinaryPrimitives.WriteUInt16BigEndian(response[10..], (ushort)additionalCount);
    }

    /// <summary>
    /// Our OPT record (RFC 6891 §6.1.2): root owner, CLASS = <see cref="EdnsUdpPayloadSize"/>, TTL = the upper 8 bits of
    /// <paramref name="rcode"/> (§6.1.3), version 0, no flags, no options.
    /// </summary>
    private static void WriteOpt(Span<byte> opt, int rcode)
    {
        opt[0] = 0;
        BinaryPrimitives.WriteUInt16BigEndian(opt[1..], TypeOpt);
        BinaryPrimitives.WriteUInt16BigEndian(opt[3..], EdnsUdpPayloadSize);
        BinaryPrimitives.WriteUInt32BigEndian(opt[5..], (uint)(rcode >> 4) << 24);
        BinaryPrimitives.WriteUInt16BigEndian(opt[9..], 0);
    }

    /// <summary><see cref="ReadEdns"/>'s answer for an additional section that breaks RFC 6891 §6.1.1-§6.1.2.</summary>
    private const int BadOpt = -2;

    /// <summary>
    /// Walks the records after the question (answer, authority and additional sections, RFC 1035 §4.1.3) and returns
    /// the OPT record's UDP payload size (its CLASS, RFC 6891 §6.1.2), -1 when there is none, or <see cref="BadOpt"/>
    /// when a record runs past the data, or there is more than one OPT, or it is not owned by the root or not in the
    /// additional section, or its options do not fill RDLENGTH exactly. <paramref name="version"/> is its EDNS version.
    /// </summary>
    private static int ReadEdns(ReadOnlySpan<byte> message, int offset, out int version)
    {
        version = 0;
        var additional = BinaryPrimitives.ReadUInt16BigEndian(message[10..]);
        var records = BinaryPrimitives.ReadUInt16BigEndian(message[6..]) + BinaryPrimitives.ReadUInt16BigEndian(message[8..]) + additional;
        var payload = -1;
        for (var i = 0; i < records; i++)
        {
            var owner = offset;
            if (!SkipName(message, ref offset) || offset + 10 > message.Length)
            {
                return BadOpt;
            }

            var type = BinaryPrimitives.ReadUInt16BigEndian(message[offset..]);
            var size = BinaryPrimitives.ReadUInt16BigEndian(message[(offset + 2)..]);
            var ttl = BinaryPrimitives.ReadUInt32BigEndian(message[(offset + 4)..]);
            var rdLength = BinaryPrimitives.ReadUInt16BigEndian(message[(offset + 8)..]);
            var rdata = offset + 10;
            if (rdata + rdLength > message.Length)
            {
                return BadOpt;
            }

            offset = rdata + rdLength;
            if (type != TypeOpt)
            {
                continue;
            }

            if (payload >= 0 || i < records - additional || message[owner] != 0 || !OptionsWellFormed(message.Slice(rdata, rdLength)))
            {
                return BadOpt;
            }

            payload = size;
            version = (int)((ttl >> 16) & 0xFF);
        }

        return payload;
    }

    /// <summary>Moves past a possibly compressed name (RFC 1035 §4.1.4) without following pointers: no loop can form.</summary>
    internal static bool SkipName(ReadOnlySpan<byte> message, ref int offset)
    {
        for (var labels = 0; labels < 128 && offset < message.Length; labels++)
        {
            var b = message[offset];
            if (b == 0)
            {
                offset++;
                return true;
            }

            if ((b & 0xC0) == 0xC0)
            {
                offset += 2;
                return offset <= message.Length;
            }

            if ((b & 0xC0) != 0)
            {
                return false; // reserved label types
            }

            offset += 1 + b;
        }

        return false;
    }

    /// <summary>True when <paramref name="rdata"/> is a whole number of {OPTION-CODE, OPTION-LENGTH, OPTION-DATA} (RFC 6891 §6.1.2).</summary>
    private static bool OptionsWellFormed(ReadOnlySpan<byte> rdata)
    {
        while (rdata.Length > 0)
        {
            if (rdata.Length < 4 || 4 + BinaryPrimitives.ReadUInt16BigEndian(rdata[2..]) > rdata.Length)
            {
                return false;
            }

            rdata = rdata[(4 + BinaryPrimitives.ReadUInt16BigEndian(rdata[2..]))..];
        }

        return true;
    }

    /// <summary>Reads the one question: an uncompressed name (RFC 1035 §4.1.2), QTYPE, QCLASS.</summary>
    private static bool TryReadQuestion(ReadOnlySpan<byte> message, out string name, out ushort type, out ushort @class, out int end)
    {
        name = string.Empty;
        type = @class = 0;
        end = 0;
        var builder = new StringBuilder();
        var at = HeaderLength;
        while (true)
        {
            if (at >= message.Length)
            {
                return false;
            }

            var length = message[at++];
            if (length == 0)
            {
                break;
            }

            if (length > 63 || at + length > message.Length || builder.Length + length + 1 > 255)
            {
                return false; // a compression pointer (top bits set) has no place in a question; labels are at most 63 bytes
            }

            foreach (var b in message.Slice(at, length))
            {
                if (b <= 0x20 || b >= 0x7F || b == '.')
                {
                    return false; // host names only (RFC 1123 §2.1 letters, digits, hyphen; underscore is tolerated)
                }

                builder.Append((char)b);
            }

            builder.Append('.');
            at += length;
        }

        if (at + 4 > message.Length)
        {
            return false;
        }

        type = BinaryPrimitives.ReadUInt16BigEndian(message[at..]);
        @class = BinaryPrimitives.ReadUInt16BigEndian(message[(at + 2)..]);
        end = at + 4;
        name = builder.Length == 0 ? string.Empty : builder.ToString(0, builder.Length - 1);
        return true;
    }
}
