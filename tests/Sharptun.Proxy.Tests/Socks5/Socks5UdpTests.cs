using System.Buffers.Binary;
using System.Net;
using System.Net.Sockets;
using System.Text;
using Sharptun.Proxy.Socks5;

namespace Sharptun.Proxy.Tests.Socks5;

/// <summary>UDP ASSOCIATE (RFC 1928 §7) with a small SOCKS5 UDP client.</summary>
public sealed class Socks5UdpTests
{
    [Fact]
    public async Task Associate_RoundTrip_ByAddress_RepliesCarryTheSender()
    {
        using var echo = new UdpEcho();
        await using var harness = new Socks5Harness();
        using var udp = await Socks5UdpClient.AssociateAsync(harness);
        Assert.Equal(IPAddress.Loopback, udp.Relay.Address);

        await udp.SendAsync(echo.EndPoint, "hello udp"u8.ToArray());
        var (from, payload) = await udp.ReceiveAsync();
        Assert.Equal(echo.EndPoint, from);
        Assert.Equal("hello udp", Encoding.ASCII.GetString(payload));
        Assert.Equal(9, harness.Server.Counters.BytesToTunnel);
        Assert.Equal(9, harness.Server.Counters.BytesFromTunnel);
        Assert.Equal(1, harness.Server.OpenAssociations);
    }

    [Fact]
    public async Task Associate_ByName_ResolvesThroughTheNetwork()
    {
        using var echo = new UdpEcho();
        await using var harness = new Socks5Harness();
        harness.Network.Names["echo.test"] = IPAddress.Loopback;
        using var udp = await Socks5UdpClient.AssociateAsync(harness);
        await udp.SendAsync("echo.test", echo.EndPoint.Port, [1, 2, 3]);
        var (from, payload) = await udp.ReceiveAsync();
        Assert.Equal(echo.EndPoint, from);
        Assert.Equal([1, 2, 3], payload);

        // A name the network does not know: a counted drop, nothing sent.
        var dropped = harness.Server.DatagramsDropped;
        await udp.SendAsync("localhost", echo.EndPoint.Port, [9]);
        await Socks5Harness.EventuallyAsync(() => harness.Server.DatagramsDropped == dropped + 1, "the unresolvable name is dropped");
    }

