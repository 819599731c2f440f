using System.Buffers.Binary;
using System.Diagnostics;
using System.Globalization;
using System.Net;
using System.Net.Sockets;
using System.Runtime.Versioning;
using System.Security.Cryptography;
using System.Text;
using Xunit.Abstractions;

namespace Sharptun.Interop.Tests;

/// <summary>
/// Issue 11: <c>sharptun gateway</c> as a rootless exit. Three namespaces: C runs a wireguard-go client on a kernel TUN
/// (kernel TCP/UDP/ICMP through it); G runs <c>sharptun gateway</c> as uid/gid 65534 (setpriv, no groups, no
/// capabilities: no TUN); S runs a kernel HTTP server, an upload sink and a UDP echo on a subnet only G can reach.
/// C's routes send S's subnets and the gateway's tunnel address into wireguard-go.
/// </summary>
[SupportedOSPlatform("linux")]
public sealed partial class GatewayInteropTests(ITestOutputHelper output)
{
    private const int HttpPort = 8080;
    private const int SinkPort = 9000;
    private const int EchoPort = 7007;
    private static readonly TimeSpan Timeout = TimeSpan.FromSeconds(60);

    [InteropFact("wireguard-go", "wg", "setpriv", "ping")]
    public async Task UnprivilegedGateway_HttpDownloadAndUploadByHash_100Concurrent_UdpEcho_Dns_Ping()
    {
        var size = long.Parse(Environment.GetEnvironmentVariable("SHARPTUN_GATEWAY_TRANSFER_MIB") ?? "1024", CultureInfo.InvariantCulture) << 20; // issue 11: 1 GB each way by hash
        using var lab = new NetnsLab();
        using var setup = new Setup(lab, "");
        try
        {
            Assert.Equal($"{Unprivileged.Id} {Unprivileged.Id}", setup.GatewayUid);

            // download: GET /bytes/N from the kernel HTTP server in S, hashed on both ends
            var sw = Stopwatch.StartNew();
            var downloaded = await setup.DownloadAsync(size);
            output.WriteLine(Invariant($"download {size >> 20} MiB: {sw.Elapsed.TotalSeconds:0.00} s = {size * 8 / sw.Elapsed.TotalSeconds / 1e6:0} Mbit/s"));
            Assert.Equal(setup.Http.HashOf(size), downloaded);

            // upload: the sink answers the SHA-256 of what it received before the client's FIN
            sw.Restart();
            var (sent, received) = await setup.UploadAsync(size, seed: 1);
            output.WriteLine(Invariant($"upload {size >> 20} MiB: {sw.Elapsed.TotalSeconds:0.00} s = {size * 8 / sw.Elapsed.TotalSeconds / 1e6:0} Mbit/s"));
            Assert.Equal(sent, received);

            // 100 connections open at once, each uploading 256 KiB and checking its hash
            var all = await Task.WhenAll(Enumerable.Range(0, 100).Select(i => setup.UploadAsync(256 * 1024, seed: 100 + i, holdOpen: true)));
            Assert.All(all, r => Assert.Equal(r.Sent, r.Received));

            // UDP echo from S, replies from S's address
            using (var udp = setup.ClientSocket(SocketType.Dgram, ProtocolType.Udp))
            {
                await udp.ConnectAsync(new IPEndPoint(setup.ServerAddress, EchoPort));
                var buffer = new byte[2048];
                for (var i = 0; i < 50; i++)
                {
                    var payload = RandomNumberGenerator.GetBytes(1 + (i * 27));
                    await udp.SendAsync(payload);
                    var n = await udp.ReceiveAsync(buffer).WaitAsync(Timeout);
                    Assert.Equal(payload, buffer[..n]);
                }
            }

            // DNS to the gateway's tunnel address, answered by the host resolver of G (its /etc/hosts)
            using (var dns = setup.ClientSocket(SocketType.Dgram, ProtocolType.Udp))
            {
                await dns.ConnectAsync(new IPEndPoint(setup.GatewayTunnelAddress, 53));
                await dns.SendAsync(DnsQuery(0x5151, "localhost", 1));
                var buffer = new byte[600];
                var n = await dns.ReceiveAsync(buffer).WaitAsync(Timeout);
                Assert.Equal(0x5151, BinaryPrimitives.ReadUInt16BigEndian(buffer));
                Assert.Equal(0, buffer[3] & 0xF);
                Assert.Equal([127, 0, 0, 1], buffer[(n - 4)..n]);
                await dns.SendAsync(DnsQuery(0x5152, "no-such-host.invalid", 1));
                n = await dns.ReceiveAsync(buffer).WaitAsync(Timeout);
                Assert.Equal(0x5152, BinaryPrimitives.ReadUInt16BigEndian(buffer));
                Assert.NotEqual(0, buffer[3] & 0xF); // NXDOMAIN (or SERVFAIL with no resolver in the namespace)
            }

            // ping: answered for an allowed destination, not for a reserved one
            var ping = lab.Exec(setup.ClientNs, "ping", "-c", "3", "-i", "0.2", "-W", "3", setup.ServerAddress.ToString());
            Assert.True(ping.Success, ping.ToString());
            var noPing = lab.Exec(setup.ClientNs, "ping", "-c", "1", "-W", "2", setup.ReservedAddress.ToString());
            Assert.False(noPing.Success, noPing.ToString());

            // operations: /metrics counts the relayed connections per peer, /readyz is ready, wg show sees the client
            var metrics = setup.Scrape("/metrics");
            Assert.True(metrics.Success, metrics.ToString());
            Assert.Matches(@"sharptun_gateway_tcp_relayed_total\{peer=""[A-Za-z0-9+/=]{44}""\} 10[12]", metrics.Stdout);
            Assert.Matches(@"sharptun_gateway_dns_queries_total\{peer=""[A-Za-z0-9+/=]{44}""\} [1-9]", metrics.Stdout);
            var ready = setup.Scrape("/readyz");
            Assert.Contains("200", ready.Stdout.Split('\n')[0], StringComparison.Ordinal);
            var show = setup.WgShowGateway();
            Assert.True(show.Success, show.ToString());
            var peerLine = show.Stdout.Split('\n', StringSplitOptions.RemoveEmptyEntries)[1].Split('\t');
            Assert.NotEqual("0", peerLine[4]); // latest handshake
            Assert.True(long.Parse(peerLine[5], CultureInfo.InvariantCulture) > size, show.Stdout); // received bytes

            var counters = setup.StopGateway();
            Assert.Matches(@"total: tcp 10[12] relayed, 0 open, 0 denied, 0 capped, 0 host failures; udp [12] flows, 0 open", counters);
        }
        catch
        {
            output.WriteLine(setup.Describe());
            throw;
        }
    }

