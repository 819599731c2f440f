using System.Buffers.Binary;
using System.Net;
using System.Net.Sockets;
using System.Text;

namespace Sharptun.Gateway.Tests;

/// <summary>
/// The gateway's DNS responder forwarding to the host's nameservers (<see cref="DnsForwarder"/>), against
/// <see cref="FakeUpstream"/>, a DNS server on host loopback (UDP and TCP on one port) written here from RFC 1035 §4.
/// </summary>
public sealed class DnsForwarderTests : IDisposable
{
    private const ushort TypeA = 1, TypeCname = 5, TypePtr = 12, TypeMx = 15, TypeTxt = 16;
    private readonly FakeUpstream _upstream = new();

    public void Dispose() => _upstream.Dispose();

    [Theory]
    [InlineData(TypeMx)]
    [InlineData(TypeTxt)]
    [InlineData(TypePtr)]
    [InlineData(TypeCname)]
    public async Task AnyType_IsForwarded_AndAnsweredAsTheServerAnswers_WithTheClientsId(ushort type)
    {
        var rdata = type switch
        {
            TypeMx => [0, 10, .. Name("mail.example.test")],
            TypeTxt => [11, .. "hello world"u8],
            _ => Name("target.example.test"),
        };
        _upstream.Add("rec.example.test", type, rdata);
        var (responder, forwarder) = Responder();

        var response = await responder.AnswerAsync(DnsResponderTests.Query(0x4242, "rec.example.test", type), udp: true, CancellationToken.None);

        Assert.NotNull(response);
        Assert.Equal(0x4242, BinaryPrimitives.ReadUInt16BigEndian(response));
        Assert.Equal(0, response[3] & 0xF);
        Assert.Equal(1, BinaryPrimitives.ReadUInt16BigEndian(response.AsSpan(6)));
        Assert.EndsWith(Convert.ToHexString(rdata), Convert.ToHexString(response), StringComparison.Ordinal);
        Assert.NotEqual(0x4242, _upstream.LastId); // the upstream saw a fresh ID, not the client's
        Assert.Equal(1, forwarder.Forwarded);
        Assert.Equal(0, forwarder.Failures);

        // a name the server does not know: its NXDOMAIN comes back (not a fallback)
        var missing = await responder.AnswerAsync(DnsResponderTests.Query(7, "nope.example.test", type), udp: true, CancellationToken.None);
        Assert.Equal(3, missing![3] & 0xF);
    }

    [Fact]
    public async Task Addresses_UnknownToTheNameservers_ComeFromTheHostResolver_LocalhostIsNeverForwarded()
    {
        _upstream.Add("other.example.test", TypeA, [198, 51, 100, 1]);
        var (responder, forwarder) = Responder();

        // NXDOMAIN upstream, but the host resolver (its /etc/hosts) knows the name
        var a = await responder.AnswerAsync(DnsResponderTests.Query(1, "host.example.test", TypeA), udp: true, CancellationToken.None);
        Assert.Equal(0, a![3] & 0xF);
        Assert.Equal([192, 0, 2, 77], a[^4..]);
        Assert.Equal(1, _upstream.UdpQueries);

        // RFC 6761 §6.3: localhost goes to the host resolver only
        var local = await responder.AnswerAsync(DnsResponderTests.Query(2, "localhost", TypeA), udp: true, CancellationToken.None);
        Assert.Equal(0, local![3] & 0xF);
        Assert.Equal([127, 0, 0, 1], local[^4..]);
        Assert.Equal(1, _upstream.UdpQueries);
        Assert.Equal(1, forwarder.Forwarded);
    }

