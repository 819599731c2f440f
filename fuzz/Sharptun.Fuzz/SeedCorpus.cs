using System.Buffers.Binary;
using System.Net;
using System.Text;
using Sharptun.NetStack;
using Sharptun.NetStack.Dns;
using Sharptun.Protocol;

namespace Sharptun.Fuzz;

/// <summary>
/// Writes fuzz/corpus: valid inputs for every target, made with Sharptun's own code where it has a writer (handshake
/// messages from a <see cref="ProtocolDevice"/>, packets from a client <see cref="NetworkStack"/>, DNS names from
/// <see cref="DnsMessage"/>), by hand from the RFCs' layouts elsewhere. afl++ starts from these.
/// </summary>
internal static class SeedCorpus
{
    public static void Write(string directory)
    {
        foreach (var (target, name, bytes) in All())
        {
            var dir = Path.Combine(directory, target);
            Directory.CreateDirectory(dir);
            File.WriteAllBytes(Path.Combine(dir, name), bytes);
        }
    }

    public static IEnumerable<(string Target, string Name, byte[] Bytes)> All()
    {
        foreach (var (name, bytes) in Wire())
        {
            yield return ("wire", name, bytes);
        }

        yield return ("session", "ipv4-then-replay-then-forged", Session());
        foreach (var (name, bytes) in Ip())
        {
            yield return ("ip", name, bytes);
        }

        yield return ("dns", "a-answer", DnsAnswer(DnsRecordType.A, [93, 184, 216, 34], truncated: false));
        yield return ("dns", "aaaa-answer", DnsAnswer(DnsRecordType.Aaaa, IPAddress.Parse("2001:db8::1").GetAddressBytes(), truncated: false));
        yield return ("dns", "truncated", DnsAnswer(DnsRecordType.A, [10, 0, 0, 1], truncated: true));

        yield return ("http", "connect", Ascii("CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\nProxy-Authorization: Basic dTpw\r\n\r\n"));
        yield return ("http", "get-absolute", Ascii("GET http://example.com:8080/a?b=c HTTP/1.1\r\nHost: example.com:8080\r\nConnection: keep-alive, close\r\n\r\n"));
        yield return ("http", "post-ipv6", Ascii("POST http://[fd00::1]/upload HTTP/1.1\r\nHost: [fd00::1]\r\nContent-Length: 3\r\n\r\n"));
        yield return ("http", "response", Ascii("HTTP/1.1 200 OK\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"));
        yield return ("http", "chunked-then-next", Ascii("POST http://example.com/ HTTP/1.1\r\nHost: example.com\r\nTransfer-Encoding: gzip, chunked\r\n\r\n5;ext=1\r\nhello\r\n0\r\nTrailer: x\r\n\r\nGET http://example.com/2 HTTP/1.0\r\n\r\n"));

        yield return ("socks5", "connect-ipv4", [5, 1, 0, 5, 1, 0, 1, 10, 0, 0, 1, 0, 80]);
        yield return ("socks5", "connect-domain", [5, 2, 0, 2, 5, 1, 0, 3, 11, .. "example.com"u8, 1, 187]);
        yield return ("socks5", "associate-ipv6", [5, 1, 0, 5, 3, 0, 4, .. new byte[16], 0, 0]);
        yield return ("socks5", "bind", [5, 1, 0, 5, 2, 0, 1, 0, 0, 0, 0, 0, 0]);
        yield return ("socks5", "userpass-connect", [5, 1, 2, 1, 4, .. "user"u8, 6, .. "secret"u8, 5, 1, 0, 1, 10, 0, 0, 1, 0, 80]);
        yield return ("socks5-udp", "ipv4", [0, 0, 0, 1, 10, 0, 0, 1, 0, 53, 0xAB, 0xCD]);
        yield return ("socks5-udp", "ipv6", [0, 0, 0, 4, .. IPAddress.Parse("fd00::1").GetAddressBytes(), 0x1F, 0x90, 1, 2, 3]);
        yield return ("socks5-udp", "domain", [0, 0, 0, 3, 11, .. "example.com"u8, 0, 53, 9]);

        var responderPublic = Convert.ToBase64String(FuzzTargets.ResponderKey.DerivePublicKey().AsSpan());
        var initiatorPrivate = Convert.ToBase64String(FuzzTargets.InitiatorKey.AsSpan());
        var wireGuard = $"""
            [Interface]
            PrivateKey = {initiatorPrivate}
            Address = 10.9.0.1/32, fd00:9::1/128
            DNS = 10.9.0.53
            MTU = 1420
            ListenPort = 51820

            [Peer]
            PublicKey = {responderPublic}
            PresharedKey = {initiatorPrivate}
            Endpoint = 127.0.0.1:51821
            AllowedIPs = 10.9.0.0/24, fd00:9::/64
            PersistentKeepalive = 25

            """;
        yield return ("wg-config", "quick", Encoding.UTF8.GetBytes(wireGuard));
        yield return ("proxy-config", "wireproxy", Encoding.UTF8.GetBytes(wireGuard + """
            [Socks5]
            BindAddress = 127.0.0.1:1080
            Username = $USER
            Password = secret

            [http]
            BindAddress = 127.0.0.1:3128

            [TCPClientTunnel]
            BindAddress = 127.0.0.1:2222
            Target = 10.9.0.2:22

            [TCPServerTunnel]
            ListenPort = 8080
            Target = 127.0.0.1:80

            [UDPProxyTunnel]
            BindAddress = 127.0.0.1:5353
            Target = 10.9.0.53:53
            InactivityTimeout = 30

            [Resolve]
            ResolveStrategy = ipv4

            """));
        yield return ("proxy-config", "gateway", Encoding.UTF8.GetBytes(wireGuard + """
            [Gateway]
            Allow = 192.168.50.0/24, 10.1.0.0/16:443
            Allow = [fd00::]/8:53
            Deny = 203.0.113.0/24
            Default = deny
            MaxConnections = 100
            IdleTimeout = 30
            DNS = off

            """));

        var hex = Convert.ToHexStringLower(FuzzTargets.InitiatorKey.AsSpan());
        var peerHex = Convert.ToHexStringLower(FuzzTargets.ResponderKey.DerivePublicKey().AsSpan());
        yield return ("uapi", "set", Ascii($"private_key={hex}\nlisten_port=51820\nfwmark=0\nreplace_peers=true\npublic_key={peerHex}\npreshared_key={hex}\nendpoint=127.0.0.1:51821\npersistent_keepalive_interval=25\nreplace_allowed_ips=true\nallowed_ip=10.9.0.0/24\nallowed_ip=fd00:9::/64\n\n"));
        yield return ("uapi", "get-reply", Ascii($"private_key={hex}\nlisten_port=51820\npublic_key={peerHex}\nendpoint=127.0.0.1:51821\nlast_handshake_time_sec=1\nlast_handshake_time_nsec=2\ntx_bytes=3\nrx_bytes=4\npersistent_keepalive_interval=0\nallowed_ip=10.9.0.0/24\nprotocol_version=1\nerrno=0\n\n"));
    }

