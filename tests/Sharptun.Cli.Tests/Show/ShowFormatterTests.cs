using Sharptun.Device.Routing;
using Sharptun.Protocol;
using System.Collections.Immutable;
using System.Net;
using System.Text.Json;
using Sharptun.Cli.Show;
using Sharptun.Device;
using Sharptun.Device.Uapi;

namespace Sharptun.Cli.Tests.Show;

public sealed class ShowFormatterTests
{
    // RFC 7748 §6.1 Alice: private key and its public key.
    private const string AlicePrivateHex = "77076d0a7318a57d3c16c17251b26645df4c2f87ebc0992ab177fba51db92c2a";
    private const string AlicePublicHex = "8520f0098930a754748b7ddcb43ef75a0dbf3a0d26381af4eba4a98eaa9b4e6a";
    private const string BobPublicHex = "de9edb7d7b7dc1b4d35b61c2ece435373f8343c85b78674dadfc7e146f882b4f";
    private const string CarolPublicHex = "2222222222222222222222222222222222222222222222222222222222222222";
    private const long Now = 1_800_000_000;

    [Fact]
    public void Format_FullDevice_MatchesWgShowLayout()
    {
        var text = ShowFormatter.Format("wg0", Device(), Now);

        var expected =
            "interface: wg0\n" +
            $"  public key: {B64(AlicePublicHex)}\n" +
            "  private key: (hidden)\n" +
            "  listening port: 51820\n" +
            "  fwmark: 0x2a\n" +
            "\n" +
            $"peer: {B64(BobPublicHex)}\n" +
            "  preshared key: (hidden)\n" +
            "  endpoint: [fd00::1]:51821\n" +
            "  allowed ips: 10.0.0.2/32, fd00:1::/64\n" +
            "  latest handshake: 1 minute, 5 seconds ago\n" +
            "  transfer: 1.20 MiB received, 3.40 KiB sent\n" +
            "  persistent keepalive: every 25 seconds\n" +
            "\n" +
            $"peer: {B64(CarolPublicHex)}\n" +
            "  allowed ips: (none)\n";
        Assert.Equal(expected, text);
    }

    [Fact]
    public void Format_HideKeysOff_PrintsPrivateKey()
    {
        var text = ShowFormatter.Format("wg0", Device(), Now, hideKeys: false);

        Assert.Contains($"  private key: {B64(AlicePrivateHex)}\n", text, StringComparison.Ordinal);
    }

    [Fact]
    public void Format_EmptyDevice_OnlyInterfaceLine()
    {
        Assert.Equal("interface: wg9\n", ShowFormatter.Format("wg9", new DeviceSnapshot(), Now));
    }

    [Fact]
    public void SortedPeers_MostRecentHandshakeFirst_NeverLast()
    {
        var never = Peer(BobPublicHex, 0);
        var old = Peer(AlicePublicHex, 100);
        var recent = Peer(CarolPublicHex, 200);
        var device = new DeviceSnapshot { Peers = ImmutableArray.Create(never, old, recent) };

        var sorted = ShowFormatter.SortedPeers(device);

        Assert.Equal([recent, old, never], sorted);
    }

    [Theory]
    [InlineData(0UL, "0 B")]
    [InlineData(1023UL, "1023 B")]
    [InlineData(1024UL, "1.00 KiB")]
    [InlineData(3482UL, "3.40 KiB")]
    [InlineData(1258291UL, "1.20 MiB")]
    [InlineData(5UL << 30, "5.00 GiB")]
    [InlineData(3UL << 40, "3.00 TiB")]
    public void Bytes_MatchesWgUnits(ulong bytes, string expected)
    {
        Assert.Equal(expected, ShowFormatter.Bytes(bytes));
    }

    [Theory]
    [InlineData(1UL, "1 second")]
    [InlineData(65UL, "1 minute, 5 seconds")]
    [InlineData(3600UL, "1 hour")]
    [InlineData(90061UL, "1 day, 1 hour, 1 minute, 1 second")]
    [InlineData(2UL * 365 * 86400 + 120, "2 years, 2 minutes")]
    public void PrettyTime_MatchesWg(ulong seconds, string expected)
    {
        Assert.Equal(expected, ShowFormatter.PrettyTime(seconds));
    }

