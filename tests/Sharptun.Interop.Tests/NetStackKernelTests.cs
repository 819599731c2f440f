using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using System.Security.Cryptography;
using Sharptun.NetStack;
using Sharptun.NetStack.Tcp;
using Sharptun.Transport;
using Sharptun.Transport.Linux;
using Xunit.Abstractions;

namespace Sharptun.Interop.Tests;

/// <summary>
/// The userspace stack on a real Linux TUN inside a network namespace, talking to the kernel's own IP/ICMP/UDP/TCP:
/// the kernel holds .1 / ::1 on the TUN, the stack holds .2 / ::2 behind it.
/// </summary>
[System.Runtime.Versioning.SupportedOSPlatform("linux")]
public sealed class NetStackKernelTests(ITestOutputHelper output)
{
    private const int Mtu = 1420;

    /// <summary>
    /// Bytes moved each way in the main TCP transfer tests: 1 GiB (on the 2-core CI machine, debug build, about 10-20 s
    /// stack → kernel and 5-10 s kernel → stack). bench/netstack-tun.sh overrides it with SHARPTUN_NETSTACK_TRANSFER_MIB.
    /// </summary>
    private static readonly long TransferBytes =
        long.TryParse(Environment.GetEnvironmentVariable("SHARPTUN_NETSTACK_TRANSFER_MIB"), out var mib) && mib > 0 ? mib << 20 : 1L << 30;

    private sealed class Setup : IDisposable
    {
        public Setup(FaultOptions? faults = null, NetworkStackOptions? options = null)
        {
            Lab = new NetnsLab();
            Namespace = Lab.AddNamespace();
            Net = Lab.NewSubnet();
            var name = Lab.NewInterfaceName();
            Tun = NetnsLab.RunInNamespace(Namespace, () => LinuxTun.Create(name, mtu: Mtu, up: true));
            Lab.AddAddress(Namespace, name, Net.V4Cidr(1));
            Lab.AddAddress(Namespace, name, Net.V6Cidr(1));
            options ??= new NetworkStackOptions();
            options.Mtu = Mtu;
            options.Addresses.Add(IPAddress.Parse(Net.V4(2)));
            options.Addresses.Add(IPAddress.Parse(Net.V6(2)));
            Stack = new NetworkStack(options);
            Device = faults is null ? Tun : new FaultInjectingPacketDevice(Tun, faults);
            Bridge = new NetworkStackTunBridge(Device, Stack);
        }

        public NetnsLab Lab { get; }

        public string Namespace { get; }

        public LabSubnet Net { get; }

        public LinuxTun Tun { get; }

        public IPacketDevice Device { get; }

        public NetworkStack Stack { get; }

        public NetworkStackTunBridge Bridge { get; }

        public IPAddress KernelV4 => IPAddress.Parse(Net.V4(1));

        public IPAddress StackV4 => IPAddress.Parse(Net.V4(2));

        public IPAddress KernelV6 => IPAddress.Parse(Net.V6(1));

        public IPAddress StackV6 => IPAddress.Parse(Net.V6(2));

        public void Dispose()
        {
            Bridge.Dispose();
            Lab.Dispose();
        }
    }

    [InteropFact("ip", "ping")]
    public void KernelPing_StackOnTun_AnswersIpv4AndIpv6()
    {
        using var s = new Setup();
        var v4 = s.Lab.Check(s.Namespace, "ping", "-c", "3", "-i", "0.2", "-W", "2", "-s", "1000", s.Net.V4(2));
        Assert.Contains("3 received", v4.Stdout);
        var v6 = s.Lab.Check(s.Namespace, "ping", "-6", "-c", "3", "-i", "0.2", "-W", "2", s.Net.V6(2));
        Assert.Contains("3 received", v6.Stdout);
        Assert.Equal(6, s.Stack.Statistics.EchoRequestsAnswered);
        Assert.Null(s.Bridge.Failure);
    }

