using System.Diagnostics;
using System.Globalization;
using System.Runtime.Versioning;

namespace Sharptun.Interop.Tests;

/// <summary>
/// Issue 10: <c>sharptun proxy</c> takes wireproxy's config files unchanged. Each file form (inline, <c>WGConfig</c>
/// pointing at a wg-quick file with host settings, lower-case names with <c>$VAR</c> and comments) runs as uid 65534
/// in namespace C and the tunnel to Debian's wireguard-go comes up (a handshake seen by wireguard-go); <c>-n</c>, a
/// bad config's <c>file:line</c> error, <c>-s</c> and <c>-d</c> as a user runs them.
/// </summary>
[SupportedOSPlatform("linux")]
public sealed partial class ProxyInteropTests
{
    private static readonly TimeSpan CommandTimeout = TimeSpan.FromSeconds(90);

    [InteropFact("wireguard-go", "wg", "nginx", "dnsmasq", "setpriv")]
    public void WireproxyConfigFiles_RunUnchangedAsNobody_TheTunnelComesUp()
    {
        using var lab = new NetnsLab();
        using var proxyLab = new ProxyLab(lab);
        var key = PrivateKeyOf(proxyLab);

        var inline = proxyLab.WriteConfig("inline.conf",
            "# wireproxy's inline form: [Interface] and [Peer] in the proxy's own file\n" + proxyLab.InterfaceAndPeer);

        proxyLab.WriteConfig("wg-lab.conf", proxyLab.WgQuickText.Replace(
            "[Interface]\n", "[Interface]\nTable = off\nPostUp = iptables -A FORWARD -i %i -j ACCEPT\nSaveConfig = false\n", StringComparison.Ordinal));
        var byWgConfig = proxyLab.WriteConfig("wgconfig.conf", "WGConfig = wg-lab.conf\n\n[Resolve]\nResolveStrategy = ipv4\n");

        var lowerCase = proxyLab.WriteConfig("lower.conf", proxyLab.InterfaceAndPeer
            .Replace("[Interface]", "[interface]", StringComparison.Ordinal)
            .Replace("[Peer]", "[peer]", StringComparison.Ordinal)
            .Replace("PrivateKey = " + key, "privatekey = $WG_PROXY_KEY ; from the environment", StringComparison.Ordinal)
            .Replace("Address = ", "address = ", StringComparison.Ordinal)
            .Replace("PersistentKeepalive = 25", "persistentkeepalive = 25 # seconds", StringComparison.Ordinal)
            + "[RESOLVE]\nresolvestrategy = auto\n");

        foreach (var (path, environment) in new[] { (inline, (Dictionary<string, string>?)null), (byWgConfig, null), (lowerCase, new() { ["WG_PROXY_KEY"] = key }) })
        {
            var before = proxyLab.LatestHandshake();
            Thread.Sleep(1100); // handshake times have one-second resolution
            var proxy = lab.Start(proxyLab.ClientNs, environment, "setpriv", proxyLab.SharptunCommand("proxy", "-c", path));
            lab.WaitFor(() => proxy.HasExited || proxyLab.LatestHandshake() > before, CommandTimeout,
                $"a handshake from the proxy running {Path.GetFileName(path)}\n{proxyLab.Describe()}");
            Assert.False(proxy.HasExited, lab.OutputOf(proxy));
            lab.WaitFor(() => lab.OutputOf(proxy).Contains("Proxy started", StringComparison.Ordinal), CommandTimeout, "the start log line");
            var output = lab.OutputOf(proxy);
            Assert.Contains($"Proxy started: tunnel address {proxyLab.ClientV4}, {proxyLab.ClientV6}", output, StringComparison.Ordinal);
            if (path == byWgConfig)
            {
                Assert.Contains("wg-lab.conf:2: Table is a wg-quick host setting", output, StringComparison.Ordinal);
            }

            // Warnings print as wireguard-go's ERROR lines: only the ignored host settings may.
            Assert.DoesNotContain(output.Split('\n'), l => l.Contains("ERROR", StringComparison.Ordinal) && !l.Contains("wg-quick host setting", StringComparison.Ordinal));
            lab.Kill(proxy);
            Assert.Equal(0, proxy.ExitCode); // SIGTERM is a clean stop
        }
    }

