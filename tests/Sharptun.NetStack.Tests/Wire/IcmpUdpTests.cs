using Sharptun.NetStack.Wire;
using Sharptun.Transport;

namespace Sharptun.NetStack.Tests.Wire;

public sealed class IcmpUdpTests
{
    private static readonly IpAddr V4A = IpAddr.Parse("10.9.0.1");
    private static readonly IpAddr V4B = IpAddr.Parse("10.9.0.2");
    private static readonly IpAddr V6A = IpAddr.Parse("fd00:9::1");
    private static readonly IpAddr V6B = IpAddr.Parse("fd00:9::2");

    [Fact]
    public void Icmpv4_KernelEchoRequest_ParsesAndVerifies()
    {
        Assert.True(IcmpPacket.TryCreate(KernelCaptures.Icmpv4EchoRequest.AsSpan(20), out var icmp));
        Assert.True(icmp.IsChecksumValidV4);
        var repr = IcmpRepr.Parse(icmp);
        Assert.Equal(Icmpv4Type.EchoRequest, repr.Type);
        Assert.Equal(0x44ce, repr.Identifier);
        Assert.Equal(1, repr.SequenceNumber);
        Assert.Equal(8, repr.DataLength);
    }

    [Fact]
    public void Icmpv4_EmitKernelEcho_ReproducesKernelChecksum()
    {
        var original = KernelCaptures.Icmpv4EchoRequest.AsSpan(20);
        Assert.True(IcmpPacket.TryCreate(original, out var icmp));
        var emitted = new byte[original.Length];
        IcmpRepr.Parse(icmp).EmitV4(emitted, icmp.Data);
        Assert.Equal(original.ToArray(), emitted);
    }

    [Fact]
    public void Icmpv6_KernelEchoRequest_VerifiesWithPseudoHeader()
    {
        var bytes = KernelCaptures.Icmpv6EchoRequest;
        Assert.True(IcmpPacket.TryCreate(bytes.AsSpan(40), out var icmp));
        Assert.True(icmp.IsChecksumValidV6(V6A, V6B));
        Assert.False(icmp.IsChecksumValidV6(V6A, IpAddr.Parse("fd00:9::3")));
        var emitted = new byte[icmp.Bytes.Length];
        IcmpRepr.Parse(icmp).EmitV6(emitted, icmp.Data, V6A, V6B);
        Assert.Equal(icmp.Bytes.ToArray(), emitted);
    }

    [Fact]
    public void Icmp_PacketTooBig_CarriesMtu()
    {
        var buffer = new byte[8 + 4];
        new IcmpRepr(Icmpv6Type.PacketTooBig, 0, 1280, 4).EmitV6(buffer, [1, 2, 3, 4], V6A, V6B);
        Assert.True(IcmpPacket.TryCreate(buffer, out var icmp));
        Assert.Equal(1280u, IcmpRepr.Parse(icmp).Mtu);
        Assert.True(icmp.IsChecksumValidV6(V6A, V6B));
    }

    [Fact]
    public void Icmp_TooShort_Fails() => Assert.False(IcmpPacket.TryCreate(new byte[7], out _));

    [Fact]
    public void Udp_KernelV4_ParsesAndVerifies()
    {
        Assert.True(UdpPacket.TryCreate(KernelCaptures.Udpv4.AsSpan(20), out var udp));
        Assert.True(udp.IsChecksumValid(V4A, V4B));
        Assert.Equal(new UdpRepr(40000, 5353, 12), UdpRepr.Parse(udp));
        Assert.Equal("hello, stack"u8.ToArray(), udp.Payload.ToArray());
    }

    [Fact]
    public void Udp_KernelV6_EmitReproducesKernelBytes()
    {
        var original = KernelCaptures.Udpv6.AsSpan(40);
        Assert.True(UdpPacket.TryCreate(original, out var udp));
        Assert.True(udp.IsChecksumValid(V6A, V6B));
        var emitted = new byte[original.Length];
        UdpRepr.Parse(udp).Emit(emitted, udp.Payload, V6A, V6B);
        Assert.Equal(original.ToArray(), emitted);
    }

    [Fact]
    public void Udp_ZeroChecksum_AcceptedOverV4RejectedOverV6()
    {
        var datagram = KernelCaptures.Udpv4.AsSpan(20).ToArray();
        datagram[6] = 0;
        datagram[7] = 0;
        Assert.True(UdpPacket.TryCreate(datagram, out var udp));
        Assert.True(udp.IsChecksumValid(V4A, V4B));
        Assert.False(udp.IsChecksumValid(V6A, V6B));
    }

    [Fact]
    public void Udp_ComputedZeroChecksum_IsSentAsAllOnes()
    {
        // Search a payload whose checksum computes to zero, then check it is transmitted as 0xFFFF (RFC 768).
        var buffer = new byte[10];
        for (var v = 0; v < 65536; v++)
        {
            byte[] payload = [(byte)(v >> 8), (byte)v];
            new UdpRepr(1, 2, 2).Emit(buffer, payload, V4A, V4B);
            var sum = Checksum.Compute(buffer, Checksum.PseudoHeader(V4A, V4B, IpProtocol.Udp, 10));
            if (buffer[6] == 0xFF && buffer[7] == 0xFF)
            {
                Assert.Equal(0, sum);
                Assert.True(UdpPacket.TryCreate(buffer, out var udp));
                Assert.True(udp.IsChecksumValid(V4A, V4B));
                return;
            }
        }

        Assert.Fail("no payload produced a zero checksum");
    }

    [Theory]
    [InlineData(7)]
    public void Udp_Truncated_Fails(int length) => Assert.False(UdpPacket.TryCreate(new byte[length], out _));

    [Fact]
    public void Udp_LengthFieldBelowHeaderOrBeyondBuffer_Fails()
    {
        var datagram = KernelCaptures.Udpv4.AsSpan(20).ToArray();
        datagram[5] = 7;
        Assert.False(UdpPacket.TryCreate(datagram, out _));
        datagram[5] = 21;
        Assert.False(UdpPacket.TryCreate(datagram, out _));
    }

    [Fact]
    public void ParseEmit_RandomUdpAndIcmp_RoundTrip()
    {
        const int seed = 768;
        var rng = new Random(seed);
        var buffer = new byte[200];
        for (var i = 0; i < 1000; i++)
        {
            var payload = new byte[rng.Next(0, 100)];
            rng.NextBytes(payload);
            var (src, dst) = rng.Next(2) == 0 ? (V4A, V4B) : (V6A, V6B);
            var udp = new UdpRepr((ushort)rng.Next(65536), (ushort)rng.Next(65536), payload.Length);
            udp.Emit(buffer, payload, src, dst);
            Assert.True(UdpPacket.TryCreate(buffer.AsSpan(0, udp.Length), out var parsed), $"seed {seed} iteration {i}");
            Assert.True(parsed.IsChecksumValid(src, dst));
            Assert.Equal(udp, UdpRepr.Parse(parsed));
            Assert.Equal(payload, parsed.Payload.ToArray());

            var icmp = new IcmpRepr((byte)rng.Next(256), (byte)rng.Next(256), (uint)rng.Next(), payload.Length);
            icmp.EmitV4(buffer, payload);
            Assert.True(IcmpPacket.TryCreate(buffer.AsSpan(0, icmp.Length), out var parsedIcmp));
            Assert.True(parsedIcmp.IsChecksumValidV4);
            Assert.Equal(icmp, IcmpRepr.Parse(parsedIcmp));
        }
    }
}
