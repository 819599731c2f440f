using System.Runtime.CompilerServices;

namespace Sharptun.Interop.Tests;

/// <summary>
/// The NativeAOT daemon (issue 12 point 5): <c>dotnet publish -c Release src/Sharptun.Cli</c> on a machine with clang
/// builds the native <c>sharptun</c> executable with no AOT or trim warning, and that executable (not
/// <c>dotnet sharptun.dll</c>, which the other interop tests run) handshakes with wireguard-go and carries TCP both
/// ways. Only this test pays for the native compile (about a minute of CI time).
/// </summary>
[System.Runtime.Versioning.SupportedOSPlatform("linux")]
public sealed class NativeAotInteropTests
{
    private static readonly TimeSpan PublishTimeout = TimeSpan.FromMinutes(10);

    [InteropFact("wireguard-go", "wg", "iperf3", "ping", "dotnet", "clang")]
    public void NativeSharptun_PublishedWithoutWarnings_TunnelsWithWireguardGo()
    {
        using var lab = new NetnsLab();
        var output = Path.Combine(lab.TempDirectory, "publish");
        var project = Path.Combine(FindRepositoryRoot(), "src", "Sharptun.Cli");

        var publish = lab.Exec(null, PublishTimeout, "dotnet", "publish", project, "-c", "Release", "-o", output);

        Assert.True(publish.Success, publish.ToString());
        var warnings = publish.Stdout.Split('\n').Where(l => l.Contains(": warning ", StringComparison.Ordinal)).ToArray();
        Assert.True(warnings.Length == 0, "publish warnings:\n" + string.Join("\n", warnings));
        // A native executable and no sharptun.dll: a JIT publish would leave the assembly beside its apphost.
        var executable = Path.Combine(output, "sharptun");
        Assert.Equal("\u007fELF"u8.ToArray(), File.ReadAllBytes(executable)[..4]);
        Assert.False(File.Exists(Path.Combine(output, "sharptun.dll")), "a JIT build was published");
        Assert.True(File.Exists(Path.Combine(output, "libsodium.so")), "libsodium (X25519) is not beside the executable");

        var t = WgTunnel.Create(lab, WgImpl.Sharptun, WgImpl.WireguardGo, new WgTunnelOptions { SharptunExecutable = executable });

        // `ip netns exec` execs the daemon in place: the process image is the native executable, not dotnet.
        Assert.Equal(executable, new FileInfo($"/proc/{t.A.Process!.Id}/exe").LinkTarget);
        t.PingOrFail(t.A, t.B.TunnelV4);
        Assert.NotEqual(0, t.LatestHandshake(t.A));
        var up = Iperf.Run(lab, t.B.Namespace, t.A.Namespace, t.B.TunnelV4, seconds: 3);
        var down = Iperf.Run(lab, t.B.Namespace, t.A.Namespace, t.B.TunnelV4, seconds: 3, reverse: true);
        Assert.True(up.ReceivedBytes > 1_000_000, $"native sharptun -> wireguard-go: {up}\n{t.Describe()}");
        Assert.True(down.ReceivedBytes > 1_000_000, $"wireguard-go -> native sharptun: {down}\n{t.Describe()}");
    }

    private static string FindRepositoryRoot([CallerFilePath] string sourceFile = "")
    {
        for (var dir = Path.GetDirectoryName(sourceFile); dir is not null; dir = Path.GetDirectoryName(dir))
        {
            if (File.Exists(Path.Combine(dir, "Sharptun.slnx")))
            {
                return dir;
            }
        }

        throw new InvalidOperationException($"no Sharptun.slnx above {sourceFile}");
    }
}
