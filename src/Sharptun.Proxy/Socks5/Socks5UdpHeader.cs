using System.Buffers.Binary;
using System.Net;

namespace Sharptun.Proxy.Socks5;

/// <summary>Why a client datagram of a UDP association was not relayed.</summary>
internal enum Socks5UdpParse
{
    /// <summary>A whole, unfragmented datagram.</summary>
    Ok,

    /// <summary>Shorter than its header claims, RSV not zero, or an empty or unprintable name.</summary>
    Malformed,

    /// <summary>FRAG is not zero: fragment reassembly is optional (RFC 1928 §7) and not implemented, so it is dropped.</summary>
    Fragmented,

    /// <summary>ATYP is none of 0x01, 0x03, 0x04.</summary>
    UnknownAddressType,
}

/// <summary>
/// The header of a UDP datagram relayed through a SOCKS5 association (RFC 1928 §7):
/// <code>
/// +----+------+------+----------+----------+----------+
/// |RSV | FRAG | ATYP | DST.ADDR | DST.PORT |   DATA   |
/// +----+------+------+----------+----------+----------+
/// | 2  |  1   |  1   | Variable |    2     | Variable |
/// +----+------+------+----------+----------+----------+
/// </code>
/// </summary>
/// <param name="Address">DST.ADDR for ATYP 0x01/0x04, else <see langword="null"/>.</param>
/// <param name="Host">DST.ADDR for ATYP 0x03 (a name to resolve through the tunnel), else <see langword="null"/>.</param>
/// <param name="Port">DST.PORT.</param>
/// <param name="PayloadOffset">Where DATA starts.</param>
internal readonly record struct Socks5UdpHeader(IPAddress? Address, string? Host, int Port, int PayloadOffset)
{
    /// <summary>RSV + FRAG + ATYP + an IPv6 address + port: the longest header with an address literal.</summary>
    public const int MaxAddressHeader = 3 + 1 + 16 + 2;

    /// <summary>Parses the header of <paramref name="datagram"/>; every length is checked before the field is read.</summary>
    public static Socks5UdpParse TryParse(ReadOnlySpan<byte> datagram, out Socks5UdpHeader header)
    {
        header = default;
        if (datagram.Length < 4)
        {
            return Socks5UdpParse.Malformed;
        }

        if (datagram[0] != 0 || datagram[1] != 0)
        {
            return Socks5UdpParse.Malformed;
        }

        if (datagram[2] != 0)
        {
            return Socks5UdpParse.Fragmented;
        }

        var rest = datagram[4..];
        switch (datagram[3])
        {
            case Socks5Protocol.AddressIPv4:
            case Socks5Protocol.AddressIPv6:
                var length = datagram[3] == Socks5Protocol.AddressIPv4 ? 4 : 16;
                if (rest.Length < length + 2)
                {
                    return Socks5UdpParse.Malformed;
                }

                header = new Socks5UdpHeader(new IPAddress(rest[..length]), null, BinaryPrimitives.ReadUInt16BigEndian(rest.Slice(length, 2)), 4 + length + 2);
                return Socks5UdpParse.Ok;
            case Socks5Protocol.AddressDomain:
                if (rest.Length < 1 || rest.Length < 1 + rest[0] + 2)
                {
                    return Socks5UdpParse.Malformed;
                }

                var nameLength = rest[0];
                if (!Socks5Protocol.TryDecodeName(rest.Slice(1, nameLength), out var host))
                {
                    return Socks5UdpParse.Malformed;
                }

                header = new Socks5UdpHeader(null, host, BinaryPrimitives.ReadUInt16BigEndian(rest.Slice(1 + nameLength, 2)), 4 + 1 + nameLength + 2);
                return Socks5UdpParse.Ok;
            default:
                return Socks5UdpParse.UnknownAddressType;
        }
    }

    /// <summary>Writes the header for a datagram from <paramref name="source"/> (RSV 0, FRAG 0) and returns its length.</summary>
    public static int Write(Span<byte> destination, IPEndPoint source)
    {
        destination[0] = 0;
        destination[1] = 0;
        destination[2] = 0;
        return 3 + Socks5Protocol.WriteAddress(destination[3..], source);
    }
}
