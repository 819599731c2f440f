using Sharptun.Transport.Linux;

namespace Sharptun.Transport;

/// <summary>Which UDP bind implementation a device uses.</summary>
public enum UdpBindKind
{
    /// <summary>The Linux bind (recvmmsg/sendmmsg, UDP GSO) on Linux, the portable one elsewhere.</summary>
    Auto,

    /// <summary>The Linux bind (<see cref="LinuxUdpBind"/>); Linux only.</summary>
    Linux,

    /// <summary>The portable bind on <see cref="System.Net.Sockets.Socket"/> (<see cref="SocketUdpBind"/>); any OS.</summary>
    Portable,
}

/// <summary>Chooses an <see cref="IDatagramBindFactory"/> by <see cref="UdpBindKind"/>.</summary>
public static class DatagramBinds
{
    /// <summary>The environment variable the daemon reads to choose its bind: <c>auto</c>, <c>linux</c> or <c>portable</c>.</summary>
    public const string EnvironmentVariable = "SHARPTUN_UDP_BIND";

    /// <summary>The best bind for this platform: <see cref="LinuxUdpBind"/> on Linux, <see cref="SocketUdpBind"/> elsewhere.</summary>
    public static IDatagramBindFactory Default => For(UdpBindKind.Auto);

    /// <summary>The factory for <paramref name="kind"/>.</summary>
    /// <exception cref="PlatformNotSupportedException"><see cref="UdpBindKind.Linux"/> on another OS.</exception>
    /// <exception cref="ArgumentOutOfRangeException">Not a <see cref="UdpBindKind"/>.</exception>
    public static IDatagramBindFactory For(UdpBindKind kind) => kind switch
    {
        UdpBindKind.Auto => OperatingSystem.IsLinux() ? LinuxUdpBind.Factory : SocketUdpBind.Factory,
        UdpBindKind.Linux => OperatingSystem.IsLinux()
            ? LinuxUdpBind.Factory
            : throw new PlatformNotSupportedException("the Linux UDP bind needs Linux; use the portable bind"),
        UdpBindKind.Portable => SocketUdpBind.Factory,
        _ => throw new ArgumentOutOfRangeException(nameof(kind), kind, "unknown UDP bind kind"),
    };

    /// <summary>
    /// The environment variable the daemon reads to turn UDP GRO off on the Linux bind: <c>0</c>, <c>off</c> or
    /// <c>false</c>; unset, <c>1</c>, <c>on</c> or <c>true</c> keep it on (when the kernel has it).
    /// </summary>
    public const string ReceiveOffloadVariable = "SHARPTUN_UDP_GRO";

    /// <summary>
    /// The factory for <paramref name="kind"/>, with the Linux bind's UDP GRO asked for or not
    /// (<paramref name="receiveOffload"/>; see <see cref="LinuxUdpBind.ReceiveOffload"/>). The portable bind has no GRO.
    /// </summary>
    /// <exception cref="PlatformNotSupportedException"><see cref="UdpBindKind.Linux"/> on another OS.</exception>
    /// <exception cref="ArgumentOutOfRangeException">Not a <see cref="UdpBindKind"/>.</exception>
    public static IDatagramBindFactory For(UdpBindKind kind, bool receiveOffload)
    {
        var factory = For(kind);
        return !receiveOffload && OperatingSystem.IsLinux() && factory == LinuxUdpBind.Factory
            ? LinuxUdpBind.GetFactory(receiveOffload: false)
            : factory;
    }

    /// <summary>Parses an on/off switch such as <see cref="ReceiveOffloadVariable"/>: <c>0</c>/<c>off</c>/<c>false</c>/<c>no</c> or <c>1</c>/<c>on</c>/<c>true</c>/<c>yes</c> (case-insensitive); empty or null is on.</summary>
    public static bool TryParseSwitch(string? text, out bool on)
    {
        switch (text?.Trim().ToLowerInvariant())
        {
            case null or "" or "1" or "on" or "true" or "yes":
                on = true;
                return true;
            case "0" or "off" or "false" or "no":
                on = false;
                return true;
            default:
                on = true;
                return false;
        }
    }

    /// <summary>Parses <c>auto</c>, <c>linux</c> or <c>portable</c> (case-insensitive); an empty or null text is <see cref="UdpBindKind.Auto"/>.</summary>
    public static bool TryParseKind(string? text, out UdpBindKind kind)
    {
        switch (text?.Trim().ToLowerInvariant())
        {
            case null or "" or "auto":
                kind = UdpBindKind.Auto;
                return true;
            case "linux":
                kind = UdpBindKind.Linux;
                return true;
            case "portable" or "socket":
                kind = UdpBindKind.Portable;
                return true;
            default:
                kind = UdpBindKind.Auto;
                return false;
        }
    }
}
