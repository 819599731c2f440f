using Microsoft.Win32.SafeHandles;
using Sharptun.Transport.Linux;

namespace Sharptun.Transport.Tests;

/// <summary><see cref="LinuxTun.FromFileDescriptor"/> refuses descriptors that are no attached TUN, with a message saying why (no root needed).</summary>
[System.Runtime.Versioning.SupportedOSPlatform("linux")]
public sealed class LinuxTunDescriptorTests
{
    [Fact]
    public void FromFileDescriptor_ClosedDescriptor_NotOpen()
    {
        if (!OperatingSystem.IsLinux())
        {
            return;
        }

        var e = Assert.Throws<IOException>(() => LinuxTun.FromFileDescriptor(1_000_000, "wg0", 1420, ownsDescriptor: false));
        Assert.Equal("descriptor 1000000 is not open", e.Message);
    }

    [Fact]
    public void FromFileDescriptor_RegularFile_NotATun()
    {
        if (!OperatingSystem.IsLinux())
        {
            return;
        }

        var path = Path.GetTempFileName();
        try
        {
            using var file = File.OpenHandle(path, FileMode.Open, FileAccess.ReadWrite);
            var fd = (int)file.DangerousGetHandle();
            var e = Assert.Throws<IOException>(() => LinuxTun.FromFileDescriptor(fd, "wg0", 1420, ownsDescriptor: false));
            Assert.StartsWith($"descriptor {fd} is not a TUN device", e.Message, StringComparison.Ordinal);
        }
        finally
        {
            File.Delete(path);
        }
    }

    [Fact]
    public void FromFileDescriptor_TunNotAttached_SaysSo()
    {
        if (!OperatingSystem.IsLinux() || !File.Exists("/dev/net/tun"))
        {
            return;
        }

        SafeFileHandle tun;
        try
        {
            tun = File.OpenHandle("/dev/net/tun", FileMode.Open, FileAccess.ReadWrite);
        }
        catch (UnauthorizedAccessException)
        {
            return; // a sandbox without access to the TUN driver
        }

        using (tun)
        {
            var fd = (int)tun.DangerousGetHandle();
            var e = Assert.Throws<IOException>(() => LinuxTun.FromFileDescriptor(fd, "wg0", 1420, ownsDescriptor: false));
            Assert.Equal($"descriptor {fd} is a TUN device not attached to an interface (no TUNSETIFF yet)", e.Message);
        }
    }
}
