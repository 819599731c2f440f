using System.Diagnostics;
using System.Globalization;
using System.Runtime.Versioning;

namespace Sharptun.Interop.Tests;

/// <summary>
/// Running a .NET program as an ordinary user in the interop tests: uid/gid 65534 through setpriv (no groups, no
/// capabilities: no TUN, no root), from a copy of its build output that 65534 can read (the artifacts folder may sit
/// under /root), with a HOME of its own (owned by 65534, mode 0700, as a user's home is).
/// </summary>
[SupportedOSPlatform("linux")]
internal static class Unprivileged
{
    /// <summary>The uid and gid the programs run as ("nobody").</summary>
    public const int Id = 65534;

    private const string CopyPrefix = "sharptun-interop-cli-";

    private static readonly UnixFileMode Readable = (UnixFileMode)0b111_101_101;

    private static readonly Lazy<string> TestOutput = new(() =>
    {
        // The CLI (sharptun.dll) and sharptun-testdaemon.dll with their dependencies sit next to the test assembly.
        var target = Path.Combine(Path.GetTempPath(), $"{CopyPrefix}{Environment.ProcessId}");
        SweepCopiesOfEndedRuns();
        CopyProgram(AppContext.BaseDirectory, target, relative =>
            relative.EndsWith(".dll", StringComparison.Ordinal) || relative.EndsWith(".json", StringComparison.Ordinal) || relative.StartsWith("runtimes", StringComparison.Ordinal));
        return target;
    });

    /// <summary>
    /// The test's build output (the CLI <c>sharptun.dll</c>, <c>sharptun-testdaemon.dll</c>, their dependencies and
    /// native libraries) copied once per test run to a folder under the temp folder that 65534 can read (the copies of
    /// runs whose test host has ended are deleted when the next run makes its own).
    /// </summary>
    public static string TestOutputCopy => TestOutput.Value;

    /// <summary>The dotnet host with its links resolved (so 65534 runs the real file, wherever the link points).</summary>
    public static string Dotnet
    {
        get
        {
            var dotnet = InteropEnvironment.FindTool("dotnet") ?? throw new InvalidOperationException("dotnet is not on PATH");
            return new FileInfo(dotnet).ResolveLinkTarget(returnFinalTarget: true)?.FullName ?? dotnet;
        }
    }

    /// <summary>
    /// setpriv's arguments that run <c>dotnet DLL ARGS</c> as 65534 with no groups and no capabilities, with
    /// <paramref name="home"/> as HOME and the dotnet host's first-run chatter off.
    /// </summary>
    public static string[] DotnetCommand(string home, string dll, params string[] args) =>
    [
        $"--reuid={Id}", $"--regid={Id}", "--clear-groups", "--inh-caps=-all", "--",
        "env", "HOME=" + home, "DOTNET_CLI_HOME=" + home, "DOTNET_NOLOGO=1", "DOTNET_CLI_TELEMETRY_OPTOUT=1",
        Dotnet, dll, .. args,
    ];

    /// <summary>
    /// Copies a program's build output (every file under <paramref name="source"/> whose relative path
    /// <paramref name="include"/> accepts; all without it) to <paramref name="target"/>: folders 0755, files readable by all.
    /// </summary>
    public static void CopyProgram(string source, string target, Func<string, bool>? include = null)
    {
        Directory.CreateDirectory(target);
        foreach (var f in Directory.GetFiles(source, "*", SearchOption.AllDirectories))
        {
            var relative = Path.GetRelativePath(source, f);
            if (include is not null && !include(relative))
            {
                continue;
            }

            var to = Path.Combine(target, relative);
            Directory.CreateDirectory(Path.GetDirectoryName(to)!);
            File.Copy(f, to, overwrite: true);
            File.SetUnixFileMode(to, File.GetUnixFileMode(to) | UnixFileMode.UserRead | UnixFileMode.GroupRead | UnixFileMode.OtherRead);
        }

        foreach (var d in Directory.GetDirectories(target, "*", SearchOption.AllDirectories).Append(target))
        {
            File.SetUnixFileMode(d, Readable);
        }
    }

    /// <summary>A folder 65534 can list and enter (0755), created if missing.</summary>
    public static string ReadableDirectory(string path)
    {
        Directory.CreateDirectory(path);
        File.SetUnixFileMode(path, Readable);
        return path;
    }

    /// <summary>
    /// Makes <paramref name="path"/> and every folder above it, up to the temp folder, searchable by others (a lab's
    /// folder is 0700 under some umasks), so 65534 can reach what lies below.
    /// </summary>
    public static void OpenWayDown(string path)
    {
        for (var d = path; d != "/" && d != Path.GetTempPath().TrimEnd('/'); d = Path.GetDirectoryName(d)!)
        {
            File.SetUnixFileMode(d, File.GetUnixFileMode(d) | UnixFileMode.OtherExecute | UnixFileMode.GroupExecute);
        }
    }

    /// <summary>Gives <paramref name="home"/> and everything in it (configs written by the test) to 65534; the folder 0700.</summary>
    public static void OwnHome(NetnsLab lab, string home)
    {
        lab.Check(null, "chown", "-R", $"{Id}:{Id}", home);
        File.SetUnixFileMode(home, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);
    }

    /// <summary>
    /// "UID GID" (the effective ids, read from /proc) of the first process named dotnet among <paramref name="pid"/>
    /// and its descendants (setpriv and env exec it; <c>ip netns exec</c> may fork first), once it runs;
    /// <see langword="null"/> after <paramref name="timeout"/> or once <paramref name="stop"/> says so.
    /// </summary>
    public static string? WaitForDotnetIds(int pid, TimeSpan timeout, Func<bool>? stop = null)
    {
        var deadline = Stopwatch.StartNew();
        while (deadline.Elapsed < timeout && stop?.Invoke() != true)
        {
            foreach (var process in Descendants(pid).Prepend(pid))
            {
                try
                {
                    var status = File.ReadAllLines($"/proc/{process}/status");
                    if (status.Any(l => l == "Name:\tdotnet"))
                    {
                        static string Effective(string line) => line.Split('\t', StringSplitOptions.RemoveEmptyEntries)[2];
                        return Effective(status.Single(l => l.StartsWith("Uid:", StringComparison.Ordinal))) + " " +
                            Effective(status.Single(l => l.StartsWith("Gid:", StringComparison.Ordinal)));
                    }
                }
                catch (IOException)
                {
                    // exited between the listing and the read
                }
            }

            Thread.Sleep(20);
        }

        return null;
    }

    /// <summary>Deletes the test-output copies of earlier runs whose process is gone (the test host is often killed, not ended).</summary>
    private static void SweepCopiesOfEndedRuns()
    {
        foreach (var directory in Directory.GetDirectories(Path.GetTempPath(), CopyPrefix + "*"))
        {
            if (int.TryParse(Path.GetFileName(directory).AsSpan(CopyPrefix.Length), NumberStyles.None, CultureInfo.InvariantCulture, out var pid)
                && !Directory.Exists($"/proc/{pid}"))
            {
                try
                {
                    Directory.Delete(directory, recursive: true);
                }
                catch (IOException)
                {
                    // another run sweeping the same folder
                }
            }
        }
    }

    private static IEnumerable<int> Descendants(int pid)
    {
        try
        {
            return File.ReadAllText($"/proc/{pid}/task/{pid}/children").Split(' ', StringSplitOptions.RemoveEmptyEntries)
                .Select(p => int.Parse(p, CultureInfo.InvariantCulture)).SelectMany(c => Descendants(c).Prepend(c)).ToList();
        }
        catch (IOException)
        {
            return [];
        }
    }
}
