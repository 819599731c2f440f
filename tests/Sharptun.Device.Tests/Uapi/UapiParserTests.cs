using System.Net;
using Sharptun.Device.Uapi;

namespace Sharptun.Device.Tests.Uapi;

public sealed class UapiParserTests
{
    private static readonly string K1 = new('1', 64);
    private static readonly string K2 = new('2', 64);

    private static UapiChangeSet Parse(string body)
    {
        Assert.True(UapiParser.TryParseSet(body, out var changes, out var error), error?.ToString());
        Assert.Null(error);
        return changes!;
    }

    private static UapiError Fail(string body)
    {
        Assert.False(UapiParser.TryParseSet(body, out var changes, out var error));
        Assert.Null(changes); // all-or-nothing
        return error!;
    }

    [Fact]
    public void TryParseSet_XplatformExample_ReadsEveryLine()
    {
        // The example request from wireguard.com/xplatform.
        var changes = Parse("""
            private_key=e84b5a6d2717c1003a13b431570353dbaca9146cf150c5f8575680feba52027a
            fwmark=0
            listen_port=12912
            replace_peers=true
            public_key=b85996fecc9c7f1fc6d2572a76eda11d59bcd20be8e543b15ce4bd85a8e75a33
            preshared_key=188515093e952f5f22e865cef3012e72f8b5f0b598ac0309d5dacce3b70fcf52
            replace_allowed_ips=true
            allowed_ip=192.168.4.4/32
            endpoint=[abcd:23::33%2]:51820
            public_key=58402e695ba1772b1cc9309755f043251ea77fdcf10fbe63989ceb7e19321376
            replace_allowed_ips=true
            allowed_ip=192.168.4.6/32
            persistent_keepalive_interval=111
            endpoint=182.122.22.19:3233
            public_key=662e14fd594556f522604703340351258903b64f35553763f19426ab2a515c58
            endpoint=5.152.198.39:51820
            replace_allowed_ips=true
            allowed_ip=192.168.4.10/32
            allowed_ip=192.168.4.11/32
            public_key=e818b58db5274087fcc1be5dc728cf53d3b5726b4cef6b9bab8f8f8c2452c25c
            remove=true

            """);
        Assert.Equal("e84b5a6d2717c1003a13b431570353dbaca9146cf150c5f8575680feba52027a".Length, changes.PrivateKey!.Value.ToHex().Length);
        Assert.Equal(0u, changes.FwMark);
        Assert.Equal((ushort)12912, changes.ListenPort);
        Assert.True(changes.ReplacePeers);
        Assert.Equal(4, changes.Peers.Count);
        var p0 = changes.Peers[0];
        Assert.Equal("b85996fecc9c7f1fc6d2572a76eda11d59bcd20be8e543b15ce4bd85a8e75a33", p0.PublicKey.ToHex());
        Assert.Equal("188515093e952f5f22e865cef3012e72f8b5f0b598ac0309d5dacce3b70fcf52", p0.PresharedKey!.Value.ToHex());
        Assert.True(p0.ReplaceAllowedIps);
        Assert.Equal(["192.168.4.4/32"], p0.AllowedIps.Select(p => p.ToString()));
        Assert.Equal(51820, p0.Endpoint!.Port);
        Assert.Equal(2, p0.Endpoint.Address.ScopeId);
        Assert.Equal((ushort)111, changes.Peers[1].PersistentKeepaliveInterval);
        Assert.Equal(new IPEndPoint(IPAddress.Parse("182.122.22.19"), 3233), changes.Peers[1].Endpoint);
        Assert.Equal(2, changes.Peers[2].AllowedIps.Count);
        Assert.True(changes.Peers[3].Remove);
    }

    [Fact]
    public void TryParseSet_PrivateKey_IsClampedLikeWireguardGo()
    {
        var changes = Parse("private_key=" + new string('f', 64) + "\n");
        var key = changes.PrivateKey!.Value.AsSpan();
        Assert.Equal(0xF8, key[0]);
        Assert.Equal(0x7F, key[31]);
    }

    [Fact]
    public void TryParseSet_ZeroPrivateKey_MeansRemove() => Assert.True(Parse("private_key=" + new string('0', 64)).PrivateKey!.Value.IsZero);

    [Fact]
    public void TryParseSet_BlankLine_EndsRequest() => Assert.Null(Parse("listen_port=1\n\nlisten_port=nonsense\n").FwMark);

    [Fact]
    public void TryParseSet_EmptyBody_IsEmptyChangeSet()
    {
        var changes = Parse(string.Empty);
        Assert.Equal(new UapiChangeSet(), changes);
    }

    [Fact]
    public void TryParseSet_UpdateOnlyAndProtocolVersion_Accepted()
    {
        var peer = Assert.Single(Parse($"public_key={K1}\nupdate_only=true\nprotocol_version=1\n").Peers);
        Assert.True(peer.UpdateOnly);
    }

