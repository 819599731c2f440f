using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using System.Security.Cryptography;
using System.Text;
using Xunit.Abstractions;

namespace Sharptun.Tests;

/// <summary>Two in-process tunnels over loopback UDP, unprivileged (no TUN, no root): everything through the facade.</summary>
public sealed class WireGuardTunnelTests(ITestOutputHelper output)
{
    private static readonly TimeSpan Limit = TimeSpan.FromSeconds(60);

    [Fact]
    public async Task HttpClient_GetAndPost_ThroughTheTunnel()
    {
        await using var pair = await TunnelPair.StartAsync();
        using var cts = new CancellationTokenSource(Limit);
        await using var listener = pair.Server.ListenTcp(8080);
        var server = MiniHttpServer.RunAsync(listener, cts.Token);

        using var http = new HttpClient(pair.Client.CreateHttpHandler());
        var text = await http.GetStringAsync($"http://{TunnelPair.ServerAddress}:8080/hello", cts.Token);
        Assert.Equal(MiniHttpServer.HelloText, text);

        var body = RandomNumberGenerator.GetBytes(300_000);
        using var response = await http.PostAsync($"http://{TunnelPair.ServerAddress}:8080/echo", new ByteArrayContent(body), cts.Token);
        response.EnsureSuccessStatusCode();
        Assert.Equal(HttpVersion.Version11, response.Version);
        Assert.Equal(body, await response.Content.ReadAsByteArrayAsync(cts.Token));

        using var missing = await http.GetAsync($"http://{TunnelPair.ServerAddress}:8080/nothing", cts.Token);
        Assert.Equal(HttpStatusCode.NotFound, missing.StatusCode);

        cts.Cancel();
        await listener.DisposeAsync();
        await server;
    }

    [Fact]
    public async Task HttpHandler_DowngradesHttp3Requests_SoTheyStayInTheTunnel()
    {
        await using var pair = await TunnelPair.StartAsync();
        using var cts = new CancellationTokenSource(Limit);
        await using var listener = pair.Server.ListenTcp(8081);
        var server = MiniHttpServer.RunAsync(listener, cts.Token);

        using var http = new HttpClient(pair.Client.CreateHttpHandler());
        using var request = new HttpRequestMessage(HttpMethod.Get, $"http://{TunnelPair.ServerAddress}:8081/hello")
        {
            Version = HttpVersion.Version30,
            VersionPolicy = HttpVersionPolicy.RequestVersionOrHigher,
        };
        using var response = await http.SendAsync(request, cts.Token);
        Assert.Equal(HttpVersion.Version11, response.Version);
        Assert.Equal(MiniHttpServer.HelloText, await response.Content.ReadAsStringAsync(cts.Token));

        cts.Cancel();
        await listener.DisposeAsync();
        await server;
    }

    [Fact]
    public async Task Bulk256MegabytesEachWay_ArrivesIntact_BySha256()
    {
        const long total = 256L << 20;
        await using var pair = await TunnelPair.StartAsync();
        using var cts = new CancellationTokenSource(TimeSpan.FromMinutes(4));
        await using var listener = pair.Server.ListenTcp(9000);

        // Upload: client → server.
        var accept = listener.AcceptAsync(cts.Token).AsTask();
        await using (var up = await pair.Client.ConnectAsync(TunnelPair.ServerAddress.ToString(), 9000, cts.Token))
        await using (var upServer = await accept)
        {
            var sw = Stopwatch.StartNew();
            var receive = ReceiveAllAsync(upServer, cts.Token);
            var sentHash = await SendAsync(up, total, seed: 1, cts.Token);
            up.Dispose();
            var (bytes, receivedHash) = await receive;
            output.WriteLine($"upload: {total >> 20} MiB in {sw.Elapsed.TotalSeconds:0.00} s = {total * 8 / sw.Elapsed.TotalSeconds / 1e6:0} Mbit/s");
            Assert.Equal(total, bytes);
            Assert.Equal(sentHash, receivedHash);
        }

        // Download: server → client on a connection the client opens.
        accept = listener.AcceptAsync(cts.Token).AsTask();
        await using (var down = await pair.Client.ConnectAsync(new IPEndPoint(TunnelPair.ServerAddress, 9000), cts.Token))
        await using (var downServer = await accept)
        {
            var sw = Stopwatch.StartNew();
            var receive = ReceiveAllAsync(down, cts.Token);
            var sentHash = await SendAsync(downServer, total, seed: 2, cts.Token);
            downServer.Dispose();
            var (bytes, receivedHash) = await receive;
            output.WriteLine($"download: {total >> 20} MiB in {sw.Elapsed.TotalSeconds:0.00} s = {total * 8 / sw.Elapsed.TotalSeconds / 1e6:0} Mbit/s");
            Assert.Equal(total, bytes);
            Assert.Equal(sentHash, receivedHash);
        }
    }

