using System.Runtime.Versioning;
using Sharptun.Transport;
using Sharptun.Transport.Linux;

namespace Sharptun.Interop.Tests;

/// <summary>
/// Issue 7 item 4 (jumbo MTUs): with an <c>OversizePool</c>, the Linux TUN and UDP bind deliver packets longer than the
/// caller's buffers whole, in a buffer from the pool that replaces the caller's one in the array, instead of dropping them.
/// </summary>
[SupportedOSPlatform("linux")]
public sealed class OversizeTransportInteropTests
{
    private const int LargeSize = 16 + 65535 + 31;

    [InteropFact]
    public void LinuxTun_OversizePool_PacketLargerThanReadBuffer_ArrivesWholeInPoolBuffer()
    {
        using var lab = new NetnsLab();
        var ns = lab.AddNamespace();
        var name = lab.NewInterfaceName();
        var net = lab.NewSubnet();
        lab.Sysctl(ns, "net.ipv6.conf.default.disable_ipv6", "1"); // no neighbour discovery noise in the TUN
        using var tun = NetnsLab.RunInNamespace(ns, () => LinuxTun.Create(name, mtu: 9000));
        var oversize = new PacketBufferPool(4L * LargeSize, LargeSize);
        tun.OversizePool = oversize;
        lab.AddAddress(ns, name, net.V4Cidr(1));
        var big = new string('x', 4000); // bash writes /dev/udp in 4096-byte chunks: one datagram
        lab.Check(ns, "bash", "-c", $"echo -n {big} > /dev/udp/{net.V4(2)}/5000; echo -n small > /dev/udp/{net.V4(2)}/5000");
        var own = Enumerable.Range(0, 4).Select(_ => new byte[16 + 200]).ToArray();
        var buffers = (byte[][])own.Clone();
        var sizes = new int[4];

        var read = Task.Run(() => tun.Read(buffers, sizes, 16));

        Assert.True(read.Wait(TimeSpan.FromSeconds(5)));
        Assert.True(read.Result == 2, $"read {read.Result}: sizes {string.Join(",", sizes)}, dropped {tun.ReadDropped}");
        Assert.Equal(20 + 8 + 4000, sizes[0]);
        Assert.Equal(LargeSize, buffers[0].Length); // swapped for a pool buffer ...
        Assert.Equal(1, oversize.InUse);
        Assert.True(buffers[0].AsSpan(16 + 28, 4000).IndexOfAnyExcept((byte)'x') < 0); // ... holding the whole packet
        Assert.Equal(0x45, buffers[0][16]);
        Assert.Same(own[1], buffers[1]); // the small one stays in the caller's buffer
        Assert.Equal(20 + 8 + 5, sizes[1]);
        Assert.Equal(0, tun.ReadDropped);
    }

    [InteropFact]
    public void LinuxUdpBind_OversizePool_DatagramsLargerThanBuffer_DeliveredWholeAndInOrder()
    {
        using var sender = LinuxUdpBind.Open(0);
        using var receiver = LinuxUdpBind.Open(0);
        receiver.SetBufferSizes(4 << 20);
        var oversize = new PacketBufferPool(8L * LargeSize, LargeSize);
        receiver.OversizePool = oversize;
        var lengths = new[] { 10, 3000, 60000, 20, 34784, 2048, 2049, 65507 };
        var payloads = lengths.Select((n, i) => Enumerable.Range(0, n).Select(k => (byte)(k * 7 + i)).ToArray()).ToArray();
        var destination = UdpEndpoint.Parse($"127.0.0.1:{receiver.LocalPort}");
        for (var i = 0; i < payloads.Length; i++)
        {
            Assert.Equal(1, sender.Send([payloads[i]], [payloads[i].Length], 0, 1, destination)); // one by one: GSO would merge equal sizes
        }

        var own = Enumerable.Range(0, 16).Select(_ => new byte[2048]).ToArray();
        var received = new List<byte[]>();
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(10);
        while (received.Count < payloads.Length && DateTime.UtcNow < deadline)
        {
            var buffers = (byte[][])own.Clone();
            var sizes = new int[buffers.Length];
            var n = receiver.Receive(buffers, sizes, new UdpEndpoint[buffers.Length]);
            for (var i = 0; i < n; i++)
            {
                received.Add(buffers[i].AsSpan(0, sizes[i]).ToArray());
                Assert.Equal(sizes[i] > 2048, buffers[i].Length == LargeSize); // swapped exactly when it did not fit
                if (!ReferenceEquals(buffers[i], own[i]))
                {
                    oversize.Return(buffers[i]);
                }
            }
        }

        Assert.Equal(payloads.Length, received.Count);
        for (var i = 0; i < payloads.Length; i++)
        {
            Assert.True(payloads[i].AsSpan().SequenceEqual(received[i]), $"datagram {i} ({lengths[i]} bytes) differs");
        }

        Assert.Equal(0, receiver.ReceiveDropped);
        Assert.Equal(0, oversize.InUse);
    }

    [InteropFact]
    public void LinuxUdpBind_OversizePoolSpent_BigDatagramDroppedAndCountedOthersDelivered()
    {
        using var sender = LinuxUdpBind.Open(0);
        using var receiver = LinuxUdpBind.Open(0);
        var oversize = new PacketBufferPool(LargeSize, LargeSize);
        Assert.True(oversize.TryRent(out var held)); // the budget is spent
        receiver.OversizePool = oversize;
        var destination = UdpEndpoint.Parse($"127.0.0.1:{receiver.LocalPort}");
        sender.Send([new byte[5000], new byte[10]], [5000, 10], 0, 2, destination);
        var sizes = new int[2];

        var n = receiver.Receive([new byte[2048], new byte[2048]], sizes, new UdpEndpoint[2]);

        Assert.Equal(1, n);
        Assert.Equal(10, sizes[0]);
        Assert.Equal(1, receiver.ReceiveDropped);
        oversize.Return(held);
    }
}
