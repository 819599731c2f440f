using Sharptun.Device.Routing;
using Sharptun.Protocol;
using System.Net;
using Sharptun.Device.Config;
using Sharptun.Device.Uapi;

namespace Sharptun.Device.Tests.Uapi;

public sealed class UapiConfigConverterTests
{
    private const string Priv = "yAnz5TF+lXXJte14tji3zlMNq+hd2rYUIgJBgB3fBmk=";
    private const string Pub1 = "xTIBA5rboUvnH4htodjb6e697QjLERt1NAB4mZqp8Dg=";

    private static WgConfig Parse(string text)
    {
        Assert.True(WgConfigParser.TryParse(text, "wg0.conf", out var config, out var errors), string.Join("\n", errors));
        return config!;
    }

    [Fact]
    public void TryToChangeSet_Setconf_ReplacesPeersAndAllowedIps()
    {
        var config = Parse($"[Interface]\nPrivateKey = {Priv}\nListenPort = 51820\nAddress = 10.0.0.1/24\n[Peer]\nPublicKey = {Pub1}\nAllowedIPs = 10.0.0.2/32\nEndpoint = 1.2.3.4:5\nPersistentKeepalive = 25\n");
        Assert.True(UapiConfigConverter.TryToChangeSet(config, null, replace: true, out var changes, out var errors), string.Join("; ", errors));
        Assert.True(changes!.ReplacePeers);
        Assert.Equal((ushort)51820, changes.ListenPort);
        Assert.Null(changes.FwMark);
        var peer = Assert.Single(changes.Peers);
        Assert.True(peer.ReplaceAllowedIps);
        Assert.Equal(new IPEndPoint(IPAddress.Parse("1.2.3.4"), 5), peer.Endpoint);
        Assert.Equal((ushort)25, peer.PersistentKeepaliveInterval);
        Assert.Equal(config.Peers[0].AllowedIps, peer.AllowedIps);

        // The same path as a UAPI request: the formatted set text parses back to the same change set.
        Assert.True(UapiParser.TryParseSet(UapiFormatter.FormatSet(changes), out var viaUapi, out _));
        Assert.Equal(changes, viaUapi);
    }

    [Fact]
    public void TryToChangeSet_Addconf_DoesNotReplace()
    {
        var config = Parse($"[Peer]\nPublicKey = {Pub1}\n");
        Assert.True(UapiConfigConverter.TryToChangeSet(config, null, replace: false, out var changes, out _));
        Assert.False(changes!.ReplacePeers);
        Assert.False(changes.Peers[0].ReplaceAllowedIps);
        Assert.Null(changes.PrivateKey);
    }

    [Fact]
    public void TryToChangeSet_HostnameWithoutResolver_Fails()
    {
        var config = Parse($"[Peer]\nPublicKey = {Pub1}\nEndpoint = vpn.example.invalid:51820\n");
        Assert.False(UapiConfigConverter.TryToChangeSet(config, null, true, out var changes, out var errors));
        Assert.Null(changes);
        Assert.Contains("vpn.example.invalid:51820", Assert.Single(errors));
    }

    [Fact]
    public void TryToChangeSet_HostnameWithResolver_UsesIt()
    {
        var config = Parse($"[Peer]\nPublicKey = {Pub1}\nEndpoint = vpn.example.invalid:51820\n");
        var resolved = new IPEndPoint(IPAddress.Parse("192.0.2.1"), 51820);
        Assert.True(UapiConfigConverter.TryToChangeSet(config, e => e.Host == "vpn.example.invalid" ? resolved : null, true, out var changes, out _));
        Assert.Equal(resolved, changes!.Peers[0].Endpoint);
    }

    [Fact]
    public void TryToChangeSet_PrivateKey_IsClamped()
    {
        var config = Parse($"[Interface]\nPrivateKey = {Convert.ToBase64String(Enumerable.Repeat((byte)0xFF, 32).ToArray())}\n");
        Assert.True(UapiConfigConverter.TryToChangeSet(config, null, true, out var changes, out _));
        Assert.Equal(0xF8, changes!.PrivateKey!.Value.AsSpan()[0]);
    }

    [Fact]
    public void PrintShowConf_LeavesOutZeroValues()
    {
        Assert.True(Key.TryParse(Priv, out var priv));
        Assert.True(Key.TryParse(Pub1, out var pub));
        Assert.True(IpPrefix.TryParse("10.0.0.0/24", out var prefix));
        var snapshot = new DeviceSnapshot
        {
            PrivateKey = priv,
            ListenPort = 51820,
            Peers = new[]
            {
                new PeerSnapshot { PublicKey = pub, PresharedKey = new Key(new byte[32]), Endpoint = new IPEndPoint(IPAddress.Parse("1.2.3.4"), 5), AllowedIps = new[] { prefix }, TxBytes = 9 },
            },
        };
        Assert.Equal(
            $"[Interface]\nListenPort = 51820\nPrivateKey = {Priv}\n\n[Peer]\nPublicKey = {Pub1}\nAllowedIPs = 10.0.0.0/24\nEndpoint = 1.2.3.4:5\n",
            UapiConfigConverter.PrintShowConf(snapshot));
    }
}
