using Sharptun.Device.Uapi;

namespace Sharptun.Device.Tests.Uapi;

/// <summary>
/// Issue 7 item 12: the UAPI socket is private from its first instant (bound under umask 077, not chmod-ed after the
/// bind), and its directory is forced to 0700 even when it already exists with wider permissions.
/// </summary>
[System.Runtime.Versioning.UnsupportedOSPlatform("windows")]
[Collection(nameof(UapiSocketPermissionTests))] // BindObserver and the umask are process-wide
public sealed class UapiSocketPermissionTests : IDisposable
{
    private const UnixFileMode Rw = UnixFileMode.UserRead | UnixFileMode.UserWrite;
    private const UnixFileMode Rwx = UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute;
    private const UnixFileMode Mode0755 = Rwx | UnixFileMode.GroupRead | UnixFileMode.GroupExecute | UnixFileMode.OtherRead | UnixFileMode.OtherExecute;

    private readonly string _dir = Path.Combine("/tmp", "stp-" + Guid.NewGuid().ToString("N")[..10]);

    public void Dispose()
    {
        UapiServer.BindObserver = null;
        if (Directory.Exists(_dir))
        {
            Directory.Delete(_dir, recursive: true);
        }
    }

    [Fact]
    public void CreateListener_SocketFile_Is0600TheMomentBindCreatesIt()
    {
        var path = Path.Combine(_dir, "wg0.sock");
        UnixFileMode? atBind = null;
        UapiServer.BindObserver = p =>
        {
            if (p == path)
            {
                atBind = File.GetUnixFileMode(p); // before any chmod: what bind(2) made of 0777 & ~umask
            }
        };

        using var listener = UapiServer.CreateListener(path);

        Assert.Equal(Rw, atBind);
        Assert.Equal(Rw, File.GetUnixFileMode(path));
    }

    [Fact]
    public void CreateListener_ManyConcurrentBinds_EverySocketPrivateAtBindAndUmaskRestored()
    {
        // Binds from many threads at once: each one's umask window must hold (no bind under another's restored mask).
        var wrong = 0;
        UapiServer.BindObserver = p =>
        {
            if (p.StartsWith(_dir, StringComparison.Ordinal) && File.GetUnixFileMode(p) != Rw)
            {
                Interlocked.Increment(ref wrong);
            }
        };

        Parallel.For(0, 64, new ParallelOptions { MaxDegreeOfParallelism = 8 }, i =>
        {
            using var listener = UapiServer.CreateListener(Path.Combine(_dir, $"w{i}.sock"));
        });

        Assert.Equal(0, wrong);

        // Afterwards the process umask is what it was (022 under the test runner): a new file is group/other readable.
        var probe = Path.Combine(_dir, "probe");
        File.WriteAllText(probe, "");
        Assert.True((File.GetUnixFileMode(probe) & UnixFileMode.OtherRead) != 0 || CurrentUmaskHidesOtherRead());
    }

    [Fact]
    public void CreateListener_ExistingDirectory0755_IsForcedTo0700()
    {
        Directory.CreateDirectory(_dir);
        File.SetUnixFileMode(_dir, Mode0755);

        using var listener = UapiServer.CreateListener(Path.Combine(_dir, "wg0.sock"));

        Assert.Equal(Rwx, File.GetUnixFileMode(_dir));
    }

    [Fact]
    public void CreateListener_MissingDirectory_IsCreated0700()
    {
        using var listener = UapiServer.CreateListener(Path.Combine(_dir, "wg0.sock"));

        Assert.Equal(Rwx, File.GetUnixFileMode(_dir));
    }

    private static bool CurrentUmaskHidesOtherRead()
    {
        // The test runner's own umask may already be strict; then "restored" cannot be told from "stuck at 077".
        var probe = Path.Combine(Path.GetTempPath(), "stp-umask-" + Guid.NewGuid().ToString("N"));
        try
        {
            File.WriteAllText(probe, "");
            return (File.GetUnixFileMode(probe) & UnixFileMode.OtherRead) == 0;
        }
        finally
        {
            File.Delete(probe);
        }
    }
}
