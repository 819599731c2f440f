using System.Buffers.Binary;
using System.Collections.Concurrent;
using System.Net;
using System.Net.Sockets;
using System.Text;
using Sharptun.NetStack;
using Sharptun.NetStack.Tcp;
using Sharptun.NetStack.Udp;

namespace Sharptun.Testing.Dns;

/// <summary>
/// A tiny authoritative-style DNS server for tests, serving A, AAAA and CNAME records over UDP and TCP on a
/// <see cref="NetworkStack"/> (RFC 1035 §4, TCP framing §4.2.2). Its encoder is written here, apart from the
/// resolver's, so a test does not check the resolver against its own code. Names it does not know get NXDOMAIN.
/// Knobs make it misbehave: <see cref="Silent"/>, <see cref="ResponseCode"/>, <see cref="TruncateUdp"/>,
/// <see cref="SpoofWrongIdFirst"/>, <see cref="RejectOpt"/>, <see cref="RewriteUdp"/>.
/// EDNS(0) (RFC 6891): a query's OPT record is checked (root owner, version 0, no trailing data) and its payload size
/// recorded; a UDP answer longer than the requester's limit (512 without OPT, else the advertised size, at least 512:
/// §6.2.5) is sent as TC with no records, like a real server; answers to OPT queries carry an OPT record (§7).
/// </summary>
public sealed class DnsTestServer : IDisposable
{
    private const ushort TypeA = 1;
    private const ushort TypeCname = 5;
    private const ushort TypeAaaa = 28;
    private const ushort TypeOpt = 41;

    private readonly ConcurrentDictionary<string, List<(ushort Type, byte[] Data)>> _records = new(StringComparer.OrdinalIgnoreCase);
    private readonly UdpSocket _udp;
    private readonly TcpStreamListener _tcp;
    private readonly CancellationTokenSource _stop = new();
    private readonly Task _udpLoop;
    private readonly Task _tcpLoop;
    private long _udpQueries;
    private long _tcpQueries;
    private long _optQueries;
    private long _badOptQueries;
    private int _lastPayloadSize = -1;

    public DnsTestServer(NetworkStack stack, IPAddress address, int port = 53)
    {
        _udp = stack.BindUdp(new IPEndPoint(address, port));
        _tcp = stack.ListenTcp(new IPEndPoint(address, port));
        _udpLoop = Task.Run(UdpLoopAsync);
        _tcpLoop = Task.Run(TcpLoopAsync);
    }

    /// <summary>Reads nothing back: queries are counted but never answered.</summary>
    public bool Silent { get; set; }

    /// <summary>When set, every answer carries this RCODE and no records (2 = SERVFAIL, 5 = REFUSED).</summary>
    public int? ResponseCode { get; set; }

    /// <summary>UDP answers carry TC and no records; TCP answers are complete.</summary>
    public bool TruncateUdp { get; set; }

    /// <summary>Before each UDP answer, sends one with the ID off by one and the address 6.6.6.6 / 6::6.</summary>
    public bool SpoofWrongIdFirst { get; set; }

    /// <summary>When set, a query with an OPT record gets this RCODE (1 = FORMERR, 4 = NOTIMP), as from a server without EDNS.</summary>
    public int? RejectOpt { get; set; }

    /// <summary>With <see cref="RejectOpt"/>: the rejection leaves the question out (QDCOUNT 0), as some old servers do.</summary>
    public bool RejectOptWithoutQuestion { get; set; }

    /// <summary>Rewrites each UDP answer before it is sent (garbage tests); return null to send nothing.</summary>
    public Func<byte[], byte[]?>? RewriteUdp { get; set; }

    /// <summary>Queries that carried a well-formed OPT record.</summary>
    public long OptQueries => Interlocked.Read(ref _optQueries);

    /// <summary>Queries whose additional section was not exactly one well-formed OPT record of version 0.</summary>
    public long BadOptQueries => Interlocked.Read(ref _badOptQueries);

    /// <summary>The UDP payload size of the last query's OPT record, or -1 when it had none.</summary>
    public int LastPayloadSize => Volatile.Read(ref _lastPayloadSize);

