using System.Diagnostics;

namespace Sharptun.Interop.Tests;

/// <summary>
/// Starts and stops <c>sharptun</c> in daemon mode (the wireguard-go command line) inside lab namespaces, for the
/// wg / wg-quick tests. The CLI assembly sits next to the test assembly; it runs as <c>dotnet sharptun.dll</c>.
/// Dispose stops every daemon it started that is still running (deleting a namespace does not: a process inside
/// keeps the namespace, and with it the TUN, alive).
/// </summary>
[System.Runtime.Versioning.UnsupportedOSPlatform("windows")]
public sealed class SharptunDaemon : IDisposable
{
    private readonly NetnsLab _lab;
    private readonly List<string> _interfaces = [];

    public SharptunDaemon(NetnsLab lab) => _lab = lab;

    /// <summary>Path of the CLI assembly.</summary>
    public static string DllPath => Path.Combine(AppContext.BaseDirectory, "sharptun.dll");

    /// <summary>Path of the test daemon (tests/Sharptun.TestDaemon): the CLI with a <c>--time-scale N</c> option in front.</summary>
    public static string TestDaemonDllPath => Path.Combine(AppContext.BaseDirectory, "sharptun-testdaemon.dll");

    /// <summary>Where the UAPI socket of <paramref name="ifname"/> lives.</summary>
    public static string SocketPath(string ifname) => $"/var/run/wireguard/{ifname}.sock";

    /// <summary>Runs <c>sharptun IFNAME</c> in <paramref name="ns"/>: returns when the parent exits (daemon detached).</summary>
    public CommandResult Start(string ns, string ifname)
    {
        _interfaces.Add(ifname);
        return _lab.Exec(ns, TimeSpan.FromSeconds(60), "dotnet", DllPath, ifname);
    }

    /// <summary>Starts a daemon and asserts it came up.</summary>
    public void StartOrFail(string ns, string ifname)
    {
        var result = Start(ns, ifname);
        Assert.True(result.Success, result.ToString());
        Assert.True(File.Exists(SocketPath(ifname)), $"no socket after {result}");
    }

    /// <summary>
    /// Writes an executable wrapper that runs the CLI (<c>WG_QUICK_USERSPACE_IMPLEMENTATION</c> must name an
    /// executable) and returns its path.
    /// </summary>
    public string WriteWrapperScript()
    {
        var path = Path.Combine(_lab.TempDirectory, "sharptun-wrapper");
        var dotnet = InteropEnvironment.FindTool("dotnet") ?? "dotnet";
        File.WriteAllText(path, $"#!/bin/sh\nexec {dotnet} {DllPath} \"$@\"\n");
        File.SetUnixFileMode(path, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute | UnixFileMode.GroupRead | UnixFileMode.GroupExecute | UnixFileMode.OtherRead | UnixFileMode.OtherExecute);
        return path;
    }

    /// <summary>Remembers an interface started some other way (wg-quick) so Dispose stops its daemon.</summary>
    public void Track(string ifname) => _interfaces.Add(ifname);

    /// <summary>The pid of the daemon serving <paramref name="ifname"/>, or null.</summary>
    public static int? FindPid(string ifname)
    {
        foreach (var dir in Directory.EnumerateDirectories("/proc"))
        {
            if (!int.TryParse(Path.GetFileName(dir), out var pid))
            {
                continue;
            }

            string cmdline;
            try
            {
                cmdline = File.ReadAllText(Path.Combine(dir, "cmdline"));
            }
            catch (IOException)
            {
                continue;
            }
            catch (UnauthorizedAccessException)
            {
                continue;
            }

            var args = cmdline.Split('\0', StringSplitOptions.RemoveEmptyEntries);
            if (args.Any(a => a.EndsWith("sharptun.dll", StringComparison.Ordinal)) && args[^1] == ifname)
            {
                return pid;
            }
        }

        return null;
    }

    /// <summary>Sends SIGTERM to the daemon of <paramref name="ifname"/>.</summary>
    public static void Terminate(string ifname)
    {
        if (FindPid(ifname) is { } pid)
        {
            Process.Start("kill", ["-TERM", pid.ToString(System.Globalization.CultureInfo.InvariantCulture)])!.WaitForExit();
        }
    }

    /// <summary>Sends SIGKILL to the daemon of <paramref name="ifname"/> (leaves its socket file behind).</summary>
    public static void KillHard(string ifname)
    {
        if (FindPid(ifname) is { } pid)
        {
            using var process = Process.GetProcessById(pid);
            process.Kill();
            process.WaitForExit(10_000);
        }
    }

    /// <summary>Waits until no daemon serves <paramref name="ifname"/>.</summary>
    public static void WaitForExit(string ifname, TimeSpan timeout) =>
        NetnsLab.WaitUntil(() => FindPid(ifname) is null, timeout, $"sharptun daemon for {ifname} to exit");

    public void Dispose()
    {
        foreach (var ifname in _interfaces)
        {
            Terminate(ifname);
        }

        foreach (var ifname in _interfaces)
        {
            try
            {
                WaitForExit(ifname, TimeSpan.FromSeconds(10));
            }
            catch (TimeoutException)
            {
                KillHard(ifname);
            }

            if (File.Exists(SocketPath(ifname)))
            {
                File.Delete(SocketPath(ifname));
            }
        }
    }
}
