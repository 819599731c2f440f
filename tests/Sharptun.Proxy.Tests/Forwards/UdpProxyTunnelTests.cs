using System.Collections.Concurrent;
using System.Net;
using System.Net.Sockets;
using System.Text;
using Sharptun.Hosting;
using Sharptun.Proxy.Config;
using Sharptun.Proxy.Forwards;
using static Sharptun.Proxy.Tests.Forwards.ForwardTestKit;

namespace Sharptun.Proxy.Tests.Forwards;

public sealed class UdpProxyTunnelTests
{
    private static UdpProxyTunnel Create(ITunnelNetwork network, string host, int port, TimeSpan? inactivity = null, int maxSessions = 16, ConnectionGate? gate = null) =>
        new(
            new UdpProxyTunnelOptions
            {
                BindAddress = new IPEndPoint(IPAddress.Loopback, 0),
                TargetHost = host,
                TargetPort = port,
                InactivityTimeout = inactivity ?? TimeSpan.FromMinutes(5),
                MaxSessions = maxSessions,
            },
            new ProxyContext(network) { Gate = gate ?? new ConnectionGate(64) });

    [Fact]
    public async Task EachClient_GetsItsOwnSession_AndOnlyItsOwnReplies()
    {
        using var echo = new UdpEcho();
        var network = new LoopbackNetwork();
        network.Names["echo.test"] = IPAddress.Loopback;
        var forward = Create(network, "echo.test", echo.Port);
        await using (Run(forward))
        {
            using var a = Client();
            using var b = Client();
            for (var i = 0; i < 3; i++)
            {
                await a.SendToAsync(Ascii($"a{i}"), forward.LocalEndPoint!);
                await b.SendToAsync(Ascii($"b{i}"), forward.LocalEndPoint!);
                Assert.Equal($"echo:a{i}", await ReceiveTextAsync(a));
                Assert.Equal($"echo:b{i}", await ReceiveTextAsync(b));
            }

            Assert.Equal(2, forward.SessionCount);
            Assert.Equal(2, forward.Counters.Open);

            // Each session is its own tunnel socket: the target saw two source ports.
            Assert.Equal(2, echo.Senders.Distinct().Count());
        }

        Assert.Equal(2, forward.Counters.Accepted);
        Assert.Equal(0, forward.Counters.Open);
        Assert.Equal(12, forward.Counters.BytesToTunnel);
        Assert.Equal(42, forward.Counters.BytesFromTunnel);
    }

    [Fact]
    public async Task Session_ExpiresAfterInactivity_NextDatagramOpensANewOne()
    {
        using var echo = new UdpEcho();
        var forward = Create(new LoopbackNetwork(), "127.0.0.1", echo.Port, inactivity: TimeSpan.FromSeconds(2));
        await using (Run(forward))
        {
            using var client = Client();
            await client.SendToAsync(Ascii("one"), forward.LocalEndPoint!);
            Assert.Equal("echo:one", await ReceiveTextAsync(client));
            Assert.Equal(1, forward.SessionCount);

            await WaitUntilAsync(() => forward.SessionCount == 0, "the idle session to expire");
            Assert.Equal(0, forward.Counters.Open);

            await client.SendToAsync(Ascii("two"), forward.LocalEndPoint!);
            Assert.Equal("echo:two", await ReceiveTextAsync(client));
            Assert.Equal(2, forward.Counters.Accepted);
        }
    }

    [Fact]
    public async Task ActiveSession_StaysOpen_WhileDatagramsKeepFlowing()
    {
        using var echo = new UdpEcho();
        // 6 s of traffic against a 5 s inactivity timeout, a datagram every second: only activity keeps the session,
        // with 4 s of slack for a loaded machine's pauses.
        var forward = Create(new LoopbackNetwork(), "127.0.0.1", echo.Port, inactivity: TimeSpan.FromSeconds(5));
        await using (Run(forward))
        {
            using var client = Client();
            for (var i = 0; i < 7; i++)
            {
                await client.SendToAsync(Ascii($"{i}"), forward.LocalEndPoint!);
                Assert.Equal($"echo:{i}", await ReceiveTextAsync(client));
                await Task.Delay(1000);
            }

            Assert.Equal(1, forward.Counters.Accepted);
        }
    }