    /// <summary>The TTL put on records.</summary>
    public uint Ttl { get; set; } = 300;

    public long UdpQueries => Interlocked.Read(ref _udpQueries);

    public long TcpQueries => Interlocked.Read(ref _tcpQueries);

    /// <summary>Adds an A or AAAA record (by the address's family).</summary>
    public void AddAddress(string name, IPAddress address) =>
        Add(name, address.AddressFamily == AddressFamily.InterNetwork ? TypeA : TypeAaaa, address.GetAddressBytes());

    /// <summary>Adds a CNAME record from <paramref name="name"/> to <paramref name="target"/>.</summary>
    public void AddCname(string name, string target) => Add(name, TypeCname, Encode(target));

    public void Dispose()
    {
        _stop.Cancel();
        _udp.Dispose();
        _tcp.Dispose();
        try
        {
            Task.WaitAll([_udpLoop, _tcpLoop], TimeSpan.FromSeconds(5));
        }
        catch (AggregateException)
        {
            // the loops end with the sockets' disposal
        }

        _stop.Dispose();
    }

    /// <summary>Encodes a dotted name as uncompressed wire form (RFC 1035 §3.1).</summary>
    public static byte[] Encode(string name)
    {
        var bytes = new List<byte>();
        foreach (var label in name.TrimEnd('.').Split('.'))
        {
            bytes.Add((byte)label.Length);
            bytes.AddRange(Encoding.ASCII.GetBytes(label));
        }

        bytes.Add(0);
        return [.. bytes];
    }

    /// <summary>
    /// The answer to <paramref name="query"/>, or null when the query is not a one-question query this server
    /// understands. The first answer record's owner is a pointer to the question; records after a CNAME point at the
    /// CNAME's target inside its RDATA (both RFC 1035 §4.1.4 compression).
    /// </summary>
    public byte[]? Answer(ReadOnlySpan<byte> query, bool overUdp)
    {
        if (query.Length < 12 || BinaryPrimitives.ReadUInt16BigEndian(query[4..]) != 1)
        {
            return null;
        }

        var at = 12;
        var labels = new List<string>();
        while (at < query.Length && query[at] != 0)
        {
            var n = query[at];
            if (n > 63 || at + 1 + n > query.Length)
            {
                return null;
            }

            labels.Add(Encoding.ASCII.GetString(query.Slice(at + 1, n)));
            at += 1 + n;
        }

        if (at + 5 > query.Length)
        {
            return null;
        }

        var questionEnd = at + 5;
        var qtype = BinaryPrimitives.ReadUInt16BigEndian(query[(at + 1)..]);
        var name = string.Join('.', labels);
        var payloadSize = ReadOpt(query, questionEnd);
        Volatile.Write(ref _lastPayloadSize, payloadSize);
        if (payloadSize >= 0 && RejectOpt is { } reject)
        {
            var rejection = (RejectOptWithoutQuestion ? query[..12] : query[..questionEnd]).ToArray();
            BinaryPrimitives.WriteUInt16BigEndian(rejection.AsSpan(2), (ushort)(0x8000 | (query[2] & 0x01) << 8 | 0x0080 | reject));
            BinaryPrimitives.WriteUInt16BigEndian(rejection.AsSpan(4), (ushort)(RejectOptWithoutQuestion ? 0 : 1));
            rejection.AsSpan(6, 6).Clear();
            return rejection;
        }

        var response = new List<byte>(query[..questionEnd].ToArray());
        var rcode = ResponseCode ?? 0;
        var answers = 0;
        if (rcode == 0 && !(overUdp && TruncateUdp))
        {
            var ownerPointer = 12;
            var current = name;
            for (var hop = 0; hop < 16; hop++)
            {
                if (!_records.TryGetValue(current, out var list))
                {
                    rcode = hop == 0 ? 3 : 0;
                    break;
                }

                (ushort Type, byte[] Data)[] snapshot;
                lock (list)
                {
                    snapshot = [.. list];
                }

                var cname = snapshot.FirstOrDefault(r => r.Type == TypeCname);
                if (cname.Data is not null)
                {
                    AppendRecord(response, ownerPointer, TypeCname, cname.Data);
                    answers++;
                    ownerPointer = response.Count - cname.Data.Length;
                    current = Decode(cname.Data);
                    continue;
                }

                foreach (var record in snapshot.Where(r => r.Type == qtype))
                {
                    AppendRecord(response, ownerPointer, record.Type, record.Data);
                    answers++;
                }

                break;
            }
        }

        var limit = payloadSize < 0 ? 512 : Math.Max(512, payloadSize);
        var optLength = payloadSize < 0 ? 0 : 11;
        var truncate = overUdp && (TruncateUdp || response.Count + optLength > limit);
        if (truncate)
        {
            response.RemoveRange(questionEnd, response.Count - questionEnd); // TC with no records (RFC 2181 §9)
            answers = 0;
        }

        if (payloadSize >= 0)
        {
            response.AddRange([0, 0, (byte)TypeOpt, 1232 >> 8, 1232 & 0xFF, 0, 0, 0, 0, 0, 0]); // RFC 6891 §6.1.2
        }

        var bytes = response.ToArray();
        var flags = (ushort)(0x8000 | 0x0400 | (query[2] & 0x01) << 8 | 0x0080 | rcode); // QR, AA, RD copied, RA
        if (truncate)
        {
            flags |= 0x0200; // TC
        }

        BinaryPrimitives.WriteUInt16BigEndian(bytes.AsSpan(2), flags);
        BinaryPrimitives.WriteUInt16BigEndian(bytes.AsSpan(6), (ushort)answers);
        BinaryPrimitives.WriteUInt16BigEndian(bytes.AsSpan(8), 0);
        BinaryPrimitives.WriteUInt16BigEndian(bytes.AsSpan(10), (ushort)(payloadSize >= 0 ? 1 : 0));
        return bytes;
    }

