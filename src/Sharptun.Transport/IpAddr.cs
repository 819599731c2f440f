using System.Buffers.Binary;
using System.Net;
using System.Net.Sockets;
using System.Runtime.InteropServices;

namespace Sharptun.Transport;

/// <summary>
/// An IPv4 or IPv6 address as an allocation-free value (two 64-bit halves plus a family flag; 20 bytes, packed
/// to 4 so a <see cref="UdpEndpoint"/> (address + port) stays 24 bytes). The one address type inside Sharptun:
/// <see cref="System.Net.IPAddress"/> appears only at public edges meant for users, converted with
/// <see cref="FromIPAddress"/> and <see cref="ToIPAddress"/>.
/// IPv4 addresses are kept distinct from their IPv4-mapped IPv6 form: <c>10.0.0.1 != ::ffff:10.0.0.1</c>.
/// </summary>
/// <remarks>Immutable and thread-safe. <c>default(IpAddr)</c> is the IPv6 unspecified address <c>::</c>.</remarks>
[StructLayout(LayoutKind.Sequential, Pack = 4)]
public readonly struct IpAddr : IEquatable<IpAddr>
{
    private readonly ulong _hi;   // IPv6 bytes 0..7 big-endian; 0 for IPv4
    private readonly ulong _lo;   // IPv6 bytes 8..15 big-endian; for IPv4 the address in the low 32 bits
    private readonly bool _v4;

    private IpAddr(ulong hi, ulong lo, bool v4)
    {
        _hi = hi;
        _lo = lo;
        _v4 = v4;
    }

    /// <summary>The IPv4 unspecified address 0.0.0.0.</summary>
    public static IpAddr AnyV4 => new(0, 0, true);

    /// <summary>The IPv6 unspecified address ::.</summary>
    public static IpAddr AnyV6 => default;

    /// <summary>True for an IPv4 address, false for IPv6.</summary>
    public bool IsV4 => _v4;

    /// <summary>Number of address bytes: 4 or 16.</summary>
    public int Length => _v4 ? 4 : 16;

    /// <summary>True for 0.0.0.0 or ::.</summary>
    public bool IsUnspecified => _hi == 0 && _lo == 0;

    /// <summary>True for IPv4 multicast (224/4), limited broadcast, or IPv6 multicast (ff00::/8).</summary>
    public bool IsMulticastOrBroadcast => _v4
        ? ((uint)_lo >> 28) == 0xE || (uint)_lo == 0xFFFF_FFFF
        : (_hi >> 56) == 0xFF;

    /// <summary>True for 127/8 or ::1.</summary>
    public bool IsLoopback => _v4 ? ((uint)_lo >> 24) == 127 : _hi == 0 && _lo == 1;

    /// <summary>The IPv4 address as a host-order integer (a.b.c.d → 0xaabbccdd; only meaningful when <see cref="IsV4"/>).</summary>
    public uint V4Value => (uint)_lo;

    /// <summary>IPv6 bytes 0..7 as a big-endian value (0 for IPv4); the counterpart of <see cref="FromV6(ulong, ulong)"/>.</summary>
    public ulong High => _hi;

    /// <summary>IPv6 bytes 8..15 as a big-endian value; for IPv4 the address in the low 32 bits.</summary>
    public ulong Low => _lo;

    /// <summary>Creates an IPv4 address from 4 network-order bytes.</summary>
    /// <exception cref="ArgumentException">bytes4 is not 4 bytes long.</exception>
    public static IpAddr FromV4(ReadOnlySpan<byte> bytes4)
    {
        if (bytes4.Length != 4)
        {
            throw new ArgumentException("An IPv4 address is 4 bytes.", nameof(bytes4));
        }

        return new IpAddr(0, BinaryPrimitives.ReadUInt32BigEndian(bytes4), true);
    }

    /// <summary>Creates an IPv4 address from a host-order integer (e.g. 0x0A000001 for 10.0.0.1).</summary>
    public static IpAddr FromV4(uint value) => new(0, value, true);

    /// <summary>Creates an IPv6 address from 16 network-order bytes.</summary>
    /// <exception cref="ArgumentException">bytes16 is not 16 bytes long.</exception>
    public static IpAddr FromV6(ReadOnlySpan<byte> bytes16)
    {
        if (bytes16.Length != 16)
        {
            throw new ArgumentException("An IPv6 address is 16 bytes.", nameof(bytes16));
        }

        return new IpAddr(BinaryPrimitives.ReadUInt64BigEndian(bytes16), BinaryPrimitives.ReadUInt64BigEndian(bytes16[8..]), false);
    }

    /// <summary>Creates an IPv6 address from its two big-endian 64-bit halves.</summary>
    public static IpAddr FromV6(ulong high, ulong low) => new(high, low, false);

    /// <summary>Converts from <see cref="IPAddress"/> (scope ids are dropped; IPv4-mapped IPv6 stays IPv6).</summary>
    public static IpAddr FromIPAddress(IPAddress address)
    {
        ArgumentNullException.ThrowIfNull(address);
        Span<byte> bytes = stackalloc byte[16];
        if (!address.TryWriteBytes(bytes, out var written))
        {
            throw new ArgumentException("Unsupported address.", nameof(address));
        }

        return address.AddressFamily == AddressFamily.InterNetwork ? FromV4(bytes[..written]) : FromV6(bytes[..written]);
    }

    /// <summary>Parses dotted-quad or IPv6 text; throws <see cref="FormatException"/> on bad input.</summary>
    public static IpAddr Parse(string text) => FromIPAddress(IPAddress.Parse(text));

    /// <summary>Allocates an equivalent <see cref="IPAddress"/>.</summary>
    public IPAddress ToIPAddress()
    {
        Span<byte> bytes = stackalloc byte[16];
        var n = WriteTo(bytes);
        return new IPAddress(bytes[..n]);
    }

    /// <summary>Writes the 4 or 16 network-order bytes and returns the count.</summary>
    /// <exception cref="ArgumentException">destination is too short.</exception>
    public int WriteTo(Span<byte> destination)
    {
        if (_v4)
        {
            BinaryPrimitives.WriteUInt32BigEndian(destination, (uint)_lo);
            return 4;
        }

        if (destination.Length < 16)
        {
            throw new ArgumentException("Destination too short for an IPv6 address.", nameof(destination));
        }

        BinaryPrimitives.WriteUInt64BigEndian(destination, _hi);
        BinaryPrimitives.WriteUInt64BigEndian(destination[8..], _lo);
        return 16;
    }

    /// <summary>True when both are the same address of the same family.</summary>
    public bool Equals(IpAddr other) => _hi == other._hi && _lo == other._lo && _v4 == other._v4;

    /// <summary>True when <paramref name="obj"/> is an equal <see cref="IpAddr"/>.</summary>
    public override bool Equals(object? obj) => obj is IpAddr other && Equals(other);

    /// <summary>A hash consistent with <see cref="Equals(IpAddr)"/>.</summary>
    public override int GetHashCode() => HashCode.Combine(_hi, _lo, _v4);

    /// <summary>True when both are the same address of the same family.</summary>
    public static bool operator ==(IpAddr left, IpAddr right) => left.Equals(right);

    /// <summary>True when the addresses or their families differ.</summary>
    public static bool operator !=(IpAddr left, IpAddr right) => !left.Equals(right);

    /// <summary>Text form (allocates; not for hot paths).</summary>
    public override string ToString() => ToIPAddress().ToString();
}
