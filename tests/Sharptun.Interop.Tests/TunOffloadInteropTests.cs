using System.Buffers.Binary;
using System.Net;
using System.Net.Sockets;
using System.Runtime.Versioning;
using System.Security.Cryptography;
using Sharptun.NetStack;
using Sharptun.Transport;
using Sharptun.Transport.Linux;
using Xunit.Abstractions;

namespace Sharptun.Interop.Tests;

/// <summary>
/// TUN offloads (IFF_VNET_HDR, TUNSETOFFLOAD) against the kernel's own TCP: the kernel sends TSO super-segments into the
/// TUN, which Read must cut into valid packets no larger than the MTU; Write coalesces segments, which the kernel's TCP
/// must accept. Then whole daemon pairs with offloads on and off (SHARPTUN_TUN_OFFLOAD=0), data checked by hash.
/// </summary>
[SupportedOSPlatform("linux")]
public sealed class TunOffloadInteropTests(ITestOutputHelper output)
{
    private const int Mtu = 1420;

    /// <summary>
    /// Passes packets through, checking every packet the TUN hands out: at most the MTU, the IPv4 header checksum and the
    /// TCP/UDP checksum (pseudo-header included) valid, by a checksum routine of this test.
    /// </summary>
    private sealed class CheckingDevice(IPacketDevice inner) : IPacketDevice
    {
        private long _checked;
        private long _bad;
        private int _largest;
        private string? _firstBad;

        public string Name => inner.Name;

        public int Mtu => inner.Mtu;

        public int BatchSize => inner.BatchSize;

        public long Checked => Interlocked.Read(ref _checked);

        public long Bad => Interlocked.Read(ref _bad);

        public int Largest => Volatile.Read(ref _largest);

        public string? FirstBad => Volatile.Read(ref _firstBad);

        public int Read(byte[][] buffers, Span<int> sizes, int offset)
        {
            var n = inner.Read(buffers, sizes, offset);
            for (var i = 0; i < n; i++)
            {
                var packet = buffers[i].AsSpan(offset, sizes[i]);
                if (packet.Length > _largest)
                {
                    _largest = packet.Length;
                }

                Interlocked.Increment(ref _checked);
                var problem = packet.Length > inner.Mtu ? $"{packet.Length} bytes > MTU" : Problem(packet);
                if (problem is not null)
                {
                    Interlocked.Increment(ref _bad);
                    Interlocked.CompareExchange(ref _firstBad, problem, null);
                }
            }

            return n;
        }

        public int Write(byte[][] buffers, ReadOnlySpan<int> sizes, int offset, int count) => inner.Write(buffers, sizes, offset, count);

        public void Dispose() => inner.Dispose();

        private static string? Problem(ReadOnlySpan<byte> packet)
        {
            int l4;
            byte protocol;
            if (packet[0] >> 4 == 4)
            {
                l4 = (packet[0] & 0xF) * 4;
                protocol = packet[9];
                if (BinaryPrimitives.ReadUInt16BigEndian(packet[2..]) != packet.Length)
                {
                    return "IPv4 total length";
                }

                if (Fold(Sum(packet[..l4], 0)) != 0xFFFF)
                {
                    return "IPv4 header checksum";
                }

                if ((BinaryPrimitives.ReadUInt16BigEndian(packet[6..]) & 0x3FFF) != 0)
                {
                    return null; // a fragment: no transport header to check
                }
            }
            else
            {
                l4 = 40;
                protocol = packet[6];
                if (BinaryPrimitives.ReadUInt16BigEndian(packet[4..]) != packet.Length - 40)
                {
                    return "IPv6 payload length";
                }
            }

            if (protocol != 6 && protocol != 17)
            {
                return null;
            }

            var ipv6 = packet[0] >> 4 == 6;
            var length = packet.Length - l4;
            var pseudo = Sum(ipv6 ? packet.Slice(8, 32) : packet.Slice(12, 8), (uint)protocol + (uint)(length >> 16) + (uint)(length & 0xFFFF));
            return Fold(Sum(packet[l4..], pseudo)) == 0xFFFF ? null : $"{(protocol == 6 ? "TCP" : "UDP")} checksum ({packet.Length} bytes)";
        }