    [InteropFact("wireguard-go", "wg", "nginx", "dnsmasq", "curl", "setpriv", "ss")]
    public void WireproxyReadmeConfig_WithFrontEnds_ServesCurlThroughEachOfThem()
    {
        using var lab = new NetnsLab();
        using var proxyLab = new ProxyLab(lab);
        proxyLab.WriteConfig("wg-readme.conf", proxyLab.WgQuickText);

        // wireproxy's README sample (WGConfig form), with this lab's targets; repeated [Socks5] sections.
        var config = proxyLab.WriteConfig("readme.conf", $"""
            WGConfig = wg-readme.conf

            # TCPClientTunnel is a tunnel listening on your machine,
            # and it forwards any TCP traffic received to the specified target via wireguard.
            [TCPClientTunnel]
            BindAddress = 127.0.0.1:25565
            Target = {ProxyLab.WebName}:{ProxyLab.HttpPort}

            # Socks5 creates a socks5 proxy on your LAN, and all traffic would be routed via wireguard.
            [Socks5]
            BindAddress = 127.0.0.1:25344

            # Socks5 authentication parameters, specifying username and password enables
            # proxy authentication.
            [Socks5]
            BindAddress = 127.0.0.1:25346
            Username = alice
            # Avoid using spaces in the password field
            Password = $$ecret

            # http creates a http proxy on your LAN, and all traffic would be routed via wireguard.
            [http]
            BindAddress = 127.0.0.1:25345

            """.Replace("\r", string.Empty, StringComparison.Ordinal));
        var check = proxyLab.RunSharptun(CommandTimeout, "proxy", "-n", "-c", config);
        var proxy = proxyLab.StartProxy(config);
        foreach (var port in new[] { 25565, 25344, 25346, 25345 })
        {
            proxyLab.WaitForTcpListener(port, proxy);
        }

        var socks = proxyLab.Curl(CommandTimeout, "-f", "--socks5-hostname", "127.0.0.1:25344", proxyLab.UrlByName("/hello.txt"));
        var socksAuth = proxyLab.Curl(CommandTimeout, "-f", "--socks5-hostname", "127.0.0.1:25346", "--proxy-user", "alice:$ecret", proxyLab.Url6("/hello.txt"));
        var socksBadAuth = proxyLab.Curl(CommandTimeout, "-f", "--socks5-hostname", "127.0.0.1:25346", "--proxy-user", "alice:wrong", proxyLab.Url("/hello.txt"));
        var http = proxyLab.Curl(CommandTimeout, "-f", "-x", "http://127.0.0.1:25345", proxyLab.Url("/hello.txt"));
        var forward = proxyLab.Curl(CommandTimeout, "-f", "http://127.0.0.1:25565/hello.txt");

        var describe = lab.OutputOf(proxy) + proxyLab.Describe();
        Assert.Equal((0, "Config OK\n"), (check.ExitCode, check.Stdout));
        Assert.True(socks.Success, socks + describe);
        Assert.Equal("hello through the tunnel\n", socks.Stdout);
        Assert.True(socksAuth.Success, socksAuth + describe);
        Assert.Equal("hello through the tunnel\n", socksAuth.Stdout);
        Assert.False(socksBadAuth.Success, socksBadAuth + describe);
        Assert.True(http.Success, http + describe);
        Assert.Equal("hello through the tunnel\n", http.Stdout);
        Assert.True(forward.Success, forward + describe);
        Assert.Equal("hello through the tunnel\n", forward.Stdout);
        Assert.False(proxy.HasExited, describe);
        Assert.Contains("4 front-end(s)", lab.OutputOf(proxy), StringComparison.Ordinal);
    }

    [InteropFact("wireguard-go", "wg", "nginx", "dnsmasq", "curl", "setpriv", "ss")]
    public void PortInUse_StopsTheProxyBeforeItServes_NamingTheSection()
    {
        using var lab = new NetnsLab();
        using var proxyLab = new ProxyLab(lab);
        var first = proxyLab.WriteConfig("first.conf", proxyLab.InterfaceAndPeer + "[Socks5]\nBindAddress = 127.0.0.1:25400\n");
        var holder = proxyLab.StartProxy(first);
        proxyLab.WaitForTcpListener(25400, holder);

        // A second proxy (another key is not needed: it never gets that far) wants the same port in its second section.
        var second = proxyLab.WriteConfig("second.conf", proxyLab.InterfaceAndPeer +
            "[http]\nBindAddress = 127.0.0.1:25401\n\n[Socks5]\nBindAddress = 127.0.0.1:25400\n");
        var run = proxyLab.RunSharptun(CommandTimeout, "proxy", "-s", "-c", second);
        var line = proxyLab.InterfaceAndPeer.Split('\n').Length + 3;
        Assert.Equal(1, run.ExitCode);
        Assert.False(run.TimedOut);
        Assert.StartsWith($"sharptun proxy: {second}:{line}: [Socks5] cannot start on ", run.Stderr, StringComparison.Ordinal);
        Assert.DoesNotContain(":25401 ", lab.Exec(proxyLab.ClientNs, "ss", "-Hltn").Stdout, StringComparison.Ordinal); // the [http] it had bound is closed again
        Assert.False(holder.HasExited, lab.OutputOf(holder));
    }

