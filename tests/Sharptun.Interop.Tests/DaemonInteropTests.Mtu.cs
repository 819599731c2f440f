using System.Buffers.Binary;
using System.Diagnostics;
using System.Globalization;
using System.Net;
using System.Net.Sockets;
using System.Security.Cryptography;
using System.Runtime.Versioning;

namespace Sharptun.Interop.Tests;

/// <summary>
/// Jumbo inner MTUs (issue 7 item 4): both TUNs at 34736 with the outer link at 65535 (as loopback, so the
/// 34,784-byte datagrams are not fragmented), set with <c>ip link set mtu</c> after the daemons started (as wg-quick
/// does, so the daemon must follow MTU changes at run time); 1 GiB of TCP each way, and MTU changes while a
/// transfer runs. wireguard-go handles any MTU up to 65535.
/// </summary>
[SupportedOSPlatform("linux")]
public sealed class DaemonMtuInteropTests
{
    private const int JumboMtu = 34736;
    private const long OneGiB = 1L << 30;

    [InteropTheory("wireguard-go", "wg", "ping")]
    [MemberData(nameof(WgTunnel.Pairs), MemberType = typeof(WgTunnel))]
    public void JumboMtu_OneGibTcpEachWay_ArrivesIntact(WgImpl a, WgImpl b)
    {
        using var lab = new NetnsLab();
        var t = CreateJumboTunnel(lab, a, b);

        // A ping that needs the whole MTU, unfragmented (DF), both ways.
        PingFull(t, t.A, t.B.TunnelV4, JumboMtu);
        PingFull(t, t.B, t.A.TunnelV4, JumboMtu);

        foreach (var (from, to) in new[] { (t.A, t.B), (t.B, t.A) })
        {
            var clock = Stopwatch.StartNew();
            var (sent, received, sentHash, receivedHash) = HashedTransfer(from, to, OneGiB);
            Console.WriteLine($"{a}->{b} MTU {JumboMtu} {from.Impl}->{to.Impl}: 1 GiB in {clock.Elapsed.TotalSeconds:0.0} s ({sent * 8 / clock.Elapsed.TotalSeconds / 1e6:0} Mbit/s)");
            Assert.Equal(OneGiB, sent);
            Assert.Equal(OneGiB, received);
            Assert.Equal(Convert.ToHexString(sentHash), Convert.ToHexString(receivedHash));
        }
    }

    [InteropTheory("wireguard-go", "wg", "iperf3", "ping")]
    [MemberData(nameof(WgTunnel.Pairs), MemberType = typeof(WgTunnel))]
    public void MtuLoweredAndRaisedDuringTransfer_TrafficKeepsFlowing(WgImpl a, WgImpl b)
    {
        const int seconds = 15;
        using var lab = new NetnsLab();
        var t = CreateJumboTunnel(lab, a, b);
        PingFull(t, t.A, t.B.TunnelV4, JumboMtu);

        // A sends to B; the MTU changes on both sides every few seconds: jumbo -> 1280 -> 9000 -> jumbo.
        var (client, _) = Iperf.Start(lab, t.B.Namespace, t.A.Namespace, t.B.TunnelV4, seconds);
        var clock = Stopwatch.StartNew();
        foreach (var (at, mtu) in new[] { (3, 1280), (6, 9000), (9, JumboMtu), (12, 1420) })
        {
            var wait = TimeSpan.FromSeconds(at) - clock.Elapsed;
            if (wait > TimeSpan.Zero)
            {
                Thread.Sleep(wait);
            }

            lab.SetMtu(t.A.Namespace, t.A.Interface, mtu);
            lab.SetMtu(t.B.Namespace, t.B.Interface, mtu);
        }

        var result = Iperf.Finish(lab, client, seconds);
        Console.WriteLine($"{a}->{b} MTU changes during transfer: {result}");

        // Every second moved data: no size the MTU went through stalls TCP.
        Assert.True(result.IntervalBytes.Length >= seconds, result.ToString());
        Assert.True(result.IntervalBytes.All(bytes => bytes > 0), $"a stalled second: {result}\n{t.Describe()}");

        // After raising it again, the full jumbo size passes both ways.
        lab.SetMtu(t.A.Namespace, t.A.Interface, JumboMtu);
        lab.SetMtu(t.B.Namespace, t.B.Interface, JumboMtu);
        PingFull(t, t.A, t.B.TunnelV4, JumboMtu);
        PingFull(t, t.B, t.A.TunnelV4, JumboMtu);
    }