    [Fact]
    public async Task SmallMemoryBudget_BulkTransfer_DropsNothingBetweenDeviceAndStack()
    {
        const long total = 48L << 20;
        var options = new WireGuardTunnelOptions { MemoryBudgetBytes = WireGuardTunnelOptions.MinimumMemoryBudgetBytes };
        await using var pair = await TunnelPair.StartAsync(options);
        using var cts = new CancellationTokenSource(Limit);
        await using var listener = pair.Server.ListenTcp(9001);
        var accept = listener.AcceptAsync(cts.Token).AsTask();
        await using var up = await pair.Client.ConnectAsync(TunnelPair.ServerAddress.ToString(), 9001, cts.Token);
        await using var upServer = await accept;

        // Both ways at once, so each device's pool and each stack's queues are contended.
        var receiveAtServer = ReceiveAllAsync(upServer, cts.Token);
        var receiveAtClient = ReceiveAllAsync(up, cts.Token);
        var sendUp = SendAsync(up, total, seed: 3, cts.Token);
        var sendDown = SendAsync(upServer, total, seed: 4, cts.Token);
        var sentUp = await sendUp;
        var sentDown = await sendDown;
        ((TunnelStream)up).ShutdownWrite();
        ((TunnelStream)upServer).ShutdownWrite();
        var (upBytes, upHash) = await receiveAtServer;
        var (downBytes, downHash) = await receiveAtClient;
        Assert.Equal(total, upBytes);
        Assert.Equal(sentUp, upHash);
        Assert.Equal(total, downBytes);
        Assert.Equal(sentDown, downHash);

        foreach (var tunnel in new[] { pair.Client, pair.Server })
        {
            output.WriteLine($"{tunnel.Addresses[0]}: device drops {tunnel.Device.Counters}, peak buffers {tunnel.Device.BufferPool.PeakInUse}/{tunnel.Device.BufferPool.MaxBuffers}, stack outbound full {tunnel.Stack.Statistics.OutboundFull}");
            Assert.Equal(0, tunnel.Device.Counters.TotalDrops);
            Assert.Equal(0, tunnel.Stack.Statistics.UdpReceiveQueueFull);
            Assert.Equal(0, tunnel.Stack.Statistics.OutboundOversize);
            Assert.Equal(0, tunnel.Stack.Statistics.Malformed);
        }
    }

    [Fact]
    public async Task HundredConcurrentConnections_EachEchoesItsData()
    {
        const int connections = 100;
        const int perConnection = 256 * 1024;
        int connected = 0, accepted = 0, done = 0;
        await using var pair = await TunnelPair.StartAsync();
        using var cts = new CancellationTokenSource(Limit);
        await using var listener = pair.Server.ListenTcp(7000);
        var echo = Task.Run(async () =>
        {
            var served = new List<Task>();
            for (var i = 0; i < connections; i++)
            {
                var s = await listener.AcceptAsync(cts.Token);
                Interlocked.Increment(ref accepted);
                served.Add(Task.Run(async () =>
                {
                    await using var _ = s;
                    await s.CopyToAsync(s, cts.Token);
                }));
            }

            await Task.WhenAll(served);
        });

        var clients = Enumerable.Range(0, connections).Select(i => Task.Run(async () =>
        {
            var data = new byte[perConnection];
            new Random(i).NextBytes(data);
            await using var s = await pair.Client.ConnectAsync(TunnelPair.ServerAddress.ToString(), 7000, cts.Token);
            Interlocked.Increment(ref connected);
            var tcp = (Sharptun.NetStack.Tcp.TcpStream)((TunnelStream)s).Inner;
            var send = Task.Run(async () =>
            {
                await s.WriteAsync(data, cts.Token);
                tcp.ShutdownWrite();
            });
            var back = new MemoryStream();
            await s.CopyToAsync(back, cts.Token);
            await send;
            Assert.Equal(data, back.ToArray());
            Interlocked.Increment(ref done);
        })).ToArray();

        try
        {
            await Task.WhenAll(clients);
        }
        finally
        {
            output.WriteLine($"connected {connected}, accepted {accepted}, done {done}");
            foreach (var tunnel in new[] { pair.Client, pair.Server })
            {
                var st = tunnel.Stack.Statistics;
                output.WriteLine($"{tunnel.Addresses[0]}: device drops [{tunnel.Device.Counters}] pool {tunnel.Device.BufferPool.InUse}/{tunnel.Device.BufferPool.MaxBuffers} stack rx {st.Received} tx {st.Sent} malformed {st.Malformed} badsum {st.BadChecksum} notforus {st.NotForUs} outfull {st.OutboundFull} tcpunavail {st.TcpUnavailable} queued {tunnel.Stack.OutboundQueued}");
            }
        }

        await echo;
    }