    [InteropFact("wireguard-go", "wg", "nginx", "dnsmasq", "setpriv")]
    public void ConfigTest_AndBadConfigs_AsNobody_NameFileAndLine()
    {
        using var lab = new NetnsLab();
        using var proxyLab = new ProxyLab(lab);
        proxyLab.WriteConfig("wg-good.conf", proxyLab.WgQuickText);
        var good = proxyLab.WriteConfig("good.conf", "WGConfig = wg-good.conf\n");
        var wgBad = proxyLab.WriteConfig("wg-bad.conf", proxyLab.WgQuickText.Replace("Address = ", "Adress = ", StringComparison.Ordinal));
        var bad = proxyLab.WriteConfig("bad.conf", "WGConfig = wg-bad.conf\n");
        var badSection = proxyLab.WriteConfig("bad-section.conf", proxyLab.InterfaceAndPeer + "[Sock5]\nBindAddress = 127.0.0.1:1080\n");

        var goodTest = proxyLab.RunSharptun(CommandTimeout, "proxy", "-n", "-c", good);
        var badTest = proxyLab.RunSharptun(CommandTimeout, "proxy", "-c", bad, "--configtest");
        var badRun = proxyLab.RunSharptun(CommandTimeout, "proxy", "-c", bad);
        var badSectionRun = proxyLab.RunSharptun(CommandTimeout, "proxy", "-s", "-c", badSection);
        var missing = proxyLab.RunSharptun(CommandTimeout, "proxy", "-n", "-c", Path.Combine(proxyLab.ClientHome, "nowhere.conf"));
        var noDefault = proxyLab.RunSharptun(CommandTimeout, "proxy", "-n"); // HOME has no .config/wireproxy.conf
        proxyLab.WriteConfig(".config-wireproxy.conf", proxyLab.InterfaceAndPeer);
        Directory.CreateDirectory(Path.Combine(proxyLab.ClientHome, ".config"));
        File.Move(Path.Combine(proxyLab.ClientHome, ".config-wireproxy.conf"), Path.Combine(proxyLab.ClientHome, ".config", "wireproxy.conf"));
        var homeDefault = proxyLab.RunSharptun(CommandTimeout, "proxy", "-n");

        Assert.Equal((0, "Config OK\n", ""), (goodTest.ExitCode, goodTest.Stdout, goodTest.Stderr));
        var adress = wgBad + ":3: unknown key 'Adress' in [Interface]";
        Assert.Equal(1, badTest.ExitCode);
        Assert.StartsWith("sharptun proxy: " + adress, badTest.Stderr, StringComparison.Ordinal);
        Assert.Equal(1, badRun.ExitCode);
        Assert.False(badRun.TimedOut);
        Assert.StartsWith("sharptun proxy: " + adress, badRun.Stderr, StringComparison.Ordinal);
        var lines = proxyLab.InterfaceAndPeer.Split('\n').Length;
        Assert.Equal(1, badSectionRun.ExitCode);
        Assert.StartsWith($"sharptun proxy: {badSection}:{lines}: unknown section [Sock5]", badSectionRun.Stderr, StringComparison.Ordinal);
        Assert.Equal(1, missing.ExitCode);
        Assert.Contains("nowhere.conf: cannot read the config: no such file", missing.Stderr, StringComparison.Ordinal);
        Assert.Equal(1, noDefault.ExitCode);
        Assert.Contains($"/etc/wireproxy/wireproxy.conf and {proxyLab.ClientHome}/.config/wireproxy.conf", noDefault.Stderr, StringComparison.Ordinal);
        Assert.True(homeDefault.Success, homeDefault.ToString());
        Assert.Equal("Config OK\n", homeDefault.Stdout);
    }