    [InteropFact("ip", "ping")]
    public void KernelPing_LargerThanMtu_IsReassembled()
    {
        using var s = new Setup();
        // A 3028-byte echo request is fragmented by the kernel at the 1420-byte MTU. The reply would not fit the MTU in
        // one packet and the stack does not fragment (by design), so only the reassembly is checked here.
        var result = s.Lab.Exec(s.Namespace, "ping", "-c", "1", "-W", "1", "-s", "3000", s.Net.V4(2));
        Assert.Equal(1, s.Stack.Statistics.Reassembled);
        output.WriteLine(result.Stdout);
    }

    [InteropFact("ip", "ping")]
    public void StackPing_KernelAnswers()
    {
        using var s = new Setup();
        var v4 = s.Stack.PingAsync(s.KernelV4, 56, TimeSpan.FromSeconds(3)).AsTask().GetAwaiter().GetResult();
        var v6 = s.Stack.PingAsync(s.KernelV6, 56, TimeSpan.FromSeconds(3)).AsTask().GetAwaiter().GetResult();
        Assert.True(v4.Success, "IPv4 ping timed out");
        Assert.True(v6.Success, "IPv6 ping timed out");
        output.WriteLine($"rtt v4 {v4.RoundTripTime.TotalMilliseconds:F3} ms, v6 {v6.RoundTripTime.TotalMilliseconds:F3} ms");
    }

    [InteropFact("ip")]
    public async Task Udp_KernelSocket_ExchangeBothWaysIpv4AndIpv6()
    {
        using var s = new Setup();
        foreach (var (kernelAddress, stackAddress) in new[] { (s.KernelV4, s.StackV4), (s.KernelV6, s.StackV6) })
        {
            using var kernel = NetnsLab.RunInNamespace(s.Namespace, () =>
            {
                var socket = new Socket(kernelAddress.AddressFamily, SocketType.Dgram, ProtocolType.Udp);
                socket.Bind(new IPEndPoint(kernelAddress, 0));
                return socket;
            });
            using var stackSocket = s.Stack.BindUdp(new IPEndPoint(stackAddress, 7000));
            var kernelEndPoint = (IPEndPoint)kernel.LocalEndPoint!;
            var rng = new Random(1);
            var buffer = new byte[2048];
            for (var i = 0; i < 20; i++)
            {
                var message = new byte[rng.Next(1, 1300)];
                rng.NextBytes(message);
                await kernel.SendToAsync(message, new IPEndPoint(stackAddress, 7000));
                var received = await stackSocket.ReceiveFromAsync(buffer).AsTask().WaitAsync(TimeSpan.FromSeconds(5));
                Assert.Equal(message, buffer[..received.Length]);
                Assert.Equal(kernelEndPoint.Port, received.RemotePort);

                Array.Reverse(message);
                await stackSocket.SendToAsync(message, received.RemoteAddress, received.RemotePort);
                var cts = new CancellationTokenSource(TimeSpan.FromSeconds(5));
                var back = await kernel.ReceiveFromAsync(buffer, SocketFlags.None, new IPEndPoint(kernelAddress.AddressFamily == AddressFamily.InterNetwork ? IPAddress.Any : IPAddress.IPv6Any, 0), cts.Token);
                Assert.Equal(message, buffer[..back.ReceivedBytes]);
                Assert.Equal(new IPEndPoint(stackAddress, 7000), back.RemoteEndPoint);
            }
        }
    }

    [InteropFact("ip")]
    public async Task Udp_KernelToClosedStackPort_GetsConnectionRefused()
    {
        using var s = new Setup();
        using var kernel = NetnsLab.RunInNamespace(s.Namespace, () =>
        {
            var socket = new Socket(AddressFamily.InterNetwork, SocketType.Dgram, ProtocolType.Udp);
            socket.Connect(new IPEndPoint(s.StackV4, 9));   // connected UDP sockets report ICMP port unreachable
            return socket;
        });
        await kernel.SendAsync(new byte[10]);
        var error = await Assert.ThrowsAsync<SocketException>(async () =>
            await kernel.ReceiveAsync(new byte[10], SocketFlags.None, new CancellationTokenSource(TimeSpan.FromSeconds(5)).Token));
        Assert.Equal(SocketError.ConnectionRefused, error.SocketErrorCode);
        Assert.Equal(1, s.Stack.Statistics.IcmpErrorsSentCount);
    }