    [Fact]
    public void Ago_SameSecond_IsNow_AndFuture_WarnsAboutClock()
    {
        Assert.Equal("Now", ShowFormatter.Ago(Now, Now));
        Assert.Equal("(System clock wound backward; connection problems may ensue.)", ShowFormatter.Ago(Now + 5, Now));
    }

    [Fact]
    public void FormatJson_ParsesBackWithTheSameValues_AndHoldsNoSecrets()
    {
        var json = ShowFormatter.FormatJson([("wg0", Device()), ("wg1", new DeviceSnapshot())]);

        using var doc = JsonDocument.Parse(json);
        var interfaces = doc.RootElement.GetProperty("interfaces");
        Assert.Equal(2, interfaces.GetArrayLength());
        var wg0 = interfaces[0];
        Assert.Equal("wg0", wg0.GetProperty("name").GetString());
        Assert.Equal(B64(AlicePublicHex), wg0.GetProperty("publicKey").GetString());
        Assert.True(wg0.GetProperty("hasPrivateKey").GetBoolean());
        Assert.Equal(51820, wg0.GetProperty("listenPort").GetInt32());
        Assert.Equal(42u, wg0.GetProperty("fwmark").GetUInt32());
        var peer = wg0.GetProperty("peers")[0];
        Assert.Equal(B64(BobPublicHex), peer.GetProperty("publicKey").GetString());
        Assert.True(peer.GetProperty("hasPresharedKey").GetBoolean());
        Assert.Equal("[fd00::1]:51821", peer.GetProperty("endpoint").GetString());
        Assert.Equal(["10.0.0.2/32", "fd00:1::/64"], peer.GetProperty("allowedIps").EnumerateArray().Select(e => e.GetString()!).ToArray());
        Assert.Equal(Now - 65, peer.GetProperty("latestHandshake").GetInt64());
        Assert.Equal(1258291UL, peer.GetProperty("rxBytes").GetUInt64());
        Assert.Equal(3482UL, peer.GetProperty("txBytes").GetUInt64());
        Assert.Equal(25, peer.GetProperty("persistentKeepalive").GetInt32());
        Assert.Equal(JsonValueKind.Null, wg0.GetProperty("peers")[1].GetProperty("latestHandshake").ValueKind);
        Assert.Equal(JsonValueKind.Null, interfaces[1].GetProperty("publicKey").ValueKind);
        Assert.DoesNotContain(B64(AlicePrivateHex), json, StringComparison.Ordinal);
        Assert.DoesNotContain(B64("11".PadRight(64, '1')), json, StringComparison.Ordinal);
    }

    [Fact]
    public void Format_SnapshotFromUapiGetReply_RoundTripsThroughParser()
    {
        var reply = UapiFormatter.FormatGetResponse(Device());
        Assert.True(UapiParser.TryParseGet(reply, out var parsed, out _));

        Assert.Equal(ShowFormatter.Format("wg0", Device(), Now), ShowFormatter.Format("wg0", parsed!, Now));
    }

    private static DeviceSnapshot Device() => new()
    {
        PrivateKey = Hex(AlicePrivateHex),
        ListenPort = 51820,
        FwMark = 42,
        Peers = ImmutableArray.Create(
            new PeerSnapshot { PublicKey = Hex(CarolPublicHex), AllowedIps = ImmutableArray<IpPrefix>.Empty },
            new PeerSnapshot
            {
                PublicKey = Hex(BobPublicHex),
                PresharedKey = Hex("11".PadRight(64, '1')),
                Endpoint = new IPEndPoint(IPAddress.Parse("fd00::1"), 51821),
                LastHandshakeUnixNanoseconds = ((Now - 65) * 1_000_000_000) + 123,
                RxBytes = 1258291,
                TxBytes = 3482,
                PersistentKeepaliveInterval = 25,
                AllowedIps = ImmutableArray.Create(new IpPrefix(IPAddress.Parse("10.0.0.2"), 32), new IpPrefix(IPAddress.Parse("fd00:1::"), 64)),
            }),
    };

    private static PeerSnapshot Peer(string publicHex, long handshakeSeconds) => new()
    {
        PublicKey = Hex(publicHex),
        LastHandshakeUnixNanoseconds = handshakeSeconds * 1_000_000_000,
        AllowedIps = ImmutableArray<IpPrefix>.Empty,
    };

    private static Key Hex(string hex) => Key.TryParseHex(hex, out var key) ? key : throw new ArgumentException(hex);

    private static string B64(string hex) => Convert.ToBase64String(Convert.FromHexString(hex));
}
