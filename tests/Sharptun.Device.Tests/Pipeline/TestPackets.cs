using System.Buffers.Binary;
using System.Net;
using Sharptun.Testing;

namespace Sharptun.Device.Tests.Pipeline;

/// <summary>Inner packets (UDP over IPv4/IPv6, built by the test kit's <see cref="PacketBuilder"/>) carrying a 32-bit sequence number, for whole-device tests.</summary>
internal static class TestPackets
{
    /// <summary>A UDP packet (IPv4 or IPv6, by the family of <paramref name="source"/>) from <paramref name="source"/> to <paramref name="destination"/> whose payload starts with <paramref name="sequence"/> (big-endian) and is <paramref name="payloadLength"/> bytes.</summary>
    public static byte[] Udp(string source, string destination, uint sequence, int payloadLength = 64)
    {
        payloadLength = Math.Max(payloadLength, 4);
        var payload = new byte[payloadLength];
        BinaryPrimitives.WriteUInt32BigEndian(payload, sequence);
        for (var i = 4; i < payloadLength; i++)
        {
            payload[i] = (byte)(sequence + (uint)i);
        }

        return PacketBuilder.Udp(IPAddress.Parse(source), IPAddress.Parse(destination), 40000, 9, payload);
    }

    /// <summary>The sequence number of a packet built by <see cref="Udp"/>.</summary>
    public static uint Sequence(ReadOnlySpan<byte> packet)
    {
        var header = packet[0] >> 4 == 4 ? 20 : 40;
        return BinaryPrimitives.ReadUInt32BigEndian(packet[(header + 8)..]);
    }
}