    [Fact]
    public async Task Associate_ListenerOnEveryInterface_RelayBindsTheAddressTheClientReached()
    {
        // wireproxy #199: its relay bound 0.0.0.0. Ours binds the control connection's local address: reached at
        // 127.0.0.2, the relay is on 127.0.0.2 (not 127.0.0.1, not 0.0.0.0), and it works.
        using var echo = new UdpEcho();
        await using var harness = new Socks5Harness(new Socks5Options(new IPEndPoint(IPAddress.Any, 0)));
        var reached = IPAddress.Parse("127.0.0.2");
        var tcp = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        await tcp.ConnectAsync(new IPEndPoint(reached, harness.EndPoint.Port));
        using var control = new Socks5TestClient(tcp);
        using var udp = new Socket(AddressFamily.InterNetwork, SocketType.Dgram, ProtocolType.Udp);
        udp.Bind(new IPEndPoint(((IPEndPoint)tcp.LocalEndPoint!).Address, 0));
        var (reply, bound) = await control.ConnectAsync(Socks5TestClient.Request(0x03, (IPEndPoint)udp.LocalEndPoint!));
        Assert.Equal(0x00, reply);
        Assert.Equal(reached, bound.Address);
        Assert.NotEqual(0, bound.Port);

        await udp.SendToAsync(Socks5UdpClient.Wrap(echo.EndPoint, [4, 2]), SocketFlags.None, bound);
        var buffer = new byte[64];
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(20));
        var result = await udp.ReceiveFromAsync(buffer, SocketFlags.None, new IPEndPoint(IPAddress.Any, 0), timeout.Token);
        Assert.Equal(bound, result.RemoteEndPoint);
        Assert.Equal([4, 2], buffer[10..result.ReceivedBytes]);
    }

    [Fact]
    public async Task Associate_IPv6Client_RelayOnIPv6Loopback()
    {
        using var echo = new UdpEcho();
        await using var harness = new Socks5Harness(new Socks5Options(new IPEndPoint(IPAddress.IPv6Loopback, 0)));
        using var udp = await Socks5UdpClient.AssociateAsync(harness, IPAddress.IPv6Loopback);
        Assert.Equal(IPAddress.IPv6Loopback, udp.Relay.Address);
        await udp.SendAsync(echo.EndPoint, [5]);
        var (from, payload) = await udp.ReceiveAsync();
        Assert.Equal(echo.EndPoint, from);
        Assert.Equal([5], payload);
    }

    [Fact]
    public async Task DatagramsFromAnotherSource_AreDroppedAndCounted()
    {
        using var echo = new UdpEcho();
        await using var harness = new Socks5Harness();
        using var udp = await Socks5UdpClient.AssociateAsync(harness, announcePort: true);
        using var intruder = new Socket(AddressFamily.InterNetwork, SocketType.Dgram, ProtocolType.Udp);
        intruder.Bind(new IPEndPoint(IPAddress.Loopback, 0));
        await intruder.SendToAsync(Socks5UdpClient.Wrap(echo.EndPoint, [6, 6, 6]), SocketFlags.None, udp.Relay);
        await Socks5Harness.EventuallyAsync(() => harness.Server.DatagramsDropped == 1, "the intruder's datagram is dropped");
        Assert.Equal(0, echo.Received);

        await udp.SendAsync(echo.EndPoint, [7]);
        Assert.Equal([7], (await udp.ReceiveAsync()).Payload);
        Assert.Equal(1, echo.Received);
    }

    [Fact]
    public async Task PortNotAnnounced_FirstDatagramFixesTheClientPort()
    {
        using var echo = new UdpEcho();
        await using var harness = new Socks5Harness();
        using var udp = await Socks5UdpClient.AssociateAsync(harness, announcePort: false);
        await udp.SendAsync(echo.EndPoint, [1]);
        Assert.Equal([1], (await udp.ReceiveAsync()).Payload);

        using var second = new Socket(AddressFamily.InterNetwork, SocketType.Dgram, ProtocolType.Udp);
        second.Bind(new IPEndPoint(IPAddress.Loopback, 0));
        await second.SendToAsync(Socks5UdpClient.Wrap(echo.EndPoint, [2]), SocketFlags.None, udp.Relay);
        await Socks5Harness.EventuallyAsync(() => harness.Server.DatagramsDropped == 1, "another port of the same host is dropped");
        Assert.Equal(1, echo.Received);
    }

    [Theory]
    [InlineData(new byte[] { 0, 0, 1, 1, 127, 0, 0, 1, 0, 7, 0xAA }, "fragment")]
    [InlineData(new byte[] { 0, 0, 0 }, "too short")]
    [InlineData(new byte[] { 0, 1, 0, 1, 127, 0, 0, 1, 0, 7, 0xAA }, "RSV not zero")]
    [InlineData(new byte[] { 0, 0, 0, 9, 127, 0, 0, 1, 0, 7 }, "unknown ATYP")]
    [InlineData(new byte[] { 0, 0, 0, 1, 127, 0, 0 }, "IPv4 cut short")]
    [InlineData(new byte[] { 0, 0, 0, 4, 0, 0, 0, 0, 0, 0, 0, 0, 0 }, "IPv6 cut short")]
    [InlineData(new byte[] { 0, 0, 0, 3, 50, (byte)'a', 0, 7 }, "name longer than the datagram")]
    [InlineData(new byte[] { 0, 0, 0, 3, 0, 0, 7 }, "empty name")]
    [InlineData(new byte[] { 0, 0, 0, 1, 127, 0, 0, 1, 0, 0, 0xAA }, "port 0")]
    public async Task BadDatagrams_AreDroppedAndCounted_TheAssociationGoesOn(byte[] datagram, string what)
    {
        using var echo = new UdpEcho();
        await using var harness = new Socks5Harness();
        using var udp = await Socks5UdpClient.AssociateAsync(harness);
        await udp.Socket.SendToAsync(datagram, SocketFlags.None, udp.Relay);
        await Socks5Harness.EventuallyAsync(() => harness.Server.DatagramsDropped == 1, what);
        await udp.SendAsync(echo.EndPoint, [8]);
        Assert.Equal([8], (await udp.ReceiveAsync()).Payload);
        Assert.Equal(1, echo.Received);
    }

    [Fact]
    public async Task ClosingTheControlConnection_EndsTheAssociation_AndClosesTheRelay()
    {
        using var echo = new UdpEcho();
        await using var harness = new Socks5Harness();
        var udp = await Socks5UdpClient.AssociateAsync(harness);
        await udp.SendAsync(echo.EndPoint, [1]);
        await udp.ReceiveAsync();
        udp.Control.Dispose();
        await Socks5Harness.EventuallyAsync(() => harness.Server.OpenAssociations == 0 && harness.Server.Counters.Open == 0 && harness.Context.Gate.Open == 0, "the association ends");

        // The relay port is closed: nothing sent to it reaches the target any more.
        await udp.SendAsync(echo.EndPoint, [2]);
        await Task.Delay(300);
        Assert.Equal(1, echo.Received);
        udp.Dispose();
    }

    [Fact]
    public async Task IdleAssociation_EndsAfterTheIdleTimeout_AndClosesTheControlConnection()
    {
        await using var harness = new Socks5Harness(new Socks5Options(new IPEndPoint(IPAddress.Loopback, 0)) { UdpIdleTimeout = TimeSpan.FromSeconds(1) });
        using var udp = await Socks5UdpClient.AssociateAsync(harness);
        Assert.True(await udp.Control.ClosedByServerAsync());
        await Socks5Harness.EventuallyAsync(() => harness.Server.OpenAssociations == 0 && harness.Server.Counters.Open == 0, "the association ends");
    }

    [Fact]
    public async Task LargestDatagram_RoundTrips_WithItsHeader()
    {
        // 65,507 bytes is the most one IPv4 UDP datagram carries; with the 10-byte header that leaves 65,497.
        using var echo = new UdpEcho();
        await using var harness = new Socks5Harness();
        using var udp = await Socks5UdpClient.AssociateAsync(harness);
        var big = new byte[65_497];
        Random.Shared.NextBytes(big);
        await udp.SendAsync(echo.EndPoint, big);
        var (from, payload) = await udp.ReceiveAsync();
        Assert.Equal(echo.EndPoint, from);
        Assert.Equal(big, payload);
        Assert.Equal(0, harness.Server.DatagramsDropped);
    }

    [Fact]
    public async Task Race_ManyAssociations_TrafficWhileControlConnectionsCloseAndServerStops_EverythingReturnsToZero()
    {
        using var echo = new UdpEcho();
        var harness = new Socks5Harness();
        var associations = await Task.WhenAll(Enumerable.Range(0, 40).Select(_ => Socks5UdpClient.AssociateAsync(harness)));
        using var stopSending = new CancellationTokenSource();
        var senders = associations.Select(a => Task.Run(async () =>
        {
            try
            {
                while (!stopSending.IsCancellationRequested)
                {
                    await a.SendAsync(echo.EndPoint, new byte[100]);
                    await Task.Yield();
                }
            }
            catch (Exception e) when (e is SocketException or ObjectDisposedException)
            {
            }
        })).ToArray();

        await Task.Delay(200);

        // Half the control connections close mid-traffic, the rest go when the server stops.
        foreach (var a in associations.Take(20))
        {
            a.Control.Dispose();
        }

        await Socks5Harness.EventuallyAsync(() => harness.Server.OpenAssociations == 20, "20 associations end with their control connections");
        await harness.DisposeAsync();
        await stopSending.CancelAsync();
        await Task.WhenAll(senders);
        Assert.Equal(0, harness.Server.OpenAssociations);
        Assert.Equal(0, harness.Server.Counters.Open);
        Assert.Equal(0, harness.Context.Gate.Open);
        Assert.Equal(40, harness.Server.Counters.Accepted);
        Assert.True(harness.Server.Counters.BytesToTunnel > 0);
        Assert.Equal(0, harness.Server.Counters.BytesToTunnel % 100);
        foreach (var a in associations)
        {
            a.Dispose();
        }
    }
}

