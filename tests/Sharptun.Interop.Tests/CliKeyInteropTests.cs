using System.Diagnostics;

namespace Sharptun.Interop.Tests;

/// <summary>Keys piped both ways between the real <c>wg</c> tool and <c>sharptun</c> (run as a process).</summary>
public sealed class CliKeyInteropTests
{
    [InteropFact("wg")]
    public void WgGenKey_SharptunPubKey_EqualsWgPubKey()
    {
        for (var i = 0; i < 5; i++)
        {
            var priv = Run(Wg(), ["genkey"], string.Empty);
            var ours = Run("dotnet", [SharptunDll(), "pubkey"], priv);
            var theirs = Run(Wg(), ["pubkey"], priv);
            Assert.Equal(theirs, ours);
        }
    }

    [InteropFact("wg")]
    public void SharptunGenKey_WgPubKey_EqualsSharptunPubKey()
    {
        for (var i = 0; i < 5; i++)
        {
            var priv = Run("dotnet", [SharptunDll(), "genkey"], string.Empty);
            var theirs = Run(Wg(), ["pubkey"], priv);
            var ours = Run("dotnet", [SharptunDll(), "pubkey"], priv);
            Assert.Equal(theirs, ours);
        }
    }

    [InteropFact("wg")]
    public void SharptunGenPsk_AcceptedByWgAsKey()
    {
        // wg pubkey accepts any 32-byte base64 key, so it validates genpsk's format byte for byte.
        var psk = Run("dotnet", [SharptunDll(), "genpsk"], string.Empty);
        Assert.Equal(45, psk.Length);
        Run(Wg(), ["pubkey"], psk);
    }

    private static string Wg() => InteropEnvironment.FindTool("wg") ?? "wg";

    private static string SharptunDll()
    {
        var path = Path.Combine(AppContext.BaseDirectory, "sharptun.dll");
        Assert.True(File.Exists(path), $"{path} not found (Interop.Tests references Sharptun.Cli)");
        return path;
    }

    private static string Run(string file, string[] args, string stdin)
    {
        var psi = new ProcessStartInfo(file)
        {
            RedirectStandardInput = true,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        foreach (var a in args)
        {
            psi.ArgumentList.Add(a);
        }

        using var process = Process.Start(psi)!;
        process.StandardInput.Write(stdin);
        process.StandardInput.Close();
        var stdoutTask = process.StandardOutput.ReadToEndAsync();
        var stderr = process.StandardError.ReadToEnd();
        Assert.True(process.WaitForExit(30_000), $"{file} {string.Join(' ', args)} timed out");
        var stdout = stdoutTask.GetAwaiter().GetResult();
        Assert.True(process.ExitCode == 0, $"{file} {string.Join(' ', args)} exited {process.ExitCode}: {stderr}");
        return stdout;
    }
}
