using System.Runtime.Versioning;
using Sharptun.Crypto;

namespace Sharptun.Interop.Tests;

/// <summary>Debian's wireguard-go as the other end of a test: a kernel TUN in a namespace, configured with wg.</summary>
[SupportedOSPlatform("linux")]
internal static class WireguardGo
{
    /// <summary>
    /// Starts wireguard-go on a new interface in namespace <paramref name="ns"/> (killed with the lab), gives it
    /// <paramref name="privateKey"/> and the rest of a <c>wg set</c> command (<c>listen-port</c>, <c>peer</c> ...),
    /// adds <paramref name="addresses"/> (CIDR), sets the MTU if given, and brings it up. Returns the interface name.
    /// </summary>
    public static string Start(NetnsLab lab, string ns, char tag, string privateKey, IEnumerable<string> settings, IEnumerable<string> addresses, int? mtu = null)
    {
        var ifname = lab.NewInterfaceName(tag);
        var wg = lab.Start(ns, new Dictionary<string, string> { ["LOG_LEVEL"] = "error" }, "wireguard-go", "-f", ifname);
        lab.WaitFor(() => File.Exists($"/var/run/wireguard/{ifname}.sock") || wg.HasExited, WgTunnel.StartTimeout, "wireguard-go's UAPI socket");
        var keyFile = Path.Combine(lab.TempDirectory, ifname + ".key");
        File.WriteAllText(keyFile, privateKey + "\n");
        File.SetUnixFileMode(keyFile, UnixFileMode.UserRead | UnixFileMode.UserWrite);
        lab.Check(ns, "wg", ["set", ifname, "private-key", keyFile, .. settings]);
        foreach (var address in addresses)
        {
            lab.AddAddress(ns, ifname, address);
        }

        if (mtu is { } m)
        {
            lab.SetMtu(ns, ifname, m);
        }

        lab.SetUp(ns, ifname);
        return ifname;
    }

    /// <summary>A new X25519 key pair in wg's base64 form.</summary>
    public static (string Private, string Public) KeyPair()
    {
        Span<byte> priv = stackalloc byte[32];
        Span<byte> pub = stackalloc byte[32];
        X25519.GeneratePrivateKey(priv);
        X25519.PublicKey(priv, pub);
        return (Convert.ToBase64String(priv), Convert.ToBase64String(pub));
    }
}
