using System.Buffers.Binary;
using System.Net;
using System.Text;
using Sharptun.Device.Config;
using Sharptun.Device.Uapi;
using Sharptun.Gateway;
using Sharptun.NetStack;
using Sharptun.NetStack.Dns;
using Sharptun.Protocol;
using Sharptun.Proxy;
using Sharptun.Proxy.Config;
using Sharptun.Proxy.Http;
using Sharptun.Proxy.Socks5;
using Sharptun.Testing;

namespace Sharptun.Fuzz;

/// <summary>
/// The fuzz targets: each takes one untrusted input, drives a parser or an inbound path with it, and returns whether
/// the input got past validation (so a test can tell a target that accepts its seeds from one that rejects
/// everything). Rejection must be a return value or the documented exception of a config parser; anything else
/// thrown is a bug: afl++ records it as a crash, and tests/Sharptun.Fuzz.Tests fails on it when the input is in
/// fuzz/corpus. Every target builds its state fresh per input, so a crash replays from the input alone.
/// </summary>
public static class FuzzTargets
{
    /// <summary>The targets by name, as scripts/fuzz.sh and fuzz/corpus/NAME use them.</summary>
    public static IReadOnlyDictionary<string, Func<byte[], bool>> All { get; } = new Dictionary<string, Func<byte[], bool>>(StringComparer.Ordinal)
    {
        ["wire"] = Wire,
        ["session"] = Session,
        ["ip"] = Ip,
        ["dns"] = Dns,
        ["http"] = Http,
        ["socks5"] = Socks5,
        ["socks5-udp"] = Socks5Udp,
        ["wg-config"] = WgConfig,
        ["proxy-config"] = ProxyConfigText,
        ["uapi"] = Uapi,
    };

    // Fixed keys, so seeds made by SeedCorpus stay valid for every run of the harness. Made on use, not in a static
    // constructor: instrumented code run before SharpFuzz's fork server maps afl's coverage memory would fault.
    internal static Key ResponderKey => FixedKey(1);

    internal static Key InitiatorKey => FixedKey(2);

    // The datagrams' sender as ProtocolDevice.WriteSourceBytes writes it: 127.0.0.1, port 51966.
    internal static readonly byte[] Source = [127, 0, 0, 1, 0xCA, 0xFE];

    /// <summary>
    /// A WireGuard datagram into a responder that knows the initiator (whitepaper §5.4). An initiation or response of
    /// the right length gets a correct mac1 first (the initiator's <c>CookieGenerator</c> computes it), so mutations
    /// reach the handshake's decryption and the device's state instead of stopping at the MAC check; then the
    /// datagram is decapsulated without and with load, and checked for mac1, mac2 and a cookie reply.
    /// </summary>
    public static bool Wire(byte[] input)
    {
        var device = new ProtocolDevice(ResponderKey, new FixedWallClock(), new Random(1));
        device.AddPeer(InitiatorKey.DerivePublicKey());
        var datagram = (byte[])input.Clone();
        var mac1Offset = datagram.Length switch
        {
            148 when datagram[0] == 1 => 116, // handshake initiation (whitepaper §5.4.2)
            92 when datagram[0] == 2 => 60,   // handshake response (§5.4.3)
            _ => -1,                          // cookie replies and transport data carry no mac1
        };
        if (mac1Offset > 0)
        {
            var macs = new CookieGenerator();
            macs.Init(device.PublicKey.AsSpan());
            macs.AddMacs(datagram, mac1Offset, TimeSpan.FromSeconds(1));
        }

        var destination = new byte[Math.Max(datagram.Length, 148)];
        var now = TimeSpan.FromSeconds(10);
        _ = device.HasValidMac1(datagram);
        _ = device.HasValidMac2(now, datagram, Source);
        _ = device.WriteCookieReply(now, datagram, Source, destination);
        var underLoad = device.Decapsulate(now, datagram, destination, Source, underLoad: true);
        var result = device.Decapsulate(now, datagram, destination, Source);
        if (result.Action != ProtocolAction.Error)
        {
            // What the device wrote must lie inside the destination it was given.
            _ = destination.AsSpan(result.Offset, result.Length);
        }

        if (underLoad.Action != ProtocolAction.Error)
        {
            _ = destination.AsSpan(underLoad.Offset, underLoad.Length);
        }

        return result.Action != ProtocolAction.Error;
    }