    [Fact]
    public async Task MoreThan64Records_Udp_TruncatedWithTc_Tcp_AllOfThem()
    {
        for (var i = 0; i < 100; i++)
        {
            _upstream.Add("many.example.test", TypeA, [198, 51, 100, (byte)i]);
        }

        var (responder, forwarder) = Responder();
        var query = DnsResponderTests.Query(0x1111, "many.example.test", TypeA);

        // UDP without EDNS: at most 512 octets (RFC 1035 §4.2.1): the server truncates, the client gets TC and no records
        var udp = await responder.AnswerAsync(query, udp: true, CancellationToken.None);
        Assert.NotEqual(0, udp![2] & 0x02);
        Assert.Equal(0, BinaryPrimitives.ReadUInt16BigEndian(udp.AsSpan(6)));
        Assert.True(udp.Length <= 512);

        // over TCP: the responder asks over UDP, sees TC, asks the same server over TCP and returns all 100
        var tcp = await responder.AnswerAsync(query, udp: false, CancellationToken.None);
        Assert.Equal(0, tcp![2] & 0x02);
        Assert.Equal(100, BinaryPrimitives.ReadUInt16BigEndian(tcp.AsSpan(6)));
        Assert.Equal(query.Length + (100 * 16), tcp.Length);
        Assert.True(_upstream.TcpQueries >= 1);

        // a server that ignores the limit over UDP: the responder truncates itself
        _upstream.IgnoreUdpLimit = true;
        var big = await responder.AnswerAsync(query, udp: true, CancellationToken.None);
        Assert.NotEqual(0, big![2] & 0x02);
        Assert.Equal(0, BinaryPrimitives.ReadUInt16BigEndian(big.AsSpan(6)));
        Assert.Equal(0x1111, BinaryPrimitives.ReadUInt16BigEndian(big));

        // EDNS: the client offers 4096; the upstream is offered ours (1232) and the OPT that comes back says 1232
        _upstream.IgnoreUdpLimit = false;
        var edns = WithOpt(DnsResponderTests.Query(0x2222, "many.example.test", TypeA), 4096);
        var ednsAnswer = await responder.AnswerAsync(edns, udp: true, CancellationToken.None);
        Assert.Equal(DnsResponder.EdnsUdpPayloadSize, _upstream.LastPayloadSize);
        Assert.NotEqual(0, ednsAnswer![2] & 0x02); // 100 × 16 octets do not fit 1232
        Assert.Equal(DnsResponder.EdnsUdpPayloadSize, BinaryPrimitives.ReadUInt16BigEndian(ednsAnswer.AsSpan(ednsAnswer.Length - 8)));
        Assert.Equal(0, forwarder.Failures);
    }

    [Theory]
    [InlineData("garbage")]
    [InlineData("silent")]
    [InlineData("refused")]
    [InlineData("wrong-id")]
    public async Task BadOrSilentUpstream_OtherTypes_ServFail_AddressesFallBackToTheHostResolver_Counted(string mode)
    {
        _upstream.Mode = mode;
        _upstream.Add("x.example.test", TypeMx, [0, 10, .. Name("mail.example.test")]);
        if (mode == "refused")
        {
            _upstream.Dispose(); // nothing listens on the port: ICMP port unreachable
        }

        var (responder, forwarder) = Responder(timeout: TimeSpan.FromMilliseconds(300));
        var mx = await responder.AnswerAsync(DnsResponderTests.Query(5, "x.example.test", TypeMx), udp: true, CancellationToken.None);
        Assert.Equal(2, mx![3] & 0xF); // SERVFAIL
        Assert.Equal(5, BinaryPrimitives.ReadUInt16BigEndian(mx));
        var mxTcp = await responder.AnswerAsync(DnsResponderTests.Query(6, "x.example.test", TypeMx), udp: false, CancellationToken.None);
        Assert.Equal(2, mxTcp![3] & 0xF);

        var a = await responder.AnswerAsync(DnsResponderTests.Query(8, "host.example.test", TypeA), udp: true, CancellationToken.None);
        Assert.Equal(0, a![3] & 0xF);
        Assert.Equal([192, 0, 2, 77], a[^4..]); // the host resolver's answer
        Assert.Equal(3, forwarder.Failures);
        Assert.Equal(0, forwarder.Forwarded);
    }

