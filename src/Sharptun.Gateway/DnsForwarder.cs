using System.Buffers.Binary;
using System.Net;
using System.Net.Sockets;
using System.Security.Cryptography;

namespace Sharptun.Gateway;

/// <summary>
/// Forwards the gateway's DNS queries, of any type, to the host's nameservers (the <c>nameserver</c> lines of
/// <c>/etc/resolv.conf</c>, resolv.conf(5); at most three, in order): over UDP first (RFC 1035 §4.2.1), and over TCP
/// (§4.2.2, RFC 7766 §5-§6) when the UDP answer comes back truncated and the client asked over TCP. Each upstream query
/// gets a fresh random ID and a fresh socket (so a fresh source port, RFC 5452 §9.2); an answer counts only when its ID
/// and question match the query (RFC 5452 §9.1), anything else is ignored, so garbage or silence from one server moves
/// on to the next and, when none answers, to the caller's fallback. Work is bounded: <see cref="ServerTimeout"/> per
/// server and at most <see cref="MaxConcurrent"/> forwards at once (a query beyond that is not forwarded: it fails
/// over to the fallback at once). Failures are counted.
/// </summary>
/// <remarks>
/// EDNS(0) is hop by hop (RFC 6891 §6.1.1): the client's OPT record goes upstream with its UDP payload size lowered to
/// the gateway's own (<see cref="DnsResponder.EdnsUdpPayloadSize"/>), and the OPT record of the answer is rewritten to
/// advertise the gateway's size (§6.2.3) before it goes back. A UDP answer longer than the client may receive is sent
/// back truncated (TC, no records; RFC 2181 §9), so the client retries over TCP (RFC 7766 §5).
/// </remarks>
internal sealed class DnsForwarder
{
    /// <summary>resolv.conf(5)'s MAXNS: the nameservers a resolver uses.</summary>
    internal const int MaxServers = 3;

    private const int HeaderLength = 12;
    private const ushort TypeOpt = 41;

    private readonly SemaphoreSlim _slots;
    private readonly Action<bool>? _report;
    private long _forwarded;
    private long _failures;
    private long _busy;

    /// <param name="servers">The upstream servers, in order.</param>
    /// <param name="serverTimeout">How long one server may take to answer (UDP and, after TC, TCP each).</param>
    /// <param name="maxConcurrent">Most forwards at once.</param>
    /// <param name="report">Told of each query's outcome (true: a server answered; false: none did), for the gateway's counters.</param>
    public DnsForwarder(IReadOnlyList<IPEndPoint> servers, TimeSpan serverTimeout, int maxConcurrent, Action<bool>? report = null)
    {
        _report = report;
        ArgumentOutOfRangeException.ThrowIfLessThan(maxConcurrent, 1);
        Servers = servers;
        ServerTimeout = serverTimeout;
        MaxConcurrent = maxConcurrent;
        _slots = new SemaphoreSlim(maxConcurrent, maxConcurrent);
    }

    /// <summary>The upstream servers.</summary>
    public IReadOnlyList<IPEndPoint> Servers { get; }

    /// <summary>How long one server may take to answer.</summary>
    public TimeSpan ServerTimeout { get; }

    /// <summary>Most forwards at once.</summary>
    public int MaxConcurrent { get; }

    /// <summary>Queries some server answered.</summary>
    public long Forwarded => Interlocked.Read(ref _forwarded);

    /// <summary>Queries no server answered (silence, garbage, refusal): the fallback or SERVFAIL answered them.</summary>
    public long Failures => Interlocked.Read(ref _failures);

    /// <summary>Queries not forwarded because <see cref="MaxConcurrent"/> forwards were under way.</summary>
    public long Busy => Interlocked.Read(ref _busy);

    /// <summary>
    /// The nameservers of a resolv.conf text (resolv.conf(5): <c>nameserver ADDRESS</c>, the first
    /// <see cref="MaxServers"/>; an IPv6 address may carry a <c>%zone</c>; comments start with <c>#</c> or <c>;</c>).
    /// Lines that are not an address are skipped, as the C library skips them.
    /// </summary>
    public static IReadOnlyList<IPEndPoint> ParseResolvConf(string text, int port = 53)
    {
        var servers = new List<IPEndPoint>();
        foreach (var raw in text.Split('\n'))
        {
            var line = raw.Trim();
            var comment = line.IndexOfAny(['#', ';']);
            if (comment >= 0)
            {
                line = line[..comment];
            }

            var parts = line.Split([' ', '\t'], StringSplitOptions.RemoveEmptyEntries);
            if (parts.Length >= 2 && parts[0] == "nameserver" && IPAddress.TryParse(parts[1], out var address) && servers.Count < MaxServers)
            {
                servers.Add(new IPEndPoint(address.IsIPv4MappedToIPv6 ? address.MapToIPv4() : address, port));
            }
        }

        return servers;
    }

    /// <summary>Reads <paramref name="path"/> (see <see cref="ParseResolvConf"/>); none when it cannot be read.</summary>
    public static IReadOnlyList<IPEndPoint> ReadResolvConf(string path, int port = 53)
    {
        try
        {
            return ParseResolvConf(File.ReadAllText(path), port);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException or ArgumentException or NotSupportedException)
        {
            return [];
        }
    }