    // ---------------------------------------------------------------- TCP (the stack's TCP against the kernel's)

    /// <summary>Deterministic test data: 64 KiB windows into a 4 MiB random block at a moving offset.</summary>
    private static readonly byte[] Pattern = RandomBytes(4 << 20, 7);

    private static byte[] RandomBytes(int n, int seed)
    {
        var b = new byte[n];
        new Random(seed).NextBytes(b);
        return b;
    }

    private static ReadOnlyMemory<byte> Chunk(long index, int size) =>
        Pattern.AsMemory((int)(index * 7919 % (Pattern.Length - size)), size);

    private static async Task<byte[]> SendAsync(Func<ReadOnlyMemory<byte>, ValueTask> write, long total)
    {
        using var hash = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
        long sent = 0;
        for (long i = 0; sent < total; i++)
        {
            var chunk = Chunk(i, (int)Math.Min(64 * 1024, total - sent));
            await write(chunk);
            hash.AppendData(chunk.Span);
            sent += chunk.Length;
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

    /// <summary>Moves <paramref name="bytes"/> from the stack stream to the kernel socket, then back; checks hashes.</summary>
    private async Task TransferBothWaysAsync(TcpStream stream, Socket kernel, long bytes, string label, TimeSpan timeout)
    {
        var sw = Stopwatch.StartNew();
        var receiveUp = Task.Run(() => ReceiveAsync(m => kernel.ReceiveAsync(m, SocketFlags.None)));
        var sendUp = Task.Run(async () =>
        {
            var h = await SendAsync(m => stream.WriteAsync(m), bytes);
            stream.ShutdownWrite();
            return h;
        });
        var upHash = await sendUp.WaitAsync(timeout);
        var (upReceived, upBytes) = await receiveUp.WaitAsync(timeout);
        var upTime = sw.Elapsed;
        Assert.Equal(bytes, upBytes);
        Assert.Equal(upHash, upReceived);

        sw.Restart();
        var receiveDown = Task.Run(() => ReceiveAsync(m => stream.ReadAsync(m)));
        var sendDown = Task.Run(async () =>
        {
            var h = await SendAsync(async m => await kernel.SendAsync(m, SocketFlags.None), bytes);
            kernel.Shutdown(SocketShutdown.Send);
            return h;
        });
        var downHash = await sendDown.WaitAsync(timeout);
        var (downReceived, downBytes) = await receiveDown.WaitAsync(timeout);
        var downTime = sw.Elapsed;
        Assert.Equal(bytes, downBytes);
        Assert.Equal(downHash, downReceived);
        output.WriteLine($"{label}: stack->kernel {bytes / 1e6:F0} MB in {upTime.TotalSeconds:F2} s = {bytes * 8 / upTime.TotalSeconds / 1e6:F0} Mbit/s; " +
            $"kernel->stack {bytes / 1e6:F0} MB in {downTime.TotalSeconds:F2} s = {bytes * 8 / downTime.TotalSeconds / 1e6:F0} Mbit/s");
    }

    private const int TcpiOptTimestamps = 1;
    private const int TcpiOptSack = 2;
    private const int TcpiOptWscale = 4;

    /// <summary>struct tcp_info (linux/tcp.h): byte 5 tcpi_options, byte 6 snd_wscale:4 | rcv_wscale:4.</summary>
    private static (int Options, int SndWscale, int RcvWscale) KernelTcpInfo(Socket socket)
    {
        var info = new byte[232];
        var n = socket.GetRawSocketOption(6 /* IPPROTO_TCP */, 11 /* TCP_INFO */, info);
        Assert.True(n >= 8);
        return (info[5], info[6] & 0x0F, info[6] >> 4);
    }

    private static Socket KernelListener(Setup s, IPAddress address) => NetnsLab.RunInNamespace(s.Namespace, () =>
    {
        var listener = new Socket(address.AddressFamily, SocketType.Stream, ProtocolType.Tcp);
        listener.Bind(new IPEndPoint(address, 0));
        listener.Listen(16);
        return listener;
    });

    [InteropFact("ip", "ss")]
    public async Task Tcp_StackConnectsToKernelListener_TransfersBothWaysWithOptions()
    {
        using var s = new Setup();
        using var listener = KernelListener(s, s.KernelV4);
        var accept = listener.AcceptAsync();
        await using var stream = await s.Stack.ConnectTcpAsync((IPEndPoint)listener.LocalEndPoint!).AsTask().WaitAsync(TimeSpan.FromSeconds(10));
        using var kernel = await accept.WaitAsync(TimeSpan.FromSeconds(10));

        // The kernel's view of the connection: RFC 7323 window scaling and timestamps, RFC 2018 SACK negotiated.
        // `ss -ti` shows wscale; this machine's ss does not print "ts"/"sack" even for kernel-to-kernel connections, so
        // those are read from the kernel socket's TCP_INFO (tcpi_options), which is what ss formats.
        var ss = s.Lab.Check(s.Namespace, "ss", "-tin", "state", "established").Stdout;
        output.WriteLine(ss);
        Assert.Contains("wscale:", ss);
        var (options, sndWscale, rcvWscale) = KernelTcpInfo(kernel);
        output.WriteLine($"tcpi_options={options:x} snd_wscale={sndWscale} rcv_wscale={rcvWscale}");
        Assert.True((options & TcpiOptTimestamps) != 0, "timestamps not negotiated");
        Assert.True((options & TcpiOptSack) != 0, "SACK not negotiated");
        Assert.True((options & TcpiOptWscale) != 0, "window scaling not negotiated");

        await TransferBothWaysAsync(stream, kernel, TransferBytes, "IPv4 stack-connects", TimeSpan.FromSeconds(120));
        Assert.Null(s.Bridge.Failure);
    }

    [InteropFact("ip")]
    public async Task Tcp_KernelConnectsToStackListener_TransfersBothWays()
    {
        using var s = new Setup();
        using var listener = s.Stack.ListenTcp(new IPEndPoint(IPAddress.Any, 8080));
        using var kernel = NetnsLab.RunInNamespace(s.Namespace, () => new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp));
        var accept = listener.AcceptAsync().AsTask();
        await kernel.ConnectAsync(new IPEndPoint(s.StackV4, 8080)).WaitAsync(TimeSpan.FromSeconds(10));
        await using var stream = await accept.WaitAsync(TimeSpan.FromSeconds(10));
        Assert.Equal(kernel.LocalEndPoint, stream.RemoteEndPoint);
        await TransferBothWaysAsync(stream, kernel, TransferBytes, "IPv4 kernel-connects", TimeSpan.FromSeconds(120));
    }

    [InteropFact("ip")]
    public async Task Tcp_Ipv6BothDirections_TransfersIntact()
    {
        using var s = new Setup();
        using var kernelListener = KernelListener(s, s.KernelV6);
        var accept = kernelListener.AcceptAsync();
        await using var stream = await s.Stack.ConnectTcpAsync((IPEndPoint)kernelListener.LocalEndPoint!).AsTask().WaitAsync(TimeSpan.FromSeconds(10));
        using var kernel = await accept.WaitAsync(TimeSpan.FromSeconds(10));
        await TransferBothWaysAsync(stream, kernel, 32L << 20, "IPv6 stack-connects", TimeSpan.FromSeconds(60));
    }

    [InteropFact("ip")]
    public async Task Tcp_TwoPercentLossViaFaultInjector_TransfersStillComplete()
    {
        using var s = new Setup(new FaultOptions { LossRate = 0.02, Seed = 2 });
        using var listener = s.Stack.ListenTcp(new IPEndPoint(IPAddress.Any, 8080));
        using var kernel = NetnsLab.RunInNamespace(s.Namespace, () => new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp));
        var accept = listener.AcceptAsync().AsTask();
        await kernel.ConnectAsync(new IPEndPoint(s.StackV4, 8080)).WaitAsync(TimeSpan.FromSeconds(20));
        await using var stream = await accept.WaitAsync(TimeSpan.FromSeconds(20));
        await TransferBothWaysAsync(stream, kernel, 16L << 20, "IPv4 2% loss", TimeSpan.FromSeconds(90));
        var faults = (FaultInjectingPacketDevice)s.Device;
        output.WriteLine($"fault injector dropped {faults.Dropped} packets");
        Assert.True(faults.Dropped > 100);
    }