    [InteropFact("wireguard-go", "wg", "setpriv")]
    public async Task UnprivilegedGateway_Policy_RstAndUnreachable_HostRefusalRst_HalfCloseAndIdle_CapsAndCountersBackToZero()
    {
        using var lab = new NetnsLab();
        using var setup = new Setup(lab, $"Deny = {{server}}:{SinkPort + 1}\nMaxConnectionsPerPeer = 3\nIdleTimeout = 3\nUdpIdleTimeout = 1");
        try
        {
            // denied by a rule and by the private-range default: RST instead of SYN-ACK
            var denied = await Assert.ThrowsAsync<SocketException>(() => setup.ConnectAsync(setup.ServerAddress, SinkPort + 1));
            Assert.Equal(SocketError.ConnectionRefused, denied.SocketErrorCode);
            var reserved = await Assert.ThrowsAsync<SocketException>(() => setup.ConnectAsync(setup.ReservedAddress, SinkPort));
            Assert.Equal(SocketError.ConnectionRefused, reserved.SocketErrorCode);

            // denied UDP: ICMP administratively prohibited (EHOSTUNREACH on a connected socket), not silence
            using (var udp = setup.ClientSocket(SocketType.Dgram, ProtocolType.Udp))
            {
                await udp.ConnectAsync(new IPEndPoint(setup.ReservedAddress, EchoPort));
                await udp.SendAsync(new byte[] { 1 });
                var e = await Assert.ThrowsAsync<SocketException>(async () => await udp.ReceiveAsync(new byte[16]).WaitAsync(Timeout));
                Assert.Equal(SocketError.HostUnreachable, e.SocketErrorCode);
            }

            // a closed UDP port in S: its port unreachable comes back through the gateway
            using (var udp = setup.ClientSocket(SocketType.Dgram, ProtocolType.Udp))
            {
                await udp.ConnectAsync(new IPEndPoint(setup.ServerAddress, EchoPort + 1));
                var error = await FirstUdpErrorAsync(udp);
                Assert.Equal(SocketError.ConnectionRefused, error);
            }

            // host refusal (nothing listens on that port in S): the client's connection is reset
            using (var refused = await setup.ConnectAsync(setup.ServerAddress, SinkPort + 2))
            {
                var e = await Assert.ThrowsAsync<SocketException>(async () => await refused.ReceiveAsync(new byte[16]).WaitAsync(Timeout));
                Assert.Equal(SocketError.ConnectionReset, e.SocketErrorCode);
            }

            // half-close: the sink reads to the client's FIN and still gets its reply through
            var (sent, received) = await setup.UploadAsync(3 << 20, seed: 7);
            Assert.Equal(sent, received);

            // client RST reaches the server: the sink sees the reset (it logs it)
            using (var s = await setup.ConnectAsync(setup.ServerAddress, SinkPort))
            {
                await s.SendAsync(new byte[1000]);
                setup.Sink.WaitForConnections(1, Timeout);
                s.LingerState = new LingerOption(true, 0);
                s.Close();
                setup.Sink.WaitForLog("reset", Timeout);
            }

            // per-peer cap of 3: the fourth connection is reset (the three held ones all reach the sink)
            await Task.Delay(3000); // UDP flows count against the cap too: the one above expires after 1 s
            var before = setup.Sink.Connections;
            var held = new List<Socket>();
            for (var i = 0; i < 3; i++)
            {
                held.Add(await setup.ConnectAsync(setup.ServerAddress, SinkPort));
            }

            setup.Sink.WaitForConnections(before + 3, Timeout);
            using (var fourth = await setup.ConnectAsync(setup.ServerAddress, SinkPort))
            {
                var e = await Assert.ThrowsAsync<SocketException>(async () => await fourth.ReceiveAsync(new byte[16]).WaitAsync(Timeout));
                Assert.Equal(SocketError.ConnectionReset, e.SocketErrorCode);
            }

            // idle timeout (3 s): the held connections are reset by the gateway
            foreach (var h in held)
            {
                var e = await Assert.ThrowsAsync<SocketException>(async () => await h.ReceiveAsync(new byte[16]).WaitAsync(Timeout));
                Assert.Equal(SocketError.ConnectionReset, e.SocketErrorCode);
                h.Dispose();
            }

            var (again, againReceived) = await setup.UploadAsync(1000, seed: 8);
            Assert.Equal(again, againReceived);

            var counters = setup.StopGateway();
            Assert.Matches(@"total: tcp \d+ relayed, 0 open, 2 denied, 1 capped, 1 host failures; udp 1 flows, 0 open, 1 denied, 0 capped", counters);
        }
        catch
        {
            output.WriteLine(setup.Describe());
            throw;
        }
    }