        private static uint Sum(ReadOnlySpan<byte> data, uint sum)
        {
            for (var i = 0; i < data.Length; i += 2)
            {
                sum += (uint)(data[i] << 8) + (i + 1 < data.Length ? data[i + 1] : 0u);
                sum = (sum & 0xFFFF) + (sum >> 16);
            }

            return sum;
        }

        private static ushort Fold(uint sum)
        {
            while (sum > 0xFFFF)
            {
                sum = (sum & 0xFFFF) + (sum >> 16);
            }

            return (ushort)sum;
        }
    }

    [InteropTheory("ip")]
    [InlineData(false, true)]
    [InlineData(true, true)]
    [InlineData(false, false)]
    public async Task KernelTcp_OverTunWithOffloads_SegmentsValidAndCoalescedWritesAccepted(bool ipv6, bool offload)
    {
        using var lab = new NetnsLab();
        var ns = lab.AddNamespace();
        var net = lab.NewSubnet();
        var name = lab.NewInterfaceName();
        var tun = NetnsLab.RunInNamespace(ns, () => LinuxTun.Create(name, Mtu, up: true, offload: offload));
        lab.AddAddress(ns, name, net.V4Cidr(1));
        lab.AddAddress(ns, name, net.V6Cidr(1));
        var options = new NetworkStackOptions { Mtu = Mtu };
        options.Addresses.Add(IPAddress.Parse(net.V4(2)));
        options.Addresses.Add(IPAddress.Parse(net.V6(2)));
        var stack = new NetworkStack(options);
        var checking = new CheckingDevice(tun);
        using var bridge = new NetworkStackTunBridge(checking, stack);
        output.WriteLine($"{name}: {tun.OffloadMode}");
        if (offload)
        {
            Assert.StartsWith("tso4+tso6+", tun.OffloadMode, StringComparison.Ordinal);
            Assert.EndsWith(", gro on", tun.OffloadMode, StringComparison.Ordinal);
            Assert.True(tun.HasVirtioHeaders);
        }
        else
        {
            Assert.Equal("off: disabled", tun.OffloadMode);
            Assert.False(tun.HasVirtioHeaders);
        }

        var kernelAddress = IPAddress.Parse(ipv6 ? net.V6(1) : net.V4(1));
        using var listener = NetnsLab.RunInNamespace(ns, () =>
        {
            var socket = new Socket(kernelAddress.AddressFamily, SocketType.Stream, ProtocolType.Tcp);
            socket.Bind(new IPEndPoint(kernelAddress, 0));
            socket.Listen(4);
            return socket;
        });
        var accept = listener.AcceptAsync();
        await using var stream = await stack.ConnectTcpAsync((IPEndPoint)listener.LocalEndPoint!).AsTask().WaitAsync(TimeSpan.FromSeconds(20));
        using var kernel = await accept.WaitAsync(TimeSpan.FromSeconds(20));
        const long bytes = 64L << 20;

        // kernel -> stack: the kernel's TCP sends TSO super-segments into the TUN; Read cuts them.
        var receiveDown = Task.Run(() => ReceiveAsync(m => stream.ReadAsync(m)));
        var sendDown = await SendAsync(async m => await kernel.SendAsync(m, SocketFlags.None), bytes).WaitAsync(TimeSpan.FromSeconds(180));
        kernel.Shutdown(SocketShutdown.Send);
        var (downHash, downBytes) = await receiveDown.WaitAsync(TimeSpan.FromSeconds(180));
        Assert.Equal(bytes, downBytes);
        Assert.Equal(sendDown, downHash);

        // stack -> kernel: the stack's segments leave in batches; Write coalesces them for the kernel's TCP.
        var receiveUp = Task.Run(() => ReceiveAsync(m => kernel.ReceiveAsync(m, SocketFlags.None)));
        var sendUp = await SendAsync(m => stream.WriteAsync(m), bytes).WaitAsync(TimeSpan.FromSeconds(180));
        stream.ShutdownWrite();
        var (upHash, upBytes) = await receiveUp.WaitAsync(TimeSpan.FromSeconds(180));
        Assert.Equal(bytes, upBytes);
        Assert.Equal(sendUp, upHash);

        output.WriteLine($"checked {checking.Checked} packets read, largest {checking.Largest}; super-segments {tun.SuperSegmentsRead} -> {tun.SegmentsProduced} packets; " +
            $"coalesced writes {tun.CoalescedWrites} carrying {tun.CoalescedSegments} packets; read dropped {tun.ReadDropped}, write dropped {tun.WriteDropped}");
        Assert.Null(bridge.Failure);
        Assert.True(checking.Bad == 0, $"{checking.Bad} bad packets, first: {checking.FirstBad}");
        Assert.InRange(checking.Largest, 1000, Mtu);
        Assert.Equal(0, tun.ReadDropped);
        if (offload)
        {
            Assert.True(tun.SuperSegmentsRead > 0, "the kernel sent no super-segments");
            Assert.True(tun.SegmentsProduced > tun.SuperSegmentsRead * 2, $"{tun.SegmentsProduced} packets from {tun.SuperSegmentsRead} super-segments");
            Assert.True(tun.CoalescedWrites > 0, "no write was coalesced");
            Assert.True(tun.CoalescedSegments >= tun.CoalescedWrites * 2);
        }
        else
        {
            Assert.Equal(0, tun.SuperSegmentsRead + tun.CoalescedWrites);
        }
    }