    [Fact]
    public async Task TargetInitiatedDatagram_ToAnActiveSession_ReachesTheClient()
    {
        using var echo = new UdpEcho();
        var forward = Create(new LoopbackNetwork(), "127.0.0.1", echo.Port);
        await using (Run(forward))
        {
            using var client = Client();
            await client.SendToAsync(Ascii("hi"), forward.LocalEndPoint!);
            Assert.Equal("echo:hi", await ReceiveTextAsync(client));

            // Not a reply: the target sends on its own, twice, to the session's tunnel address.
            var session = echo.Senders.Single();
            await echo.SendAsync(Ascii("push-1"), session);
            await echo.SendAsync(Ascii("push-2"), session);
            Assert.Equal("push-1", await ReceiveTextAsync(client));
            Assert.Equal("push-2", await ReceiveTextAsync(client));
        }
    }

    [Fact]
    public async Task DatagramFromAnotherTunnelAddress_IsDropped()
    {
        using var echo = new UdpEcho();
        var forward = Create(new LoopbackNetwork(), "127.0.0.1", echo.Port);
        await using (Run(forward))
        {
            using var client = Client();
            await client.SendToAsync(Ascii("hi"), forward.LocalEndPoint!);
            Assert.Equal("echo:hi", await ReceiveTextAsync(client));

            using var stranger = Client();
            await stranger.SendToAsync(Ascii("spoof"), echo.Senders.Single());
            await WaitUntilAsync(() => forward.DroppedDatagrams == 1, "the stranger's datagram to be dropped");

            await echo.SendAsync(Ascii("real"), echo.Senders.Single());
            Assert.Equal("real", await ReceiveTextAsync(client));
        }
    }

    [Fact]
    public async Task PastTheSessionCap_NewClientsAreRefusedAndCounted()
    {
        using var echo = new UdpEcho();
        var forward = Create(new LoopbackNetwork(), "127.0.0.1", echo.Port, maxSessions: 2);
        await using (Run(forward))
        {
            using var a = Client();
            using var b = Client();
            using var c = Client();
            await a.SendToAsync(Ascii("a"), forward.LocalEndPoint!);
            Assert.Equal("echo:a", await ReceiveTextAsync(a));
            await b.SendToAsync(Ascii("b"), forward.LocalEndPoint!);
            Assert.Equal("echo:b", await ReceiveTextAsync(b));

            await c.SendToAsync(Ascii("c"), forward.LocalEndPoint!);
            await WaitUntilAsync(() => forward.Counters.Refused == 1, "the third client to be refused");
            Assert.Equal(2, forward.SessionCount);
            Assert.Equal(2, echo.Received);

            // The sessions already open keep working.
            await a.SendToAsync(Ascii("a2"), forward.LocalEndPoint!);
            Assert.Equal("echo:a2", await ReceiveTextAsync(a));
        }
    }

    [Fact]
    public async Task SessionsTakeGateSlots_FullGateRefuses_ExpiryFreesThem()
    {
        using var echo = new UdpEcho();
        var gate = new ConnectionGate(1);
        var forward = Create(new LoopbackNetwork(), "127.0.0.1", echo.Port, inactivity: TimeSpan.FromSeconds(2), gate: gate);
        await using (Run(forward))
        {
            using var a = Client();
            using var b = Client();
            await a.SendToAsync(Ascii("a"), forward.LocalEndPoint!);
            Assert.Equal("echo:a", await ReceiveTextAsync(a));
            Assert.Equal(1, gate.Open);
            await b.SendToAsync(Ascii("b"), forward.LocalEndPoint!);
            await WaitUntilAsync(() => forward.Counters.Refused == 1, "the second client to be refused");

            await WaitUntilAsync(() => gate.Open == 0, "the expired session to free its slot");
            await b.SendToAsync(Ascii("b"), forward.LocalEndPoint!);
            Assert.Equal("echo:b", await ReceiveTextAsync(b));
        }

        Assert.Equal(0, gate.Open);
    }

