using System.Runtime.Versioning;

namespace Sharptun.Interop.Tests;

/// <summary>
/// Rekeying under traffic (whitepaper §6.2, §6.4): sharptun daemons run with <c>SHARPTUN_TIME_SCALE=40</c>, so
/// RekeyAfterTime (120 s) passes every 3 s of real time and RejectAfterTime (180 s) after 4.5 s; an iperf3 transfer
/// across several rekeys completes without a stall, and the handshake time in <c>wg show</c> keeps advancing.
/// wireguard-go (mixed pair) runs at real speed: it answers the initiations sharptun sends.
/// </summary>
[SupportedOSPlatform("linux")]
public sealed class DaemonRekeyInteropTests
{
    private const double TimeScale = 40;
    private const int IperfSeconds = 9;

    [InteropTheory("wireguard-go", "wg", "iperf3", "ping")]
    [MemberData(nameof(WgTunnel.Pairs), MemberType = typeof(WgTunnel))]
    public void TransferPastRekeyAfterTime_NewKeypairsAndTransferCompletesWithoutStall(WgImpl a, WgImpl b)
    {
        using var lab = new NetnsLab();
        var env = new Dictionary<string, string> { ["SHARPTUN_TIME_SCALE"] = TimeScale.ToString(System.Globalization.CultureInfo.InvariantCulture) };
        var t = WgTunnel.Create(lab, a, b, new WgTunnelOptions { SharptunEnvironment = env });
        t.PingOrFail(t.A, t.B.TunnelV4);
        var handshakes = new SortedSet<long> { t.LatestHandshake(t.A) };

        var (client, _) = Iperf.Start(lab, t.B.Namespace, t.A.Namespace, t.B.TunnelV4, IperfSeconds);
        while (!client.HasExited)
        {
            handshakes.Add(t.LatestHandshake(t.A));
            Thread.Sleep(300);
        }

        var result = Iperf.Finish(lab, client, IperfSeconds);
        handshakes.Add(t.LatestHandshake(t.A));

        Console.WriteLine($"{a}->{b} rekeying every {120 / TimeScale:0.#} s: {result}; handshake times {string.Join(' ', handshakes)}");

        // Initial handshake + at least two rekeys in 9 s (RekeyAfterTime = 3 s real).
        Assert.True(handshakes.Count >= 3, $"handshake times {string.Join(' ', handshakes)}\n{t.Describe()}");

        // No second of the transfer stalls (a lost keypair switch would stop TCP until its RTO backs off).
        Assert.True(result.IntervalBytes.Length >= IperfSeconds, result.ToString());
        var median = result.IntervalBytes.Order().ElementAt(result.IntervalBytes.Length / 2);
        Assert.True(result.IntervalBytes.All(bytes => bytes > median / 10), $"a stalled second: {result}\n{t.Describe()}");
        t.PingOrFail(t.A, t.B.TunnelV4, deadlineSeconds: 5);
    }
}