    [Fact]
    public async Task ConcurrentAcceptCalls_EachGetsItsOwnConnection()
    {
        // Regression: the stack's listener had room for one pending AcceptAsync; a second concurrent call hung silently.
        const int count = 20;
        await using var pair = await TunnelPair.StartAsync();
        using var cts = new CancellationTokenSource(Limit);
        await using var listener = pair.Server.ListenTcp(7070);
        var accepts = Enumerable.Range(0, count).Select(_ => listener.AcceptAsync(cts.Token).AsTask()).ToArray();
        var clients = new List<Stream>();
        for (var i = 0; i < count; i++)
        {
            var c = await pair.Client.ConnectAsync(new IPEndPoint(TunnelPair.ServerAddress, 7070), cts.Token);
            await c.WriteAsync(new[] { (byte)i }, cts.Token);
            clients.Add(c);
        }

        var accepted = await Task.WhenAll(accepts);
        var seen = new HashSet<int>();
        var one = new byte[1];
        foreach (var s in accepted)
        {
            Assert.Equal(1, await s.ReadAsync(one, cts.Token));
            Assert.True(seen.Add(one[0]), $"connection {one[0]} was handed out twice");
            await s.DisposeAsync();
        }

        Assert.Equal(count, seen.Count);
        foreach (var c in clients)
        {
            await c.DisposeAsync();
        }
    }

    [Fact]
    public async Task Udp_EchoThroughTheTunnel()
    {
        await using var pair = await TunnelPair.StartAsync();
        using var cts = new CancellationTokenSource(Limit);
        using var server = pair.Server.BindUdp(5353);
        using var client = pair.Client.BindUdp();
        var echo = Task.Run(async () =>
        {
            var buffer = new byte[2048];
            while (!cts.IsCancellationRequested)
            {
                var r = await server.ReceiveFromAsync(buffer, cts.Token);
                await server.SendToAsync(buffer.AsMemory(0, r.ReceivedBytes), (IPEndPoint)r.RemoteEndPoint, cts.Token);
            }
        });

        var reply = new byte[2048];
        for (var i = 0; i < 50; i++)
        {
            var datagram = Encoding.ASCII.GetBytes($"datagram {i} " + new string('x', i * 20));
            await client.SendToAsync(datagram, new IPEndPoint(TunnelPair.ServerAddress, 5353), cts.Token);
            var r = await client.ReceiveFromAsync(reply, cts.Token);
            Assert.Equal(datagram, reply.AsSpan(0, r.ReceivedBytes).ToArray());
            Assert.Equal(new IPEndPoint(TunnelPair.ServerAddress, 5353), r.RemoteEndPoint);
        }

        Assert.Equal(TunnelPair.ClientAddress, client.LocalEndPoint.Address.IsIPv4MappedToIPv6 ? client.LocalEndPoint.Address.MapToIPv4() : TunnelPair.ClientAddress);
        cts.Cancel();
        await Assert.ThrowsAnyAsync<Exception>(() => echo);
    }