    [Fact]
    public async Task WrongIdFirst_IsIgnored_TheRealAnswerIsTaken_ASilentFirstServerMovesOnToTheSecond()
    {
        _upstream.Add("x.example.test", TypeTxt, [2, (byte)'o', (byte)'k']);
        _upstream.SpoofFirst = true;
        var (responder, forwarder) = Responder();
        var txt = await responder.AnswerAsync(DnsResponderTests.Query(9, "x.example.test", TypeTxt), udp: true, CancellationToken.None);
        Assert.Equal(0, txt![3] & 0xF);
        Assert.EndsWith("026F6B", Convert.ToHexString(txt), StringComparison.Ordinal);

        using var silent = new FakeUpstream { Mode = "silent" };
        var twoServers = new DnsForwarder([silent.EndPoint, _upstream.EndPoint], TimeSpan.FromMilliseconds(300), 4);
        var responder2 = new DnsResponder(TimeSpan.FromSeconds(5)) { Forwarder = twoServers, Resolve = HostResolver };
        var second = await responder2.AnswerAsync(DnsResponderTests.Query(10, "x.example.test", TypeTxt), udp: true, CancellationToken.None);
        Assert.Equal(0, second![3] & 0xF);
        Assert.True(silent.UdpQueries >= 1);
        Assert.Equal(1, twoServers.Forwarded);
        Assert.Equal(1, forwarder.Forwarded);
    }

    [Fact]
    public async Task ConcurrentForwards_AreBounded_EveryQueryGetsAnAnswer_CountersAddUp()
    {
        _upstream.Add("x.example.test", TypeTxt, [2, (byte)'o', (byte)'k']);
        _upstream.Delay = TimeSpan.FromMilliseconds(50);
        var (responder, forwarder) = Responder(maxConcurrent: 4);
        var answers = await Task.WhenAll(Enumerable.Range(0, 64).Select(i => Task.Run(() =>
            responder.AnswerAsync(DnsResponderTests.Query((ushort)i, "x.example.test", TypeTxt), udp: true, CancellationToken.None))));
        Assert.All(answers, (r, i) =>
        {
            Assert.Equal(i, BinaryPrimitives.ReadUInt16BigEndian(r));
            Assert.Contains(r![3] & 0xF, new[] { 0, 2 }); // answered, or SERVFAIL when all four slots were busy
        });
        Assert.Equal(64, forwarder.Forwarded + forwarder.Failures);
        Assert.Equal(forwarder.Failures, forwarder.Busy);
        Assert.Equal(answers.Count(r => (r![3] & 0xF) == 0), forwarder.Forwarded);
        Assert.True(_upstream.MaxConcurrent <= 4, $"{_upstream.MaxConcurrent} queries were at the server at once");
    }

    [Fact]
    public void ResolvConf_NameserversInOrder_AtMostThree_CommentsAndJunkSkipped()
    {
        var servers = DnsForwarder.ParseResolvConf("""
            # generated
            search example.test
            nameserver 192.0.2.53 ; trailing comment
            nameserver not-an-address
            options ndots:2
            nameserver fe80::1
            nameserver ::ffff:198.51.100.1
            nameserver 203.0.113.9
            """, 5353);
        Assert.Equal(["192.0.2.53:5353", "[fe80::1]:5353", "198.51.100.1:5353"], servers.Select(s => s.ToString()));
        Assert.Empty(DnsForwarder.ReadResolvConf("/nonexistent/resolv.conf"));
    }

