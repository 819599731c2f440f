using System.Globalization;
using System.Runtime.Versioning;

namespace Sharptun.Interop.Tests;

/// <summary>
/// 2 % random loss of the outer UDP packets (nftables <c>numgen random</c> in B's namespace, both directions) during an
/// iperf3 run: the tunnel stays up and TCP inside it completes the transfer.
/// </summary>
[SupportedOSPlatform("linux")]
public sealed class DaemonLossInteropTests
{
    private const int IperfSeconds = 3;

    [InteropTheory("wireguard-go", "wg", "iperf3", "nft", "ping")]
    [MemberData(nameof(WgTunnel.AllPairs), MemberType = typeof(WgTunnel))]
    public void TwoPercentOuterLoss_Iperf3CompletesAndTunnelStaysUp(WgImpl a, WgImpl b)
    {
        using var lab = new NetnsLab();
        var t = WgTunnel.Create(lab, a, b);
        t.PingOrFail(t.A, t.B.TunnelV4);
        var ns = t.B.Namespace;
        var port = t.B.ListenPort.ToString(CultureInfo.InvariantCulture);
        lab.Check(ns, "nft", "add", "table", "inet", "lossy");
        lab.Check(ns, "nft", "add", "chain", "inet", "lossy", "in", "{ type filter hook input priority 0 ; }");
        lab.Check(ns, "nft", "add", "chain", "inet", "lossy", "out", "{ type filter hook output priority 0 ; }");
        lab.Check(ns, "nft", "add", "rule", "inet", "lossy", "in", "udp", "dport", port, "numgen", "random", "mod", "100", "<", "2", "counter", "drop");
        lab.Check(ns, "nft", "add", "rule", "inet", "lossy", "out", "udp", "sport", port, "numgen", "random", "mod", "100", "<", "2", "counter", "drop");

        var result = Iperf.Run(lab, t.B.Namespace, t.A.Namespace, t.B.TunnelV4, IperfSeconds);

        var counters = lab.Check(ns, "nft", "list", "table", "inet", "lossy").Stdout;
        Console.WriteLine($"{a}->{b} with 2% loss: {result}\n{counters}");
        Assert.True(result.ReceivedBytes > 100_000, $"{result}\n{t.Describe()}");
        Assert.DoesNotContain("counter packets 0 ", counters, StringComparison.Ordinal); // the loss really happened
        t.PingOrFail(t.A, t.B.TunnelV4, deadlineSeconds: 10);
    }
}