    [Fact]
    public async Task DisposeMidTransfer_StreamsFaultWithTunnelClosed_NothingHangs_BuffersReturn()
    {
        var pair = await TunnelPair.StartAsync();
        using var cts = new CancellationTokenSource(Limit);
        var listener = pair.Server.ListenTcp(9100);
        var accept = listener.AcceptAsync(cts.Token).AsTask();
        var up = await pair.Client.ConnectAsync(TunnelPair.ServerAddress.ToString(), 9100, cts.Token);
        var upServer = await accept;
        var pendingAccept = listener.AcceptAsync(cts.Token).AsTask();

        var sending = SendAsync(up, long.MaxValue, seed: 5, cts.Token);
        var receiving = ReceiveAllAsync(upServer, cts.Token);
        await Task.Delay(500, cts.Token);
        Assert.False(sending.IsCompleted);

        var sw = Stopwatch.StartNew();
        await pair.Client.DisposeAsync();
        var sendError = await Assert.ThrowsAsync<IOException>(() => sending.WaitAsync(TimeSpan.FromSeconds(5)));
        Assert.Contains("tunnel was closed", sendError.Message, StringComparison.Ordinal);
        await Assert.ThrowsAsync<IOException>(async () => await up.ReadAtLeastAsync(new byte[16], 1, true, cts.Token));
        await Assert.ThrowsAsync<IOException>(async () => await pair.Client.ConnectAsync(TunnelPair.ServerAddress.ToString(), 9100, cts.Token));

        await pair.Server.DisposeAsync();
        var receiveError = await Assert.ThrowsAsync<IOException>(() => receiving.WaitAsync(TimeSpan.FromSeconds(5)));
        Assert.Contains("tunnel was closed", receiveError.Message, StringComparison.Ordinal);
        var acceptError = await Assert.ThrowsAsync<IOException>(() => pendingAccept.WaitAsync(TimeSpan.FromSeconds(5)));
        Assert.Contains("tunnel was closed", acceptError.Message, StringComparison.Ordinal);
        output.WriteLine($"both tunnels closed and every stream faulted in {sw.ElapsedMilliseconds} ms");

        foreach (var tunnel in new[] { pair.Client, pair.Server })
        {
            var deadline = Stopwatch.StartNew();
            while (tunnel.Device.BufferPool.InUse != 0 && deadline.Elapsed < TimeSpan.FromSeconds(5))
            {
                await Task.Delay(20);
            }

            Assert.Equal(0, tunnel.Device.BufferPool.InUse);
            Assert.Equal(0, tunnel.Device.BufferPool.Large?.InUse ?? 0);
            Assert.Equal(0, tunnel.Stack.BufferBytesInUse);
        }

        up.Dispose();
        upServer.Dispose();
        listener.Dispose();
    }

    [Fact]
    public async Task BadConfig_ClearErrorNamingTheLine_StartsNothing()
    {
        var e = await Assert.ThrowsAsync<FormatException>(() => WireGuardTunnel.StartAsync("""
            [Interface]
            PrivateKey = not-a-key
            Address = 10.0.0.1/32
            """, CancellationToken.None));
        Assert.Contains("config:2", e.Message, StringComparison.Ordinal);
        Assert.Contains("PrivateKey", e.Message, StringComparison.OrdinalIgnoreCase);

        e = await Assert.ThrowsAsync<FormatException>(() => WireGuardTunnel.StartAsync("[Interface]\nAddress = 10.0.0.1/32\n", CancellationToken.None));
        Assert.Contains("PrivateKey", e.Message, StringComparison.Ordinal);

        // Parses, but the endpoint does not resolve: the device is torn down again and its UDP port is free.
        using var probe = new Socket(AddressFamily.InterNetwork, SocketType.Dgram, ProtocolType.Udp);
        probe.Bind(new IPEndPoint(IPAddress.Loopback, 0));
        var port = ((IPEndPoint)probe.LocalEndPoint!).Port;
        probe.Close();
        using var key = Sharptun.Protocol.Key.GeneratePrivateKey();
        using var peer = Sharptun.Protocol.Key.GeneratePrivateKey();
        e = await Assert.ThrowsAsync<FormatException>(() => WireGuardTunnel.StartAsync($"""
            [Interface]
            PrivateKey = {key}
            ListenPort = {port}

            [Peer]
            PublicKey = {peer.DerivePublicKey()}
            Endpoint = no-such-host.invalid:51820
            AllowedIPs = 10.0.0.2/32
            """, CancellationToken.None));
        Assert.Contains("no-such-host.invalid", e.Message, StringComparison.Ordinal);
        using var again = new Socket(AddressFamily.InterNetwork, SocketType.Dgram, ProtocolType.Udp);
        again.Bind(new IPEndPoint(IPAddress.Any, port));
    }

