using System.Runtime.Versioning;

namespace Sharptun.Interop.Tests;

/// <summary>
/// The sharptun daemon's data path against wireguard-go and against itself: two namespaces joined by a veth, each with
/// one daemon configured only by <c>wg</c> and <c>ip</c>. Every test runs over three pairs (A, B): (sharptun, wireguard-go),
/// (sharptun, sharptun) and (wireguard-go, sharptun).
/// </summary>
[SupportedOSPlatform("linux")]
public sealed class DaemonConnectivityInteropTests
{
    private const int IperfSeconds = 3;

    [InteropTheory("wireguard-go", "wg", "ping")]
    [MemberData(nameof(WgTunnel.AllPairs), MemberType = typeof(WgTunnel))]
    public void Ping_FromA_AInitiatesHandshakeAndGetsReply(WgImpl a, WgImpl b)
    {
        using var lab = new NetnsLab();
        var t = WgTunnel.Create(lab, a, b);

        t.PingOrFail(t.A, t.B.TunnelV4);

        Assert.NotEqual(0, t.LatestHandshake(t.A));
        Assert.NotEqual(0, t.LatestHandshake(t.B));
        Assert.Equal(t.A.Endpoint, t.ShowField(t.B, "endpoints")[1]);
    }

    [InteropTheory("wireguard-go", "wg", "ping")]
    [MemberData(nameof(WgTunnel.AllPairs), MemberType = typeof(WgTunnel))]
    public void Ping_FromB_BInitiatesHandshakeAndGetsReply(WgImpl a, WgImpl b)
    {
        using var lab = new NetnsLab();
        var t = WgTunnel.Create(lab, a, b);

        t.PingOrFail(t.B, t.A.TunnelV4);

        Assert.NotEqual(0, t.LatestHandshake(t.A));
        Assert.Equal(t.B.Endpoint, t.ShowField(t.A, "endpoints")[1]);
    }

    [InteropTheory("wireguard-go", "wg", "ping")]
    [MemberData(nameof(WgTunnel.AllPairs), MemberType = typeof(WgTunnel))]
    public void Ping_ResponderWithoutEndpoint_LearnsEndpointFromInitiator(WgImpl a, WgImpl b)
    {
        using var lab = new NetnsLab();
        var t = WgTunnel.Create(lab, a, b, new WgTunnelOptions { EndpointOnB = false, UseSetconf = true });
        Assert.Equal("(none)", t.ShowField(t.B, "endpoints")[1]);

        t.PingOrFail(t.A, t.B.TunnelV4);

        Assert.Equal(t.A.Endpoint, t.ShowField(t.B, "endpoints")[1]);
        t.PingOrFail(t.B, t.A.TunnelV4, deadlineSeconds: 5);
    }

    [InteropTheory("wireguard-go", "wg", "iperf3")]
    [MemberData(nameof(WgTunnel.AllPairs), MemberType = typeof(WgTunnel))]
    public void Iperf3Tcp_AToB_CompletesWithNonzeroRate(WgImpl a, WgImpl b)
    {
        using var lab = new NetnsLab();
        var t = WgTunnel.Create(lab, a, b);
        t.PingOrFail(t.A, t.B.TunnelV4);

        var result = Iperf.Run(lab, t.B.Namespace, t.A.Namespace, t.B.TunnelV4, IperfSeconds);

        Console.WriteLine($"{a}->{b}: {result}");
        Assert.True(result.ReceivedBytes > 1_000_000, $"{result}\n{t.Describe()}");
    }

    [InteropTheory("wireguard-go", "wg", "iperf3")]
    [MemberData(nameof(WgTunnel.AllPairs), MemberType = typeof(WgTunnel))]
    public void Iperf3Tcp_BToA_CompletesWithNonzeroRate(WgImpl a, WgImpl b)
    {
        using var lab = new NetnsLab();
        var t = WgTunnel.Create(lab, a, b);
        t.PingOrFail(t.A, t.B.TunnelV4);

        var result = Iperf.Run(lab, t.B.Namespace, t.A.Namespace, t.B.TunnelV4, IperfSeconds, reverse: true);

        Console.WriteLine($"{b}->{a}: {result}");
        Assert.True(result.ReceivedBytes > 1_000_000, $"{result}\n{t.Describe()}");
    }

