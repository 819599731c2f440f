using System.Buffers.Binary;
using System.Net;

namespace Sharptun.Device.Tests.Pipeline;

/// <summary>Hand-built inner packets (UDP over IPv4/IPv6) carrying a 32-bit sequence number, for whole-device tests.</summary>
internal static class TestPackets
{
    /// <summary>A UDP/IPv4 packet from <paramref name="source"/> to <paramref name="destination"/> whose payload starts with <paramref name="sequence"/> (big-endian) and is <paramref name="payloadLength"/> bytes.</summary>
    public static byte[] Udp(string source, string destination, uint sequence, int payloadLength = 64)
    {
        var src = IPAddress.Parse(source).GetAddressBytes();
        var dst = IPAddress.Parse(destination).GetAddressBytes();
        payloadLength = Math.Max(payloadLength, 4);
        if (src.Length == 4)
        {
            var p = new byte[20 + 8 + payloadLength];
            p[0] = 0x45;
            BinaryPrimitives.WriteUInt16BigEndian(p.AsSpan(2), (ushort)p.Length);
            p[8] = 64;
            p[9] = 17;
            src.CopyTo(p, 12);
            dst.CopyTo(p, 16);
            BinaryPrimitives.WriteUInt16BigEndian(p.AsSpan(10), Checksum(p.AsSpan(0, 20)));
            WriteUdp(p.AsSpan(20), sequence, payloadLength);
            return p;
        }
        else
        {
            var p = new byte[40 + 8 + payloadLength];
            p[0] = 0x60;
            BinaryPrimitives.WriteUInt16BigEndian(p.AsSpan(4), (ushort)(8 + payloadLength));
            p[6] = 17;
            p[7] = 64;
            src.CopyTo(p, 8);
            dst.CopyTo(p, 24);
            WriteUdp(p.AsSpan(40), sequence, payloadLength);
            return p;
        }
    }

    /// <summary>The sequence number of a packet built by <see cref="Udp"/>.</summary>
    public static uint Sequence(ReadOnlySpan<byte> packet)
    {
        var header = packet[0] >> 4 == 4 ? 20 : 40;
        return BinaryPrimitives.ReadUInt32BigEndian(packet[(header + 8)..]);
    }

    private static void WriteUdp(Span<byte> udp, uint sequence, int payloadLength)
    {
        BinaryPrimitives.WriteUInt16BigEndian(udp, 40000);
        BinaryPrimitives.WriteUInt16BigEndian(udp[2..], 9);
        BinaryPrimitives.WriteUInt16BigEndian(udp[4..], (ushort)(8 + payloadLength));
        BinaryPrimitives.WriteUInt32BigEndian(udp[8..], sequence);
        for (var i = 4; i < payloadLength; i++)
        {
            udp[8 + i] = (byte)(sequence + (uint)i);
        }
    }

    private static ushort Checksum(ReadOnlySpan<byte> header)
    {
        uint sum = 0;
        for (var i = 0; i < header.Length; i += 2)
        {
            sum += BinaryPrimitives.ReadUInt16BigEndian(header[i..]);
        }

        while (sum > 0xFFFF)
        {
            sum = (sum & 0xFFFF) + (sum >> 16);
        }

        return (ushort)~sum;
    }
}
