using System.Net;
using Sharptun.NetStack.Wire;
using Sharptun.Transport;

namespace Sharptun.NetStack.Tests.Wire;

public sealed class ChecksumTests
{
    private static ushort Naive(ReadOnlySpan<byte> data, uint initial = 0)
    {
        ulong sum = initial;
        for (var i = 0; i + 1 < data.Length; i += 2)
        {
            sum += (uint)(data[i] << 8 | data[i + 1]);
        }

        if (data.Length % 2 == 1)
        {
            sum += (uint)data[^1] << 8;
        }

        while (sum >> 16 != 0)
        {
            sum = (sum & 0xFFFF) + (sum >> 16);
        }

        return (ushort)~sum;
    }

    [Fact]
    public void Compute_Rfc1071Example_MatchesHandComputedSum()
    {
        // RFC 1071 §3 numerical example: words 0001 f203 f4f5 f6f7 sum to ddf2 (ones-complement), checksum 220d.
        byte[] data = [0x00, 0x01, 0xf2, 0x03, 0xf4, 0xf5, 0xf6, 0xf7];
        Assert.Equal(0xddf2u, Checksum.Add(data));
        Assert.Equal((ushort)0x220d, Checksum.Compute(data));
    }

    [Fact]
    public void Compute_KernelIpv4Header_VerifiesToZero()
    {
        // IPv4 header of a Linux ping 10.0.0.1 -> 10.0.0.2 (DF, TTL 64, id 0); checksum 0x26a7 computed by hand:
        // 4500+0054+0000+4000+4001+0a00+0001+0a00+0002 = d958, ~d958 = 26a7.
        byte[] header = [0x45, 0x00, 0x00, 0x54, 0x00, 0x00, 0x40, 0x00, 0x40, 0x01, 0x26, 0xa7, 0x0a, 0x00, 0x00, 0x01, 0x0a, 0x00, 0x00, 0x02];
        Assert.Equal((ushort)0, Checksum.Compute(header));
        header[10] = 0;
        header[11] = 0;
        Assert.Equal((ushort)0x26a7, Checksum.Compute(header));
    }

    [Fact]
    public void Add_RandomLengthsAndOffsets_MatchesNaiveModel()
    {
        const int seed = 1071;
        var rng = new Random(seed);
        var buffer = new byte[70000];
        rng.NextBytes(buffer);
        for (var trial = 0; trial < 2000; trial++)
        {
            var offset = rng.Next(0, 64);
            var length = trial < 200 ? trial : rng.Next(0, buffer.Length - offset);
            var span = buffer.AsSpan(offset, length);
            var initial = (uint)rng.Next(0, 0x10000);
            Assert.True(Naive(span, initial) == Checksum.Compute(span, initial), $"seed {seed} trial {trial} len {length}");
        }
    }

    [Fact]
    public void Add_AllOnes_DoesNotOverflowLanes()
    {
        var data = new byte[65535];
        Array.Fill(data, (byte)0xFF);
        Assert.Equal(Naive(data), Checksum.Compute(data));
    }

    [Fact]
    public void Add_ChainedEvenChunks_EqualsOneShot()
    {
        var rng = new Random(7);
        var data = new byte[3001];
        rng.NextBytes(data);
        var chained = Checksum.Add(data.AsSpan(1000), Checksum.Add(data.AsSpan(0, 1000)));
        Assert.Equal(Checksum.Finish(Checksum.Add(data)), Checksum.Finish(chained));
    }

    [Fact]
    public void Update_ChangedField_MatchesRecomputation()
    {
        var rng = new Random(1624);
        var data = new byte[40];
        for (var trial = 0; trial < 1000; trial++)
        {
            rng.NextBytes(data);
            var before = Checksum.Compute(data);
            var field = rng.Next(0, 20) * 2;
            var oldValue = (ushort)(data[field] << 8 | data[field + 1]);
            var newValue = (ushort)rng.Next(0, 0x10000);
            data[field] = (byte)(newValue >> 8);
            data[field + 1] = (byte)newValue;
            var incremental = Checksum.Update(before, oldValue, newValue);
            var full = Checksum.Compute(data);
            // RFC 1624 §3: the two may differ only in the representation of zero (0x0000 vs 0xFFFF).
            Assert.True(incremental == full || (incremental ^ full) == 0xFFFF && (full == 0 || full == 0xFFFF), $"trial {trial}");
        }
    }

    [Fact]
    public void PseudoHeader_V4_MatchesExplicitBytes()
    {
        var src = IpAddr.Parse("192.168.1.10");
        var dst = IpAddr.Parse("8.8.4.4");
        byte[] explicitBytes = [192, 168, 1, 10, 8, 8, 4, 4, 0, 17, 0x01, 0x23];
        Assert.Equal(Checksum.Add(explicitBytes), Checksum.PseudoHeader(src, dst, 17, 0x123));
    }

    [Fact]
    public void PseudoHeader_V6_MatchesExplicitBytes()
    {
        var src = IpAddr.Parse("fe80::1:2:3:4");
        var dst = IpAddr.Parse("2001:db8:ffff::ffff");
        var bytes = new byte[40];
        src.WriteTo(bytes);
        dst.WriteTo(bytes.AsSpan(16));
        bytes[34] = 0x01;
        bytes[35] = 0x02;
        bytes[39] = 58;
        Assert.Equal(Checksum.Add(bytes), Checksum.PseudoHeader(src, dst, 58, 0x102));
    }
}
