using Sharptun.Device.Routing;
using Sharptun.Protocol;
using System.Collections.Immutable;
using System.Net;
using Sharptun.Device.Config;
using Sharptun.Device.Tests.Config;
using Sharptun.Device.Uapi;

namespace Sharptun.Device.Tests.Uapi;

public sealed class UapiFormatterTests
{
    private static Key HexKey(char c) => Key.TryParseHex(new string(c, 64), out var k) ? k : throw new InvalidOperationException();

    private static IpPrefix P(string s) => IpPrefix.TryParse(s, out var p) ? p : throw new FormatException(s);

    [Fact]
    public void FormatGetResponse_WireguardGoLinesAndOrder()
    {
        var snapshot = new DeviceSnapshot
        {
            PrivateKey = HexKey('a'),
            ListenPort = 51820,
            FwMark = 7,
            Peers = ImmutableArray.Create(
                new PeerSnapshot
                {
                    PublicKey = HexKey('b'),
                    PresharedKey = HexKey('c'),
                    Endpoint = new IPEndPoint(IPAddress.Parse("fd00::1"), 4),
                    LastHandshakeUnixNanoseconds = 1_700_000_000_123_456_789,
                    TxBytes = 10,
                    RxBytes = 20,
                    PersistentKeepaliveInterval = 25,
                    AllowedIps = new[] { P("10.0.0.0/24"), P("fd00::/64") },
                },
                new PeerSnapshot { PublicKey = HexKey('d') }),
        };
        var expected =
            $"private_key={new string('a', 64)}\nlisten_port=51820\nfwmark=7\n" +
            $"public_key={new string('b', 64)}\npreshared_key={new string('c', 64)}\nprotocol_version=1\nendpoint=[fd00::1]:4\n" +
            "last_handshake_time_sec=1700000000\nlast_handshake_time_nsec=123456789\ntx_bytes=10\nrx_bytes=20\npersistent_keepalive_interval=25\n" +
            "allowed_ip=10.0.0.0/24\nallowed_ip=fd00::/64\n" +
            $"public_key={new string('d', 64)}\npreshared_key={new string('0', 64)}\nprotocol_version=1\n" +
            "last_handshake_time_sec=0\nlast_handshake_time_nsec=0\ntx_bytes=0\nrx_bytes=0\npersistent_keepalive_interval=0\n" +
            "errno=0\n\n";
        Assert.Equal(expected, UapiFormatter.FormatGetResponse(snapshot));
    }

    [Fact]
    public void FormatGet_UnsetDeviceValues_AreOmitted() =>
        Assert.Equal(string.Empty, UapiFormatter.FormatGet(new DeviceSnapshot { PrivateKey = new Key(new byte[32]) }));

    [Fact]
    public void FormatErrno_NegativeErrno() => Assert.Equal("errno=-22\n\n", UapiFormatter.FormatErrno(UapiErrno.Invalid));

    [Theory]
    [InlineData(21)]
    [InlineData(22)]
    [InlineData(23)]
    public void FormatSet_ThenParse_GivesBackTheChangeSet(int seed)
    {
        var rng = new Random(seed);
        for (var i = 0; i < 300; i++)
        {
            var changes = RandomChangeSet(rng);
            var text = UapiFormatter.FormatSet(changes);
            Assert.True(UapiParser.TryParseSet(text, out var parsed, out var error), $"seed {seed} #{i}: {error}\n{text}");
            Assert.True(changes == parsed, $"seed {seed} #{i}: round trip changed the change set\n{text}");
        }
    }

    [Theory]
    [InlineData(31)]
    [InlineData(32)]
    public void FormatGet_ThenParseGet_GivesBackTheSnapshot(int seed)
    {
        var rng = new Random(seed);
        for (var i = 0; i < 300; i++)
        {
            var snapshot = RandomSnapshot(rng);
            var text = UapiFormatter.FormatGetResponse(snapshot);
            Assert.True(UapiParser.TryParseGet(text, out var parsed, out var error), $"seed {seed} #{i}: {error}\n{text}");
            Assert.True(snapshot == parsed, $"seed {seed} #{i}: round trip changed the snapshot\n{text}");
        }
    }

    [Fact]
    public void TryParseGet_NonZeroErrno_IsError()
    {
        Assert.False(UapiParser.TryParseGet("errno=-22\n\n", out var snapshot, out var error));
        Assert.Null(snapshot);
        Assert.Equal(UapiErrno.Invalid, error!.Errno);
    }

    private static Key RandomNonZeroKey(Random rng)
    {
        var b = new byte[32];
        rng.NextBytes(b);
        b[0] |= 1;
        return new Key(b);
    }

    private static IPEndPoint RandomEndPoint(Random rng)
    {
        var bytes = new byte[rng.Next(2) == 0 ? 4 : 16];
        rng.NextBytes(bytes);
        return new IPEndPoint(new IPAddress(bytes), rng.Next(65536));
    }

    private static UapiChangeSet RandomChangeSet(Random rng)
    {
        var peers = Enumerable.Range(0, rng.Next(4)).Select(_ => new UapiPeerChange
        {
            PublicKey = RandomNonZeroKey(rng),
            Remove = rng.Next(5) == 0,
            UpdateOnly = rng.Next(5) == 0,
            PresharedKey = rng.Next(2) == 0 ? RandomNonZeroKey(rng) : null,
            Endpoint = rng.Next(2) == 0 ? RandomEndPoint(rng) : null,
            PersistentKeepaliveInterval = rng.Next(2) == 0 ? (ushort)rng.Next(65536) : null,
            ReplaceAllowedIps = rng.Next(2) == 0,
            AllowedIps = Enumerable.Range(0, rng.Next(4)).Select(_ => WgConfigRoundTripTests.RandomPrefix(rng)).ToArray(),
        }).ToArray();
        return new UapiChangeSet
        {
            PrivateKey = rng.Next(2) == 0 ? RandomNonZeroKey(rng).Clamped() : null,
            ListenPort = rng.Next(2) == 0 ? (ushort)rng.Next(65536) : null,
            FwMark = rng.Next(2) == 0 ? (uint)rng.NextInt64(1L << 32) : null,
            ReplacePeers = rng.Next(2) == 0,
            Peers = peers,
        };
    }

    private static DeviceSnapshot RandomSnapshot(Random rng) => new()
    {
        PrivateKey = rng.Next(2) == 0 ? RandomNonZeroKey(rng) : null,
        ListenPort = (ushort)rng.Next(65536),
        FwMark = (uint)rng.NextInt64(1L << 32),
        Peers = Enumerable.Range(0, rng.Next(4)).Select(_ => new PeerSnapshot
        {
            PublicKey = RandomNonZeroKey(rng),
            PresharedKey = rng.Next(2) == 0 ? RandomNonZeroKey(rng) : null,
            Endpoint = rng.Next(2) == 0 ? RandomEndPoint(rng) : null,
            LastHandshakeUnixNanoseconds = rng.NextInt64(long.MaxValue),
            TxBytes = (ulong)rng.NextInt64(),
            RxBytes = (ulong)rng.NextInt64(),
            PersistentKeepaliveInterval = (ushort)rng.Next(65536),
            AllowedIps = Enumerable.Range(0, rng.Next(4)).Select(_ => WgConfigRoundTripTests.RandomPrefix(rng).Masked()).ToArray(),
        }).ToArray(),
    };
}
