using System.Collections.Immutable;
using System.Net;
using Sharptun.Crypto;
using Sharptun.Device.Uapi;

namespace Sharptun.Device.Tests.Uapi;

public sealed class UapiConfigStoreTests
{
    private static readonly Key PeerA = Fill(0xA1);
    private static readonly Key PeerB = Fill(0xB2);

    [Fact]
    public void Apply_AllowedIpOwnedByAnotherPeer_MovesToTheNewPeer()
    {
        var store = new UapiConfigStore();
        Apply(store, new UapiChangeSet { Peers = [Peer(PeerA, "10.0.0.0/24", "10.1.0.0/16")] });

        Apply(store, new UapiChangeSet { Peers = [Peer(PeerB, "10.0.0.7/24")] });

        var peers = store.GetSnapshot().Peers;
        Assert.Equal(["10.1.0.0/16"], peers[0].AllowedIps.Select(p => p.ToString()));
        Assert.Equal(["10.0.0.0/24"], peers[1].AllowedIps.Select(p => p.ToString())); // masked
    }

    [Fact]
    public void Apply_UpdateOnlyForUnknownPeer_IsIgnored()
    {
        var store = new UapiConfigStore();

        Apply(store, new UapiChangeSet { Peers = [new UapiPeerChange { PublicKey = PeerA, UpdateOnly = true, PersistentKeepaliveInterval = 5 }] });

        Assert.Empty(store.GetSnapshot().Peers);
    }

    [Fact]
    public void Apply_RemoveAndReplacePeers_DropPeers()
    {
        var store = new UapiConfigStore();
        Apply(store, new UapiChangeSet { Peers = [Peer(PeerA, "10.0.0.1/32"), Peer(PeerB, "10.0.0.2/32")] });

        Apply(store, new UapiChangeSet { Peers = [new UapiPeerChange { PublicKey = PeerA, Remove = true }] });
        Assert.Equal(PeerB, Assert.Single(store.GetSnapshot().Peers).PublicKey);

        Apply(store, new UapiChangeSet { ReplacePeers = true, Peers = [Peer(PeerA, "10.0.0.3/32")] });
        Assert.Equal(PeerA, Assert.Single(store.GetSnapshot().Peers).PublicKey);
    }

    [Fact]
    public void Apply_PeerWithDeviceOwnPublicKey_IsIgnored()
    {
        var privateKey = Fill(0x42);
        Span<byte> pub = stackalloc byte[Key.Size];
        X25519.PublicKey(privateKey.AsSpan(), pub);
        var store = new UapiConfigStore();

        Apply(store, new UapiChangeSet { PrivateKey = privateKey, Peers = [Peer(new Key(pub), "10.0.0.1/32")] });

        Assert.Empty(store.GetSnapshot().Peers);
    }

    [Fact]
    public void Apply_ZeroKeys_RemovePrivateAndPresharedKey_AndSnapshotKeysAreCopies()
    {
        var store = new UapiConfigStore();
        Apply(store, new UapiChangeSet { PrivateKey = Fill(0x42), Peers = [new UapiPeerChange { PublicKey = PeerA, PresharedKey = Fill(7), Endpoint = IPEndPoint.Parse("192.0.2.1:1") }] });
        var snapshot = store.GetSnapshot();
        snapshot.PrivateKey!.Value.Clear(); // the caller may wipe what it got
        Assert.False(store.GetSnapshot().PrivateKey!.Value.IsZero);

        Apply(store, new UapiChangeSet { PrivateKey = new Key(new byte[32]), Peers = [new UapiPeerChange { PublicKey = PeerA, PresharedKey = new Key(new byte[32]) }] });

        var after = store.GetSnapshot();
        Assert.Null(after.PrivateKey);
        Assert.Null(Assert.Single(after.Peers).PresharedKey);
        Assert.Equal(IPEndPoint.Parse("192.0.2.1:1"), after.Peers[0].Endpoint);
    }

    private static void Apply(UapiConfigStore store, UapiChangeSet changes) => Assert.Null(store.Apply(changes));

    private static UapiPeerChange Peer(Key key, params string[] prefixes) => new()
    {
        PublicKey = key,
        AllowedIps = prefixes.Select(p => IpPrefix.TryParse(p, out var prefix) ? prefix : throw new ArgumentException(p)).ToImmutableArray(),
    };

    private static Key Fill(byte value)
    {
        var bytes = new byte[Key.Size];
        Array.Fill(bytes, value);
        return new Key(bytes);
    }
}
