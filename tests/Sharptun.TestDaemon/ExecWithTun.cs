using System.Globalization;
using System.Runtime.InteropServices;
using Sharptun.Transport.Linux;

namespace Sharptun.TestDaemon;

/// <summary>
/// <c>sharptun-testdaemon exec-with-tun IFNAME PROGRAM ARGS...</c>: creates the TUN interface IFNAME (in the calling
/// network namespace), duplicates its descriptor to a number of at least <see cref="MinimumFd"/> without close-on-exec,
/// and execs PROGRAM with ARGS, every <c>{fd}</c> in them replaced by that number. So a test hands the daemon an open TUN
/// the way a parent process (a container runtime, a privileged launcher) would: <c>sharptun --tun-fd {fd} IFNAME</c>.
/// </summary>
internal static partial class ExecWithTun
{
    public const string Verb = "exec-with-tun";

    /// <summary>Low descriptors may belong to the runtime; the duplicate goes above them (F_DUPFD picks the lowest free one from here).</summary>
    private const int MinimumFd = 100;

    private const int F_DUPFD = 0;

    public static int Run(string[] args)
    {
        if (!OperatingSystem.IsLinux() || args.Length < 2)
        {
            Console.Error.WriteLine($"usage (Linux): sharptun-testdaemon {Verb} IFNAME PROGRAM ARGS...");
            return 2;
        }

        var tun = LinuxTun.Create(args[0], up: false);
        var fd = fcntl(tun.FileDescriptor, F_DUPFD, MinimumFd); // F_DUPFD: the duplicate has no FD_CLOEXEC
        if (fd < 0)
        {
            Console.Error.WriteLine($"fcntl(F_DUPFD) failed: errno {Marshal.GetLastPInvokeError()}");
            return 1;
        }

        var number = fd.ToString(CultureInfo.InvariantCulture);
        var argv = new string?[args.Length];
        for (var i = 1; i < args.Length; i++)
        {
            argv[i - 1] = args[i].Replace("{fd}", number, StringComparison.Ordinal);
        }

        argv[^1] = null;
        var program = args[1].Contains('/', StringComparison.Ordinal) ? args[1] : FindOnPath(args[1]);
        Console.Out.Flush();
        execv(program, argv);
        Console.Error.WriteLine($"execv({program}) failed: errno {Marshal.GetLastPInvokeError()}");
        GC.KeepAlive(tun);
        return 1;
    }

    private static string FindOnPath(string name)
    {
        foreach (var dir in (Environment.GetEnvironmentVariable("PATH") ?? "/usr/bin:/bin").Split(':'))
        {
            var candidate = Path.Combine(dir, name);
            if (File.Exists(candidate))
            {
                return candidate;
            }
        }

        return name;
    }

    [LibraryImport("libc", SetLastError = true)]
    private static partial int fcntl(int fd, int command, int argument);

    [LibraryImport("libc", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    private static partial int execv(string path, string?[] argv);
}
