using Sharptun.NetStack.Wire;
using Sharptun.Transport;

namespace Sharptun.NetStack.Tests.Wire;

/// <summary>
/// Seeded random-input fuzzing of every parser and of the whole inbound path: no exception escapes and no read goes
/// out of range (spans throw on any out-of-range access, so "no exception" covers both). The seed is in the message.
/// </summary>
public sealed class FuzzTests
{
    private const int Iterations = 20000;

    private static IEnumerable<byte[]> Inputs(int seed)
    {
        var rng = new Random(seed);
        byte[][] seeds =
        [
            KernelCaptures.Icmpv4EchoRequest, KernelCaptures.Icmpv6EchoRequest, KernelCaptures.Udpv4, KernelCaptures.Udpv6,
            KernelCaptures.Udpv4Fragment1, KernelCaptures.Udpv4Fragment2, KernelCaptures.Udpv6Fragment1, KernelCaptures.Udpv6Fragment2,
        ];
        for (var i = 0; i < Iterations; i++)
        {
            byte[] input;
            if (i % 3 == 0)
            {
                input = new byte[rng.Next(0, 120)];
                rng.NextBytes(input);
                if (input.Length > 0)
                {
                    input[0] = (byte)((rng.Next(2) == 0 ? 0x40 : 0x60) | (input[0] & 0x0F));
                }
            }
            else
            {
                // Mutate a valid packet: flip bytes, truncate, or extend.
                var source = seeds[rng.Next(seeds.Length)];
                input = source.AsSpan(0, Math.Min(source.Length, rng.Next(0, source.Length + 1))).ToArray();
                var flips = rng.Next(1, 6);
                for (var f = 0; f < flips && input.Length > 0; f++)
                {
                    input[rng.Next(Math.Min(input.Length, 64))] = (byte)rng.Next(256);
                }
            }

            yield return input;
        }
    }

    [Fact]
    public void Parsers_RandomAndMutatedInput_NeverThrow()
    {
        const int seed = 20261122;
        var i = 0;
        foreach (var input in Inputs(seed))
        {
            try
            {
                Touch(input);
            }
            catch (Exception e)
            {
                Assert.Fail($"seed {seed} input {i} ({Convert.ToHexString(input)}): {e}");
            }

            i++;
        }
    }

    [Fact]
    public void NetStack_RandomAndMutatedInput_NeverThrows()
    {
        const int seed = 4443;
        using var stack = TestPackets.Stack(o => o.Promiscuous = true, "10.9.0.2", "fd00:9::2");
        using var udp = stack.BindUdp(new System.Net.IPEndPoint(System.Net.IPAddress.IPv6Any, 5353), 4);
        using var catchAll = stack.BindUdpAnyDestination(4);
        var sink = new byte[70000];
        var i = 0;
        foreach (var input in Inputs(seed))
        {
            try
            {
                stack.WritePacket(input);
                while (stack.TryReadPacket(sink, out _))
                {
                }

                while (udp.TryReceiveFrom(sink, out _) || catchAll.TryReceiveFrom(sink, out _))
                {
                }
            }
            catch (Exception e)
            {
                Assert.Fail($"seed {seed} input {i} ({Convert.ToHexString(input)}): {e}");
            }

            if (i % 1000 == 0)
            {
                stack.Poll(TimeSpan.FromSeconds(i / 10));
            }

            i++;
        }

        stack.Poll(TimeSpan.FromHours(1));
        Assert.Equal(0, stack.BufferBytesInUse);   // every reassembly freed, nothing leaked
    }

    private static void Touch(ReadOnlySpan<byte> input)
    {
        if (Ipv4Packet.TryCreate(input, out var v4))
        {
            _ = Ipv4Repr.Parse(v4);
            _ = v4.IsChecksumValid;
            Upper(v4.Protocol, v4.Payload, v4.Source, v4.Destination);
        }

        if (Ipv6Packet.TryCreate(input, out var v6))
        {
            _ = Ipv6Repr.Parse(v6);
            if (Ipv6ExtensionHeaders.TryWalk(v6.Payload, v6.NextHeader, out var upper))
            {
                if (upper.FragmentHeaderOffset >= 0)
                {
                    Assert.True(Ipv6FragmentRepr.TryParse(v6.Payload[upper.FragmentHeaderOffset..], out _));
                }

                Upper(upper.Protocol, v6.Payload[upper.Offset..], v6.Source, v6.Destination);
            }
        }

        // Parse the raw input as every upper layer too.
        Upper(IpProtocol.Udp, input, IpAddr.AnyV4, IpAddr.AnyV4);
        Upper(IpProtocol.Icmp, input, IpAddr.AnyV4, IpAddr.AnyV4);
        Upper(IpProtocol.Icmpv6, input, IpAddr.AnyV6, IpAddr.AnyV6);
        _ = Ipv6FragmentRepr.TryParse(input, out _);
    }

    private static void Upper(byte protocol, ReadOnlySpan<byte> payload, IpAddr src, IpAddr dst)
    {
        switch (protocol)
        {
            case IpProtocol.Udp when UdpPacket.TryCreate(payload, out var udp):
                _ = UdpRepr.Parse(udp);
                _ = udp.IsChecksumValid(src, dst);
                _ = udp.Payload.Length;
                break;
            case IpProtocol.Icmp or IpProtocol.Icmpv6 when IcmpPacket.TryCreate(payload, out var icmp):
                var repr = IcmpRepr.Parse(icmp);
                _ = (repr.Identifier, repr.SequenceNumber, repr.Mtu, icmp.IsChecksumValidV4, icmp.IsChecksumValidV6(src, dst), icmp.Data.Length);
                break;
        }
    }
}
