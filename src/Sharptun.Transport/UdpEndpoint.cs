using System.Buffers.Binary;
using System.Diagnostics.CodeAnalysis;
using System.Globalization;
using System.Net;
using System.Net.Sockets;

namespace Sharptun.Transport;

/// <summary>
/// A UDP endpoint (IPv4 or IPv6 address + port) as an allocation-free value type, for the hot path of
/// <see cref="IDatagramBind"/>: an <see cref="IpAddr"/> plus a port. An IPv4-mapped address (<c>::ffff:a.b.c.d</c>)
/// is held as IPv4, so both spellings of one IPv4 peer compare equal; <see cref="IsIPv4"/> tells the families apart.
/// IPv6 scope ids (link-local zones) are not represented.
/// </summary>
/// <remarks>Formats as <c>1.2.3.4:51820</c> or <c>[fd00::1]:51820</c>, the forms <c>wg</c> uses. <c>default</c> is <c>[::]:0</c>.</remarks>
public readonly struct UdpEndpoint : IEquatable<UdpEndpoint>, ISpanFormattable
{
    // An IpAddr (20 bytes) and the port: 24 bytes, the size of the former hand-rolled 16-byte form + port.
    // Invariant: an IPv4-mapped IPv6 address is held as IPv4, so equality is a plain comparison.
    private readonly IpAddr _address;

    /// <summary>Creates an endpoint from an address and a port; an IPv4-mapped IPv6 address becomes IPv4.</summary>
    public UdpEndpoint(IpAddr address, ushort port)
    {
        _address = !address.IsV4 && address.High == 0 && (address.Low >> 32) == 0xFFFF
            ? IpAddr.FromV4((uint)address.Low)
            : address;
        Port = port;
    }

    /// <summary>The address as an allocation-free <see cref="IpAddr"/> (IPv4 for an IPv4-mapped address).</summary>
    public IpAddr Ip => _address;

    /// <summary>The UDP port (host order).</summary>
    public ushort Port { get; }

    /// <summary>True when the address is IPv4 (an IPv4-mapped IPv6 address counts as IPv4).</summary>
    public bool IsIPv4 => _address.IsV4;

    /// <summary>True when the address is IPv6 (not IPv4-mapped).</summary>
    public bool IsIPv6 => !IsIPv4;

    /// <summary>The unspecified address (<c>[::]:0</c>): the value of <c>default</c>.</summary>
    public bool IsEmpty => !_address.IsV4 && _address.IsUnspecified && Port == 0;

    /// <summary>The IPv4 address as a big-endian-ordered value (a.b.c.d → 0xaabbccdd); meaningful only when <see cref="IsIPv4"/>.</summary>
    public uint IPv4Value => _address.V4Value;

    /// <summary>Creates an IPv4 endpoint from 4 address bytes in network order.</summary>
    public static UdpEndpoint FromIPv4(ReadOnlySpan<byte> address, ushort port)
    {
        if (address.Length != 4)
        {
            throw new ArgumentException("an IPv4 address has 4 bytes", nameof(address));
        }

        return FromIPv4(BinaryPrimitives.ReadUInt32BigEndian(address), port);
    }

    /// <summary>Creates an IPv4 endpoint from the address as a value (a.b.c.d → 0xaabbccdd).</summary>
    public static UdpEndpoint FromIPv4(uint address, ushort port) => new(IpAddr.FromV4(address), port);

    /// <summary>Creates an endpoint from 16 address bytes in network order; an IPv4-mapped address yields an IPv4 endpoint.</summary>
    public static UdpEndpoint FromIPv6(ReadOnlySpan<byte> address, ushort port)
    {
        if (address.Length != 16)
        {
            throw new ArgumentException("an IPv6 address has 16 bytes", nameof(address));
        }

        return new(IpAddr.FromV6(address), port);
    }

    /// <summary>Creates an endpoint from 4 or 16 address bytes.</summary>
    public static UdpEndpoint FromAddressBytes(ReadOnlySpan<byte> address, ushort port) =>
        address.Length == 4 ? FromIPv4(address, port) : FromIPv6(address, port);

    /// <summary>Converts from an <see cref="IPEndPoint"/>; an IPv4-mapped IPv6 address becomes IPv4. The scope id is dropped.</summary>
    public static UdpEndpoint FromIPEndPoint(IPEndPoint endPoint) => FromIPAddress(endPoint.Address, checked((ushort)endPoint.Port));

    /// <summary>Creates an endpoint from an <see cref="IPAddress"/> and a port (through <see cref="IpAddr.FromIPAddress"/>).</summary>
    public static UdpEndpoint FromIPAddress(IPAddress address, ushort port) => new(IpAddr.FromIPAddress(address), port);

    /// <summary>Writes the address: 4 bytes for IPv4, 16 for IPv6. Returns the number of bytes written.</summary>
    public int WriteAddress(Span<byte> destination)
    {
        if (IsIPv4)
        {
            BinaryPrimitives.WriteUInt32BigEndian(destination, _address.V4Value);
            return 4;
        }

        WriteAddress16(destination);
        return 16;
    }

    /// <summary>Writes the 16-byte form (IPv4-mapped for IPv4).</summary>
    public void WriteAddress16(Span<byte> destination)
    {
        BinaryPrimitives.WriteUInt64BigEndian(destination, IsIPv4 ? 0 : _address.High);
        BinaryPrimitives.WriteUInt64BigEndian(destination[8..], IsIPv4 ? 0xFFFF_0000_0000UL | _address.V4Value : _address.Low);
    }

    /// <summary>The same address with another port.</summary>
    public UdpEndpoint WithPort(ushort port) => new(_address, port);

    /// <summary>The address as an <see cref="IPAddress"/> (allocates; not for per-packet use).</summary>
    public IPAddress Address => _address.ToIPAddress();

    /// <summary>Converts to an <see cref="IPEndPoint"/> (allocates).</summary>
    public IPEndPoint ToIPEndPoint() => new(Address, Port);

    /// <summary>Parses <c>1.2.3.4:51820</c> or <c>[fd00::1]:51820</c>.</summary>
    /// <exception cref="FormatException">The text is not an endpoint.</exception>
    public static UdpEndpoint Parse(ReadOnlySpan<char> text) =>
        TryParse(text, out var endpoint) ? endpoint : throw new FormatException($"not a UDP endpoint: '{text}'");

    /// <summary>Parses <c>1.2.3.4:51820</c> or <c>[fd00::1]:51820</c>; false for anything else (including host names).</summary>
    public static bool TryParse(ReadOnlySpan<char> text, out UdpEndpoint endpoint)
    {
        endpoint = default;
        ReadOnlySpan<char> host, port;
        if (text.Length > 0 && text[0] == '[')
        {
            var close = text.IndexOf(']');
            if (close < 0 || close + 1 >= text.Length || text[close + 1] != ':')
            {
                return false;
            }

            host = text[1..close];
            port = text[(close + 2)..];
            if (host.Contains('%') || !host.Contains(':'))
            {
                return false;
            }
        }
        else
        {
            var colon = text.LastIndexOf(':');
            if (colon < 0)
            {
                return false;
            }

            host = text[..colon];
            port = text[(colon + 1)..];
            if (host.Contains(':') || !IsDottedQuad(host))
            {
                return false;
            }
        }

        if (port.Length == 0 || port.Length > 5 || !IsDigits(port)
            || !ushort.TryParse(port, NumberStyles.None, CultureInfo.InvariantCulture, out var portNumber))
        {
            return false;
        }

        if (!IPAddress.TryParse(host, out var address))
        {
            return false;
        }

        endpoint = FromIPAddress(address, portNumber);
        return true;
    }

    /// <inheritdoc/>
    public bool TryFormat(Span<char> destination, out int charsWritten, ReadOnlySpan<char> format = default, IFormatProvider? provider = null)
    {
        charsWritten = 0;
        var address = Address;
        var pos = 0;
        if (!IsIPv4)
        {
            if (destination.Length < 1)
            {
                return false;
            }

            destination[pos++] = '[';
        }

        if (!address.TryFormat(destination[pos..], out var n))
        {
            return false;
        }

        pos += n;
        if (!IsIPv4)
        {
            if (destination.Length <= pos)
            {
                return false;
            }

            destination[pos++] = ']';
        }

        if (destination.Length <= pos)
        {
            return false;
        }

        destination[pos++] = ':';
        if (!Port.TryFormat(destination[pos..], out n, default, CultureInfo.InvariantCulture))
        {
            return false;
        }

        charsWritten = pos + n;
        return true;
    }

    /// <inheritdoc/>
    public string ToString(string? format, IFormatProvider? formatProvider) => ToString();

    /// <summary>Formats as <c>1.2.3.4:51820</c> or <c>[fd00::1]:51820</c>.</summary>
    public override string ToString()
    {
        Span<char> buffer = stackalloc char[64];
        return TryFormat(buffer, out var n) ? new string(buffer[..n]) : throw new InvalidOperationException();
    }

    /// <summary>True when both address and port are equal.</summary>
    public bool Equals(UdpEndpoint other) => _address.Equals(other._address) && Port == other.Port;

    /// <summary>True when <paramref name="obj"/> is a <see cref="UdpEndpoint"/> with equal address and port.</summary>
    public override bool Equals([NotNullWhen(true)] object? obj) => obj is UdpEndpoint other && Equals(other);

    /// <summary>A hash of the address and the port, consistent with <see cref="Equals(UdpEndpoint)"/>.</summary>
    public override int GetHashCode() => HashCode.Combine(_address, Port);

    /// <summary>True when the addresses are equal, whatever the ports.</summary>
    public bool AddressEquals(UdpEndpoint other) => _address.Equals(other._address);

    /// <summary>True when both address and port are equal (<see cref="Equals(UdpEndpoint)"/>).</summary>
    public static bool operator ==(UdpEndpoint left, UdpEndpoint right) => left.Equals(right);

    /// <summary>True when the address or the port differs.</summary>
    public static bool operator !=(UdpEndpoint left, UdpEndpoint right) => !left.Equals(right);

    /// <summary>The address family of the address.</summary>
    public AddressFamily AddressFamily => IsIPv4 ? AddressFamily.InterNetwork : AddressFamily.InterNetworkV6;

    private static bool IsDigits(ReadOnlySpan<char> s)
    {
        foreach (var c in s)
        {
            if (c is < '0' or > '9')
            {
                return false;
            }
        }

        return true;
    }

    // IPAddress.TryParse accepts "1", "1.2" and hex forms; an endpoint wants exactly four decimal parts.
    private static bool IsDottedQuad(ReadOnlySpan<char> s)
    {
        var parts = 0;
        var digits = 0;
        foreach (var c in s)
        {
            if (c == '.')
            {
                if (digits == 0)
                {
                    return false;
                }

                parts++;
                digits = 0;
            }
            else if (c is >= '0' and <= '9' && digits < 3)
            {
                digits++;
            }
            else
            {
                return false;
            }
        }

        return parts == 3 && digits > 0;
    }
}
