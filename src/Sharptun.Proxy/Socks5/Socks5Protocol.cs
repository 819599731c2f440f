using System.Buffers.Binary;
using System.Net;
using System.Net.Sockets;
using System.Text;

namespace Sharptun.Proxy.Socks5;

/// <summary>The SOCKS5 wire constants (RFC 1928, RFC 1929), named as the RFCs name them.</summary>
internal static class Socks5Protocol
{
    /// <summary>VER of every SOCKS5 message (RFC 1928 §3, §4, §6).</summary>
    public const byte Version = 0x05;

    /// <summary>VER of the username/password sub-negotiation (RFC 1929 §2).</summary>
    public const byte UserPassVersion = 0x01;

    // METHOD values (RFC 1928 §3).
    public const byte MethodNoAuth = 0x00;
    public const byte MethodUserPass = 0x02;
    public const byte MethodNoAcceptable = 0xFF;

    // CMD values (RFC 1928 §4).
    public const byte CommandConnect = 0x01;
    public const byte CommandBind = 0x02;
    public const byte CommandUdpAssociate = 0x03;

    // ATYP values (RFC 1928 §5).
    public const byte AddressIPv4 = 0x01;
    public const byte AddressDomain = 0x03;
    public const byte AddressIPv6 = 0x04;

    // REP values (RFC 1928 §6).
    public const byte ReplySucceeded = 0x00;
    public const byte ReplyGeneralFailure = 0x01;
    public const byte ReplyNotAllowed = 0x02;
    public const byte ReplyNetworkUnreachable = 0x03;
    public const byte ReplyHostUnreachable = 0x04;
    public const byte ReplyConnectionRefused = 0x05;
    public const byte ReplyTtlExpired = 0x06;
    public const byte ReplyCommandNotSupported = 0x07;
    public const byte ReplyAddressTypeNotSupported = 0x08;

    /// <summary>
    /// The longest handshake message: a username/password request (RFC 1929 §2: 1 + 1 + 255 + 1 + 255 bytes). Every
    /// handshake read fits in one buffer of this size, whatever the client claims.
    /// </summary>
    public const int MaxHandshakeMessage = 513;

    /// <summary>The longest reply (RFC 1928 §6 with an IPv6 BND.ADDR): 4 + 16 + 2 bytes.</summary>
    public const int MaxReply = 22;

    /// <summary>
    /// Maps a connect failure to the REP code of RFC 1928 §6. A connect that got no answer within the connect
    /// timeout is "host unreachable" (0x04): the target did not answer, and 0x06 "TTL expired" names a routing
    /// failure that a userspace tunnel cannot observe.
    /// </summary>
    public static byte ReplyFor(SocketError error) => error switch
    {
        SocketError.HostNotFound or SocketError.TryAgain or SocketError.NoData or SocketError.HostUnreachable or SocketError.TimedOut => ReplyHostUnreachable,
        SocketError.ConnectionRefused => ReplyConnectionRefused,
        SocketError.NetworkUnreachable or SocketError.NetworkDown => ReplyNetworkUnreachable,
        SocketError.AddressFamilyNotSupported => ReplyAddressTypeNotSupported,
        SocketError.AccessDenied => ReplyNotAllowed,
        _ => ReplyGeneralFailure,
    };

    /// <summary>A short name of a REP code for logs.</summary>
    public static string ReplyName(byte reply) => reply switch
    {
        ReplySucceeded => "succeeded",
        ReplyGeneralFailure => "general failure",
        ReplyNotAllowed => "not allowed",
        ReplyNetworkUnreachable => "network unreachable",
        ReplyHostUnreachable => "host unreachable",
        ReplyConnectionRefused => "connection refused",
        ReplyTtlExpired => "TTL expired",
        ReplyCommandNotSupported => "command not supported",
        ReplyAddressTypeNotSupported => "address type not supported",
        _ => $"0x{reply:x2}",
    };

    /// <summary>
    /// Writes a reply (RFC 1928 §6) into <paramref name="destination"/> and returns its length:
    /// <code>
    /// +----+-----+-------+------+----------+----------+
    /// |VER | REP |  RSV  | ATYP | BND.ADDR | BND.PORT |
    /// +----+-----+-------+------+----------+----------+
    /// | 1  |  1  | X'00' |  1   | Variable |    2     |
    /// +----+-----+-------+------+----------+----------+
    /// </code>
    /// A <see langword="null"/> bound address is written as 0.0.0.0 port 0.
    /// </summary>
    public static int WriteReply(Span<byte> destination, byte reply, IPEndPoint? bound)
    {
        destination[0] = Version;
        destination[1] = reply;
        destination[2] = 0;
        return 3 + WriteAddress(destination[3..], bound ?? new IPEndPoint(IPAddress.Any, 0));
    }

    /// <summary>Writes ATYP, the address and the port (the tail of a reply, the head of a UDP datagram) and returns the length (7 or 19).</summary>
    public static int WriteAddress(Span<byte> destination, IPEndPoint endPoint)
    {
        var address = Unmap(endPoint.Address);
        var ipv4 = address.AddressFamily == AddressFamily.InterNetwork;
        destination[0] = ipv4 ? AddressIPv4 : AddressIPv6;
        var length = ipv4 ? 4 : 16;
        if (!address.TryWriteBytes(destination.Slice(1, length), out _))
        {
            throw new ArgumentException("The destination is too short.", nameof(destination));
        }

        BinaryPrimitives.WriteUInt16BigEndian(destination.Slice(1 + length, 2), (ushort)endPoint.Port);
        return 1 + length + 2;
    }

    /// <summary>An IPv4-mapped IPv6 address as the IPv4 address it carries; any other address as it is.</summary>
    public static IPAddress Unmap(IPAddress address) => address.IsIPv4MappedToIPv6 ? address.MapToIPv4() : address;

    /// <summary>
    /// Whether <paramref name="name"/> (a DST.ADDR of ATYP 0x03) is a plausible host name: non-empty, printable ASCII
    /// without spaces. Anything else (NUL, control characters, bytes above 0x7E) is refused before it reaches a resolver
    /// or a log line.
    /// </summary>
    public static bool TryDecodeName(ReadOnlySpan<byte> name, out string host)
    {
        host = "";
        if (name.IsEmpty)
        {
            return false;
        }

        foreach (var b in name)
        {
            if (b <= 0x20 || b >= 0x7F)
            {
                return false;
            }
        }

        host = Encoding.ASCII.GetString(name);
        return true;
    }
}