    /// <summary>An inherited descriptor gets virtio headers exactly when IFF_VNET_HDR is set on it (TUNGETIFF), and offloads only then.</summary>
    [InteropFact("ip")]
    public void FromFileDescriptor_VnetHeaderOnlyWhenTheDescriptorHasIt()
    {
        using var lab = new NetnsLab();
        var ns = lab.AddNamespace();
        using var plain = NetnsLab.RunInNamespace(ns, () => LinuxTun.Create(lab.NewInterfaceName(), Mtu, up: false, offload: false));
        using var withHeaders = NetnsLab.RunInNamespace(ns, () => LinuxTun.Create(lab.NewInterfaceName(), Mtu, up: false));

        using var inheritedPlain = LinuxTun.FromFileDescriptor(plain.FileDescriptor, plain.Name, Mtu, ownsDescriptor: false);
        Assert.False(inheritedPlain.HasVirtioHeaders);
        Assert.Equal("off: inherited descriptor without IFF_VNET_HDR", inheritedPlain.OffloadMode);

        using var inheritedOff = LinuxTun.FromFileDescriptor(withHeaders.FileDescriptor, withHeaders.Name, Mtu, ownsDescriptor: false, offload: false);
        Assert.True(inheritedOff.HasVirtioHeaders);
        Assert.StartsWith("off: disabled", inheritedOff.OffloadMode, StringComparison.Ordinal);

        using var inherited = LinuxTun.FromFileDescriptor(withHeaders.FileDescriptor, withHeaders.Name, Mtu, ownsDescriptor: false);
        Assert.True(inherited.HasVirtioHeaders);
        Assert.StartsWith("tso4+tso6+", inherited.OffloadMode, StringComparison.Ordinal);
    }