    /// <summary>
    /// The answer to <paramref name="query"/> (one question ending at <paramref name="questionEnd"/>; <paramref name="edns"/>
    /// its OPT payload size or -1) from the first server that gives a valid one, with the client's ID, ready to send;
    /// null when none did (or too many forwards are under way).
    /// </summary>
    /// <param name="query">The client's query.</param>
    /// <param name="questionEnd">Where its question ends.</param>
    /// <param name="edns">Its OPT record's UDP payload size, or -1.</param>
    /// <param name="udp">The client asked over UDP (the answer must fit its limit).</param>
    /// <param name="totalTimeout">The most all servers together may take.</param>
    /// <param name="cancellationToken">The gateway stops.</param>
    public async Task<byte[]?> ForwardAsync(ReadOnlyMemory<byte> query, int questionEnd, int edns, bool udp, TimeSpan totalTimeout, CancellationToken cancellationToken)
    {
        if (Servers.Count == 0)
        {
            return null;
        }

        if (!_slots.Wait(0))
        {
            Interlocked.Increment(ref _busy);
            Fail();
            return null;
        }

        using var total = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        total.CancelAfter(totalTimeout);
        try
        {
            var answer = await ForwardCoreAsync(query, questionEnd, edns, udp, total.Token).ConfigureAwait(false);
            if (answer is null)
            {
                Fail();
            }
            else
            {
                Interlocked.Increment(ref _forwarded);
                _report?.Invoke(true);
            }

            return answer;
        }
        catch (OperationCanceledException) when (!cancellationToken.IsCancellationRequested)
        {
            Fail(); // the total timeout
            return null;
        }
        finally
        {
            _slots.Release();
        }
    }

    private void Fail()
    {
        Interlocked.Increment(ref _failures);
        _report?.Invoke(false);
    }

    private async Task<byte[]?> ForwardCoreAsync(ReadOnlyMemory<byte> query, int questionEnd, int edns, bool udp, CancellationToken cancellationToken)
    {
        var upstream = query.ToArray();
        if (OptClassOffset(upstream, questionEnd) is var opt and >= 0)
        {
            // RFC 6891 §6.2.3-§6.2.5: what we can take back over UDP, not what the client offered
            BinaryPrimitives.WriteUInt16BigEndian(upstream.AsSpan(opt), (ushort)Math.Min(DnsResponder.UdpLimit(edns), DnsResponder.EdnsUdpPayloadSize));
        }

        foreach (var server in Servers)
        {
            cancellationToken.ThrowIfCancellationRequested();
            var id = (ushort)RandomNumberGenerator.GetInt32(0x10000); // RFC 5452 §9.2: unpredictable IDs
            BinaryPrimitives.WriteUInt16BigEndian(upstream, id);
            var answer = await AskUdpAsync(server, upstream, questionEnd, cancellationToken).ConfigureAwait(false);
            if (answer is not null && (answer[2] & 0x02) != 0 && !udp)
            {
                // TC over UDP and the client came over TCP: ask the same server over TCP (RFC 7766 §5)
                answer = await AskTcpAsync(server, upstream, questionEnd, cancellationToken).ConfigureAwait(false);
            }

            if (answer is not null)
            {
                return ForClient(query.Span, answer, questionEnd, edns, udp);
            }
        }

        return null;
    }

    /// <summary>The upstream answer made the client's: its ID, our OPT payload size, truncated when UDP cannot carry it.</summary>
    private static byte[] ForClient(ReadOnlySpan<byte> query, byte[] answer, int questionEnd, int edns, bool udp)
    {
        query[..2].CopyTo(answer);
        var opt = OptClassOffset(answer, questionEnd);
        if (opt >= 0)
        {
            BinaryPrimitives.WriteUInt16BigEndian(answer.AsSpan(opt), DnsResponder.EdnsUdpPayloadSize); // RFC 6891 §6.1.1: ours, not the upstream's
        }

        if (!udp || answer.Length <= DnsResponder.UdpLimit(edns))
        {
            return answer;
        }

        // RFC 2181 §9 / RFC 1035 §4.1.1: too long for the client's UDP: TC, the question and no records (plus an OPT
        // when the client sent one, RFC 6891 §7), so it asks again over TCP.
        var rcode = answer[3] & 0xF;
        var truncated = DnsResponder.Error(query, rcode, questionEnd, edns);
        truncated[2] = (byte)(truncated[2] | 0x02 | (answer[2] & 0x04)); // TC; AA as the upstream said
        return truncated;
    }

