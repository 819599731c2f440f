using System.Buffers.Binary;
using Sharptun.Transport;

namespace Sharptun.NetStack.Wire;

/// <summary>
/// Checked read-only view of an IPv4 datagram (RFC 791 §3.1). <see cref="TryCreate"/> validates version, IHL and
/// total length against the buffer before any field is read; trailing bytes after Total Length (link padding) are ignored.
/// </summary>
/// <remarks>
/// <code>
///  0                   1                   2                   3
///  0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
/// +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
/// |Version|  IHL  |Type of Service|          Total Length         |
/// +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
/// |         Identification        |Flags|      Fragment Offset    |
/// +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
/// |  Time to Live |    Protocol   |         Header Checksum       |
/// +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
/// |                       Source Address                          |
/// +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
/// |                    Destination Address                        |
/// +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
/// |                    Options                    |    Padding    |   (skipped)
/// +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
/// </code>
/// </remarks>
internal readonly ref struct Ipv4Packet
{
    public const int MinHeaderLength = 20;
    public const int MaxLength = 65535;
    private const int VersionIhl = 0;
    private const int Tos = 1;
    private const int TotalLengthOffset = 2;
    private const int IdentificationOffset = 4;
    private const int FlagsFragment = 6;
    private const int TtlOffset = 8;
    private const int ProtocolOffset = 9;
    private const int ChecksumOffset = 10;
    private const int SourceOffset = 12;
    private const int DestinationOffset = 16;

    private readonly ReadOnlySpan<byte> _buffer;

    private Ipv4Packet(ReadOnlySpan<byte> buffer) => _buffer = buffer;

    /// <summary>Validates lengths; the view covers exactly Total Length bytes.</summary>
    public static bool TryCreate(ReadOnlySpan<byte> buffer, out Ipv4Packet packet)
    {
        packet = default;
        if (buffer.Length < MinHeaderLength || buffer[VersionIhl] >> 4 != 4)
        {
            return false;
        }

        var headerLength = (buffer[VersionIhl] & 0x0F) * 4;
        int totalLength = BinaryPrimitives.ReadUInt16BigEndian(buffer[TotalLengthOffset..]);
        if (headerLength < MinHeaderLength || totalLength < headerLength || totalLength > buffer.Length)
        {
            return false;
        }

        packet = new Ipv4Packet(buffer[..totalLength]);
        return true;
    }

    public int HeaderLength => (_buffer[VersionIhl] & 0x0F) * 4;

    public int TotalLength => _buffer.Length;

    public byte TypeOfService => _buffer[Tos];

    public ushort Identification => BinaryPrimitives.ReadUInt16BigEndian(_buffer[IdentificationOffset..]);

    public bool DontFragment => (_buffer[FlagsFragment] & 0x40) != 0;

    public bool MoreFragments => (_buffer[FlagsFragment] & 0x20) != 0;

    /// <summary>Fragment offset in bytes (the field counts 8-byte units).</summary>
    public int FragmentOffset => (BinaryPrimitives.ReadUInt16BigEndian(_buffer[FlagsFragment..]) & 0x1FFF) * 8;

    public bool IsFragment => MoreFragments || FragmentOffset != 0;

    public byte TimeToLive => _buffer[TtlOffset];

    public byte Protocol => _buffer[ProtocolOffset];

    public ushort HeaderChecksum => BinaryPrimitives.ReadUInt16BigEndian(_buffer[ChecksumOffset..]);

    public IpAddr Source => IpAddr.FromV4(BinaryPrimitives.ReadUInt32BigEndian(_buffer[SourceOffset..]));

    public IpAddr Destination => IpAddr.FromV4(BinaryPrimitives.ReadUInt32BigEndian(_buffer[DestinationOffset..]));

    /// <summary>RFC 791 §3.1 / RFC 1071: the header (with options) sums to zero.</summary>
    public bool IsChecksumValid => Checksum.Compute(_buffer[..HeaderLength]) == 0;

    public ReadOnlySpan<byte> Header => _buffer[..HeaderLength];

    public ReadOnlySpan<byte> Payload => _buffer[HeaderLength..];

    /// <summary>The whole datagram (Total Length bytes).</summary>
    public ReadOnlySpan<byte> Bytes => _buffer;
}

/// <summary>High-level IPv4 header (options are not represented: parsed ones are skipped, none are emitted).</summary>
internal readonly record struct Ipv4Repr(
    IpAddr Source,
    IpAddr Destination,
    byte Protocol,
    int PayloadLength,
    byte TimeToLive = 64,
    byte TypeOfService = 0,
    ushort Identification = 0,
    bool DontFragment = false,
    bool MoreFragments = false,
    int FragmentOffset = 0)
{
    public const int HeaderLength = Ipv4Packet.MinHeaderLength;

    /// <summary>Header plus payload length.</summary>
    public int Length => HeaderLength + PayloadLength;

    public static Ipv4Repr Parse(in Ipv4Packet packet) => new(
        packet.Source,
        packet.Destination,
        packet.Protocol,
        packet.TotalLength - packet.HeaderLength,
        packet.TimeToLive,
        packet.TypeOfService,
        packet.Identification,
        packet.DontFragment,
        packet.MoreFragments,
        packet.FragmentOffset);

    /// <summary>Writes the 20-byte header (with its checksum) to the start of <paramref name="buffer"/>.</summary>
    public void Emit(Span<byte> buffer)
    {
        var header = buffer[..HeaderLength];
        header[0] = 0x45;
        header[1] = TypeOfService;
        BinaryPrimitives.WriteUInt16BigEndian(header[2..], checked((ushort)Length));
        BinaryPrimitives.WriteUInt16BigEndian(header[4..], Identification);
        var flags = (DontFragment ? 0x4000 : 0) | (MoreFragments ? 0x2000 : 0) | ((FragmentOffset / 8) & 0x1FFF);
        BinaryPrimitives.WriteUInt16BigEndian(header[6..], (ushort)flags);
        header[8] = TimeToLive;
        header[9] = Protocol;
        header[10] = 0;
        header[11] = 0;
        BinaryPrimitives.WriteUInt32BigEndian(header[12..], Source.V4Value);
        BinaryPrimitives.WriteUInt32BigEndian(header[16..], Destination.V4Value);
        BinaryPrimitives.WriteUInt16BigEndian(header[10..], Checksum.Compute(header));
    }
}
