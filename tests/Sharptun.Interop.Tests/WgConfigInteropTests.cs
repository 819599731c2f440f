using Sharptun.Protocol;
using System.Collections.Immutable;
using System.Net;
using Sharptun.Device;
using Sharptun.Device.Config;
using Sharptun.Device.Routing;
using Xunit.Abstractions;

namespace Sharptun.Interop.Tests;

/// <summary>
/// Our config printer and parser against the real wg tools: random configs printed by us are loaded with
/// <c>wg setconf</c> into wireguard-go and read back with <c>wg showconf</c>; wg-quick's <c>strip</c> reads our
/// wg-quick output.
/// </summary>
public sealed class WgConfigInteropTests(ITestOutputHelper output)
{
    [InteropFact("wireguard-go", "wg")]
    public void RandomConfigs_WgSetconfThenShowconf_ParseToExpectedConfig()
    {
        const int seed = 7001;
        output.WriteLine($"seed={seed}");
        var rng = new Random(seed);
        using var lab = new NetnsLab();
        var ns = lab.AddNamespace();
        var ifname = lab.NewInterfaceName('c');
        lab.Start(ns, "wireguard-go", "-f", ifname);
        lab.WaitFor(() => File.Exists($"/var/run/wireguard/{ifname}.sock"), TimeSpan.FromSeconds(10), "wireguard-go UAPI socket");
        var dir = Directory.CreateTempSubdirectory("sharptun-cfg-");
        try
        {
            for (var i = 0; i < 12; i++)
            {
                var config = RandomConfig(rng);
                var path = Path.Combine(dir.FullName, $"c{i}.conf");
                var text = WgConfigPrinter.PrintWg(config);
                File.WriteAllText(path, text);
                lab.Check(null, "wg", "setconf", ifname, path);
                var shown = lab.Check(null, "wg", "showconf", ifname).Stdout;
                Assert.True(WgConfigParser.TryParse(shown, "showconf", out var actual, out var errors), $"#{i}: {string.Join("\n", errors)}\n{shown}");
                var expected = Expected(config);
                if (SortPeers(expected) != SortPeers(actual!))
                {
                    Assert.Fail($"seed {seed} #{i}: wg showconf differs from the expected config\n--- we printed:\n{text}\n--- wg showconf:\n{shown}\n--- expected:\n{WgConfigPrinter.PrintWg(SortPeers(expected))}");
                }
            }
        }
        finally
        {
            dir.Delete(recursive: true);
        }
    }

    [InteropFact("wg")]
    public void RandomQuickConfigs_WgQuickStrip_ParsesToStrippedConfig()
    {
        const int seed = 7002;
        var rng = new Random(seed);
        var dir = Directory.CreateTempSubdirectory("sharptun-quick-");
        try
        {
            for (var i = 0; i < 5; i++)
            {
                var config = RandomConfig(rng) with
                {
                    Interface = RandomConfig(rng).Interface with
                    {
                        Addresses = ImmutableArray.Create(Prefix("10.1.2.3/24"), Prefix("fd00::3/64")),
                        Dns = ImmutableArray.Create("1.1.1.1", "example.com"),
                        Mtu = 1380 + i,
                        Table = "off",
                        PostUp = ImmutableArray.Create("echo up %i"),
                        PreDown = ImmutableArray.Create("echo  down"),
                        SaveConfig = false,
                    },
                };
                var path = Path.Combine(dir.FullName, $"wgq{i}.conf");
                File.WriteAllText(path, WgConfigPrinter.PrintQuick(config));
                if (OperatingSystem.IsLinux())
                {
                    File.SetUnixFileMode(path, UnixFileMode.UserRead | UnixFileMode.UserWrite);
                }
                var stripped = RunTool("wg-quick", "strip", path);
                Assert.True(WgConfigParser.TryParse(stripped, "strip", out var parsed, out var errors), string.Join("\n", errors) + "\n" + stripped);
                Assert.Equal(config.Strip(), parsed);
            }
        }
        finally
        {
            dir.Delete(recursive: true);
        }
    }

