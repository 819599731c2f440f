using Sharptun.NetStack.Wire;
using Sharptun.Transport;

namespace Sharptun.NetStack.Tests.Wire;

public sealed class Ipv6Tests
{
    [Fact]
    public void TryCreate_KernelEchoRequest_ParsesAllFields()
    {
        Assert.True(Ipv6Packet.TryCreate(KernelCaptures.Icmpv6EchoRequest, out var ip));
        var repr = Ipv6Repr.Parse(ip);
        Assert.Equal(IpAddr.Parse("fd00:9::1"), repr.Source);
        Assert.Equal(IpAddr.Parse("fd00:9::2"), repr.Destination);
        Assert.Equal(IpProtocol.Icmpv6, repr.NextHeader);
        Assert.Equal(16, repr.PayloadLength);
        Assert.Equal(64, repr.HopLimit);
        Assert.Equal(0xad23c, repr.FlowLabel);
        Assert.Equal(0, repr.TrafficClass);
    }

    [Fact]
    public void Emit_KernelHeader_ReproducesKernelBytes()
    {
        var bytes = KernelCaptures.Udpv6;
        Assert.True(Ipv6Packet.TryCreate(bytes, out var ip));
        var emitted = new byte[40];
        Ipv6Repr.Parse(ip).Emit(emitted);
        Assert.Equal(bytes[..40], emitted);
    }

    [Fact]
    public void TryCreate_PayloadLengthBeyondBuffer_Fails()
    {
        var bytes = KernelCaptures.Udpv6;
        Assert.False(Ipv6Packet.TryCreate(bytes.AsSpan(0, bytes.Length - 1), out _));
        Assert.False(Ipv6Packet.TryCreate(bytes.AsSpan(0, 39), out _));
    }

    [Fact]
    public void TryWalk_KernelFragment_FindsFragmentHeader()
    {
        Assert.True(Ipv6Packet.TryCreate(KernelCaptures.Udpv6Fragment1, out var ip));
        Assert.True(Ipv6ExtensionHeaders.TryWalk(ip.Payload, ip.NextHeader, out var upper));
        Assert.Equal(IpProtocol.Udp, upper.Protocol);
        Assert.Equal(0, upper.FragmentHeaderOffset);
        Assert.Equal(8, upper.Offset);
        Assert.True(Ipv6FragmentRepr.TryParse(ip.Payload, out var fragment));
        Assert.Equal(new Ipv6FragmentRepr(IpProtocol.Udp, 0, true, fragment.Identification), fragment);
        Assert.True(Ipv6Packet.TryCreate(KernelCaptures.Udpv6Fragment2, out var ip2));
        Assert.True(Ipv6FragmentRepr.TryParse(ip2.Payload, out var fragment2));
        Assert.Equal(fragment.Identification, fragment2.Identification);
        Assert.False(fragment2.MoreFragments);
        Assert.Equal(1232, fragment2.FragmentOffset);
    }

    [Fact]
    public void TryWalk_HopByHopRoutingDestinationOptions_ReachesUdp()
    {
        var payload = new byte[8 + 16 + 8 + 8];
        payload[0] = IpProtocol.Ipv6Routing;      // hop-by-hop (8 bytes) → routing
        payload[1] = 0;
        payload[8] = IpProtocol.Ipv6DestinationOptions;   // routing (16 bytes) → destination options
        payload[9] = 1;
        payload[24] = IpProtocol.Udp;              // destination options (8 bytes) → UDP
        payload[25] = 0;
        Assert.True(Ipv6ExtensionHeaders.TryWalk(payload, IpProtocol.HopByHop, out var upper));
        Assert.Equal(IpProtocol.Udp, upper.Protocol);
        Assert.Equal(32, upper.Offset);
        Assert.Equal(-1, upper.FragmentHeaderOffset);
        Assert.Equal(24, upper.NextHeaderField);
    }

    [Fact]
    public void TryWalk_HopByHopNotFirst_Fails()
    {
        var payload = new byte[16];
        payload[0] = IpProtocol.HopByHop;
        Assert.False(Ipv6ExtensionHeaders.TryWalk(payload, IpProtocol.Ipv6DestinationOptions, out _));
    }

    [Fact]
    public void TryWalk_TruncatedExtensionHeader_Fails()
    {
        var payload = new byte[8];
        payload[0] = IpProtocol.Udp;
        payload[1] = 3;   // claims 32 bytes
        Assert.False(Ipv6ExtensionHeaders.TryWalk(payload, IpProtocol.Ipv6DestinationOptions, out _));
    }

    [Fact]
    public void TryWalk_EndlessChain_IsBounded()
    {
        var payload = new byte[8 * 64];
        for (var i = 0; i < 64; i++)
        {
            payload[i * 8] = IpProtocol.Ipv6DestinationOptions;
        }

        Assert.False(Ipv6ExtensionHeaders.TryWalk(payload, IpProtocol.Ipv6DestinationOptions, out _));
    }

    [Fact]
    public void TryWalk_AtomicFragment_ContinuesToUpperLayer()
    {
        var payload = new byte[16];
        new Ipv6FragmentRepr(IpProtocol.Udp, 0, false, 7).Emit(payload);
        Assert.True(Ipv6ExtensionHeaders.TryWalk(payload, IpProtocol.Ipv6Fragment, out var upper));
        Assert.Equal(IpProtocol.Udp, upper.Protocol);
        Assert.Equal(8, upper.Offset);
    }

    [Fact]
    public void ParseEmit_RandomReprs_RoundTrip()
    {
        const int seed = 8200;
        var rng = new Random(seed);
        var buffer = new byte[40 + 64];
        var addr = new byte[16];
        for (var i = 0; i < 1000; i++)
        {
            rng.NextBytes(addr);
            var src = IpAddr.FromV6(addr);
            rng.NextBytes(addr);
            var repr = new Ipv6Repr(src, IpAddr.FromV6(addr), (byte)rng.Next(256), rng.Next(0, 65), (byte)rng.Next(256), (byte)rng.Next(256), rng.Next(0, 1 << 20));
            repr.Emit(buffer);
            Assert.True(Ipv6Packet.TryCreate(buffer, out var ip), $"seed {seed} iteration {i}");
            Assert.Equal(repr, Ipv6Repr.Parse(ip));
            var fragment = new Ipv6FragmentRepr((byte)rng.Next(256), rng.Next(0, 8192) * 8, rng.Next(2) == 0, (uint)rng.Next());
            fragment.Emit(buffer);
            Assert.True(Ipv6FragmentRepr.TryParse(buffer, out var parsed));
            Assert.Equal(fragment, parsed);
        }
    }
}
