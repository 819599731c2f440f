using Sharptun.Device.Routing;
using Sharptun.Protocol;
using System.Collections.Immutable;
using System.Net;
using Sharptun.Device.Config;
using Xunit.Abstractions;

namespace Sharptun.Device.Tests.Config;

public sealed class WgConfigRoundTripTests(ITestOutputHelper output)
{
    [Theory]
    [InlineData(1)]
    [InlineData(2)]
    [InlineData(3)]
    public void PrintQuick_ThenParse_GivesBackTheConfig(int seed)
    {
        var rng = new Random(seed);
        for (var i = 0; i < 300; i++)
        {
            var config = RandomConfig(rng, quick: true);
            var text = WgConfigPrinter.PrintQuick(config);
            Assert.True(WgConfigParser.TryParse(text, "rt.conf", out var parsed, out var errors), $"seed {seed} #{i}: {string.Join("; ", errors)}\n{text}");
            if (config != parsed)
            {
                output.WriteLine(text);
                Assert.Fail($"seed {seed} #{i}: round trip changed the config");
            }
        }
    }

    [Theory]
    [InlineData(4)]
    [InlineData(5)]
    public void PrintWg_ThenParse_GivesBackTheStrippedConfig(int seed)
    {
        var rng = new Random(seed);
        for (var i = 0; i < 300; i++)
        {
            var config = RandomConfig(rng, quick: rng.Next(2) == 0);
            var text = WgConfigPrinter.PrintWg(config);
            Assert.True(WgConfigParser.TryParse(text, "rt.conf", out var parsed, out var errors), $"seed {seed} #{i}: {string.Join("; ", errors)}\n{text}");
            Assert.False(parsed!.HasQuickSettings);
            if (config.Strip() != parsed)
            {
                output.WriteLine(text);
                Assert.Fail($"seed {seed} #{i}: round trip changed the config");
            }
        }
    }

    [Fact]
    public void PrintWg_ShowconfShape()
    {
        var priv = Key.Random();
        var pub = Key.Random();
        IpPrefix.TryParse("10.0.0.0/24", out var a);
        IpPrefix.TryParse("fd00::/64", out var b);
        var config = new WgConfig(
            new WgInterfaceConfig { PrivateKey = priv, ListenPort = 51820, FwMark = 0xca6c },
            ImmutableArray.Create(new WgPeerConfig { PublicKey = pub, AllowedIps = new[] { a, b }, Endpoint = new WgEndpoint("fd00::1", 1), PersistentKeepalive = 25 }));
        Assert.Equal(
            $"[Interface]\nListenPort = 51820\nFwMark = 0xca6c\nPrivateKey = {priv}\n\n[Peer]\nPublicKey = {pub}\nAllowedIPs = 10.0.0.0/24, fd00::/64\nEndpoint = [fd00::1]:1\nPersistentKeepalive = 25\n",
            WgConfigPrinter.PrintWg(config));
    }

    internal static IpPrefix RandomPrefix(Random rng)
    {
        var v6 = rng.Next(2) == 0;
        var bytes = new byte[v6 ? 16 : 4];
        rng.NextBytes(bytes);
        return new IpPrefix(new IPAddress(bytes), rng.Next((v6 ? 128 : 32) + 1));
    }

    internal static Key RandomKey(Random rng)
    {
        var bytes = new byte[32];
        rng.NextBytes(bytes);
        return new Key(bytes);
    }

    private static T? Maybe<T>(Random rng, Func<T> make)
        where T : struct => rng.Next(3) == 0 ? null : make();

    private static ImmutableArray<T> Some<T>(Random rng, int max, Func<T> make) => [.. Enumerable.Range(0, rng.Next(max + 1)).Select(_ => make())];

    private static string Word(Random rng)
    {
        const string chars = "abcdefghijklmnopqrstuvwxyz0123456789-.";
        return "a" + new string(Enumerable.Range(0, rng.Next(1, 12)).Select(_ => chars[rng.Next(chars.Length)]).ToArray());
    }

    private static WgEndpoint RandomEndpoint(Random rng)
    {
        var port = (ushort)rng.Next(65536);
        return rng.Next(3) switch
        {
            0 => new WgEndpoint(new IPAddress(rng.NextInt64() & 0xFFFFFFFF).ToString(), port),
            1 => new WgEndpoint(RandomPrefix(rng) is var p && !p.IsIPv4 ? p.Address.ToString() : "fd00::1", port),
            _ => new WgEndpoint(Word(rng) + ".example", port),
        };
    }

    internal static WgConfig RandomConfig(Random rng, bool quick)
    {
        var iface = new WgInterfaceConfig
        {
            PrivateKey = Maybe(rng, () => RandomKey(rng)),
            ListenPort = Maybe(rng, () => (ushort)rng.Next(65536)),
            FwMark = Maybe(rng, () => (uint)rng.NextInt64(0, 1L << 32)),
        };
        if (quick)
        {
            iface = iface with
            {
                Addresses = Some(rng, 3, () => RandomPrefix(rng)),
                Dns = Some(rng, 3, () => rng.Next(2) == 0 ? Word(rng) : "10.0.0." + rng.Next(256)),
                Mtu = Maybe(rng, () => rng.Next(576, 65536)),
                Table = rng.Next(3) == 0 ? null : Word(rng),
                PreUp = Some(rng, 2, () => "echo " + Word(rng) + "  x"),
                PostUp = Some(rng, 2, () => Word(rng)),
                PreDown = Some(rng, 2, () => Word(rng)),
                PostDown = Some(rng, 2, () => Word(rng) + " %i"),
                SaveConfig = Maybe(rng, () => rng.Next(2) == 0),
            };
        }

        var peers = Some(rng, 4, () => new WgPeerConfig
        {
            PublicKey = RandomKey(rng),
            PresharedKey = Maybe(rng, () => RandomKey(rng)),
            AllowedIps = Some(rng, 5, () => RandomPrefix(rng)),
            Endpoint = Maybe(rng, () => RandomEndpoint(rng)),
            PersistentKeepalive = Maybe(rng, () => (ushort)rng.Next(65536)),
        });
        return new WgConfig(iface, peers);
    }
}