    [Fact]
    public async Task UnresolvableTarget_CountsFailure_NoSession()
    {
        var forward = Create(new LoopbackNetwork(), "nowhere.test", 53);
        await using (Run(forward))
        {
            using var client = Client();
            await client.SendToAsync(Ascii("q"), forward.LocalEndPoint!);
            await WaitUntilAsync(() => forward.Counters.Failed == 1, "the failure to be counted");
            Assert.Equal(0, forward.SessionCount);
        }
    }

    [Fact]
    public async Task UnresolvableTarget_AFloodOfDatagrams_CostsOneLookupPerHoldTime()
    {
        var network = new CountingLookups();
        var forward = Create(network, "nowhere.test", 53);
        await using (Run(forward))
        {
            using var client = Client();
            for (var i = 0; i < 50; i++)
            {
                await client.SendToAsync(Ascii("q"), forward.LocalEndPoint!);
            }

            await WaitUntilAsync(() => forward.Counters.Failed == 50, "every datagram to be counted as failed");
        }

        // The hold time is 2 s: a loaded machine may need a second lookup, never one per datagram.
        Assert.InRange(network.Lookups, 1, 5);
        Assert.Equal(0, forward.SessionCount);
    }

    /// <summary>
    /// Expiry races arriving datagrams: a timeout of 30 ms against clients sending with pauses around it, so sessions
    /// expire while datagrams for them are being read and forwarded. Every datagram a client sends must reach the
    /// target (by the old session or a new one), and the books must balance afterwards.
    /// </summary>
    [Fact]
    public async Task SessionExpiry_RacingArrivingDatagrams_LosesNoneAndLeaksNothing()
    {
        using var echo = new UdpEcho();
        var gate = new ConnectionGate(64);
        var forward = Create(new LoopbackNetwork(), "127.0.0.1", echo.Port, inactivity: TimeSpan.FromMilliseconds(30), gate: gate);
        const int clients = 4;
        const int perClient = 150;
        await using (Run(forward))
        {
            var senders = Enumerable.Range(0, clients).Select(c => Task.Run(async () =>
            {
                using var client = Client();
                var random = new Random(c);
                for (var i = 0; i < perClient; i++)
                {
                    await client.SendToAsync(Ascii($"{c}:{i}"), forward.LocalEndPoint!);
                    await Task.Delay(random.Next(0, 45));
                }
            })).ToArray();
            await Task.WhenAll(senders).WaitAsync(TimeSpan.FromMinutes(2));

            await WaitUntilAsync(() => echo.Received == clients * perClient, $"all {clients * perClient} datagrams at the target (got {echo.Received})");
            await WaitUntilAsync(() => forward.SessionCount == 0, "every session to expire");
        }

        Assert.Equal(0, forward.Counters.Open);
        Assert.Equal(0, gate.Open);
        Assert.True(forward.Counters.Accepted > clients, $"sessions should have expired and reopened (accepted {forward.Counters.Accepted})");
        Assert.Equal(clients * perClient, echo.Payloads.Distinct().Count());
    }

    [Fact]
    public void FromSection_ReadsInactivityTimeoutInSeconds()
    {
        var context = new ProxyContext(new LoopbackNetwork());
        var forward = UdpProxyTunnel.FromSection(
            Section("[UDPProxyTunnel]\nBindAddress = 127.0.0.1:5353\nTarget = 10.0.0.1:53\nInactivityTimeout = 7\n", "UDPProxyTunnel"), context);
        Assert.Equal("udp", forward.Kind);
        Assert.Equal("127.0.0.1:5353", forward.Endpoint);

        var e = Assert.Throws<ProxyConfigException>(() => UdpProxyTunnel.FromSection(
            Section("[UDPProxyTunnel]\nBindAddress = 127.0.0.1:5353\nTarget = 10.0.0.1:53\nInactivityTimeout = soon\n", "UDPProxyTunnel"), context));
        Assert.Equal(4, e.Line);
    }