    /// <summary>One UDP exchange with <paramref name="server"/>: the first datagram that answers the query, or null on silence, refusal or timeout.</summary>
    private async Task<byte[]?> AskUdpAsync(IPEndPoint server, byte[] query, int questionEnd, CancellationToken cancellationToken)
    {
        using var timeout = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        timeout.CancelAfter(ServerTimeout);
        using var socket = new Socket(server.AddressFamily, SocketType.Dgram, ProtocolType.Udp);
        var buffer = new byte[65535];
        try
        {
            await socket.ConnectAsync(server, timeout.Token).ConfigureAwait(false);
            await socket.SendAsync(query, SocketFlags.None, timeout.Token).ConfigureAwait(false);
            while (true)
            {
                var n = await socket.ReceiveAsync(buffer, SocketFlags.None, timeout.Token).ConfigureAwait(false);
                if (IsAnswerTo(buffer.AsSpan(0, n), query, questionEnd))
                {
                    return buffer[..n];
                }

                // not ours (wrong ID or question, a query, a runt): keep listening until the timeout (RFC 5452 §9.1)
            }
        }
        catch (OperationCanceledException) when (!cancellationToken.IsCancellationRequested)
        {
            return null;
        }
        catch (SocketException)
        {
            return null; // ICMP unreachable (ECONNREFUSED), no route, ...
        }
    }

    /// <summary>One TCP exchange (RFC 1035 §4.2.2: two-octet length, then the message; RFC 7766 §8), or null.</summary>
    private async Task<byte[]?> AskTcpAsync(IPEndPoint server, byte[] query, int questionEnd, CancellationToken cancellationToken)
    {
        using var timeout = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        timeout.CancelAfter(ServerTimeout);
        using var socket = new Socket(server.AddressFamily, SocketType.Stream, ProtocolType.Tcp) { NoDelay = true };
        try
        {
            await socket.ConnectAsync(server, timeout.Token).ConfigureAwait(false);
            await using var stream = new NetworkStream(socket, ownsSocket: false);
            var framed = new byte[2 + query.Length];
            BinaryPrimitives.WriteUInt16BigEndian(framed, (ushort)query.Length);
            query.CopyTo(framed, 2);
            await stream.WriteAsync(framed, timeout.Token).ConfigureAwait(false);
            var length = new byte[2];
            await stream.ReadExactlyAsync(length, timeout.Token).ConfigureAwait(false);
            var answer = new byte[BinaryPrimitives.ReadUInt16BigEndian(length)];
            await stream.ReadExactlyAsync(answer, timeout.Token).ConfigureAwait(false);
            return IsAnswerTo(answer, query, questionEnd) ? answer : null;
        }
        catch (OperationCanceledException) when (!cancellationToken.IsCancellationRequested)
        {
            return null;
        }
        catch (Exception e) when (e is SocketException or IOException)
        {
            return null; // refused, reset, closed early (EndOfStreamException is an IOException)
        }
    }

    /// <summary>
    /// Whether <paramref name="answer"/> is a response (QR) to <paramref name="query"/>: same ID, same opcode, one question
    /// equal to the query's (the name without regard to ASCII case, RFC 4343 §3; QTYPE and QCLASS exactly), and a header
    /// that fits.
    /// </summary>
    internal static bool IsAnswerTo(ReadOnlySpan<byte> answer, ReadOnlySpan<byte> query, int questionEnd)
    {
        if (answer.Length < questionEnd || (answer[2] & 0x80) == 0 || answer[0] != query[0] || answer[1] != query[1]
            || ((answer[2] ^ query[2]) & 0x78) != 0 || BinaryPrimitives.ReadUInt16BigEndian(answer[4..]) != 1)
        {
            return false;
        }

        var nameEnd = questionEnd - 4; // QTYPE and QCLASS follow the name (RFC 1035 §4.1.2)
        for (var i = HeaderLength; i < nameEnd; i++)
        {
            if (AsciiLower(answer[i]) != AsciiLower(query[i]))
            {
                return false;
            }
        }

        return answer[nameEnd..questionEnd].SequenceEqual(query[nameEnd..questionEnd]);
    }

    /// <summary>RFC 4343 §3: only A–Z fold; other octets, Latin-1 letters included, compare as they are.</summary>
    private static byte AsciiLower(byte b) => b is >= (byte)'A' and <= (byte)'Z' ? (byte)(b | 0x20) : b;

    /// <summary>
    /// The offset of the OPT record's CLASS field (the UDP payload size, RFC 6891 §6.1.2) in <paramref name="message"/>,
    /// whose records start at <paramref name="offset"/>; -1 when there is none or a record runs past the end.
    /// </summary>
    internal static int OptClassOffset(ReadOnlySpan<byte> message, int offset)
    {
        var records = BinaryPrimitives.ReadUInt16BigEndian(message[6..]) + BinaryPrimitives.ReadUInt16BigEndian(message[8..]) + BinaryPrimitives.ReadUInt16BigEndian(message[10..]);
        for (var i = 0; i < records; i++)
        {
            if (!DnsResponder.SkipName(message, ref offset) || offset + 10 > message.Length)
            {
                return -1;
            }

            var type = BinaryPrimitives.ReadUInt16BigEndian(message[offset..]);
            var rdLength = BinaryPrimitives.ReadUInt16BigEndian(message[(offset + 8)..]);
            if (type == TypeOpt)
            {
                return offset + 2;
            }

            offset += 10 + rdLength;
            if (offset > message.Length)
            {
                return -1;
            }
        }

        return -1;
    }

    /// <summary>For logs: the servers as text.</summary>
    public override string ToString() => string.Join(", ", Servers);
}
