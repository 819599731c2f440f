using System.Net;
using BenchmarkDotNet.Attributes;
using Sharptun.NetStack;
using Sharptun.NetStack.Udp;
using Sharptun.NetStack.Wire;
using Sharptun.Transport;

namespace Sharptun.Benchmarks;

/// <summary>NetStack hot paths: the Internet checksum and per-packet IP/ICMP/UDP processing (0 B allocated is the bar).</summary>
[MemoryDiagnoser]
public class NetStackBenchmarks
{
    private static readonly IpAddr Peer = IpAddr.Parse("10.9.0.1");
    private static readonly IpAddr Local = IpAddr.Parse("10.9.0.2");

    private readonly byte[] _mtuPacket = new byte[1420];
    private readonly byte[] _bigBuffer = new byte[65535];
    private readonly byte[][] _readBuffers = [new byte[2048]];
    private readonly int[] _readSizes = new int[1];
    private readonly byte[] _payload = new byte[1392];
    private byte[][] _echo = null!;
    private int[] _echoSize = null!;
    private byte[][] _udp = null!;
    private int[] _udpSize = null!;
    private NetworkStack _stack = null!;
    private UdpSocket _socket = null!;

    [GlobalSetup]
    public void Setup()
    {
        new Random(1).NextBytes(_mtuPacket);
        new Random(2).NextBytes(_bigBuffer);
        var options = new NetworkStackOptions();
        options.Addresses.Add(IPAddress.Parse("10.9.0.2"));
        _stack = new NetworkStack(options);
        _socket = _stack.BindUdp(new IPEndPoint(IPAddress.Any, 5353));

        var data = new byte[56];
        var icmp = IcmpRepr.Echo(Icmpv4Type.EchoRequest, 1, 1, data.Length);
        var echo = new byte[20 + icmp.Length];
        new Ipv4Repr(Peer, Local, IpProtocol.Icmp, icmp.Length).Emit(echo);
        icmp.EmitV4(echo.AsSpan(20), data);
        _echo = [echo];
        _echoSize = [echo.Length];

        var udp = new UdpRepr(40000, 5353, _payload.Length);
        var datagram = new byte[20 + udp.Length];
        new Ipv4Repr(Peer, Local, IpProtocol.Udp, udp.Length).Emit(datagram);
        udp.Emit(datagram.AsSpan(20), _payload, Peer, Local);
        _udp = [datagram];
        _udpSize = [datagram.Length];
    }

    [GlobalCleanup]
    public void Cleanup() => _stack.Dispose();

    [Benchmark]
    public ushort Checksum1420() => Checksum.Compute(_mtuPacket);

    [Benchmark]
    public ushort Checksum64K() => Checksum.Compute(_bigBuffer);

    /// <summary>Device writes an echo request, device reads the reply.</summary>
    [Benchmark]
    public int EchoRoundTrip()
    {
        _stack.Write(_echo, _echoSize, 0, 1);
        return _stack.Read(_readBuffers, _readSizes, 0);
    }

    /// <summary>Device writes a 1392-byte UDP datagram; the socket receives it.</summary>
    [Benchmark]
    public int UdpReceive()
    {
        _stack.Write(_udp, _udpSize, 0, 1);
        _socket.TryReceiveFrom(_payload, out var result);
        return result.Length;
    }

    /// <summary>The socket sends a 1392-byte datagram; the device reads it.</summary>
    [Benchmark]
    public int UdpSend()
    {
        _ = _socket.SendToAsync(_payload, Peer, 40000);
        return _stack.Read(_readBuffers, _readSizes, 0);
    }
}