    /// <summary>
    /// Sends <paramref name="total"/> bytes over TCP through the tunnel from <paramref name="from"/> to <paramref name="to"/>
    /// (sockets created inside the namespaces, so the data really crosses both daemons) and hashes both ends' bytes.
    /// </summary>
    internal static (long Sent, long Received, byte[] SentHash, byte[] ReceivedHash) HashedTransfer(WgSide from, WgSide to, long total)
    {
        using var listener = NetnsLab.RunInNamespace(to.Namespace, () =>
        {
            var l = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
            l.Bind(new IPEndPoint(IPAddress.Parse(to.TunnelV4), 0));
            l.Listen(1);
            return l;
        });
        using var client = NetnsLab.RunInNamespace(from.Namespace, () => new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp));
        client.Connect(listener.LocalEndPoint!);
        using var server = listener.Accept();
        server.ReceiveTimeout = 60_000; // a stall fails the test instead of hanging it
        client.SendTimeout = 60_000;

        var receiver = Task.Run(() =>
        {
            using var hash = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
            var buffer = new byte[1 << 20];
            long received = 0;
            int n;
            while ((n = server.Receive(buffer)) > 0)
            {
                hash.AppendData(buffer, 0, n);
                received += n;
            }

            return (received, hash.GetHashAndReset());
        });

        using var sentHash = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
        var chunk = new byte[1 << 20];
        RandomNumberGenerator.Fill(chunk);
        long sent = 0;
        for (long index = 0; sent < total; index++)
        {
            BinaryPrimitives.WriteInt64LittleEndian(chunk, index); // no two chunks alike: a lost or repeated one changes the hash
            var length = (int)Math.Min(chunk.Length, total - sent);
            client.Send(chunk, 0, length, SocketFlags.None);
            sentHash.AppendData(chunk, 0, length);
            sent += length;
        }

        client.Shutdown(SocketShutdown.Send);
        Assert.True(receiver.Wait(TimeSpan.FromSeconds(120)), "the receiver did not see the end of the stream");
        var (receivedBytes, receivedHash) = receiver.Result;
        return (sent, receivedBytes, sentHash.GetHashAndReset(), receivedHash);
    }

    private static WgTunnel CreateJumboTunnel(NetnsLab lab, WgImpl a, WgImpl b)
    {
        var t = WgTunnel.Create(lab, a, b);
        lab.SetMtu(t.A.Namespace, t.A.Veth, 65535);
        lab.SetMtu(t.B.Namespace, t.B.Veth, 65535);
        lab.SetMtu(t.A.Namespace, t.A.Interface, JumboMtu);
        lab.SetMtu(t.B.Namespace, t.B.Interface, JumboMtu);
        t.PingOrFail(t.A, t.B.TunnelV4);
        return t;
    }

    /// <summary>Pings with a packet of exactly <paramref name="mtu"/> bytes and DF set (no fragmentation inside the tunnel).</summary>
    private static void PingFull(WgTunnel t, WgSide from, string target, int mtu)
    {
        var payload = (mtu - 28).ToString(CultureInfo.InvariantCulture); // IPv4 20 + ICMP 8
        var result = t.Lab.Exec(from.Namespace, TimeSpan.FromSeconds(30), "ping", "-c", "1", "-w", "15", "-M", "do", "-s", payload, target);
        Assert.True(result.Success, $"{mtu}-byte ping from {from}: {result}\n{t.Describe()}");
    }
}
