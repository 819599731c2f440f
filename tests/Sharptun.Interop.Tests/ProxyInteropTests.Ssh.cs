using System.Globalization;
using System.Runtime.Versioning;
using System.Security.Cryptography;
using System.Text;

namespace Sharptun.Interop.Tests;

/// <summary>
/// <c>[STDIOTunnel]</c> as wireproxy's users use it: <c>ssh -o ProxyCommand='sharptun proxy -c stdio.conf'</c>, ssh
/// and the proxy running as uid 65534, to Debian's sshd behind wireguard-go (reached by a name only the tunnel's DNS
/// knows), running a command and piping a payload through it.
/// </summary>
[SupportedOSPlatform("linux")]
public sealed partial class ProxyInteropTests
{
    private const int SshPort = 2222;

    [InteropFact("wireguard-go", "wg", "nginx", "dnsmasq", "curl", "setpriv", "ss", "sshd", "ssh", "ssh-keygen")]
    public void StdioTunnel_AsSshProxyCommand_RunsACommand_AndPipesAPayloadVerifiedBySha256()
    {
        using var lab = new NetnsLab();
        using var proxyLab = new ProxyLab(lab);
        var sshd = StartSshd(lab, proxyLab);

        // The user's key, owned by uid 65534 and 0600 (ssh refuses a key others can read).
        var key = Path.Combine(proxyLab.ClientHome, "id_ed25519");
        lab.Check(null, "ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "proxy-user", "-f", key);
        lab.Check(null, "chown", $"{Unprivileged.Id}:{Unprivileged.Id}", key, key + ".pub");
        File.Copy(key + ".pub", Path.Combine(proxyLab.Root, "sshd", "authorized_keys"));

        var config = proxyLab.WriteConfig("stdio.conf", proxyLab.InterfaceAndPeer + $"[STDIOTunnel]\nTarget = {ProxyLab.WebName}:{SshPort}\n");

        // 256 KiB of text for sha256sum on the far side (ssh's stdin → the proxy's stdin → the tunnel → sshd).
        var payload = Convert.ToBase64String(RandomNumberGenerator.GetBytes(192 << 10));
        var payloadPath = Path.Combine(proxyLab.ClientHome, "payload.txt");
        File.WriteAllText(payloadPath, payload);
        lab.Check(null, "chown", $"{Unprivileged.Id}:{Unprivileged.Id}", payloadPath);
        var expectedHash = Convert.ToHexStringLower(SHA256.HashData(Encoding.ASCII.GetBytes(payload)));

        // What ssh runs (through $SHELL -c "exec ..."): the CLI as the same user, its stdin/stdout the ssh transport.
        var home = proxyLab.ClientHome;
        var proxyCommand = string.Join(' ',
            "env", "HOME=" + home, "DOTNET_CLI_HOME=" + home, "DOTNET_NOLOGO=1", "DOTNET_CLI_TELEMETRY_OPTOUT=1",
            Unprivileged.Dotnet, Path.Combine(Unprivileged.TestOutputCopy, "sharptun.dll"), "proxy", "-c", config);
        string[] ssh =
        [
            "-F", "/dev/null", "-i", key, "-o", "IdentitiesOnly=yes", "-o", "BatchMode=yes",
            "-o", "UserKnownHostsFile=/dev/null", "-o", "StrictHostKeyChecking=no", "-o", "LogLevel=ERROR",
            "-o", "ConnectTimeout=60", "-o", "ProxyCommand=" + proxyCommand,
            "-p", SshPort.ToString(CultureInfo.InvariantCulture), $"root@{ProxyLab.WebName}",
        ];

        // ssh as uid 65534 with its stdin from the payload file ("$@" keeps every argument as it is).
        CommandResult RunSsh(string remoteCommand, string stdinPath) =>
            lab.Exec(proxyLab.ClientNs, TimeSpan.FromMinutes(2), "setpriv",
            [
                $"--reuid={Unprivileged.Id}", $"--regid={Unprivileged.Id}", "--clear-groups", "--inh-caps=-all", "--",
                "env", "HOME=" + home, "SHELL=/bin/sh", "sh", "-c", "exec ssh \"$@\" < \"$0\"", stdinPath, .. ssh, remoteCommand,
            ]);

        var hello = RunSsh("echo hello from sshd; id -un", "/dev/null");
        var describe = hello + proxyLab.Describe() + lab.OutputOf(sshd);
        Assert.True(hello.Success, describe);
        Assert.Equal("hello from sshd\nroot\n", hello.Stdout);

        var hashed = RunSsh("sha256sum", payloadPath);
        describe = hashed + proxyLab.Describe() + lab.OutputOf(sshd);
        Assert.True(hashed.Success, describe);
        Assert.Equal($"{expectedHash}  -\n", hashed.Stdout);
        Assert.False(sshd.HasExited, describe);
    }

    /// <summary>
    /// Debian's sshd as root in wireguard-go's namespace, on port 2222 of both tunnel addresses, with its own config,
    /// a host key made for the test, public-key login only (as root, keys from the lab's authorized_keys), no PAM.
    /// </summary>
    private static System.Diagnostics.Process StartSshd(NetnsLab lab, ProxyLab proxyLab)
    {
        var dir = Path.Combine(proxyLab.Root, "sshd");
        Directory.CreateDirectory(dir);
        var hostKey = Path.Combine(dir, "ssh_host_ed25519_key");
        lab.Check(null, "ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "sharptun-test-host", "-f", hostKey);
        var config = Path.Combine(dir, "sshd_config");
        File.WriteAllText(config,
            $"Port {SshPort}\n" +
            $"ListenAddress {proxyLab.ServerV4}\n" +
            $"ListenAddress {proxyLab.ServerV6}\n" +
            $"HostKey {hostKey}\n" +
            $"PidFile {dir}/sshd.pid\n" +
            $"AuthorizedKeysFile {dir}/authorized_keys\n" +
            "UsePAM no\n" +
            "PermitRootLogin prohibit-password\n" +
            "PubkeyAuthentication yes\n" +
            "PasswordAuthentication no\n" +
            "KbdInteractiveAuthentication no\n" +
            "StrictModes no\n" + // the lab folder sits under /tmp (mode 1777), which strict modes refuse
            "AllowTcpForwarding no\n" +
            "X11Forwarding no\n" +
            "PrintMotd no\n" +
            "LogLevel VERBOSE\n");

        // Privilege separation needs this folder; the package's service creates it at boot, which a test machine may never do.
        Directory.CreateDirectory("/run/sshd");
        var sshdPath = InteropEnvironment.FindTool("sshd") ?? throw new InvalidOperationException("sshd is not installed");
        lab.Check(null, sshdPath, "-t", "-f", config); // a config error shows here, with sshd's message
        var sshd = lab.Start(proxyLab.ServerNs, sshdPath, "-D", "-e", "-f", config);
        lab.WaitFor(
            () => sshd.HasExited || lab.Exec(proxyLab.ServerNs, "ss", "-Hltn", $"sport = :{SshPort}").Stdout.Split('\n', StringSplitOptions.RemoveEmptyEntries).Length >= 2,
            TimeSpan.FromSeconds(30),
            $"sshd listening on port {SshPort} of both tunnel addresses\n{lab.OutputOf(sshd)}");
        Assert.False(sshd.HasExited, lab.OutputOf(sshd));
        return sshd;
    }
}