    /// <summary>
    /// Transport data (whitepaper §5.4.6) in an established session, past the AEAD that stops mutated ciphertext: the
    /// harness runs a handshake between an initiator and a responder, then reads the input as frames, each a 2-byte
    /// big-endian length, an operation byte and that many bytes. Operation 0 seals the bytes as the initiator's inner
    /// packet (at the peer's MTU, 0 to 1420) and delivers the datagram to the responder: decryption, the replay window,
    /// the peer's receive state and the inner packet's length check (<c>InnerPacket</c>). Operation 1 delivers the last
    /// sealed datagram again (a replay). Operation 2 delivers the bytes as a raw datagram with the session's receiver
    /// index written in, so a forged header meets the real keypair. Accepted means a frame came out as an inner packet.
    /// </summary>
    public static bool Session(byte[] input)
    {
        var now = TimeSpan.FromSeconds(10);
        var (initiator, responder, toResponder, _, response) = Handshake(now);
        var buffer = new byte[2048];
        var reply = new byte[2048];
        var confirmed = initiator.Decapsulate(now, response, buffer, Source);
        if (confirmed.Action == ProtocolAction.Error)
        {
            throw new InvalidOperationException("the harness's own handshake failed: " + confirmed.Error);
        }

        var accepted = false;
        byte[]? last = null;
        var span = input.AsSpan();
        while (span.Length >= 3)
        {
            int length = BinaryPrimitives.ReadUInt16BigEndian(span);
            var operation = span[2] % 3;
            span = span[3..];
            var bytes = span[..Math.Min(length, span.Length)];
            span = span[bytes.Length..];
            byte[] datagram;
            if (operation == 0)
            {
                if (bytes.Length > 1420)
                {
                    continue;
                }

                toResponder.Mtu = bytes.Length == 0 ? 0 : 1420;
                bytes.CopyTo(buffer.AsSpan(TransportDataView.HeaderSize));
                var sealedDatagram = ProtocolPaths.Encrypt(toResponder, now, buffer, bytes.Length);
                if (sealedDatagram.Action != ProtocolAction.WriteToNetwork)
                {
                    continue;
                }

                datagram = last = buffer.AsSpan(0, sealedDatagram.Length).ToArray();
            }
            else if (operation == 1)
            {
                if (last is null)
                {
                    continue;
                }

                datagram = last;
            }
            else
            {
                datagram = bytes.ToArray();
                if (datagram.Length >= 8 && last is not null)
                {
                    last.AsSpan(4, 4).CopyTo(datagram.AsSpan(4)); // the session's receiver index
                }
            }

            accepted |= ReceiveTransport(responder, now, datagram, reply);
            now += TimeSpan.FromMilliseconds(10);
        }

        return accepted;
    }

    /// <summary>
    /// The first two messages of a handshake (whitepaper §5.4.2, §5.4.3) between devices with the fixed keys, each of
    /// which knows the other: the initiation the initiator sent and the response the responder answered it with. The
    /// initiator has not consumed the response yet.
    /// </summary>
    internal static (ProtocolDevice Initiator, ProtocolDevice Responder, Peer ToResponder, byte[] Initiation, byte[] Response) Handshake(TimeSpan now)
    {
        var initiator = new ProtocolDevice(InitiatorKey, new FixedWallClock(), new Random(2));
        var responder = new ProtocolDevice(ResponderKey, new FixedWallClock(), new Random(1));
        var toResponder = initiator.AddPeer(ResponderKey.DerivePublicKey());
        responder.AddPeer(InitiatorKey.DerivePublicKey());
        var buffer = new byte[256];
        toResponder.RequestHandshake();
        var sent = toResponder.UpdateTimers(now, buffer);
        var initiation = buffer.AsSpan(sent.Offset, sent.Length).ToArray();
        var answered = responder.Decapsulate(now, initiation, buffer, Source);
        return (initiator, responder, toResponder, initiation, buffer.AsSpan(answered.Offset, answered.Length).ToArray());
    }