    [Fact]
    public async Task Builder_StartsTunnelsThatTalk_AndEventsReportTheHandshake()
    {
        using var aKey = Sharptun.Protocol.Key.GeneratePrivateKey();
        using var bKey = Sharptun.Protocol.Key.GeneratePrivateKey();
        var options = new WireGuardTunnelOptions { StatusPollInterval = TimeSpan.FromMilliseconds(50) };
        await using var b = await new WireGuardTunnelBuilder()
            .WithPrivateKey(bKey.ToString())
            .AddAddress("10.9.0.2/24")
            .WithMtu(1380)
            .AddPeer(aKey.DerivePublicKey().ToString(), null, ["10.9.0.1/32"], TimeSpan.FromSeconds(25))
            .StartAsync(options);
        await using var a = await new WireGuardTunnelBuilder()
            .WithPrivateKey(aKey.ToString())
            .AddAddress("10.9.0.1/24")
            .AddPeer(bKey.DerivePublicKey().ToString(), new IPEndPoint(IPAddress.Loopback, b.ListenPort), ["10.9.0.0/24"])
            .StartAsync(options); // no keepalive on a: its handshake must not start before the test subscribes below
        Assert.Equal(1380, b.Mtu);
        Assert.Equal(aKey.DerivePublicKey().ToString(), a.PublicKey);

        var handshake = new TaskCompletionSource<TunnelPeer>(TaskCreationOptions.RunContinuationsAsynchronously);
        a.HandshakeCompleted += (_, e) => handshake.TrySetResult(e.Peer);
        using var cts = new CancellationTokenSource(Limit);
        await using var listener = b.ListenTcp(80);
        var accept = listener.AcceptAsync(cts.Token).AsTask();
        await using var s = await a.ConnectAsync("10.9.0.2", 80, cts.Token);
        await using var t = await accept;
        await s.WriteAsync("ping"u8.ToArray(), cts.Token);
        var buffer = new byte[4];
        await t.ReadExactlyAsync(buffer, cts.Token);
        Assert.Equal("ping"u8.ToArray(), buffer);

        var peer = await handshake.Task.WaitAsync(TimeSpan.FromSeconds(10));
        Assert.Equal(bKey.DerivePublicKey().ToString(), peer.PublicKey);
        var status = Assert.Single(a.Peers);
        Assert.NotNull(status.LastHandshake);
        Assert.True(status.LastHandshakeAge < TimeSpan.FromMinutes(1));
        Assert.True(status.SentBytes > 0 && status.ReceivedBytes > 0);
        Assert.Equal(new IPEndPoint(IPAddress.Loopback, b.ListenPort), status.Endpoint);
        Assert.Equal([IPNetwork.Parse("10.9.0.0/24")], status.AllowedIps);
        Assert.Null(status.PersistentKeepalive);
        Assert.Equal(TimeSpan.FromSeconds(25), Assert.Single(b.Peers).PersistentKeepalive); // b has no endpoint: it cannot start one
    }

