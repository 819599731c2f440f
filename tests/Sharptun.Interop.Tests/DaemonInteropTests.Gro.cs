using System.Runtime.Versioning;

namespace Sharptun.Interop.Tests;

/// <summary>
/// Issue 12 item 2 (UDP half): daemons with UDP GRO on (the default) and off (<c>SHARPTUN_UDP_GRO=0</c>). Between two
/// sharptun daemons the sender's UDP GSO buffers cross the veth pair whole, so a GRO receiver gets them coalesced and
/// must cut them up; the TCP streams inside the tunnel are checked byte for byte (SHA-256 of both ends).
/// </summary>
[SupportedOSPlatform("linux")]
public sealed class DaemonGroInteropTests
{
    private const long TransferBytes = 48L << 20;

    [InteropTheory("wireguard-go", "wg", "ping")]
    [InlineData(WgImpl.Sharptun, WgImpl.Sharptun, "1")]
    [InlineData(WgImpl.Sharptun, WgImpl.Sharptun, "0")]
    [InlineData(WgImpl.Sharptun, WgImpl.WireguardGo, "1")]
    public void UdpGro_OnAndOff_HashedTcpTransferBothWaysIntact(WgImpl a, WgImpl b, string gro)
    {
        using var lab = new NetnsLab();
        var t = WgTunnel.Create(lab, a, b, new WgTunnelOptions
        {
            SharptunEnvironment = new Dictionary<string, string> { ["SHARPTUN_UDP_GRO"] = gro },
        });
        t.PingOrFail(t.A, t.B.TunnelV4);

        foreach (var (from, to) in new[] { (t.A, t.B), (t.B, t.A) })
        {
            var (sent, received, sentHash, receivedHash) = DaemonMtuInteropTests.HashedTransfer(from, to, TransferBytes);

            Assert.Equal(sent, received);
            Assert.True(sentHash.AsSpan().SequenceEqual(receivedHash), $"{from} -> {to}: the bytes differ\n{t.Describe()}");
        }

        var expected = gro == "0" ? "udp: gso on, gro off" : "udp: gso on, gro on";
        Assert.Contains(expected, lab.OutputOf(t.A.Process!), StringComparison.Ordinal);
        if (b == WgImpl.Sharptun)
        {
            Assert.Contains(expected, lab.OutputOf(t.B.Process!), StringComparison.Ordinal);
        }
    }

    [InteropFact]
    public void UdpGro_BadSwitchValue_ClearErrorAndExit1()
    {
        using var lab = new NetnsLab();
        var ns = lab.AddNamespace();
        var dotnet = InteropEnvironment.FindTool("dotnet") ?? "dotnet";
        var name = lab.NewInterfaceName('w');

        var result = lab.Exec(ns, TimeSpan.FromSeconds(60), "env", "SHARPTUN_UDP_GRO=maybe", dotnet, SharptunDaemon.DllPath, "-f", name);

        Assert.True(result.ExitCode == 1, result.ToString());
        Assert.Contains("SHARPTUN_UDP_GRO=`maybe': expected 0 or 1", result.Stderr, StringComparison.Ordinal);
        Assert.False(lab.Exec(ns, "ip", "link", "show", name).Success); // refused before creating anything
    }
}