/// <summary>A SOCKS5 UDP client: a control connection that asked for UDP ASSOCIATE and a UDP socket that talks to the relay.</summary>
internal sealed class Socks5UdpClient : IDisposable
{
    private Socks5UdpClient(Socks5TestClient control, Socket socket, IPEndPoint relay)
    {
        Control = control;
        Socket = socket;
        Relay = relay;
    }

    public Socks5TestClient Control { get; }

    public Socket Socket { get; }

    public IPEndPoint Relay { get; }

    public static async Task<Socks5UdpClient> AssociateAsync(Socks5Harness harness, IPAddress? address = null, bool announcePort = true)
    {
        address ??= IPAddress.Loopback;
        var socket = new Socket(address.AddressFamily, SocketType.Dgram, ProtocolType.Udp);
        socket.Bind(new IPEndPoint(address, 0));
        var tcp = new Socket(address.AddressFamily, SocketType.Stream, ProtocolType.Tcp);
        await tcp.ConnectAsync(new IPEndPoint(address, harness.EndPoint.Port));
        var control = new Socks5TestClient(tcp);
        var from = announcePort ? (IPEndPoint)socket.LocalEndPoint! : new IPEndPoint(address.AddressFamily == AddressFamily.InterNetwork ? IPAddress.Any : IPAddress.IPv6Any, 0);
        var (reply, bound) = await control.ConnectAsync(Socks5TestClient.Request(0x03, from));
        Assert.Equal(0x00, reply);
        return new Socks5UdpClient(control, socket, bound);
    }