    // WireGuardDevice's receive path without the I/O (ProtocolPaths.Receive), then the inner packet's addresses.
    private static bool ReceiveTransport(ProtocolDevice device, TimeSpan now, byte[] datagram, byte[] destination)
    {
        var result = ProtocolPaths.Receive(device, now, datagram, destination, Source);
        if (result.Action != ProtocolAction.WriteToTunnel)
        {
            return false;
        }

        var packet = destination.AsSpan(result.Offset, result.Length);
        _ = InnerPacket.SourceAddress(packet);
        _ = InnerPacket.TryGetDestinationAddress(packet, out _);
        return true;
    }

    /// <summary>
    /// IP packets into a netstack (10.9.0.2 and fd00:9::2) with a TCP listener on port 80 and UDP sockets on 53 and on
    /// any destination: the input is a sequence of packets, each a 2-byte big-endian length and that many bytes; the
    /// virtual clock moves 50 ms after each, so retransmission, TIME-WAIT and reassembly timers fire too. Accepted
    /// means the stack answered (a SYN-ACK, an ICMP reply or error, a RST) or delivered a datagram.
    /// </summary>
    public static bool Ip(byte[] input)
    {
        var options = new NetworkStackOptions { Promiscuous = false };
        options.Addresses.Add(IPAddress.Parse("10.9.0.2"));
        options.Addresses.Add(IPAddress.Parse("fd00:9::2"));
        using var stack = new NetworkStack(options);
        using var listener = stack.ListenTcp(new IPEndPoint(IPAddress.IPv6Any, 80), 4);
        using var udp = stack.BindUdp(new IPEndPoint(IPAddress.IPv6Any, 53), 4);
        var sink = new byte[70000];
        var answered = false;
        var now = TimeSpan.Zero;
        var span = input.AsSpan();
        while (span.Length >= 2)
        {
            int length = BinaryPrimitives.ReadUInt16BigEndian(span);
            span = span[2..];
            var packet = span[..Math.Min(length, span.Length)];
            span = span[packet.Length..];
            stack.WritePacket(packet);
            now += TimeSpan.FromMilliseconds(50);
            stack.Poll(now);
            while (stack.TryReadPacket(sink, out _))
            {
                answered = true;
            }

            while (udp.TryReceiveFrom(sink, out _))
            {
                answered = true;
            }

            while (listener.TryAccept(out var connection))
            {
                answered = true;
                connection.Abort(now);
            }
        }

        stack.Poll(now + TimeSpan.FromMinutes(10));
        while (stack.TryReadPacket(sink, out _))
        {
        }

        return answered;
    }

    /// <summary>
    /// A DNS response to the resolver's query for example.com (RFC 1035 §4.1): the query ID is taken from the input's
    /// own first two bytes, so mutations of a valid answer still match; parsed as an answer to A and to AAAA.
    /// </summary>
    public static bool Dns(byte[] input)
    {
        var name = DnsMessage.EncodeName("example.com")!;
        ushort id = input.Length >= 2 ? BinaryPrimitives.ReadUInt16BigEndian(input) : (ushort)0;
        var a = DnsMessage.ParseResponse(input, id, name, DnsRecordType.A);
        var aaaa = DnsMessage.ParseResponse(input, id, name, DnsRecordType.Aaaa);
        var offset = DnsMessage.HeaderLength;
        Span<byte> decoded = stackalloc byte[DnsMessage.MaxNameLength + 1];
        _ = DnsMessage.ReadName(input, ref offset, decoded);
        return a.Status is DnsParseStatus.Ok or DnsParseStatus.Truncated || aaaa.Status is DnsParseStatus.Ok or DnsParseStatus.Truncated;
    }