    /// <summary>
    /// The payload size from the query's OPT record, -1 without one. Anything but nothing or exactly one OPT record
    /// (root owner, version 0, options that fill RDLENGTH) is counted in <see cref="BadOptQueries"/>.
    /// </summary>
    private int ReadOpt(ReadOnlySpan<byte> query, int questionEnd)
    {
        var arCount = BinaryPrimitives.ReadUInt16BigEndian(query[10..]);
        if (arCount == 0 && questionEnd == query.Length)
        {
            return -1;
        }

        var rest = query[questionEnd..];
        if (arCount != 1 || rest.Length < 11 || rest[0] != 0 || BinaryPrimitives.ReadUInt16BigEndian(rest[1..]) != TypeOpt
            || rest[6] != 0 || 11 + BinaryPrimitives.ReadUInt16BigEndian(rest[9..]) != rest.Length)
        {
            Interlocked.Increment(ref _badOptQueries);
            return -1;
        }

        Interlocked.Increment(ref _optQueries);
        return BinaryPrimitives.ReadUInt16BigEndian(rest[3..]);
    }

    private void Add(string name, ushort type, byte[] data)
    {
        var list = _records.GetOrAdd(name.TrimEnd('.'), _ => []);
        lock (list)
        {
            list.Add((type, data));
        }
    }

    private void AppendRecord(List<byte> response, int ownerPointer, ushort type, byte[] data)
    {
        Span<byte> fixedPart = stackalloc byte[12];
        BinaryPrimitives.WriteUInt16BigEndian(fixedPart, (ushort)(0xC000 | ownerPointer));
        BinaryPrimitives.WriteUInt16BigEndian(fixedPart[2..], type);
        BinaryPrimitives.WriteUInt16BigEndian(fixedPart[4..], 1);
        BinaryPrimitives.WriteUInt32BigEndian(fixedPart[6..], Ttl);
        BinaryPrimitives.WriteUInt16BigEndian(fixedPart[10..], (ushort)data.Length);
        response.AddRange(fixedPart.ToArray());
        response.AddRange(data);
    }

