using System.Buffers.Binary;
using Sharptun.Transport;

namespace Sharptun.NetStack.Wire;

/// <summary>
/// Checked read-only view of a UDP datagram (RFC 768). <see cref="TryCreate"/> checks that the Length field is at
/// least 8 and fits the buffer; the view covers exactly Length bytes.
/// </summary>
/// <remarks>
/// <code>
///  0      7 8     15 16    23 24    31
/// +--------+--------+--------+--------+
/// |     Source      |   Destination   |
/// |      Port       |      Port       |
/// +--------+--------+--------+--------+
/// |     Length      |    Checksum     |
/// +--------+--------+--------+--------+
/// |          data octets ...
/// +---------------- ...
/// </code>
/// </remarks>
internal readonly ref struct UdpPacket
{
    public const int HeaderLength = 8;

    private readonly ReadOnlySpan<byte> _buffer;

    private UdpPacket(ReadOnlySpan<byte> buffer) => _buffer = buffer;

    public static bool TryCreate(ReadOnlySpan<byte> buffer, out UdpPacket packet)
    {
        packet = default;
        if (buffer.Length < HeaderLength)
        {
            return false;
        }

        int length = BinaryPrimitives.ReadUInt16BigEndian(buffer[4..]);
        if (length < HeaderLength || length > buffer.Length)
        {
            return false;
        }

        packet = new UdpPacket(buffer[..length]);
        return true;
    }

    public ushort SourcePort => BinaryPrimitives.ReadUInt16BigEndian(_buffer);

    public ushort DestinationPort => BinaryPrimitives.ReadUInt16BigEndian(_buffer[2..]);

    public int Length => _buffer.Length;

    public ushort DatagramChecksum => BinaryPrimitives.ReadUInt16BigEndian(_buffer[6..]);

    public ReadOnlySpan<byte> Payload => _buffer[HeaderLength..];

    /// <summary>
    /// RFC 768: a zero checksum means "not computed" and is accepted over IPv4; RFC 8200 §8.1 forbids it over IPv6.
    /// </summary>
    public bool IsChecksumValid(in IpAddr source, in IpAddr destination)
    {
        if (DatagramChecksum == 0)
        {
            return source.IsV4;
        }

        return Checksum.Compute(_buffer, Checksum.PseudoHeader(source, destination, IpProtocol.Udp, _buffer.Length)) == 0;
    }
}

/// <summary>High-level UDP header.</summary>
internal readonly record struct UdpRepr(ushort SourcePort, ushort DestinationPort, int PayloadLength)
{
    public const int HeaderLength = UdpPacket.HeaderLength;

    public const int MaxPayloadLength = 65535 - HeaderLength;

    public int Length => HeaderLength + PayloadLength;

    public static UdpRepr Parse(in UdpPacket packet) => new(packet.SourcePort, packet.DestinationPort, packet.Payload.Length);

    /// <summary>Writes header + <paramref name="payload"/> with the checksum; returns <see cref="Length"/>.</summary>
    public int Emit(Span<byte> buffer, ReadOnlySpan<byte> payload, in IpAddr source, in IpAddr destination)
    {
        if (payload.Length != PayloadLength)
        {
            throw new ArgumentException("Payload length differs from PayloadLength.", nameof(payload));
        }

        var datagram = buffer[..Length];
        BinaryPrimitives.WriteUInt16BigEndian(datagram, SourcePort);
        BinaryPrimitives.WriteUInt16BigEndian(datagram[2..], DestinationPort);
        BinaryPrimitives.WriteUInt16BigEndian(datagram[4..], checked((ushort)Length));
        datagram[6] = 0;
        datagram[7] = 0;
        payload.CopyTo(datagram[HeaderLength..]);
        var sum = Checksum.Compute(datagram, Checksum.PseudoHeader(source, destination, IpProtocol.Udp, datagram.Length));
        // RFC 768: a computed zero is transmitted as all ones (zero means "no checksum").
        BinaryPrimitives.WriteUInt16BigEndian(datagram[6..], sum == 0 ? (ushort)0xFFFF : sum);
        return datagram.Length;
    }
}