    [InteropTheory("wireguard-go", "wg", "ping")]
    [MemberData(nameof(WgTunnel.AllPairs), MemberType = typeof(WgTunnel))]
    public void Ping_IPv6InsideTunnel_GetsReplyBothWays(WgImpl a, WgImpl b)
    {
        using var lab = new NetnsLab();
        var t = WgTunnel.Create(lab, a, b);

        t.PingOrFail(t.A, t.B.TunnelV6);
        t.PingOrFail(t.B, t.A.TunnelV6, deadlineSeconds: 5);
    }

    [InteropTheory("wireguard-go", "wg", "ping")]
    [MemberData(nameof(WgTunnel.AllPairs), MemberType = typeof(WgTunnel))]
    public void Ping_IPv6OuterEndpoints_TunnelCarriesIPv4AndIPv6(WgImpl a, WgImpl b)
    {
        using var lab = new NetnsLab();
        var t = WgTunnel.Create(lab, a, b, new WgTunnelOptions { OuterIPv6 = true });

        t.PingOrFail(t.A, t.B.TunnelV4);
        t.PingOrFail(t.B, t.A.TunnelV6, deadlineSeconds: 5);

        Assert.Equal(t.A.Endpoint, t.ShowField(t.B, "endpoints")[1]);
        Assert.Equal(t.B.Endpoint, t.ShowField(t.A, "endpoints")[1]);
    }

    [InteropTheory("wireguard-go", "wg", "ping")]
    [MemberData(nameof(WgTunnel.AllPairs), MemberType = typeof(WgTunnel))]
    public void Ping_PresharedKeyOnBothSides_TunnelWorksAndKeyIsShown(WgImpl a, WgImpl b)
    {
        using var lab = new NetnsLab();
        var t = WgTunnel.Create(lab, a, b, new WgTunnelOptions { PresharedKey = true });

        t.PingOrFail(t.A, t.B.TunnelV4);

        Assert.Equal(t.PresharedKey, t.ShowField(t.A, "preshared-keys")[1]);
        Assert.Equal(t.PresharedKey, t.ShowField(t.B, "preshared-keys")[1]);
    }

    [InteropTheory("wireguard-go", "wg", "ping")]
    [MemberData(nameof(WgTunnel.AllPairs), MemberType = typeof(WgTunnel))]
    public void Handshake_PresharedKeyOnOneSideOnly_NoTunnel(WgImpl a, WgImpl b)
    {
        using var lab = new NetnsLab();
        var t = WgTunnel.Create(lab, a, b);
        var pskFile = Path.Combine(lab.TempDirectory, "psk");
        File.WriteAllText(pskFile, Convert.ToBase64String(System.Security.Cryptography.RandomNumberGenerator.GetBytes(32)) + "\n");
        lab.Check(t.A.Namespace, "wg", "set", t.A.Interface, "peer", t.B.PublicKey, "preshared-key", pskFile);

        var ping = t.Ping(t.A, t.B.TunnelV4, deadlineSeconds: 3);

        Assert.False(ping.Success, ping.ToString());
        Assert.Equal(0, t.LatestHandshake(t.A));
    }

    [InteropTheory("wireguard-go", "wg")]
    [MemberData(nameof(WgTunnel.AllPairs), MemberType = typeof(WgTunnel))]
    public void PersistentKeepalive_NoTraffic_HandshakeAndKeepalivesVisibleInWgShow(WgImpl a, WgImpl b)
    {
        using var lab = new NetnsLab();
        var t = WgTunnel.Create(lab, a, b, new WgTunnelOptions { KeepaliveA = 1 });

        Assert.Contains("persistent keepalive: every 1 second", lab.Check(t.A.Namespace, "wg", "show", t.A.Interface).Stdout, StringComparison.Ordinal);
        Assert.Equal("1", t.ShowField(t.A, "persistent-keepalive")[1]);

        // No packet enters either TUN: the keepalive alone makes A initiate a handshake ...
        var sw = System.Diagnostics.Stopwatch.StartNew();
        lab.WaitFor(() => t.LatestHandshake(t.A) != 0 && t.LatestHandshake(t.B) != 0, TimeSpan.FromSeconds(20), "a handshake without traffic\n" + t.Describe());
        var handshake = sw.Elapsed;

        // ... and B keeps receiving (32-byte keepalive messages count as transfer) while nothing is sent inside.
        var before = t.Transfer(t.B).Rx;
        lab.WaitFor(() => t.Transfer(t.B).Rx >= before + 2 * 32, TimeSpan.FromSeconds(15), "two more keepalives at B\n" + t.Describe());
        Console.WriteLine($"{a}->{b}: handshake {handshake.TotalSeconds:0.0} s after configuration, two more keepalives {(sw.Elapsed - handshake).TotalSeconds:0.0} s later");
    }
}