    private static string Decode(byte[] wire)
    {
        var labels = new List<string>();
        for (var at = 0; wire[at] != 0; at += 1 + wire[at])
        {
            labels.Add(Encoding.ASCII.GetString(wire, at + 1, wire[at]));
        }

        return string.Join('.', labels);
    }

    private async Task UdpLoopAsync()
    {
        var buffer = new byte[4096];
        while (!_stop.IsCancellationRequested)
        {
            Sharptun.NetStack.Udp.UdpReceiveResult received;
            try
            {
                received = await _udp.ReceiveFromAsync(buffer, _stop.Token);
            }
            catch (Exception e) when (e is OperationCanceledException or ObjectDisposedException)
            {
                return;
            }

            Interlocked.Increment(ref _udpQueries);
            if (Silent)
            {
                continue;
            }

            var answer = Answer(buffer.AsSpan(0, received.Length), overUdp: true);
            if (answer is null)
            {
                continue;
            }

            try
            {
                if (SpoofWrongIdFirst)
                {
                    var spoof = Answer(buffer.AsSpan(0, received.Length), overUdp: true)!;
                    BinaryPrimitives.WriteUInt16BigEndian(spoof, (ushort)(BinaryPrimitives.ReadUInt16BigEndian(spoof) + 1));
                    ReplaceAddresses(spoof);
                    await _udp.SendToAsync(spoof, received.RemoteEndPoint, _stop.Token);
                }

                if (RewriteUdp is { } rewrite)
                {
                    answer = rewrite(answer);
                    if (answer is null)
                    {
                        continue;
                    }
                }

                await _udp.SendToAsync(answer, received.RemoteEndPoint, _stop.Token);
            }
            catch (Exception e) when (e is OperationCanceledException or ObjectDisposedException)
            {
                return;
            }
        }
    }

    /// <summary>Overwrites the RDATA of A/AAAA answers with 6.6.6.6 / 6::6 (a forged answer).</summary>
    private static void ReplaceAddresses(byte[] message)
    {
        var count = BinaryPrimitives.ReadUInt16BigEndian(message.AsSpan(6));
        var at = 12;
        while (message[at] != 0)
        {
            at += 1 + message[at];
        }

        at += 5;
        for (var i = 0; i < count; i++)
        {
            at += 2; // every owner this server writes is a pointer
            var type = BinaryPrimitives.ReadUInt16BigEndian(message.AsSpan(at));
            var length = BinaryPrimitives.ReadUInt16BigEndian(message.AsSpan(at + 8));
            if (type is TypeA or TypeAaaa)
            {
                message.AsSpan(at + 10, length).Fill(6);
            }

            at += 10 + length;
        }
    }

    private async Task TcpLoopAsync()
    {
        while (!_stop.IsCancellationRequested)
        {
            TcpStream stream;
            try
            {
                stream = await _tcp.AcceptAsync(_stop.Token);
            }
            catch (Exception e) when (e is OperationCanceledException or ObjectDisposedException or SocketException)
            {
                return;
            }

            _ = Task.Run(() => ServeTcpAsync(stream));
        }
    }

    private async Task ServeTcpAsync(TcpStream stream)
    {
        await using (stream)
        {
            try
            {
                var lengthBytes = new byte[2];
                while (true)
                {
                    await stream.ReadExactlyAsync(lengthBytes, _stop.Token);
                    var query = new byte[BinaryPrimitives.ReadUInt16BigEndian(lengthBytes)];
                    await stream.ReadExactlyAsync(query, _stop.Token);
                    Interlocked.Increment(ref _tcpQueries);
                    if (Silent || Answer(query, overUdp: false) is not { } answer)
                    {
                        continue;
                    }

                    var framed = new byte[2 + answer.Length];
                    BinaryPrimitives.WriteUInt16BigEndian(framed, (ushort)answer.Length);
                    answer.CopyTo(framed, 2);
                    await stream.WriteAsync(framed, _stop.Token);
                }
            }
            catch (Exception e) when (e is OperationCanceledException or ObjectDisposedException or IOException or SocketException or EndOfStreamException)
            {
                // the client closed, or the server stops
            }
        }
    }
}