    /// <summary>A handshake initiation the responder accepts, its response, a cookie reply and a transport header.</summary>
    private static IEnumerable<(string, byte[])> Wire()
    {
        var now = TimeSpan.FromSeconds(5);
        var (_, responder, _, initiation, response) = FuzzTargets.Handshake(now);
        yield return ("initiation", initiation);
        yield return ("response", response);

        var reply = new byte[256];
        var cookie = responder.Decapsulate(now, initiation, reply, FuzzTargets.Source, underLoad: true);
        yield return ("cookie-reply", reply.AsSpan(cookie.Offset, cookie.Length).ToArray());

        var transport = new byte[32 + 16];
        transport[0] = 4;
        BinaryPrimitives.WriteUInt32LittleEndian(transport.AsSpan(4), 1);
        yield return ("transport", transport);
    }

    /// <summary>
    /// Frames for the session target: an IPv4 packet sealed and delivered, the same datagram replayed, an IPv6 packet,
    /// a keepalive (empty) and a forged transport datagram.
    /// </summary>
    private static byte[] Session()
    {
        byte[] ipv4 = [0x45, 0, 0, 28, 0, 0, 0x40, 0, 64, 17, 0, 0, 10, 9, 0, 1, 10, 9, 0, 2, 0x9C, 0x40, 0, 53, 0, 8, 0, 0];
        byte[] ipv6 = [0x60, 0, 0, 0, 0, 8, 17, 64, .. IPAddress.Parse("fd00:9::1").GetAddressBytes(), .. IPAddress.Parse("fd00:9::2").GetAddressBytes(), 0x9C, 0x40, 0, 53, 0, 8, 0, 0];
        byte[] forged = [4, 0, 0, 0, 0, 0, 0, 0, 7, 0, 0, 0, 0, 0, 0, 0, .. new byte[32]];
        var frames = new MemoryStream();
        foreach (var (operation, bytes) in new[] { (0, ipv4), (1, Array.Empty<byte>()), (0, ipv6), (0, Array.Empty<byte>()), (2, forged) })
        {
            frames.WriteByte((byte)(bytes.Length >> 8));
            frames.WriteByte((byte)bytes.Length);
            frames.WriteByte((byte)operation);
            frames.Write(bytes);
        }

        return frames.ToArray();
    }