    private sealed class CountingLookups : ITunnelNetwork
    {
        private readonly LoopbackNetwork _inner = new();
        private int _lookups;

        public int Lookups => Volatile.Read(ref _lookups);

        public ValueTask<Stream> ConnectAsync(string host, int port, CancellationToken cancellationToken) => _inner.ConnectAsync(host, port, cancellationToken);

        public ValueTask<Stream> ConnectAsync(IPEndPoint remote, CancellationToken cancellationToken) => _inner.ConnectAsync(remote, cancellationToken);

        public ValueTask<IPAddress> ResolveAsync(string host, CancellationToken cancellationToken)
        {
            Interlocked.Increment(ref _lookups);
            return _inner.ResolveAsync(host, cancellationToken);
        }

        public IDatagramChannel BindUdp() => _inner.BindUdp();

        public IStreamAcceptor ListenTcp(int port) => _inner.ListenTcp(port);
    }

    private static Socket Client()
    {
        var socket = new Socket(AddressFamily.InterNetwork, SocketType.Dgram, ProtocolType.Udp);
        socket.Bind(new IPEndPoint(IPAddress.Loopback, 0));
        return socket;
    }

    private static async Task<string> ReceiveTextAsync(Socket socket)
    {
        var buffer = new byte[2048];
        using var timeout = new CancellationTokenSource(Patience);
        var n = await socket.ReceiveAsync(buffer, SocketFlags.None, timeout.Token);
        return Encoding.ASCII.GetString(buffer, 0, n);
    }

    /// <summary>A UDP echo on loopback that answers "echo:" + datagram and remembers who sent what.</summary>
    private sealed class UdpEcho : IDisposable
    {
        private readonly Socket _socket = new(AddressFamily.InterNetwork, SocketType.Dgram, ProtocolType.Udp);
        private readonly CancellationTokenSource _stop = new();
        private readonly ConcurrentQueue<IPEndPoint> _senders = new();
        private readonly ConcurrentQueue<string> _payloads = new();
        private int _received;

        public UdpEcho()
        {
            _socket.Bind(new IPEndPoint(IPAddress.Loopback, 0));
            _ = LoopAsync();
        }

        public int Port => ((IPEndPoint)_socket.LocalEndPoint!).Port;

        public int Received => Volatile.Read(ref _received);

        public IEnumerable<IPEndPoint> Senders => _senders.Distinct();

        public IEnumerable<string> Payloads => _payloads;

        public async Task SendAsync(byte[] datagram, IPEndPoint to) => await _socket.SendToAsync(datagram, to);

        public void Dispose()
        {
            _stop.Cancel();
            _socket.Dispose();
        }

        private async Task LoopAsync()
        {
            var buffer = new byte[65536];
            try
            {
                while (true)
                {
                    var r = await _socket.ReceiveFromAsync(buffer, SocketFlags.None, new IPEndPoint(IPAddress.Any, 0), _stop.Token);
                    var from = (IPEndPoint)r.RemoteEndPoint;
                    _senders.Enqueue(from);
                    _payloads.Enqueue(Encoding.ASCII.GetString(buffer, 0, r.ReceivedBytes));
                    Interlocked.Increment(ref _received);
                    var reply = new byte[5 + r.ReceivedBytes];
                    "echo:"u8.CopyTo(reply);
                    buffer.AsSpan(0, r.ReceivedBytes).CopyTo(reply.AsSpan(5));
                    await _socket.SendToAsync(reply, SocketFlags.None, from);
                }
            }
            catch (Exception e) when (e is OperationCanceledException or ObjectDisposedException or SocketException)
            {
            }
        }
    }
}
