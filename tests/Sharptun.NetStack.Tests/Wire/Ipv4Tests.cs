using Sharptun.NetStack.Wire;
using Sharptun.Transport;

namespace Sharptun.NetStack.Tests.Wire;

public sealed class Ipv4Tests
{
    [Fact]
    public void TryCreate_KernelEchoRequest_ParsesAllFields()
    {
        var bytes = KernelCaptures.Icmpv4EchoRequest;
        Assert.True(Ipv4Packet.TryCreate(bytes, out var ip));
        Assert.True(ip.IsChecksumValid);
        var repr = Ipv4Repr.Parse(ip);
        Assert.Equal(IpAddr.Parse("10.9.0.1"), repr.Source);
        Assert.Equal(IpAddr.Parse("10.9.0.2"), repr.Destination);
        Assert.Equal(IpProtocol.Icmp, repr.Protocol);
        Assert.Equal(16, repr.PayloadLength);
        Assert.Equal(64, repr.TimeToLive);
        Assert.True(repr.DontFragment);
        Assert.False(repr.MoreFragments);
        Assert.Equal(0x0e3e, repr.Identification);
        Assert.Equal(20, ip.HeaderLength);
        Assert.Equal(0x1887, ip.HeaderChecksum);
    }

    [Fact]
    public void Emit_KernelHeader_ReproducesKernelBytes()
    {
        var bytes = KernelCaptures.Icmpv4EchoRequest;
        Assert.True(Ipv4Packet.TryCreate(bytes, out var ip));
        var emitted = new byte[20];
        Ipv4Repr.Parse(ip).Emit(emitted);
        Assert.Equal(bytes[..20], emitted);
    }

    [Fact]
    public void TryCreate_KernelSecondFragment_ReportsOffset()
    {
        Assert.True(Ipv4Packet.TryCreate(KernelCaptures.Udpv4Fragment2, out var ip));
        Assert.True(ip.IsChecksumValid);
        Assert.True(ip.IsFragment);
        Assert.False(ip.MoreFragments);
        Assert.Equal(0x9d * 8, ip.FragmentOffset);
    }

    [Fact]
    public void IsChecksumValid_FlippedBit_IsFalse()
    {
        var bytes = KernelCaptures.Icmpv4EchoRequest;
        bytes[8] ^= 1;
        Assert.True(Ipv4Packet.TryCreate(bytes, out var ip));
        Assert.False(ip.IsChecksumValid);
    }

    [Theory]
    [InlineData(19)]   // shorter than a header
    [InlineData(35)]   // shorter than Total Length
    public void TryCreate_Truncated_Fails(int length)
    {
        Assert.False(Ipv4Packet.TryCreate(KernelCaptures.Icmpv4EchoRequest.AsSpan(0, length), out _));
    }

    [Fact]
    public void TryCreate_IhlBelowFive_Fails()
    {
        var bytes = KernelCaptures.Icmpv4EchoRequest;
        bytes[0] = 0x44;
        Assert.False(Ipv4Packet.TryCreate(bytes, out _));
    }

    [Fact]
    public void TryCreate_IhlBeyondTotalLength_Fails()
    {
        var bytes = KernelCaptures.Icmpv4EchoRequest;
        bytes[0] = 0x4F;   // 60-byte header in a 36-byte datagram
        Assert.False(Ipv4Packet.TryCreate(bytes, out _));
    }

    [Fact]
    public void TryCreate_WithOptions_PayloadSkipsOptions()
    {
        var bytes = new byte[28];
        new Ipv4Repr(IpAddr.Parse("1.2.3.4"), IpAddr.Parse("5.6.7.8"), 17, 8).Emit(bytes);
        // Re-emit as a 24-byte header with one 4-byte option (NOP NOP NOP EOL) and a 4-byte payload.
        bytes[0] = 0x46;
        bytes[20] = 1;
        bytes[21] = 1;
        bytes[22] = 1;
        bytes[23] = 0;
        bytes[10] = 0;
        bytes[11] = 0;
        var sum = Checksum.Compute(bytes.AsSpan(0, 24));
        bytes[10] = (byte)(sum >> 8);
        bytes[11] = (byte)sum;
        Assert.True(Ipv4Packet.TryCreate(bytes, out var ip));
        Assert.True(ip.IsChecksumValid);
        Assert.Equal(24, ip.HeaderLength);
        Assert.Equal(4, ip.Payload.Length);
    }

    [Fact]
    public void ParseEmit_RandomReprs_RoundTrip()
    {
        const int seed = 791;
        var rng = new Random(seed);
        var buffer = new byte[Ipv4Repr.HeaderLength + 100];
        for (var i = 0; i < 1000; i++)
        {
            var repr = new Ipv4Repr(
                IpAddr.FromV4((uint)rng.Next() ^ (uint)rng.Next() << 1), IpAddr.FromV4((uint)rng.Next()),
                (byte)rng.Next(256), rng.Next(0, 101), (byte)rng.Next(256), (byte)rng.Next(256), (ushort)rng.Next(65536),
                rng.Next(2) == 0, rng.Next(2) == 0, rng.Next(0, 8192) * 8);
            repr.Emit(buffer);
            Assert.True(Ipv4Packet.TryCreate(buffer, out var ip), $"seed {seed} iteration {i}");
            Assert.True(ip.IsChecksumValid);
            Assert.Equal(repr, Ipv4Repr.Parse(ip));
        }
    }
}