    [InteropFact("wireguard-go", "wg", "nginx", "dnsmasq", "setpriv")]
    public void Silent_PrintsNothing_Daemon_DetachesAfterTheTunnelIsUp()
    {
        using var lab = new NetnsLab();
        using var proxyLab = new ProxyLab(lab);
        var silentConfig = proxyLab.WriteConfig("silent.conf", proxyLab.InterfaceAndPeer);
        var before = proxyLab.LatestHandshake();
        var silent = proxyLab.StartProxy(silentConfig, "-s");
        proxyLab.WaitForHandshake(silent, CommandTimeout);
        Assert.False(silent.HasExited, lab.OutputOf(silent));
        lab.Kill(silent);
        Assert.Equal(0, silent.ExitCode);
        Assert.Single(lab.OutputOf(silent).Split('\n', StringSplitOptions.RemoveEmptyEntries)); // only the lab's "$ command" line

        var daemonConfig = proxyLab.WriteConfig($"daemon-{Guid.NewGuid():N}.conf", proxyLab.InterfaceAndPeer);
        before = proxyLab.LatestHandshake();
        Thread.Sleep(1100);
        var detach = proxyLab.RunSharptun(CommandTimeout, "proxy", "-d", "-c", daemonConfig);
        var child = ProcessesWithArgument(daemonConfig);
        try
        {
            Assert.True(detach.Success, detach + proxyLab.Describe());
            Assert.Equal(("", ""), (detach.Stdout, detach.Stderr));
            var pid = Assert.Single(child);
            Assert.Equal(Unprivileged.Id, OwnerOf(pid));
            Assert.Equal(pid, SessionOf(pid)); // its own session
            Assert.Equal("/dev/null", new FileInfo($"/proc/{pid}/fd/1").ResolveLinkTarget(false)?.FullName);
            lab.WaitFor(() => proxyLab.LatestHandshake() > before, CommandTimeout, "a handshake from the detached proxy");
        }
        finally
        {
            foreach (var pid in child)
            {
                using var p = Process.GetProcessById(pid);
                p.Kill();
                p.WaitForExit(5000);
            }
        }

        // A start failure is printed by -d, not lost in the background: the tunnel's UDP port is taken.
        var taken = proxyLab.WriteConfig("taken.conf", proxyLab.InterfaceAndPeer.Replace("[Peer]", "ListenPort = 40404\n\n[Peer]", StringComparison.Ordinal));
        var holder = lab.Start(proxyLab.ClientNs, "setpriv", proxyLab.SharptunCommand("proxy", "-c", taken));
        lab.WaitFor(() => holder.HasExited || lab.OutputOf(holder).Contains("Proxy started", StringComparison.Ordinal), CommandTimeout, "the first proxy on port 40404");
        var second = proxyLab.RunSharptun(CommandTimeout, "proxy", "-d", "-c", taken);
        Assert.Equal(1, second.ExitCode);
        Assert.StartsWith($"sharptun proxy: {taken}: the WireGuard tunnel did not start:", second.Stderr, StringComparison.Ordinal);
        Assert.Contains("40404", second.Stderr, StringComparison.Ordinal);
    }

    private static string PrivateKeyOf(ProxyLab proxyLab) =>
        proxyLab.InterfaceAndPeer.Split('\n').First(l => l.StartsWith("PrivateKey = ", StringComparison.Ordinal))["PrivateKey = ".Length..];

    /// <summary>Processes (any user) whose command line has <paramref name="argument"/> as one of its arguments.</summary>
    private static List<int> ProcessesWithArgument(string argument)
    {
        var found = new List<int>();
        foreach (var dir in Directory.GetDirectories("/proc"))
        {
            if (!int.TryParse(Path.GetFileName(dir), NumberStyles.None, CultureInfo.InvariantCulture, out var pid))
            {
                continue;
            }

            try
            {
                if (File.ReadAllText(Path.Combine(dir, "cmdline")).Split('\0').Contains(argument))
                {
                    found.Add(pid);
                }
            }
            catch (IOException)
            {
                // exited meanwhile
            }
        }

        return found;
    }

    private static int OwnerOf(int pid) =>
        int.Parse(File.ReadAllLines($"/proc/{pid}/status").First(l => l.StartsWith("Uid:", StringComparison.Ordinal)).Split('\t', StringSplitOptions.RemoveEmptyEntries)[1], CultureInfo.InvariantCulture);

    private static int SessionOf(int pid)
    {
        var stat = File.ReadAllText($"/proc/{pid}/stat");
        var fields = stat[(stat.LastIndexOf(')') + 2)..].Split(' ');
        return int.Parse(fields[3], CultureInfo.InvariantCulture); // state ppid pgrp session
    }
}