    /// <summary>
    /// A kernel UDP socket with UDP_SEGMENT (one send = many datagrams) into the TUN: with USO negotiated the kernel hands
    /// the whole run over in one read; every datagram must reach the stack's socket intact, in order, checksum valid.
    /// </summary>
    [InteropTheory("ip")]
    [InlineData(false)]
    [InlineData(true)]
    public async Task KernelUdpGso_OverTunWithOffloads_DatagramsArriveIntact(bool ipv6)
    {
        using var lab = new NetnsLab();
        var ns = lab.AddNamespace();
        var net = lab.NewSubnet();
        var name = lab.NewInterfaceName();
        var tun = NetnsLab.RunInNamespace(ns, () => LinuxTun.Create(name, Mtu, up: true));
        lab.AddAddress(ns, name, net.V4Cidr(1));
        lab.AddAddress(ns, name, net.V6Cidr(1));
        var options = new NetworkStackOptions { Mtu = Mtu };
        options.Addresses.Add(IPAddress.Parse(net.V4(2)));
        options.Addresses.Add(IPAddress.Parse(net.V6(2)));
        var stack = new NetworkStack(options);
        var checking = new CheckingDevice(tun);
        using var bridge = new NetworkStackTunBridge(checking, stack);
        var kernelAddress = IPAddress.Parse(ipv6 ? net.V6(1) : net.V4(1));
        var stackAddress = IPAddress.Parse(ipv6 ? net.V6(2) : net.V4(2));
        using var stackSocket = stack.BindUdp(new IPEndPoint(stackAddress, 7000));
        using var kernel = NetnsLab.RunInNamespace(ns, () =>
        {
            var socket = new Socket(kernelAddress.AddressFamily, SocketType.Dgram, ProtocolType.Udp);
            socket.Bind(new IPEndPoint(kernelAddress, 0));
            return socket;
        });
        const int segment = 1200;
        kernel.SetRawSocketOption(17 /* SOL_UDP */, 103 /* UDP_SEGMENT, an int */, BitConverter.GetBytes(segment));

        var buffer = new byte[2048];
        var random = new Random(5);
        for (var round = 0; round < 20; round++)
        {
            var count = random.Next(2, 40);
            var message = new byte[(segment * (count - 1)) + random.Next(1, segment + 1)];
            random.NextBytes(message);
            Assert.Equal(message.Length, await kernel.SendToAsync(message, new IPEndPoint(stackAddress, 7000)));
            for (var k = 0; k < count; k++)
            {
                var received = await stackSocket.ReceiveFromAsync(buffer).AsTask().WaitAsync(TimeSpan.FromSeconds(5));
                var expected = message.AsSpan(k * segment, Math.Min(segment, message.Length - (k * segment)));
                Assert.True(expected.SequenceEqual(buffer.AsSpan(0, received.Length)), $"round {round} datagram {k}");
            }
        }

        output.WriteLine($"{tun.OffloadMode}: super-segments {tun.SuperSegmentsRead} -> {tun.SegmentsProduced}; checked {checking.Checked}, bad {checking.Bad}");
        Assert.True(checking.Bad == 0, checking.FirstBad);
        Assert.Equal(0, tun.ReadDropped);
        if (tun.OffloadMode.Contains("uso4", StringComparison.Ordinal))
        {
            Assert.True(tun.SuperSegmentsRead >= 20, $"{tun.SuperSegmentsRead} super-segments for 20 UDP_SEGMENT sends");
        }
    }

    /// <summary>Two daemons (sharptun with sharptun or wireguard-go), offloads on (the default) or off: 32 MiB each way through the tunnel over IPv4 and IPv6, checked by SHA-256; the daemon logs its mode.</summary>
    [InteropTheory("wireguard-go", "wg", "ping")]
    [InlineData(WgImpl.Sharptun, true, false)]
    [InlineData(WgImpl.Sharptun, false, false)]
    [InlineData(WgImpl.WireguardGo, true, false)]
    [InlineData(WgImpl.WireguardGo, true, true)]
    public async Task DaemonPair_OffloadOnOrOff_TransfersIntactBothWays(WgImpl peer, bool offload, bool tunFd)
    {
        using var lab = new NetnsLab();
        var environment = offload ? null : new Dictionary<string, string> { ["SHARPTUN_TUN_OFFLOAD"] = "0" };
        var t = WgTunnel.Create(lab, WgImpl.Sharptun, peer, new WgTunnelOptions { SharptunEnvironment = environment, SharptunTunFd = tunFd });
        t.PingOrFail(t.A, t.B.TunnelV4);

        foreach (var (a, b) in new[] { (t.A.TunnelV4, t.B.TunnelV4), (t.A.TunnelV6, t.B.TunnelV6) })
        {
            await TransferAsync(t, IPAddress.Parse(a), IPAddress.Parse(b), 32L << 20);
        }

        var log = lab.OutputOf(t.A.Process!);
        var expected = offload ? "tun offload: tso4+tso6+" : "tun offload: off: SHARPTUN_TUN_OFFLOAD=0";
        Assert.True(log.Contains(expected, StringComparison.Ordinal), $"no '{expected}' in the daemon's output:\n{log}");
        if (peer == WgImpl.Sharptun)
        {
            Assert.Contains(expected, lab.OutputOf(t.B.Process!), StringComparison.Ordinal);
        }
    }

