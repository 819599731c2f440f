using System.Buffers.Binary;
using Sharptun.Transport;

namespace Sharptun.NetStack.Wire;

/// <summary>
/// Checked read-only view of an ICMPv4 (RFC 792) or ICMPv6 (RFC 4443 §2.1) message; both share this layout.
/// </summary>
/// <remarks>
/// <code>
///  0                   1                   2                   3
///  0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
/// +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
/// |     Type      |     Code      |          Checksum             |
/// +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
/// |  Rest of header: Identifier + Sequence (echo), unused (errors),|
/// |  Next-Hop MTU (v4 frag needed, low 16 bits) or MTU (v6 PTB)   |
/// +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
/// |  Data: echo data, or the invoking packet's header + leading bytes (errors)
/// +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
/// </code>
/// </remarks>
internal readonly ref struct IcmpPacket
{
    public const int HeaderLength = 8;

    private readonly ReadOnlySpan<byte> _buffer;

    private IcmpPacket(ReadOnlySpan<byte> buffer) => _buffer = buffer;

    public static bool TryCreate(ReadOnlySpan<byte> buffer, out IcmpPacket packet)
    {
        packet = default;
        if (buffer.Length < HeaderLength)
        {
            return false;
        }

        packet = new IcmpPacket(buffer);
        return true;
    }

    public byte Type => _buffer[0];

    public byte Code => _buffer[1];

    public ushort MessageChecksum => BinaryPrimitives.ReadUInt16BigEndian(_buffer[2..]);

    public uint RestOfHeader => BinaryPrimitives.ReadUInt32BigEndian(_buffer[4..]);

    public ReadOnlySpan<byte> Data => _buffer[HeaderLength..];

    public ReadOnlySpan<byte> Bytes => _buffer;

    /// <summary>ICMPv4: the checksum covers the message only (RFC 792).</summary>
    public bool IsChecksumValidV4 => Checksum.Compute(_buffer) == 0;

    /// <summary>ICMPv6: the checksum also covers the RFC 8200 §8.1 pseudo-header (RFC 4443 §2.3).</summary>
    public bool IsChecksumValidV6(in IpAddr source, in IpAddr destination) =>
        Checksum.Compute(_buffer, Checksum.PseudoHeader(source, destination, IpProtocol.Icmpv6, _buffer.Length)) == 0;
}

/// <summary>ICMPv4 message types (RFC 792).</summary>
internal static class Icmpv4Type
{
    public const byte EchoReply = 0;
    public const byte DestinationUnreachable = 3;
    public const byte EchoRequest = 8;
    public const byte TimeExceeded = 11;

    public const byte CodeProtocolUnreachable = 2;
    public const byte CodePortUnreachable = 3;
    public const byte CodeFragmentationNeeded = 4;
    public const byte CodeReassemblyTimeExceeded = 1;
}

/// <summary>ICMPv6 message types (RFC 4443 §2.1).</summary>
internal static class Icmpv6Type
{
    public const byte DestinationUnreachable = 1;
    public const byte PacketTooBig = 2;
    public const byte TimeExceeded = 3;
    public const byte ParameterProblem = 4;
    public const byte EchoRequest = 128;
    public const byte EchoReply = 129;

    public const byte CodePortUnreachable = 4;
    public const byte CodeReassemblyTimeExceeded = 1;
    public const byte CodeUnrecognizedNextHeader = 1;

    /// <summary>RFC 4443 §2.4(e): error messages have type &lt; 128.</summary>
    public static bool IsError(byte type) => type < 128;
}

/// <summary>
/// High-level ICMP message header: Type, Code and the 32-bit "rest of header". The data that follows
/// (echo payload or the invoking packet) is passed separately to <see cref="EmitV4"/> / <see cref="EmitV6"/>.
/// </summary>
internal readonly record struct IcmpRepr(byte Type, byte Code, uint RestOfHeader, int DataLength)
{
    public const int HeaderLength = IcmpPacket.HeaderLength;

    public int Length => HeaderLength + DataLength;

    /// <summary>Echo identifier (echo request/reply).</summary>
    public ushort Identifier => (ushort)(RestOfHeader >> 16);

    /// <summary>Echo sequence number (echo request/reply).</summary>
    public ushort SequenceNumber => (ushort)RestOfHeader;

    /// <summary>MTU field of ICMPv6 Packet Too Big (RFC 4443 §3.2) or ICMPv4 Fragmentation Needed (RFC 1191 §4).</summary>
    public uint Mtu => Type == Icmpv4Type.DestinationUnreachable ? RestOfHeader & 0xFFFF : RestOfHeader;

    public static IcmpRepr Echo(byte type, ushort identifier, ushort sequence, int dataLength) =>
        new(type, 0, ((uint)identifier << 16) | sequence, dataLength);

    public static IcmpRepr Parse(in IcmpPacket packet) => new(packet.Type, packet.Code, packet.RestOfHeader, packet.Data.Length);

    /// <summary>Writes header + <paramref name="data"/> with the ICMPv4 checksum; returns <see cref="Length"/>.</summary>
    public int EmitV4(Span<byte> buffer, ReadOnlySpan<byte> data)
    {
        var message = EmitUnchecked(buffer, data);
        BinaryPrimitives.WriteUInt16BigEndian(message[2..], Checksum.Compute(message));
        return message.Length;
    }

    /// <summary>Writes header + <paramref name="data"/> with the ICMPv6 checksum (pseudo-header included).</summary>
    public int EmitV6(Span<byte> buffer, ReadOnlySpan<byte> data, in IpAddr source, in IpAddr destination)
    {
        var message = EmitUnchecked(buffer, data);
        var sum = Checksum.PseudoHeader(source, destination, IpProtocol.Icmpv6, message.Length);
        BinaryPrimitives.WriteUInt16BigEndian(message[2..], Checksum.Compute(message, sum));
        return message.Length;
    }

    private Span<byte> EmitUnchecked(Span<byte> buffer, ReadOnlySpan<byte> data)
    {
        if (data.Length != DataLength)
        {
            throw new ArgumentException("Data length differs from DataLength.", nameof(data));
        }

        var message = buffer[..Length];
        message[0] = Type;
        message[1] = Code;
        message[2] = 0;
        message[3] = 0;
        BinaryPrimitives.WriteUInt32BigEndian(message[4..], RestOfHeader);
        data.CopyTo(message[HeaderLength..]);
        return message;
    }
}