    /// <summary>
    /// Packet sequences a client stack (10.9.0.1 / fd00:9::1) sends to the target's stack: a TCP connection's packets
    /// (SYN, ACK, data, FIN as the two stacks exchanged them), UDP datagrams to port 53, over IPv4 and IPv6.
    /// </summary>
    private static IEnumerable<(string, byte[])> Ip()
    {
        foreach (var (suffix, client, server) in new[] { ("v4", "10.9.0.1", "10.9.0.2"), ("v6", "fd00:9::1", "fd00:9::2") })
        {
            yield return ("tcp-" + suffix, TcpExchange(IPAddress.Parse(client), IPAddress.Parse(server)));
            yield return ("udp-" + suffix, UdpDatagram(IPAddress.Parse(client), IPAddress.Parse(server)));
        }
    }

    private static byte[] TcpExchange(IPAddress client, IPAddress server)
    {
        using var a = Stack(client);
        using var b = Stack(server);
        using var listener = b.ListenTcp(new IPEndPoint(IPAddress.IPv6Any, 80));
        var sequence = new MemoryStream();
        var connect = a.ConnectTcpAsync(new IPEndPoint(server, 80)).AsTask();
        var packet = new byte[70000];
        var now = TimeSpan.Zero;
        Task? sendAndClose = null;
        for (var round = 0; round < 20; round++)
        {
            Thread.Sleep(5); // the write below runs on the thread pool
            now += TimeSpan.FromMilliseconds(1);
            a.Poll(now);
            b.Poll(now);
            while (a.TryReadPacket(packet, out var length))
            {
                Append(sequence, packet.AsSpan(0, length));
                b.WritePacket(packet.AsSpan(0, length));
            }

            while (b.TryReadPacket(packet, out var length))
            {
                a.WritePacket(packet.AsSpan(0, length));
            }

            if (connect.IsCompletedSuccessfully && sendAndClose is null)
            {
                var stream = connect.Result;
                sendAndClose = Task.Run(async () =>
                {
                    await stream.WriteAsync("GET / HTTP/1.1\r\n\r\n"u8.ToArray());
                    await stream.DisposeAsync();
                });
            }
        }

        return sequence.ToArray();
    }

    private static byte[] UdpDatagram(IPAddress client, IPAddress server)
    {
        using var a = Stack(client);
        using var socket = a.BindUdp(new IPEndPoint(client, 40000));
        socket.SendToAsync("query"u8.ToArray(), new IPEndPoint(server, 53)).AsTask().GetAwaiter().GetResult();
        var packet = new byte[2000];
        var sequence = new MemoryStream();
        while (a.TryReadPacket(packet, out var length))
        {
            Append(sequence, packet.AsSpan(0, length));
        }

        return sequence.ToArray();
    }

    /// <summary>One packet of the ip target's input: a 2-byte big-endian length, then the packet.</summary>
    private static void Append(MemoryStream sequence, ReadOnlySpan<byte> packet)
    {
        Span<byte> prefix = stackalloc byte[2];
        BinaryPrimitives.WriteUInt16BigEndian(prefix, (ushort)packet.Length);
        sequence.Write(prefix);
        sequence.Write(packet);
    }

    private static NetworkStack Stack(IPAddress address)
    {
        var options = new NetworkStackOptions();
        options.Addresses.Add(address);
        return new NetworkStack(options);
    }

    /// <summary>A response (RFC 1035 §4.1) to a query for example.com: one answer of the given type behind a name pointer.</summary>
    private static byte[] DnsAnswer(DnsRecordType type, byte[] address, bool truncated)
    {
        var query = DnsMessage.BuildQuery(0x1234, DnsMessage.EncodeName("example.com"), type);
        var message = new List<byte>(query);
        message[2] = (byte)(0x81 | (truncated ? 0x02 : 0)); // QR, RD (and TC)
        message[3] = 0x80;                                   // RA, RCODE 0
        message[7] = 1;                                      // ANCOUNT = 1
        message.AddRange([0xC0, 12, 0, (byte)type, 0, 1, 0, 0, 0x0E, 0x10, 0, (byte)address.Length]);
        message.AddRange(address);
        return [.. message];
    }

    private static byte[] Ascii(string text) => Encoding.ASCII.GetBytes(text);
}
