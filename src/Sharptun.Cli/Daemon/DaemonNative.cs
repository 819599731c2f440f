using System.Runtime.InteropServices;
using System.Runtime.Versioning;

namespace Sharptun.Cli.Daemon;

/// <summary>The few libc calls the daemon needs to detach (source-generated, AOT-safe).</summary>
[SupportedOSPlatform("linux")]
internal static partial class DaemonNative
{
    private const int O_RDWR = 2;
    private const int O_CLOEXEC = 0x80000;
    private const int F_GETFD = 1;
    private const int F_SETFD = 2;
    private const int FD_CLOEXEC = 1;

    /// <summary>Starts a new session so the daemon has no controlling terminal (wireguard-go's Setsid).</summary>
    public static void StartNewSession() => setsid(); // fails only for a group leader, which a spawned child is not

    /// <summary>
    /// Sets the process umask to 077 (octal), so every file the daemon creates (the UAPI socket above all) is private
    /// to its owner from the start. Returns the previous mask.
    /// </summary>
    public static uint SetPrivateUmask() => umask(0x3F);

    /// <summary>Points stdin, stdout and stderr (or only stdin) at /dev/null.</summary>
    public static void RedirectStandardStreamsToNull(bool keepOutput)
    {
        var fd = open("/dev/null", O_RDWR | O_CLOEXEC);
        if (fd < 0)
        {
            return;
        }

        dup2(fd, 0);
        if (!keepOutput)
        {
            dup2(fd, 1);
            dup2(fd, 2);
        }

        close(fd);
    }

    /// <summary>Marks a descriptor close-on-exec (so a child process does not inherit it).</summary>
    public static void SetCloseOnExec(int fd)
    {
        var flags = fcntl(fd, F_GETFD, 0);
        if (flags >= 0)
        {
            fcntl(fd, F_SETFD, flags | FD_CLOEXEC);
        }
    }

    /// <summary>Writes all of <paramref name="data"/> to <paramref name="fd"/>, then closes it. Errors are ignored (the reader went away).</summary>
    public static unsafe void WriteAndClose(int fd, ReadOnlySpan<byte> data)
    {
        fixed (byte* p = data)
        {
            var done = 0;
            while (done < data.Length)
            {
                var n = write(fd, p + done, (nint)(data.Length - done));
                if (n <= 0)
                {
                    break;
                }

                done += (int)n;
            }
        }

        close(fd);
    }

    [LibraryImport("libc", SetLastError = true)]
    private static partial int setsid();

    [LibraryImport("libc")]
    private static partial uint umask(uint mask);

    [LibraryImport("libc", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    private static partial int open(string path, int flags);

    [LibraryImport("libc", SetLastError = true)]
    private static partial int dup2(int oldfd, int newfd);

    [LibraryImport("libc", SetLastError = true)]
    private static partial int close(int fd);

    [LibraryImport("libc", SetLastError = true)]
    private static partial int fcntl(int fd, int cmd, int arg);

    [LibraryImport("libc", SetLastError = true)]
    private static unsafe partial nint write(int fd, byte* buffer, nint count);
}
