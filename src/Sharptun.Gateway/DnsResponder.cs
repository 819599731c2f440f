using System.Buffers.Binary;
using System.Net;
using System.Net.Sockets;
using System.Text;

namespace Sharptun.Gateway;

/// <summary>
/// Answers DNS queries (RFC 1035 §4.1) sent to the gateway's tunnel address through the host's resolver
/// (<see cref="Dns.GetHostAddressesAsync(string, AddressFamily, CancellationToken)"/>): standard queries of class IN
/// for A and AAAA get the host's addresses (TTL 60 s); a name the host cannot resolve gets NXDOMAIN; other types and
/// opcodes get NOTIMP (RFC 1035 §4.1.1 RCODE 4), malformed queries FORMERR, resolver failures SERVFAIL.
/// </summary>
internal sealed class DnsResponder(TimeSpan timeout)
{
    private const int HeaderLength = 12;
    private const int FormErr = 1;
    private const int ServFail = 2;
    private const int NxDomain = 3;
    private const int NotImp = 4;
    private const ushort TypeA = 1;
    private const ushort TypeAaaa = 28;
    private const ushort ClassIn = 1;
    private const uint Ttl = 60;
    private const int MaxUdpResponse = 512; // RFC 1035 §2.3.4 without EDNS

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
            return Error(query.Span, NotImp, questionEnd: HeaderLength);
        }

        if (BinaryPrimitives.ReadUInt16BigEndian(query.Span[4..]) != 1 || !TryReadQuestion(query.Span, out var name, out var type, out var @class, out var questionEnd))
        {
            return Error(query.Span, FormErr, questionEnd: HeaderLength);
        }

        if (@class != ClassIn || type is not (TypeA or TypeAaaa))
        {
            return Error(query.Span, NotImp, questionEnd);
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

        return Build(query.Span, questionEnd, rcode, [.. addresses.Select(DestinationRule.Normalize).Where(a => a.AddressFamily == family).Distinct()], type, udp);
    }

    private static byte[] Build(ReadOnlySpan<byte> query, int questionEnd, int rcode, IPAddress[] answers, ushort type, bool udp)
    {
        var rdLength = type == TypeA ? 4 : 16;
        var answerLength = 2 + 2 + 2 + 4 + 2 + rdLength;
        var count = answers.Length;
        if (udp)
        {
            count = Math.Min(count, (MaxUdpResponse - questionEnd) / answerLength);
        }

        count = Math.Min(count, 64);
        var response = new byte[questionEnd + (count * answerLength)];
        WriteHeader(query, response, rcode, questionCount: 1, answerCount: count);
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

        return response;
    }

    private static byte[] Error(ReadOnlySpan<byte> query, int rcode, int questionEnd)
    {
        var response = new byte[questionEnd];
        WriteHeader(query, response, rcode, questionCount: questionEnd > HeaderLength ? 1 : 0, answerCount: 0);
        query[HeaderLength..questionEnd].CopyTo(response.AsSpan(HeaderLength));
        return response;
    }

    private static void WriteHeader(ReadOnlySpan<byte> query, Span<byte> response, int rcode, int questionCount, int answerCount)
    {
        query[..2].CopyTo(response);                      // ID
        response[2] = (byte)(0x80 | (query[2] & 0x79));   // QR=1, same opcode, AA=0, TC=0, RD copied
        response[3] = (byte)(0x80 | rcode);               // RA=1, Z=0, RCODE
        BinaryPrimitives.WriteUInt16BigEndian(response[4..], (ushort)questionCount);
        BinaryPrimitives.WriteUInt16BigEndian(response[6..], (ushort)answerCount);
        BinaryPrimitives.WriteUInt16BigEndian(response[8..], 0);
        BinaryPrimitives.WriteUInt16BigEndian(response[10..], 0);
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