    /// <summary>
    /// A client's bytes as the HTTP proxy reads them (RFC 9112 §2–§7): heads one after another through its
    /// <c>HttpReader</c>, each parsed as a request (whose target is then parsed as CONNECT's authority and as an
    /// absolute URI) and as a response (its status code read); a head that announces a chunked body is followed by the
    /// body, decoded and re-chunked as the proxy forwards it. Rejection is a null head or the body's
    /// <c>HttpBodyException</c>.
    /// </summary>
    public static bool Http(byte[] input)
    {
        using var reader = new HttpReader(new MemoryStream(input, writable: false));
        using var idle = new CancellationTokenSource();
        var progress = new HttpBody.Progress(idle, Timeout.InfiniteTimeSpan, _ => { });
        var buffer = new byte[4096];
        var accepted = false;
        for (var heads = 0; heads < 16; heads++)
        {
            var (status, bytes) = reader.ReadHeadAsync(CancellationToken.None).AsTask().GetAwaiter().GetResult();
            if (status != HeadStatus.Ok)
            {
                break;
            }

            var request = HttpHead.TryParseRequest(bytes.Span, out _, out _);
            var response = HttpHead.TryParseResponse(bytes.Span, out _);
            var head = request ?? response;
            if (head is null)
            {
                break;
            }

            accepted = true;
            if (request is not null)
            {
                _ = ProxyTarget.TryParseAuthority(request.Second, out _, out _);
                _ = ProxyTarget.TryParseAbsolute(request.Second, out _, out _);
                _ = request.Has("Host");
            }
            else
            {
                _ = response!.StatusCode;
            }

            if (head.HasToken("Transfer-Encoding", "chunked"))
            {
                try
                {
                    HttpBody.CopyChunkedAsync(reader, Stream.Null, rechunk: heads % 2 == 0, buffer, progress, CancellationToken.None).AsTask().GetAwaiter().GetResult();
                }
                catch (HttpBodyException)
                {
                    break;
                }
            }
        }

        return accepted;
    }

    /// <summary>
    /// A SOCKS5 client's bytes on a new connection (RFC 1928 §3–§4, RFC 1929): the method negotiation, the
    /// username/password exchange and the request, read by the server's own handshake code, once by a server without
    /// authentication and once by one that requires it. Rejection is a refusal (null) or the client's bytes ending
    /// mid-handshake (<see cref="EndOfStreamException"/>, which the server counts as "closed during the handshake").
    /// </summary>
    public static bool Socks5(byte[] input)
    {
        var accepted = false;
        foreach (var (user, password) in new[] { ((string?)null, (string?)null), ("user", "secret") })
        {
            var options = new Socks5Options(new IPEndPoint(IPAddress.Loopback, 0)) { Username = user, Password = password };
            var server = new Socks5Server(options, new ProxyContext(OfflineNetwork.Instance));
            var buffer = new byte[Socks5Protocol.MaxHandshakeMessage]; // exactly the size the server rents at least
            using var client = new ClientBytes(input);
            try
            {
                var request = server.ReadHandshakeAsync(client, buffer, null, admitted: true, CancellationToken.None).GetAwaiter().GetResult();
                accepted |= request is not null;
            }
            catch (EndOfStreamException)
            {
            }
        }

        return accepted;
    }

    /// <summary>A datagram from a SOCKS5 UDP ASSOCIATE client: its request header (RFC 1928 §7).</summary>
    public static bool Socks5Udp(byte[] input)
    {
        var parse = Socks5UdpHeader.TryParse(input, out var header);
        if (parse == Socks5UdpParse.Ok)
        {
            // The payload offset must lie inside the datagram.
            _ = input.AsSpan(header.PayloadOffset);
        }

        _ = Socks5Protocol.TryDecodeName(input, out _);
        return parse == Socks5UdpParse.Ok;
    }