    /// <summary>A listens in its namespace, B connects through the tunnel; <paramref name="bytes"/> go each way, checked by hash.</summary>
    private async Task TransferAsync(WgTunnel t, IPAddress addressA, IPAddress addressB, long bytes)
    {
        using var listener = NetnsLab.RunInNamespace(t.A.Namespace, () =>
        {
            var socket = new Socket(addressA.AddressFamily, SocketType.Stream, ProtocolType.Tcp);
            socket.Bind(new IPEndPoint(addressA, 0));
            socket.Listen(4);
            return socket;
        });
        using var client = NetnsLab.RunInNamespace(t.B.Namespace, () => new Socket(addressB.AddressFamily, SocketType.Stream, ProtocolType.Tcp));
        var accept = listener.AcceptAsync();
        await client.ConnectAsync(listener.LocalEndPoint!).WaitAsync(TimeSpan.FromSeconds(20));
        using var server = await accept.WaitAsync(TimeSpan.FromSeconds(20));

        var started = DateTime.UtcNow;
        var receiveAtB = Task.Run(() => ReceiveAsync(m => client.ReceiveAsync(m, SocketFlags.None)));
        var sentByA = await SendAsync(async m => await server.SendAsync(m, SocketFlags.None), bytes).WaitAsync(TimeSpan.FromSeconds(180));
        server.Shutdown(SocketShutdown.Send);
        var (hashAtB, bytesAtB) = await receiveAtB.WaitAsync(TimeSpan.FromSeconds(180));
        var down = DateTime.UtcNow - started;
        Assert.Equal(bytes, bytesAtB);
        Assert.Equal(sentByA, hashAtB);

        started = DateTime.UtcNow;
        var receiveAtA = Task.Run(() => ReceiveAsync(m => server.ReceiveAsync(m, SocketFlags.None)));
        var sentByB = await SendAsync(async m => await client.SendAsync(m, SocketFlags.None), bytes).WaitAsync(TimeSpan.FromSeconds(180));
        client.Shutdown(SocketShutdown.Send);
        var (hashAtA, bytesAtA) = await receiveAtA.WaitAsync(TimeSpan.FromSeconds(180));
        var up = DateTime.UtcNow - started;
        Assert.Equal(bytes, bytesAtA);
        Assert.Equal(sentByB, hashAtA);
        output.WriteLine($"{addressA.AddressFamily}: A->B {bytes * 8 / down.TotalSeconds / 1e6:F0} Mbit/s, B->A {bytes * 8 / up.TotalSeconds / 1e6:F0} Mbit/s");
    }

    private static readonly byte[] Pattern = RandomBytes(4 << 20, 11);

    private static byte[] RandomBytes(int n, int seed)
    {
        var b = new byte[n];
        new Random(seed).NextBytes(b);
        return b;
    }

    private static async Task<byte[]> SendAsync(Func<ReadOnlyMemory<byte>, ValueTask> write, long total)
    {
        using var hash = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
        long sent = 0;
        for (long i = 0; sent < total; i++)
        {
            var size = (int)Math.Min(64 * 1024, total - sent);
            var chunk = Pattern.AsMemory((int)(i * 7919 % (Pattern.Length - size)), size);
            await write(chunk);
            hash.AppendData(chunk.Span);
            sent += size;
        }

        return hash.GetHashAndReset();
    }

    private static async Task<(byte[] Hash, long Bytes)> ReceiveAsync(Func<Memory<byte>, ValueTask<int>> read)
    {
        using var hash = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
        var buffer = new byte[256 * 1024];
        long total = 0;
        while (true)
        {
            var n = await read(buffer);
            if (n == 0)
            {
                return (hash.GetHashAndReset(), total);
            }

            hash.AppendData(buffer, 0, n);
            total += n;
        }
    }
}