    /// <summary>RSV, FRAG 0, the target and the payload (RFC 1928 §7).</summary>
    public static byte[] Wrap(IPEndPoint target, byte[] payload)
    {
        var ipv4 = target.AddressFamily == AddressFamily.InterNetwork;
        var header = 4 + (ipv4 ? 4 : 16) + 2;
        var datagram = new byte[header + payload.Length];
        datagram[3] = ipv4 ? (byte)1 : (byte)4;
        target.Address.TryWriteBytes(datagram.AsSpan(4), out _);
        BinaryPrimitives.WriteUInt16BigEndian(datagram.AsSpan(header - 2), (ushort)target.Port);
        payload.CopyTo(datagram, header);
        return datagram;
    }

    public async Task SendAsync(IPEndPoint target, byte[] payload) =>
        await Socket.SendToAsync(Wrap(target, payload), SocketFlags.None, Relay);

    public async Task SendAsync(string host, int port, byte[] payload)
    {
        var name = Encoding.ASCII.GetBytes(host);
        byte[] datagram = [0, 0, 0, 3, (byte)name.Length, .. name, (byte)(port >> 8), (byte)port, .. payload];
        await Socket.SendToAsync(datagram, SocketFlags.None, Relay);
    }

    /// <summary>The next datagram from the relay, unwrapped (fails after 20 s).</summary>
    public async Task<(IPEndPoint From, byte[] Payload)> ReceiveAsync()
    {
        var buffer = new byte[70_000];
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(20));
        var any = new IPEndPoint(Socket.AddressFamily == AddressFamily.InterNetwork ? IPAddress.Any : IPAddress.IPv6Any, 0);
        var result = await Socket.ReceiveFromAsync(buffer, SocketFlags.None, any, timeout.Token);
        Assert.Equal(Relay, result.RemoteEndPoint);
        Assert.Equal(0, buffer[0]);
        Assert.Equal(0, buffer[1]);
        Assert.Equal(0, buffer[2]);
        var length = buffer[3] switch { 1 => 4, 4 => 16, _ => throw new Xunit.Sdk.XunitException($"ATYP {buffer[3]}") };
        var from = new IPEndPoint(new IPAddress(buffer.AsSpan(4, length)), BinaryPrimitives.ReadUInt16BigEndian(buffer.AsSpan(4 + length)));
        return (from, buffer[(4 + length + 2)..result.ReceivedBytes]);
    }

    public void Dispose()
    {
        Control.Dispose();
        Socket.Dispose();
    }
}

/// <summary>A UDP echo service on 127.0.0.1 that counts what it received.</summary>
internal sealed class UdpEcho : IDisposable
{
    private readonly Socket _socket = new(AddressFamily.InterNetwork, SocketType.Dgram, ProtocolType.Udp);
    private int _received;

    public UdpEcho()
    {
        _socket.Bind(new IPEndPoint(IPAddress.Loopback, 0));
        _socket.ReceiveBufferSize = 4 << 20;
        _ = Task.Run(LoopAsync);
    }

    public IPEndPoint EndPoint => (IPEndPoint)_socket.LocalEndPoint!;

    public int Received => Volatile.Read(ref _received);

    private async Task LoopAsync()
    {
        var buffer = new byte[70_000];
        try
        {
            while (true)
            {
                var result = await _socket.ReceiveFromAsync(buffer, SocketFlags.None, new IPEndPoint(IPAddress.Any, 0));
                Interlocked.Increment(ref _received);
                await _socket.SendToAsync(buffer.AsMemory(0, result.ReceivedBytes), SocketFlags.None, result.RemoteEndPoint);
            }
        }
        catch (Exception e) when (e is SocketException or ObjectDisposedException)
        {
        }
    }

    public void Dispose() => _socket.Dispose();
}