    [Fact]
    public void IsAnswerTo_FoldsAsciiCaseOnly_Rfc4343()
    {
        // header: ID 0x1234, RD; one question; then the question "<label>.test" IN A
        static byte[] Message(byte[] label, bool response, byte typeLow = 1)
        {
            byte[] header = [0x12, 0x34, (byte)(response ? 0x81 : 0x01), 0x00, 0, 1, 0, 0, 0, 0, 0, 0];
            return [.. header, (byte)label.Length, .. label, 4, .. "test"u8, 0, 0, typeLow, 0, 1];
        }

        var query = Message([(byte)'w', (byte)'w', (byte)'w', 0xC9], response: false);
        int questionEnd = query.Length;
        Assert.True(DnsForwarder.IsAnswerTo(Message([(byte)'W', (byte)'w', (byte)'W', 0xC9], response: true), query, questionEnd));
        // 0xC9 and 0xE9 are É and é in Latin-1: RFC 4343 §3 folds A–Z only, so these names differ
        Assert.False(DnsForwarder.IsAnswerTo(Message([(byte)'w', (byte)'w', (byte)'w', 0xE9], response: true), query, questionEnd));
        // '@' (0x40) and '`' (0x60) differ by the case bit but are not letters
        var at = Message([(byte)'a', (byte)'@'], response: false);
        Assert.False(DnsForwarder.IsAnswerTo(Message([(byte)'a', (byte)'`'], response: true), at, at.Length));
        Assert.True(DnsForwarder.IsAnswerTo(Message([(byte)'A', (byte)'@'], response: true), at, at.Length));
        // QTYPE is a number, not text: 65 (HTTPS, 0x41 'A') and 97 (0x61 'a') are different questions
        var https = Message([(byte)'w'], response: false, typeLow: 0x41);
        Assert.True(DnsForwarder.IsAnswerTo(Message([(byte)'W'], response: true, typeLow: 0x41), https, https.Length));
        Assert.False(DnsForwarder.IsAnswerTo(Message([(byte)'w'], response: true, typeLow: 0x61), https, https.Length));
    }

    private (DnsResponder Responder, DnsForwarder Forwarder) Responder(TimeSpan? timeout = null, int maxConcurrent = 8)
    {
        var forwarder = new DnsForwarder([_upstream.EndPoint], timeout ?? TimeSpan.FromSeconds(2), maxConcurrent);
        return (new DnsResponder(TimeSpan.FromSeconds(5)) { Forwarder = forwarder, Resolve = HostResolver }, forwarder);
    }

    private static Task<IPAddress[]> HostResolver(string name, AddressFamily family, CancellationToken cancellationToken) =>
        (name, family) switch
        {
            ("host.example.test", AddressFamily.InterNetwork) => Task.FromResult(new[] { IPAddress.Parse("192.0.2.77") }),
            ("localhost", AddressFamily.InterNetwork) => Task.FromResult(new[] { IPAddress.Loopback }),
            _ => Task.FromException<IPAddress[]>(new SocketException((int)SocketError.HostNotFound)),
        };

    private static byte[] Name(string name) =>
        [.. name.Split('.').SelectMany(l => new[] { (byte)l.Length }.Concat(Encoding.ASCII.GetBytes(l))), 0];

    private static byte[] WithOpt(byte[] query, ushort payload)
    {
        var opt = new byte[11];
        BinaryPrimitives.WriteUInt16BigEndian(opt.AsSpan(1), 41);
        BinaryPrimitives.WriteUInt16BigEndian(opt.AsSpan(3), payload);
        var result = query.Concat(opt).ToArray();
        BinaryPrimitives.WriteUInt16BigEndian(result.AsSpan(10), 1);
        return result;
    }

