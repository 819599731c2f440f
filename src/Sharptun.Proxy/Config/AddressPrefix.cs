using System.Globalization;
using System.Net;
using System.Net.Sockets;

namespace Sharptun.Proxy.Config;

/// <summary>
/// An address with a prefix length, as written in <c>Address</c> and <c>AllowedIPs</c>: <c>10.0.0.2/24</c> keeps its
/// host bits (an interface address), and a bare address means the single host (<c>/32</c> or <c>/128</c>).
/// </summary>
/// <param name="Address">The address.</param>
/// <param name="PrefixLength">0..32 for IPv4, 0..128 for IPv6.</param>
public readonly record struct AddressPrefix(IPAddress Address, int PrefixLength)
{
    /// <summary>The wg-quick form, <c>address/length</c>.</summary>
    public override string ToString() => Address + "/" + PrefixLength.ToString(CultureInfo.InvariantCulture);

    /// <summary>Parses <c>address</c> or <c>address/length</c>; never throws.</summary>
    public static bool TryParse(string text, out AddressPrefix prefix)
    {
        ArgumentNullException.ThrowIfNull(text);
        prefix = default;
        var slash = text.IndexOf('/', StringComparison.Ordinal);
        var addressText = slash < 0 ? text : text[..slash];
        if (addressText.Contains('%', StringComparison.Ordinal) || !IPAddress.TryParse(addressText, out var address)
            || !(address.AddressFamily == AddressFamily.InterNetworkV6 || addressText.Count(c => c == '.') == 3))
        {
            return false; // IPAddress.TryParse alone accepts "1" and "10.1"
        }

        var max = address.AddressFamily == AddressFamily.InterNetwork ? 32 : 128;
        var length = max;
        if (slash >= 0)
        {
            var lengthText = text[(slash + 1)..];
            if (lengthText.Length is 0 or > 3 || !lengthText.All(char.IsAsciiDigit)
                || !int.TryParse(lengthText, NumberStyles.None, CultureInfo.InvariantCulture, out length) || length > max)
            {
                return false;
            }
        }

        prefix = new AddressPrefix(address, length);
        return true;
    }
}