    [Fact]
    public async Task HostName_ResolvedByADnsServerInsideTheOtherTunnel_NeverByTheHost()
    {
        // The server tunnel's config names DNS = 10.77.0.1: a DNS server running inside the client tunnel's netstack.
        await using var pair = await TunnelPair.StartAsync(extraServerInterface: $"DNS = {TunnelPair.ClientAddress}, example.internal");
        Assert.IsType<TunnelNameResolver>(pair.Server.Resolver);
        Assert.IsType<HostNameResolver>(pair.Client.Resolver);
        using var dns = new Sharptun.Testing.Dns.DnsTestServer(pair.Client.Stack, TunnelPair.ClientAddress);
        dns.AddAddress("web.tunnel.test", TunnelPair.ClientAddress);
        using var cts = new CancellationTokenSource(Limit);

        // The client speaks first, so the server learns its endpoint (it has none configured).
        await using (var hello = pair.Server.ListenTcp(9200))
        {
            var accepted = hello.AcceptAsync(cts.Token).AsTask();
            await using var first = await pair.Client.ConnectAsync(TunnelPair.ServerAddress.ToString(), 9200, cts.Token);
            await using var firstAccepted = await accepted;
        }

        await using var listener = pair.Client.ListenTcp(8080);
        var server = MiniHttpServer.RunAsync(listener, cts.Token);
        using var http = new HttpClient(pair.Server.CreateHttpHandler());
        Assert.Equal(MiniHttpServer.HelloText, await http.GetStringAsync("http://web.tunnel.test:8080/hello", cts.Token));
        Assert.True(dns.UdpQueries > 0);

        // A name the tunnel's DNS server answers NXDOMAIN for fails fast; the host's resolver is never asked.
        var started = System.Diagnostics.Stopwatch.StartNew();
        var e = await Assert.ThrowsAsync<SocketException>(async () => await pair.Server.ConnectAsync("nosuch.tunnel.test", 80, cts.Token));
        Assert.Equal(SocketError.HostNotFound, e.SocketErrorCode);
        var httpError = await Assert.ThrowsAsync<HttpRequestException>(() => http.GetStringAsync("http://nosuch.tunnel.test:8080/hello", cts.Token));
        Assert.Equal(SocketError.HostNotFound, Assert.IsType<SocketException>(httpError.InnerException).SocketErrorCode);
        Assert.True(started.Elapsed < TimeSpan.FromSeconds(5), $"NXDOMAIN took {started.Elapsed}");

        // RFC 6761 §6.4: an .invalid name gets NXDOMAIN from the tunnel's server.
        var invalid = await Assert.ThrowsAsync<SocketException>(async () => await pair.Server.ConnectAsync("example.invalid", 80, cts.Token));
        Assert.Equal(SocketError.HostNotFound, invalid.SocketErrorCode);

        // RFC 6761 §6.3: localhost is loopback, which no peer routes: a fast NetworkUnreachable, not SYNs into nowhere.
        var loopback = await Assert.ThrowsAsync<SocketException>(async () => await pair.Server.ConnectAsync("localhost", 80, cts.Token));
        Assert.Equal(SocketError.NetworkUnreachable, loopback.SocketErrorCode);
        Assert.True(started.Elapsed < TimeSpan.FromSeconds(5), $"the failing lookups took {started.Elapsed}");

        cts.Cancel();
        await listener.DisposeAsync();
        await server;
    }

    [Fact]
    public async Task HostName_WithDns_ANameOnlyTheHostKnows_IsNotFound_NoFallbackToTheHostResolver()
    {
        // The machine's own name: the host's resolver knows it (/etc/hosts, usually), the tunnel's DNS server does not.
        var name = Dns.GetHostName();
        var hostKnows = (await Dns.GetHostAddressesAsync(name)).Length > 0;
        await using var pair = await TunnelPair.StartAsync(extraServerInterface: $"DNS = {TunnelPair.ClientAddress}");
        using var dns = new Sharptun.Testing.Dns.DnsTestServer(pair.Client.Stack, TunnelPair.ClientAddress);
        using var cts = new CancellationTokenSource(Limit);
        await using (var hello = pair.Server.ListenTcp(9201))
        {
            var accepted = hello.AcceptAsync(cts.Token).AsTask();
            await using var first = await pair.Client.ConnectAsync(TunnelPair.ServerAddress.ToString(), 9201, cts.Token);
            await using var firstAccepted = await accepted;
        }

        var before = dns.UdpQueries;
        var started = System.Diagnostics.Stopwatch.StartNew();
        var e = await Assert.ThrowsAsync<SocketException>(async () => await pair.Server.ConnectAsync(name, 80, cts.Token));
        Assert.Equal(SocketError.HostNotFound, e.SocketErrorCode);
        Assert.True(dns.UdpQueries > before, "the tunnel's DNS server was not asked");
        Assert.True(started.Elapsed < TimeSpan.FromSeconds(5), $"NXDOMAIN took {started.Elapsed}");
        output.WriteLine($"'{name}': host resolver knows it: {hostKnows}; through the tunnel: {e.Message}");
    }