    private static string RunTool(string file, params string[] args)
    {
        var psi = new System.Diagnostics.ProcessStartInfo(InteropEnvironment.FindTool(file) ?? file) { RedirectStandardOutput = true, RedirectStandardError = true };
        foreach (var a in args)
        {
            psi.ArgumentList.Add(a);
        }

        using var p = System.Diagnostics.Process.Start(psi)!;
        var stdout = p.StandardOutput.ReadToEndAsync();
        var stderr = p.StandardError.ReadToEnd();
        Assert.True(p.WaitForExit(30_000));
        Assert.True(p.ExitCode == 0, $"{file} {string.Join(' ', args)}: {stderr}");
        return stdout.GetAwaiter().GetResult();
    }

    private static IpPrefix Prefix(string s) => IpPrefix.TryParse(s, out var p) ? p : throw new FormatException(s);

    // What wireguard-go holds after `wg setconf` (replace peers, replace allowed IPs): the private key clamped, zero
    // values omitted by showconf, allowed IPs masked and owned by the last peer that listed them (our trie decides).
    private static WgConfig Expected(WgConfig config)
    {
        var table = new AllowedIps<object>();
        var owners = config.Peers.Select(_ => new object()).ToArray();
        for (var i = 0; i < config.Peers.Count; i++)
        {
            foreach (var prefix in config.Peers[i].AllowedIps)
            {
                table.Insert(prefix, owners[i]);
            }
        }

        var peers = config.Peers.Select((p, i) => p with
        {
            AllowedIps = table.EntriesForPeer(owners[i]).ToImmutableArray(),
            PersistentKeepalive = p.PersistentKeepalive is 0 ? null : p.PersistentKeepalive,
        }).ToImmutableArray();
        var iface = config.Interface;
        return new WgConfig(
            new WgInterfaceConfig
            {
                PrivateKey = iface.PrivateKey?.Clamped(),
                ListenPort = iface.ListenPort is 0 ? null : iface.ListenPort,
                FwMark = iface.FwMark is 0 ? null : iface.FwMark,
            },
            peers);
    }

    private static WgConfig SortPeers(WgConfig config) =>
        config with { Peers = config.Peers.OrderBy(p => p.PublicKey.ToString(), StringComparer.Ordinal).ToImmutableArray() };

    private static WgConfig RandomConfig(Random rng)
    {
        Key RandomKey()
        {
            var b = new byte[32];
            rng.NextBytes(b);
            return new Key(b);
        }

        IpPrefix RandomPrefix()
        {
            var v6 = rng.Next(2) == 0;
            var bytes = new byte[v6 ? 16 : 4];
            rng.NextBytes(bytes);
            var max = v6 ? 128 : 32;
            var length = rng.Next(4) == 0 ? rng.Next(max + 1) : rng.Next(max / 2, max + 1);
            return new IpPrefix(new IPAddress(bytes), length);
        }

        WgEndpoint RandomEndpoint() => rng.Next(2) == 0
            ? new WgEndpoint($"{rng.Next(1, 224)}.{rng.Next(256)}.{rng.Next(256)}.{rng.Next(1, 255)}", (ushort)rng.Next(1, 65536))
            : new WgEndpoint($"fd00::{rng.Next(1, 65536):x}", (ushort)rng.Next(1, 65536));

        var peers = Enumerable.Range(0, rng.Next(4)).Select(_ => new WgPeerConfig
        {
            PublicKey = RandomKey(),
            PresharedKey = rng.Next(2) == 0 ? RandomKey() : null,
            AllowedIps = Enumerable.Range(0, rng.Next(6)).Select(_ => RandomPrefix()).ToImmutableArray(),
            Endpoint = rng.Next(3) == 0 ? null : RandomEndpoint(),
            PersistentKeepalive = rng.Next(3) == 0 ? null : (ushort)rng.Next(0, 65536),
        }).ToImmutableArray();

        // Device settings are always given: `wg setconf` leaves unmentioned ones as they were.
        return new WgConfig(
            new WgInterfaceConfig
            {
                PrivateKey = RandomKey(),
                ListenPort = (ushort)rng.Next(0, 65536),
                FwMark = rng.Next(3) == 0 ? 0u : (uint)rng.NextInt64(1L << 32),
            },
            peers);
    }
}
