namespace Sharptun.Interop.Tests;

/// <summary>
/// Issue 7 item 12: the daemon runs under umask 077, its UAPI socket is 0600, and the socket directory is forced to
/// 0700 even when it already exists with wider permissions.
/// </summary>
[System.Runtime.Versioning.UnsupportedOSPlatform("windows")]
public sealed class DaemonPermissionInteropTests
{
    private const string SocketDirectory = "/var/run/wireguard";

    [InteropFact("wg")]
    public void Daemon_Started_RunsUnderUmask077AndForcesExistingSocketDirectoryTo0700()
    {
        using var lab = new NetnsLab();
        using var daemons = new SharptunDaemon(lab);
        var ns = lab.AddNamespace();
        var ifname = lab.NewInterfaceName('w');
        Directory.CreateDirectory(SocketDirectory);
        File.SetUnixFileMode(SocketDirectory, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute
            | UnixFileMode.GroupRead | UnixFileMode.GroupExecute | UnixFileMode.OtherRead | UnixFileMode.OtherExecute);

        daemons.StartOrFail(ns, ifname);

        Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute, File.GetUnixFileMode(SocketDirectory));
        Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite, File.GetUnixFileMode(SharptunDaemon.SocketPath(ifname)));
        var pid = SharptunDaemon.FindPid(ifname);
        Assert.NotNull(pid);
        var umask = File.ReadAllLines($"/proc/{pid}/status").Single(l => l.StartsWith("Umask:", StringComparison.Ordinal));
        Assert.Equal("0077", umask["Umask:".Length..].Trim());
    }
}
