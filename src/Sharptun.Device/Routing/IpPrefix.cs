using System.Globalization;
using System.Net;
using System.Net.Sockets;
using Sharptun.Transport;

namespace Sharptun.Device.Routing;

/// <summary>
/// An IPv4 or IPv6 prefix (<c>10.0.0.0/24</c>, <c>fd00::/64</c>). The address is kept exactly as written
/// (wg-quick's <c>Address = 10.0.0.2/24</c> must keep its host bits); <see cref="Masked"/> clears the host
/// bits, which is what the allowed-IPs table does on insert (as wg and the kernel do).
/// </summary>
/// <param name="Address">An IPv4 or IPv6 address.</param>
/// <param name="Length">The prefix length, 0..32 for IPv4 and 0..128 for IPv6.</param>
public readonly record struct IpPrefix(IpAddr Address, int Length)
{
    /// <summary>Creates a prefix from an <see cref="IPAddress"/> (converted with <see cref="IpAddr.FromIPAddress"/>; a scope id is dropped).</summary>
    /// <exception cref="ArgumentNullException"><paramref name="address"/> is null.</exception>
    public IpPrefix(IPAddress address, int length)
        : this(IpAddr.FromIPAddress(address), length)
    {
    }

    /// <summary>True for an IPv4 prefix.</summary>
    public bool IsIPv4 => Address.IsV4;

    /// <summary>32 for IPv4, 128 for IPv6.</summary>
    public int MaxLength => IsIPv4 ? 32 : 128;

    /// <summary>The same prefix with every bit beyond <see cref="Length"/> cleared (10.0.0.1/24 → 10.0.0.0/24).</summary>
    public IpPrefix Masked() => new(Mask(Address, Length), Length);

    /// <summary>True when <paramref name="address"/> (4 or 16 bytes, network order) lies inside this prefix.</summary>
    public bool Contains(ReadOnlySpan<byte> address)
    {
        if (address.Length != Address.Length)
        {
            return false;
        }

        var other = address.Length == 4 ? IpAddr.FromV4(address) : IpAddr.FromV6(address);
        return Mask(other, Length) == Mask(Address, Length);
    }

    /// <summary>Canonical text: <c>10.0.0.0/24</c>, <c>fd00::/64</c> (RFC 5952 compressed lowercase IPv6).</summary>
    public override string ToString() => Address.ToString() + "/" + Length.ToString(CultureInfo.InvariantCulture);

    /// <summary>
    /// Parses <c>addr/len</c> or a bare address (→ /32 or /128) the way wg's config parser does: strict
    /// dotted-quad IPv4 (no leading zeros, no short forms), IPv6 without brackets or scope, decimal length
    /// within the family's range. Never throws.
    /// </summary>
    public static bool TryParse(ReadOnlySpan<char> text, out IpPrefix prefix) => TryParse(text, requireLength: false, allowLeadingZeroLength: true, out prefix);

    /// <summary>
    /// The stricter form used by the UAPI (<c>allowed_ip=</c>, Go's netip.ParsePrefix): the <c>/len</c> part is
    /// required and has no leading zeros.
    /// </summary>
    public static bool TryParseStrict(ReadOnlySpan<char> text, out IpPrefix prefix) => TryParse(text, requireLength: true, allowLeadingZeroLength: false, out prefix);

    private static bool TryParse(ReadOnlySpan<char> text, bool requireLength, bool allowLeadingZeroLength, out IpPrefix prefix)
    {
        prefix = default;
        var slash = text.IndexOf('/');
        var addressText = slash < 0 ? text : text[..slash];
        if (!TryParseAddress(addressText, out var address))
        {
            return false;
        }

        var max = address.AddressFamily == AddressFamily.InterNetwork ? 32 : 128;
        var length = max;
        if (slash >= 0)
        {
            var lengthText = text[(slash + 1)..];
            if (lengthText.Length is 0 or > 3 || (!allowLeadingZeroLength && lengthText.Length > 1 && lengthText[0] == '0'))
            {
                return false;
            }

            length = 0;
            foreach (var c in lengthText)
            {
                if (!char.IsAsciiDigit(c))
                {
                    return false;
                }

                length = (length * 10) + (c - '0');
            }

            if (length > max)
            {
                return false;
            }
        }
        else if (requireLength)
        {
            return false;
        }

        prefix = new IpPrefix(IpAddr.FromIPAddress(address), length);
        return true;
    }

    /// <summary>
    /// Strict address parser (inet_pton semantics): four decimal octets without leading zeros for IPv4;
    /// for IPv6 no brackets, no scope id, no port. <see cref="IPAddress.TryParse(string?, out IPAddress?)"/>
    /// alone is too lenient (it accepts "1", "0x7f.1" and "[::1]").
    /// </summary>
    public static bool TryParseAddress(ReadOnlySpan<char> text, out IPAddress address)
    {
        address = IPAddress.None;
        if (text.IsEmpty || text.Length > 45)
        {
            return false;
        }

        if (text.Contains(':'))
        {
            foreach (var c in text)
            {
                if (!(char.IsAsciiHexDigit(c) || c == ':' || c == '.'))
                {
                    return false;
                }
            }

            if (!IPAddress.TryParse(text, out var v6) || v6.AddressFamily != AddressFamily.InterNetworkV6)
            {
                return false;
            }

            address = v6;
            return true;
        }

        Span<byte> octets = stackalloc byte[4];
        var part = 0;
        var value = -1;
        var digits = 0;
        foreach (var c in text)
        {
            if (c == '.')
            {
                if (digits == 0 || part == 3)
                {
                    return false;
                }

                octets[part++] = (byte)value;
                value = -1;
                digits = 0;
                continue;
            }

            if (!char.IsAsciiDigit(c) || (digits == 1 && value == 0) || digits == 3)
            {
                return false;
            }

            value = (value < 0 ? 0 : value * 10) + (c - '0');
            digits++;
            if (value > 255)
            {
                return false;
            }
        }

        if (part != 3 || digits == 0)
        {
            return false;
        }

        octets[3] = (byte)value;
        address = new IPAddress(octets);
        return true;
    }

    internal static UInt128 ToKey(IpAddr address) =>
        address.IsV4 ? (UInt128)address.V4Value << 96 : ((UInt128)address.High << 64) | address.Low;

    // Clears the bits beyond length (a length outside 0..max clears nothing or everything, as the byte-wise form did).
    private static IpAddr Mask(IpAddr address, int length)
    {
        if (address.IsV4)
        {
            var bits = Math.Clamp(length, 0, 32);
            return IpAddr.FromV4(bits == 0 ? 0 : address.V4Value & (uint.MaxValue << (32 - bits)));
        }

        var hiBits = Math.Clamp(length, 0, 64);
        var loBits = Math.Clamp(length - 64, 0, 64);
        var hi = hiBits == 0 ? 0 : address.High & (ulong.MaxValue << (64 - hiBits));
        var lo = loBits == 0 ? 0 : address.Low & (ulong.MaxValue << (64 - loBits));
        return IpAddr.FromV6(hi, lo);
    }
}