    [InteropFact("wireguard-go", "wg", "setpriv", "ping")]
    public async Task UnprivilegedGateway_Ipv6_UploadByHash_UdpEcho_Ping_ReservedV6Refused()
    {
        using var lab = new NetnsLab();
        using var setup = new Setup(lab, "");
        try
        {
            var (sent, received) = await setup.UploadAsync(4 << 20, seed: 3, address: setup.ServerAddress6);
            Assert.Equal(sent, received);

            using (var udp = setup.ClientSocket(SocketType.Dgram, ProtocolType.Udp, AddressFamily.InterNetworkV6))
            {
                await udp.ConnectAsync(new IPEndPoint(setup.ServerAddress6, EchoPort));
                var buffer = new byte[2048];
                for (var i = 0; i < 10; i++)
                {
                    var payload = RandomNumberGenerator.GetBytes(1 + (i * 100));
                    await udp.SendAsync(payload);
                    var n = await udp.ReceiveAsync(buffer).WaitAsync(Timeout);
                    Assert.Equal(payload, buffer[..n]);
                }
            }

            var ping = lab.Exec(setup.ClientNs, "ping", "-6", "-c", "2", "-i", "0.2", "-W", "3", setup.ServerAddress6.ToString());
            Assert.True(ping.Success, ping.ToString());

            // a unique local address (RFC 4193, reserved): refused at the SYN
            var loopback = await Assert.ThrowsAsync<SocketException>(() => setup.ConnectAsync(IPAddress.Parse("fd00:dead::1"), SinkPort));
            Assert.Equal(SocketError.ConnectionRefused, loopback.SocketErrorCode);

            var counters = setup.StopGateway();
            Assert.Matches(@"total: tcp 1 relayed, 0 open, 1 denied, 0 capped, 0 host failures; udp 1 flows, 0 open", counters);
        }
        catch
        {
            output.WriteLine(setup.Describe());
            throw;
        }
    }

