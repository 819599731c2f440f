namespace Sharptun.NetStack.Wire;

/// <summary>IANA "Assigned Internet Protocol Numbers" used by the stack (IPv4 Protocol / IPv6 Next Header).</summary>
internal static class IpProtocol
{
    public const byte HopByHop = 0;     // RFC 8200 §4.3
    public const byte Icmp = 1;         // RFC 792
    public const byte Tcp = 6;          // RFC 9293
    public const byte Udp = 17;         // RFC 768
    public const byte Ipv6Routing = 43; // RFC 8200 §4.4
    public const byte Ipv6Fragment = 44; // RFC 8200 §4.5
    public const byte Icmpv6 = 58;      // RFC 4443
    public const byte NoNextHeader = 59; // RFC 8200 §4.7
    public const byte Ipv6DestinationOptions = 60; // RFC 8200 §4.6
}