    [Fact]
    public void TryParseSet_ReplaceAllowedIpsMidSection_DropsEarlierPrefixes()
    {
        var peer = Assert.Single(Parse($"public_key={K1}\nallowed_ip=10.0.0.0/8\nreplace_allowed_ips=true\nallowed_ip=fd00::/64\n").Peers);
        Assert.True(peer.ReplaceAllowedIps);
        Assert.Equal(["fd00::/64"], peer.AllowedIps.Select(p => p.ToString()));
    }

    [Fact]
    public void TryParseSet_SamePeerTwice_KeepsBothSectionsInOrder()
    {
        var changes = Parse($"public_key={K1}\nallowed_ip=10.0.0.0/8\npublic_key={K2}\npublic_key={K1}\nremove=true\n");
        Assert.Equal([K1, K2, K1], changes.Peers.Select(p => p.PublicKey.ToHex()));
        Assert.True(changes.Peers[2].Remove);
    }

    [Fact]
    public void TryParseSet_UpperCaseHex_AcceptedLikeGo() => Assert.Single(Parse("public_key=" + new string('A', 64)).Peers);

    [Fact]
    public void TryParseSet_CrLf_Accepted() => Assert.Equal((ushort)5, Parse("listen_port=5\r\n").ListenPort);

    [Theory]
    [InlineData("listen_port", UapiErrno.Protocol)] // no '='
    [InlineData("bogus=1", UapiErrno.Invalid)] // unknown device key
    [InlineData("Listen_Port=1", UapiErrno.Invalid)] // keys are case-sensitive
    [InlineData("private_key=abc", UapiErrno.Invalid)]
    [InlineData("private_key=zz00000000000000000000000000000000000000000000000000000000000000", UapiErrno.Invalid)]
    [InlineData("listen_port=65536", UapiErrno.Invalid)]
    [InlineData("listen_port=-1", UapiErrno.Invalid)]
    [InlineData("listen_port=+1", UapiErrno.Invalid)]
    [InlineData("listen_port=", UapiErrno.Invalid)]
    [InlineData("listen_port= 1", UapiErrno.Invalid)]
    [InlineData("fwmark=4294967296", UapiErrno.Invalid)]
    [InlineData("fwmark=0x10", UapiErrno.Invalid)]
    [InlineData("replace_peers=false", UapiErrno.Invalid)]
    [InlineData("replace_peers=TRUE", UapiErrno.Invalid)]
    [InlineData("allowed_ip=10.0.0.0/8", UapiErrno.Invalid)] // peer key before public_key
    [InlineData("endpoint=1.2.3.4:5", UapiErrno.Invalid)]
    [InlineData("protocol_version=1", UapiErrno.Invalid)]
    [InlineData("public_key=1234", UapiErrno.Invalid)]
    public void TryParseSet_BadDeviceLine_GivesWireguardGoErrno(string line, int errno) => Assert.Equal(errno, Fail(line + "\n").Errno);

    [Theory]
    [InlineData("bogus=1")]
    [InlineData("listen_port=1")] // device key inside a peer section
    [InlineData("remove=false")]
    [InlineData("update_only=yes")]
    [InlineData("preshared_key=00")]
    [InlineData("endpoint=1.2.3.4")]
    [InlineData("endpoint=example.com:51820")] // hostnames are resolved by the client, never here
    [InlineData("endpoint=fd00::1:51820")]
    [InlineData("persistent_keepalive_interval=65536")]
    [InlineData("persistent_keepalive_interval=x")]
    [InlineData("replace_allowed_ips=1")]
    [InlineData("allowed_ip=10.0.0.1")] // netip.ParsePrefix requires the /len
    [InlineData("allowed_ip=10.0.0.0/33")]
    [InlineData("allowed_ip=10.0.0.0/08")]
    [InlineData("allowed_ip=fd00::/129")]
    [InlineData("allowed_ip=10.0.0.0/8,10.1.0.0/16")]
    [InlineData("protocol_version=2")]
    public void TryParseSet_BadPeerLine_IsInvalid(string line) => Assert.Equal(UapiErrno.Invalid, Fail($"public_key={K1}\n{line}\n").Errno);

    [Fact]
    public void TryParseSet_BadLineAfterGoodOnes_ProducesNoChangeSet()
    {
        var error = Fail($"private_key={K1}\nlisten_port=1\npublic_key={K2}\nallowed_ip=10.0.0.0/8\nallowed_ip=bad\n");
        Assert.Equal(UapiErrno.Invalid, error.Errno);
        Assert.Contains("allowed ip", error.Message);
    }

    [Fact]
    public void TryParseSet_LineWithoutEqualsInPeerSection_IsProtocolError() => Assert.Equal(UapiErrno.Protocol, Fail($"public_key={K1}\nremove\n").Errno);
}