    /// <summary>A wg-quick / wg(8) config file (UTF-8); an accepted config is printed and must parse again.</summary>
    public static bool WgConfig(byte[] input)
    {
        var text = Encoding.UTF8.GetString(input);
        if (!WgConfigParser.TryParse(text, "fuzz.conf", out var config, out _))
        {
            return false;
        }

        var again = WgConfigPrinter.PrintQuick(config!);
        if (!WgConfigParser.TryParse(again, "fuzz.conf", out var reparsed, out var errors))
        {
            throw new InvalidOperationException("an accepted config printed as one that does not parse: " + string.Join("; ", errors.Select(e => e.ToString())) + "\n" + again);
        }

        if (config != reparsed)
        {
            throw new InvalidOperationException("an accepted config changed when printed and parsed again:\n" + again);
        }

        return true;
    }

    /// <summary>
    /// A `sharptun proxy` (wireproxy-style) config and a `sharptun gateway` config (UTF-8): accepted when either
    /// program would start from it (the gateway's needs its WireGuard part to parse too). Rejection is their
    /// documented <see cref="FormatException"/> (<see cref="ProxyConfigException"/> names file and line). A config
    /// naming another file (WGConfig) is not followed: the harness must not read the machine's files.
    /// </summary>
    public static bool ProxyConfigText(byte[] input)
    {
        var text = Encoding.UTF8.GetString(input);
        var accepted = false;
        if (!text.Contains("wgconfig", StringComparison.OrdinalIgnoreCase))
        {
            try
            {
                _ = ProxyConfig.Parse(text, "/nonexistent/fuzz.conf", _ => "env-value");
                accepted = true;
            }
            catch (ProxyConfigException)
            {
            }
        }

        try
        {
            // The gateway reads its [Gateway] section and hands the rest, blanked line for line, to the wg-quick parser.
            var gateway = GatewayConfig.Parse(text, "fuzz.conf");
            accepted |= WgConfigParser.TryParse(gateway.WireGuardText, "fuzz.conf", out _, out _);
        }
        catch (FormatException)
        {
        }

        return accepted;
    }

    /// <summary>
    /// A UAPI exchange (the cross-platform userspace interface): the input as a <c>set=1</c> body, whose accepted
    /// change set is printed and must parse again, and as a <c>get=1</c> reply.
    /// </summary>
    public static bool Uapi(byte[] input)
    {
        var text = Encoding.UTF8.GetString(input);
        var set = UapiParser.TryParseSet(text, out var changes, out _);
        if (set && !UapiParser.TryParseSet(UapiFormatter.FormatSet(changes!), out _, out var error))
        {
            throw new InvalidOperationException("an accepted set request printed as one that does not parse: " + error);
        }

        var get = UapiParser.TryParseGet(text, out _, out _);
        return set || get;
    }

    private static Key FixedKey(byte seed)
    {
        Span<byte> bytes = stackalloc byte[32];
        bytes.Fill(seed);
        bytes[0] &= 248; // RFC 7748 §5 clamping, as wg genkey does
        bytes[31] = (byte)((bytes[31] & 127) | 64);
        return new Key(bytes);
    }

    /// <summary>A connection whose client sends <c>input</c> and then closes; what the server writes is dropped.</summary>
    private sealed class ClientBytes(byte[] input) : Stream
    {
        private readonly MemoryStream _input = new(input, writable: false);

        public override bool CanRead => true;

        public override bool CanSeek => false;

        public override bool CanWrite => true;

        public override long Length => throw new NotSupportedException();

        public override long Position { get => throw new NotSupportedException(); set => throw new NotSupportedException(); }

        public override int Read(byte[] buffer, int offset, int count) => _input.Read(buffer, offset, count);

        public override void Write(byte[] buffer, int offset, int count)
        {
        }

        public override void Flush()
        {
        }

        public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();

        public override void SetLength(long value) => throw new NotSupportedException();
    }

    private sealed class FixedWallClock : IWallClock
    {
        public DateTime UtcNow => new(2026, 12, 7, 0, 0, 0, DateTimeKind.Utc);
    }
}