    /// <summary>Sends until the socket reports an error (the first datagram draws the ICMP; Linux reports it on a later call).</summary>
    private static async Task<SocketError> FirstUdpErrorAsync(Socket udp)
    {
        var deadline = Stopwatch.StartNew();
        while (deadline.Elapsed < Timeout)
        {
            try
            {
                await udp.SendAsync(new byte[] { 2 });
                using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(1));
                await udp.ReceiveAsync(new byte[16], cts.Token);
            }
            catch (SocketException e)
            {
                return e.SocketErrorCode;
            }
            catch (OperationCanceledException)
            {
                // no reply, no error yet: send again
            }
        }

        return SocketError.Success;
    }

    private static byte[] DnsQuery(ushort id, string name, ushort type)
    {
        var labels = name.Split('.');
        var message = new byte[12 + labels.Sum(l => l.Length + 1) + 1 + 4];
        BinaryPrimitives.WriteUInt16BigEndian(message, id);
        message[2] = 0x01;
        BinaryPrimitives.WriteUInt16BigEndian(message.AsSpan(4), 1);
        var at = 12;
        foreach (var label in labels)
        {
            message[at++] = (byte)label.Length;
            at += Encoding.ASCII.GetBytes(label, message.AsSpan(at));
        }

        message[at++] = 0;
        BinaryPrimitives.WriteUInt16BigEndian(message.AsSpan(at), type);
        BinaryPrimitives.WriteUInt16BigEndian(message.AsSpan(at + 2), 1);
        return message;
    }

    private static string Invariant(FormattableString s) => s.ToString(CultureInfo.InvariantCulture);

    /// <summary>The three namespaces, wireguard-go in C, the servers in S and the gateway process in G.</summary>
    private sealed class Setup : IDisposable
    {
        private const int ListenPort = 51820;
        private readonly NetnsLab _lab;
        private readonly string _gatewayNs;
        private readonly string _serverNs;
        private readonly string _ifname;
        private readonly Process _gateway;
        private readonly List<IDisposable> _servers = [];
        private readonly string _uapiLink;
        private readonly string? _netnsEtc;

        /// <param name="lab">The lab.</param>
        /// <param name="gatewaySection">Extra lines for the gateway's [Gateway] section.</param>
        /// <param name="hosts">Extra /etc/hosts lines for G's host resolver (the gateway's DNS answers), or null.</param>
        /// <param name="farDns">dnsmasq lines (<c>--mx-host=...</c>) for a DNS server in S at <see cref="ServerAddress"/>:53, named as G's nameserver in its resolv.conf; null: none.</param>
        public Setup(NetnsLab lab, string gatewaySection, string? hosts = null, string[]? farDns = null)
        {
            _lab = lab;
            ClientNs = lab.AddNamespace();
            _gatewayNs = lab.AddNamespace();
            _serverNs = lab.AddNamespace();
            var cg = lab.AddVeth(ClientNs, _gatewayNs);
            var gs = lab.AddVeth(_gatewayNs, _serverNs);
            var link = lab.NewSubnet();
            var far = lab.NewSubnet();
            var reserved = lab.NewSubnet();
            var tunnel = lab.NewSubnet();
            lab.AddAddress(ClientNs, cg.InterfaceA, link.V4Cidr(2));
            lab.AddAddress(_gatewayNs, cg.InterfaceB, link.V4Cidr(1));
            lab.AddAddress(_gatewayNs, gs.InterfaceA, far.V4Cidr(1));
            lab.AddAddress(_serverNs, gs.InterfaceB, far.V4Cidr(2));
            lab.AddAddress(_serverNs, gs.InterfaceB, reserved.V4Cidr(2));
            lab.AddAddress(_gatewayNs, gs.InterfaceA, far.V6Cidr(1));
            lab.AddAddress(_serverNs, gs.InterfaceB, far.V6Cidr(2));
            lab.AddRoute(_gatewayNs, reserved.V4(0) + "/24", gs.InterfaceA);
            ServerAddress = IPAddress.Parse(far.V4(2));
            ReservedAddress = IPAddress.Parse(reserved.V4(2));
            ServerAddress6 = IPAddress.Parse(far.V6(2));
            GatewayTunnelAddress = IPAddress.Parse(tunnel.V4(1));

            // the servers in S (kernel sockets)
            Http = new KernelHttpServer(Listen(_serverNs, ServerAddress, HttpPort));
            _servers.Add(Http);
            Sink = new HashSink(Listen(_serverNs, IPAddress.IPv6Any, SinkPort));
            _servers.Add(Sink);
            _servers.Add(new UdpEchoServer([NetnsLab.RunInNamespace(_serverNs, () =>
            {
                var s = new Socket(AddressFamily.InterNetworkV6, SocketType.Dgram, ProtocolType.Udp) { DualMode = true };
                s.Bind(new IPEndPoint(IPAddress.IPv6Any, EchoPort));
                return s;
            })]));

            // the gateway in G, as uid 65534, from a private copy of the CLI and a config it owns
            var (gatewayPrivate, gatewayPublic) = WireguardGo.KeyPair();
            var (clientPrivate, clientPublic) = WireguardGo.KeyPair();
            var home = Path.Combine(Unprivileged.ReadableDirectory(Path.Combine(lab.TempDirectory, "nobody")), "home");
            Directory.CreateDirectory(home);
            var config = Path.Combine(home, "gateway.conf");
            File.WriteAllText(config,
                "[Interface]\n" +
                $"PrivateKey = {gatewayPrivate}\n" +
                $"ListenPort = {ListenPort}\n" +
                $"Address = {tunnel.V4(1)}/32, {tunnel.V6(1)}/128\n\n" +
                "[Peer]\n" +
                $"PublicKey = {clientPublic}\n" +
                $"AllowedIPs = {tunnel.V4(2)}/32, {tunnel.V6(2)}/128\n\n" +
                "[Gateway]\n" +
                $"Allow = {far.V4(0)}/24, {far.V6(0)}/64\n" +
                gatewaySection.Replace("{server}", far.V4(2), StringComparison.Ordinal) + "\n");
            File.SetUnixFileMode(config, UnixFileMode.UserRead | UnixFileMode.UserWrite);
            Unprivileged.OpenWayDown(lab.TempDirectory);
            Unprivileged.OwnHome(lab, home);
            if (hosts is not null || farDns is not null)
            {
                // `ip netns exec` bind-mounts /etc/netns/NS/hosts over /etc/hosts for what it starts in NS (and resolv.conf).
                _netnsEtc = Path.Combine("/etc/netns", _gatewayNs);
                Directory.CreateDirectory(_netnsEtc);
                File.WriteAllText(Path.Combine(_netnsEtc, "hosts"), "127.0.0.1 localhost\n::1 localhost\n" + hosts);
            }

            if (farDns is not null)
            {
                // dnsmasq in S answers only what it is told (REFUSED for the rest: no upstream of its own)
                var dnsmasq = lab.Start(_serverNs, "dnsmasq",
                [
                    "--keep-in-foreground", "--no-resolv", "--no-hosts", "--no-poll", "--bind-interfaces", "--user=root",
                    $"--listen-address={ServerAddress}", "--port=53", $"--pid-file={lab.TempDirectory}/dnsmasq-far.pid", "--log-facility=-",
                    .. farDns,
                ]);
                lab.WaitFor(
                    () => dnsmasq.HasExited || lab.Exec(_serverNs, "ss", "-Hlun", "sport = :53").Stdout.Contains(ServerAddress.ToString(), StringComparison.Ordinal),
                    Timeout,
                    "dnsmasq in S");
                Assert.False(dnsmasq.HasExited, lab.OutputOf(dnsmasq));
                File.WriteAllText(Path.Combine(_netnsEtc!, "resolv.conf"), $"nameserver {ServerAddress}\n");
            }

            _gateway = lab.Start(_gatewayNs, "setpriv", Unprivileged.DotnetCommand(
                home,
                Path.Combine(Unprivileged.TestOutputCopy, "sharptun.dll"),
                "gateway", "-c", config, "-i", "127.0.0.1:9090", "--uapi-socket", Path.Combine(home, "gateway.sock")));
            lab.WaitFor(() => lab.OutputOf(_gateway).Contains("gateway ready", StringComparison.Ordinal) || _gateway.HasExited, Timeout, "the gateway to start");
            Assert.False(_gateway.HasExited, lab.DescribeProcesses());
            GatewayUid = Unprivileged.WaitForDotnetIds(_gateway.Id, Timeout);

            // wg looks for sockets only in /var/run/wireguard: root links the unprivileged gateway's socket there.
            _uapiLink = $"/var/run/wireguard/{lab.NewInterfaceName('m')}.sock";
            File.CreateSymbolicLink(_uapiLink, Path.Combine(home, "gateway.sock"));

            // wireguard-go in C on a kernel TUN; S's subnets and the gateway's address route into it
            _ifname = WireguardGo.Start(
                lab,
                ClientNs,
                'g',
                clientPrivate,
                ["peer", gatewayPublic, "endpoint", $"{link.V4(1)}:{ListenPort}", "allowed-ips", "0.0.0.0/0,::/0", "persistent-keepalive", "25"],
                [tunnel.V4(2) + "/32", tunnel.V6(2) + "/128"],
                mtu: 1420);
            foreach (var prefix in new[] { far.V4(0) + "/24", reserved.V4(0) + "/24", tunnel.V4(1) + "/32", far.V6(0) + "/64", "fd00:dead::/64" })
            {
                lab.AddRoute(ClientNs, prefix, _ifname);
            }
        }

        public string ClientNs { get; }

        public IPAddress ServerAddress { get; }

        public IPAddress ReservedAddress { get; }

        public IPAddress ServerAddress6 { get; }

        public IPAddress GatewayTunnelAddress { get; }

        public string? GatewayUid { get; }

        public KernelHttpServer Http { get; }

        public HashSink Sink { get; }

        /// <summary>A kernel socket in C (its traffic to S goes through wireguard-go and the gateway).</summary>
        public Socket ClientSocket(SocketType type, ProtocolType protocol, AddressFamily family = AddressFamily.InterNetwork) =>
            NetnsLab.RunInNamespace(ClientNs, () => new Socket(family, type, protocol));

        public async Task<Socket> ConnectAsync(IPAddress address, int port)
        {
            var s = ClientSocket(SocketType.Stream, ProtocolType.Tcp, address.AddressFamily);
            try
            {
                await s.ConnectAsync(new IPEndPoint(address, port)).WaitAsync(Timeout);
                return s;
            }
            catch
            {
                s.Dispose();
                throw;
            }
        }

        /// <summary>GET /bytes/N; returns the SHA-256 (hex) of the body.</summary>
        public async Task<string> DownloadAsync(long size)
        {
            using var s = await ConnectAsync(ServerAddress, HttpPort);
            await using var stream = new NetworkStream(s);
            await stream.WriteAsync(Encoding.ASCII.GetBytes($"GET /bytes/{size} HTTP/1.1\r\nHost: s\r\n\r\n"));
            var header = new StringBuilder();
            var one = new byte[1];
            while (!header.ToString().EndsWith("\r\n\r\n", StringComparison.Ordinal))
            {
                Assert.Equal(1, await stream.ReadAsync(one));
                header.Append((char)one[0]);
            }

            Assert.StartsWith("HTTP/1.1 200", header.ToString(), StringComparison.Ordinal);
            using var hash = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
            var buffer = new byte[256 * 1024];
            long total = 0;
            using var cts = new CancellationTokenSource(TimeSpan.FromMinutes(5));
            int n;
            while ((n = await stream.ReadAsync(buffer, cts.Token)) > 0)
            {
                hash.AppendData(buffer, 0, n);
                total += n;
            }

            Assert.Equal(size, total);
            return Convert.ToHexStringLower(hash.GetHashAndReset());
        }

        /// <summary>Sends <paramref name="size"/> pseudo-random bytes to the sink, half-closes and reads its hash.</summary>
        public async Task<(string Sent, string Received)> UploadAsync(long size, int seed, bool holdOpen = false, IPAddress? address = null)
        {
            using var s = await ConnectAsync(address ?? ServerAddress, SinkPort);
            using var hash = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
            var block = new byte[PseudoRandom.BlockSize];
            if (holdOpen)
            {
                await Task.Delay(2000); // the 100 connections are open at once
            }

            using var cts = new CancellationTokenSource(TimeSpan.FromMinutes(5));
            for (long offset = 0, index = seed * 100_000L; offset < size; offset += block.Length, index++)
            {
                PseudoRandom.Fill(index, block);
                var n = (int)Math.Min(block.Length, size - offset);
                hash.AppendData(block, 0, n);
                await s.SendAsync(block.AsMemory(0, n), cts.Token);
            }

            s.Shutdown(SocketShutdown.Send);
            var reply = new byte[64];
            var got = 0;
            int r;
            while ((r = await s.ReceiveAsync(reply.AsMemory(got), cts.Token)) > 0)
            {
                got += r;
            }

            return (Convert.ToHexStringLower(hash.GetHashAndReset()), Encoding.ASCII.GetString(reply, 0, got));
        }

        /// <summary>SIGTERM to the gateway; returns what it printed (its counters).</summary>
        /// <summary>GET http://127.0.0.1:9090/PATH in the gateway's namespace (its -i endpoint).</summary>
        public CommandResult Scrape(string path) => _lab.Exec(_gatewayNs, "curl", "-sS", "-i", "http://127.0.0.1:9090" + path);

        /// <summary><c>wg show</c> (dump) of the gateway through its UAPI socket.</summary>
        public CommandResult WgShowGateway() => _lab.Exec(null, "wg", "show", Path.GetFileNameWithoutExtension(_uapiLink), "dump");

        public string StopGateway()
        {
            _lab.Kill(_gateway, TimeSpan.FromSeconds(20));
            var text = _lab.OutputOf(_gateway);
            Assert.True(_gateway.ExitCode == 0, text);
            return text;
        }

        public string Describe() =>
            $"{_lab.Exec(ClientNs, "wg", "show", _ifname).Stdout}\nhttp: {Http.Describe()}\nsink: {Sink.Describe()}\n{_lab.DescribeProcesses()}";

        public void Dispose()
        {
            File.Delete(_uapiLink);
            if (_netnsEtc is not null)
            {
                Directory.Delete(_netnsEtc, recursive: true);
            }

            foreach (var s in _servers)
            {
                s.Dispose();
            }
        }

        private static Socket Listen(string ns, IPAddress address, int port) => NetnsLab.RunInNamespace(ns, () =>
        {
            var s = new Socket(address.AddressFamily, SocketType.Stream, ProtocolType.Tcp);
            if (address.Equals(IPAddress.IPv6Any))
            {
                s.DualMode = true;
            }

            s.Bind(new IPEndPoint(address, port));
            s.Listen(512);
            return s;
        });
    }

    /// <summary>A kernel TCP server that reads each connection to its FIN and answers the SHA-256 (hex) of what it read.</summary>
    private sealed class HashSink : IDisposable
    {
        private readonly Socket _listener;
        private readonly CancellationTokenSource _stop = new();
        private readonly Task _accept;
        private readonly List<string> _log = [];
        private int _connections;

        public HashSink(Socket listener)
        {
            _listener = listener;
            _accept = Task.Run(AcceptLoop);
        }

        public int Connections => Volatile.Read(ref _connections);

        public void WaitForConnections(int n, TimeSpan timeout) =>
            NetnsLab.WaitUntil(() => Volatile.Read(ref _connections) >= n, timeout, $"{n} connections at the sink");

        public void WaitForLog(string word, TimeSpan timeout) =>
            NetnsLab.WaitUntil(() => Describe().Contains(word, StringComparison.OrdinalIgnoreCase), timeout, $"'{word}' in the sink's log: {Describe()}");

        public string Describe()
        {
            lock (_log)
            {
                return string.Join("; ", _log);
            }
        }

        public void Dispose()
        {
            _stop.Cancel();
            _listener.Dispose();
            _accept.Wait(TimeSpan.FromSeconds(5));
        }

        private async Task AcceptLoop()
        {
            while (!_stop.IsCancellationRequested)
            {
                Socket client;
                try
                {
                    client = await _listener.AcceptAsync(_stop.Token);
                }
                catch (Exception e) when (e is OperationCanceledException or SocketException or ObjectDisposedException)
                {
                    return;
                }

                Interlocked.Increment(ref _connections);
                _ = Task.Run(() => Serve(client));
            }
        }

        private async Task Serve(Socket client)
        {
            using var _ = client;
            using var hash = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
            var buffer = new byte[256 * 1024];
            try
            {
                int n;
                while ((n = await client.ReceiveAsync(buffer, _stop.Token)) > 0)
                {
                    hash.AppendData(buffer, 0, n);
                }

                await client.SendAsync(Encoding.ASCII.GetBytes(Convert.ToHexStringLower(hash.GetHashAndReset())), _stop.Token);
                client.Shutdown(SocketShutdown.Send);
            }
            catch (Exception e) when (e is SocketException or OperationCanceledException or ObjectDisposedException)
            {
                lock (_log)
                {
                    _log.Add(e is SocketException { SocketErrorCode: SocketError.ConnectionReset } ? "reset" : "failed: " + e.Message);
                }
            }
        }
    }
}