    // ---------------------------------------------------------------- promiscuous (tun2socks / gateway) mode

    [InteropFact("ip")]
    public async Task Promiscuous_KernelTrafficToAnyAddress_TerminatesInStackWithOriginalDestination()
    {
        using var s = new Setup(options: new NetworkStackOptions { Promiscuous = true });
        s.Lab.AddRoute(s.Namespace, "198.18.0.0/15", s.Tun.Name);

        // TCP: a wildcard listener accepts a kernel connection to an arbitrary routed address and sees that address.
        using var listener = s.Stack.ListenTcp(new IPEndPoint(IPAddress.IPv6Any, 0));
        using var kernelTcp = NetnsLab.RunInNamespace(s.Namespace, () => new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp));
        var accept = listener.AcceptAsync().AsTask();
        var target = new IPEndPoint(IPAddress.Parse("198.18.7.9"), 443);
        await kernelTcp.ConnectAsync(target).WaitAsync(TimeSpan.FromSeconds(10));
        await using var stream = await accept.WaitAsync(TimeSpan.FromSeconds(10));
        Assert.Equal(target, stream.LocalEndPoint);
        await kernelTcp.SendAsync("hello"u8.ToArray(), SocketFlags.None);
        var buffer = new byte[16];
        Assert.Equal(5, await stream.ReadAsync(buffer).AsTask().WaitAsync(TimeSpan.FromSeconds(10)));
        await stream.WriteAsync("world"u8.ToArray());
        await stream.FlushAsync();
        Assert.Equal(5, await kernelTcp.ReceiveAsync(buffer, SocketFlags.None).WaitAsync(TimeSpan.FromSeconds(10)));
        Assert.Equal("world"u8.ToArray(), buffer[..5]);

        // UDP: the catch-all socket receives a datagram to any address/port and answers from that address/port.
        using var catchAll = s.Stack.BindUdpAnyDestination();
        using var kernelUdp = NetnsLab.RunInNamespace(s.Namespace, () => new Socket(AddressFamily.InterNetwork, SocketType.Dgram, ProtocolType.Udp));
        var dns = new IPEndPoint(IPAddress.Parse("198.19.1.1"), 53);
        await kernelUdp.SendToAsync("query"u8.ToArray(), dns);
        var request = await catchAll.ReceiveFromAsync(buffer).AsTask().WaitAsync(TimeSpan.FromSeconds(10));
        Assert.Equal(dns, request.LocalEndPoint);
        await catchAll.SendFromAsync("answer"u8.ToArray(), request.LocalAddress, request.RemoteAddress, request.RemotePort, request.LocalPort);
        var reply = await kernelUdp.ReceiveFromAsync(buffer, SocketFlags.None, new IPEndPoint(IPAddress.Any, 0)).WaitAsync(TimeSpan.FromSeconds(10));
        Assert.Equal(dns, reply.RemoteEndPoint);
        Assert.Equal("answer"u8.ToArray(), buffer[..reply.ReceivedBytes]);
    }
}