    [Fact]
    public async Task PortableBind_OnOneSide_MovesData_AndTheLoggerFactoryGetsTheDeviceLog()
    {
        var logger = new Sharptun.Testing.Logging.CapturingLogger();
        var factory = new CapturingLoggerFactory(logger);
        var options = new WireGuardTunnelOptions { UdpBind = Sharptun.Transport.UdpBindKind.Portable, LoggerFactory = factory };
        await using var pair = await TunnelPair.StartAsync(options);
        Assert.Same(Sharptun.Transport.SocketUdpBind.Factory, WireGuardTunnel.BindFactoryFor(options));

        // A new listen port reopens the (portable) bind, which the device logs; the server follows the client's new
        // endpoint when its next packet arrives (roaming).
        ushort port;
        using (var probe = new Socket(AddressFamily.InterNetwork, SocketType.Dgram, ProtocolType.Udp))
        {
            probe.Bind(new IPEndPoint(IPAddress.Loopback, 0));
            port = (ushort)((IPEndPoint)probe.LocalEndPoint!).Port;
        }

        Assert.Null(pair.Client.Device.Apply(new Sharptun.Device.Uapi.UapiChangeSet { ListenPort = port }));
        Assert.Equal(port, pair.Client.ListenPort);
        using var cts = new CancellationTokenSource(Limit);
        await using var listener = pair.Server.ListenTcp(9300);
        var accept = listener.AcceptAsync(cts.Token).AsTask();
        await using var up = await pair.Client.ConnectAsync(TunnelPair.ServerAddress.ToString(), 9300, cts.Token);
        await using var upServer = await accept;
        var payload = RandomNumberGenerator.GetBytes(256 * 1024);
        var write = up.WriteAsync(payload, cts.Token).AsTask();
        var received = new byte[payload.Length];
        await upServer.ReadExactlyAsync(received, cts.Token);
        await write;
        Assert.Equal(payload, received);

        Assert.True(await logger.WaitForAsync(e => e.Message == $"UDP bind updated, listening on port {port}", TimeSpan.FromSeconds(5)), logger.AllText);
        Assert.Contains(typeof(Sharptun.Device.Pipeline.WireGuardDevice).FullName!, factory.Categories);
    }

    [Fact]
    public void Options_Default_IsTheAutoBind_NoLogger()
    {
        var options = new WireGuardTunnelOptions();
        Assert.Equal(Sharptun.Transport.UdpBindKind.Auto, options.UdpBind);
        Assert.Null(options.LoggerFactory);
        Assert.Null(options.BindFactory);
        Assert.Same(Sharptun.Transport.DatagramBinds.Default, WireGuardTunnel.BindFactoryFor(options));
    }

    private sealed class CapturingLoggerFactory(Sharptun.Testing.Logging.CapturingLogger logger) : Microsoft.Extensions.Logging.ILoggerFactory
    {
        private readonly System.Collections.Concurrent.ConcurrentBag<string> _categories = [];

        public IReadOnlyCollection<string> Categories => [.. _categories];

        public void AddProvider(Microsoft.Extensions.Logging.ILoggerProvider provider)
        {
        }

        public Microsoft.Extensions.Logging.ILogger CreateLogger(string categoryName)
        {
            _categories.Add(categoryName);
            return logger;
        }

        public void Dispose()
        {
        }
    }

    private static async Task<byte[]> SendAsync(Stream stream, long total, int seed, CancellationToken cancellationToken)
    {
        var chunk = new byte[256 * 1024];
        new Random(seed).NextBytes(chunk);
        using var hash = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
        for (long sent = 0, i = 0; sent < total; i++)
        {
            BitConverter.TryWriteBytes(chunk, i); // every chunk differs
            var n = (int)Math.Min(chunk.Length, total - sent);
            await stream.WriteAsync(chunk.AsMemory(0, n), cancellationToken);
            hash.AppendData(chunk, 0, n);
            sent += n;
        }

        return hash.GetHashAndReset();
    }

    private static async Task<(long Bytes, byte[] Hash)> ReceiveAllAsync(Stream stream, CancellationToken cancellationToken)
    {
        var buffer = new byte[256 * 1024];
        using var hash = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
        long bytes = 0;
        int n;
        while ((n = await stream.ReadAsync(buffer, cancellationToken)) > 0)
        {
            hash.AppendData(buffer, 0, n);
            bytes += n;
        }

        return (bytes, hash.GetHashAndReset());
    }
}