    /// <summary>
    /// A DNS server on 127.0.0.1 (UDP and TCP, one port) with canned records; UDP answers past the client's limit (512,
    /// or its OPT's payload size) go out as TC with no records unless <see cref="IgnoreUdpLimit"/>. <see cref="Mode"/>:
    /// "garbage" answers random bytes, "silent" never answers, "wrong-id" answers with the ID off by one only.
    /// </summary>
    private sealed class FakeUpstream : IDisposable
    {
        private readonly Dictionary<string, List<(ushort Type, byte[] Data)>> _records = new(StringComparer.OrdinalIgnoreCase);
        private readonly Socket _udp;
        private readonly TcpListener _tcp;
        private readonly CancellationTokenSource _stop = new();
        private int _inFlight;
        private int _maxConcurrent;
        private int _udpQueries;
        private int _tcpQueries;
        private bool _disposed;

        public FakeUpstream()
        {
            while (true)
            {
                _udp = new Socket(AddressFamily.InterNetwork, SocketType.Dgram, ProtocolType.Udp);
                _udp.Bind(new IPEndPoint(IPAddress.Loopback, 0));
                EndPoint = (IPEndPoint)_udp.LocalEndPoint!;
                _tcp = new TcpListener(EndPoint);
                try
                {
                    _tcp.Start();
                    break;
                }
                catch (SocketException)
                {
                    _udp.Dispose(); // the TCP port was taken: another pair
                }
            }

            _ = Task.Run(UdpLoop);
            _ = Task.Run(TcpLoop);
        }

        public IPEndPoint EndPoint { get; }

        public string Mode { get; set; } = "normal";

        public bool IgnoreUdpLimit { get; set; }

        public bool SpoofFirst { get; set; }

        public TimeSpan Delay { get; set; }

        public int LastId { get; private set; } = -1;

        public int LastPayloadSize { get; private set; } = -1;

        public int UdpQueries => Volatile.Read(ref _udpQueries);

        public int TcpQueries => Volatile.Read(ref _tcpQueries);

        public int MaxConcurrent => Volatile.Read(ref _maxConcurrent);

        public void Add(string name, ushort type, byte[] data)
        {
            lock (_records)
            {
                (_records.TryGetValue(name, out var list) ? list : _records[name] = []).Add((type, data));
            }
        }

        public void Dispose()
        {
            if (_disposed)
            {
                return;
            }

            _disposed = true;
            _stop.Cancel();
            _udp.Dispose();
            _tcp.Stop();
        }

        private async Task UdpLoop()
        {
            var buffer = new byte[65535];
            while (!_stop.IsCancellationRequested)
            {
                SocketReceiveFromResult r;
                try
                {
                    r = await _udp.ReceiveFromAsync(buffer, new IPEndPoint(IPAddress.Any, 0), _stop.Token);
                }
                catch (Exception e) when (e is OperationCanceledException or SocketException or ObjectDisposedException)
                {
                    return;
                }

                Interlocked.Increment(ref _udpQueries);
                var query = buffer[..r.ReceivedBytes];
                var client = r.RemoteEndPoint;
                _ = Task.Run(async () =>
                {
                    var now = Interlocked.Increment(ref _inFlight);
                    InterlockedMax(ref _maxConcurrent, now);
                    try
                    {
                        await Task.Delay(Delay);
                        foreach (var datagram in Respond(query, udp: true))
                        {
                            await _udp.SendToAsync(datagram, client);
                        }
                    }
                    catch (Exception e) when (e is SocketException or ObjectDisposedException)
                    {
                    }
                    finally
                    {
                        Interlocked.Decrement(ref _inFlight);
                    }
                });
            }
        }

        private async Task TcpLoop()
        {
            while (!_stop.IsCancellationRequested)
            {
                TcpClient client;
                try
                {
                    client = await _tcp.AcceptTcpClientAsync(_stop.Token);
                }
                catch (Exception e) when (e is OperationCanceledException or SocketException or ObjectDisposedException)
                {
                    return;
                }

                _ = Task.Run(async () =>
                {
                    using var _ = client;
                    try
                    {
                        var stream = client.GetStream();
                        var length = new byte[2];
                        await stream.ReadExactlyAsync(length);
                        var query = new byte[BinaryPrimitives.ReadUInt16BigEndian(length)];
                        await stream.ReadExactlyAsync(query);
                        Interlocked.Increment(ref _tcpQueries);
                        foreach (var answer in Respond(query, udp: false))
                        {
                            var framed = new byte[2 + answer.Length];
                            BinaryPrimitives.WriteUInt16BigEndian(framed, (ushort)answer.Length);
                            answer.CopyTo(framed, 2);
                            await stream.WriteAsync(framed);
                        }
                    }
                    catch (Exception e) when (e is IOException or SocketException or ObjectDisposedException)
                    {
                    }
                });
            }
        }

