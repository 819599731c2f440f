using System.Runtime.Versioning;

namespace Sharptun.Interop.Tests;

/// <summary>
/// Roaming (whitepaper §2.1, "Cryptokey Routing"; §6.5 endpoint update): one side's outer address changes while an
/// iperf3 transfer runs; the transfer continues and the other side's <c>wg show</c> endpoint follows the authenticated
/// packets. A (always sharptun) moves and B observes: the mixed pair checks that a sharptun sender whose source address
/// changes under it keeps wireguard-go's tunnel going, the sharptun pair also sharptun's endpoint update. (Debian's
/// wireguard-go 0.0.20220316 as the mover keeps sending from its remembered, deleted source address — "network is
/// unreachable" — until it receives a packet, and nothing reaches it at the old address: a deadlock of that version.)
/// </summary>
[SupportedOSPlatform("linux")]
public sealed class DaemonRoamingInteropTests
{
    private const int IperfSeconds = 5;

    [InteropTheory("wireguard-go", "wg", "iperf3", "ping")]
    [MemberData(nameof(WgTunnel.Pairs), MemberType = typeof(WgTunnel))]
    public void OuterAddressMovesMidTransfer_TransferContinuesAndPeerEndpointFollows(WgImpl a, WgImpl b)
    {
        using var lab = new NetnsLab();
        var t = WgTunnel.Create(lab, a, b);
        t.PingOrFail(t.A, t.B.TunnelV4);
        Assert.Equal(t.A.Endpoint, t.ShowField(t.B, "endpoints")[1]);
        var newAddress = t.Link.V4(3);

        // A sends (iperf3 client in A) so that its packets carry the new source address as soon as it exists.
        var (client, _) = Iperf.Start(lab, t.B.Namespace, t.A.Namespace, t.B.TunnelV4, IperfSeconds);
        Thread.Sleep(1500);

        // Move A: a new /32 on the veth, the old /24 gone, the link route re-added with the new source address.
        var ns = t.A.Namespace;
        lab.Check(ns, "ip", "addr", "add", newAddress + "/32", "dev", t.A.Veth);
        lab.Check(ns, "ip", "addr", "del", t.Link.V4Cidr(1), "dev", t.A.Veth);
        lab.Check(ns, "ip", "route", "add", t.Link.IPv4Prefix + ".0/24", "dev", t.A.Veth, "src", newAddress);
        var moved = DateTime.UtcNow;

        var result = Iperf.Finish(lab, client, IperfSeconds);

        Console.WriteLine($"{a}->{b} roaming: {result}");
        var expected = $"{newAddress}:{t.A.ListenPort}";
        Assert.True(expected == t.ShowField(t.B, "endpoints")[1], $"B's endpoint for A is not {expected}\n{t.Describe()}");
        Assert.True(result.IntervalBytes.Length >= IperfSeconds, result.ToString());
        Assert.True(result.IntervalBytes[^1] > 0, $"nothing moved in the last second after the move at {moved:HH:mm:ss.fff}: {result}\n{t.Describe()}");
        t.PingOrFail(t.B, t.A.TunnelV4, deadlineSeconds: 5);
    }
}