        private static void InterlockedMax(ref int target, int value)
        {
            int seen;
            while ((seen = Volatile.Read(ref target)) < value && Interlocked.CompareExchange(ref target, value, seen) != seen)
            {
            }
        }

        private List<byte[]> Respond(byte[] query, bool udp)
        {
            LastId = BinaryPrimitives.ReadUInt16BigEndian(query);
            if (Mode == "silent")
            {
                return [];
            }

            if (Mode == "garbage")
            {
                var junk = new byte[40];
                Random.Shared.NextBytes(junk);
                return [junk];
            }

            // the question: labels from offset 12, then QTYPE, QCLASS (RFC 1035 §4.1.2)
            var at = 12;
            var labels = new List<string>();
            while (query[at] != 0)
            {
                labels.Add(Encoding.ASCII.GetString(query, at + 1, query[at]));
                at += 1 + query[at];
            }

            var questionEnd = at + 5;
            var type = BinaryPrimitives.ReadUInt16BigEndian(query.AsSpan(at + 1));
            var hasOpt = BinaryPrimitives.ReadUInt16BigEndian(query.AsSpan(10)) > 0;
            var limit = 512;
            if (hasOpt)
            {
                LastPayloadSize = BinaryPrimitives.ReadUInt16BigEndian(query.AsSpan(questionEnd + 3)); // root name (1), TYPE (2), CLASS
                limit = Math.Max(512, LastPayloadSize);
            }

            List<(ushort Type, byte[] Data)> records;
            lock (_records)
            {
                records = _records.TryGetValue(string.Join('.', labels), out var list) ? [.. list.Where(r => r.Type == type)] : [];
            }

            var known = _records.ContainsKey(string.Join('.', labels));
            var answer = Build(query, questionEnd, known ? 0 : 3, records, hasOpt);
            if (udp && answer.Length > limit && !IgnoreUdpLimit)
            {
                answer = Build(query, questionEnd, 0, [], hasOpt);
                answer[2] |= 0x02; // TC
            }

            if (Mode == "wrong-id" || SpoofFirst)
            {
                var spoof = (byte[])answer.Clone();
                spoof[1] ^= 1;
                return Mode == "wrong-id" ? [spoof] : [spoof, answer];
            }

            return [answer];
        }

        private static byte[] Build(byte[] query, int questionEnd, int rcode, List<(ushort Type, byte[] Data)> records, bool opt)
        {
            var message = new List<byte>(query[..questionEnd]);
            message[2] = (byte)(0x84 | (query[2] & 0x01)); // QR, AA, RD copied
            message[3] = (byte)(0x80 | rcode);
            message[6] = (byte)(records.Count >> 8);
            message[7] = (byte)records.Count;
            message[8] = message[9] = 0;
            message[10] = 0;
            message[11] = (byte)(opt ? 1 : 0);
            foreach (var (type, data) in records)
            {
                message.AddRange([0xC0, 12, (byte)(type >> 8), (byte)type, 0, 1, 0, 0, 1, 44, (byte)(data.Length >> 8), (byte)data.Length]);
                message.AddRange(data);
            }

            if (opt)
            {
                message.AddRange([0, 0, 41, 0x10, 0x00, 0, 0, 0, 0, 0, 0]); // the upstream's own size: 4096
            }

            return [.. message];
        }
    }
}
