namespace Sharptun.NetStack.Tcp;

/// <summary>Protocol constants from the RFCs (implementation limits live in <see cref="TcpOptions"/>).</summary>
internal static class TcpConstants
{
    /// <summary>IP protocol number of TCP.</summary>
    public const byte IpProtocol = 6;

    /// <summary>RFC 9293 §3.7.1: default send MSS when the peer sends no MSS option (IPv4 536, IPv6 1220).</summary>
    public const int DefaultMssV4 = 536;
    public const int DefaultMssV6 = 1220;

    public const int Ipv4HeaderLength = 20;
    public const int Ipv6HeaderLength = 40;

    /// <summary>RFC 7323 §3 (kind 8, length 10) padded with two NOPs: option bytes of a timestamped segment.</summary>
    public const int TimestampOptionLength = 12;

    /// <summary>RFC 7323 §2.3: largest window scale shift.</summary>
    public const int MaxWindowScale = 14;

    /// <summary>RFC 6298 §2: initial RTO 1 s, lower bound 1 s (we allow a configurable lower bound), upper bound ≥ 60 s.</summary>
    public static readonly TimeSpan InitialRto = TimeSpan.FromSeconds(1);
    public static readonly TimeSpan MaxRto = TimeSpan.FromSeconds(60);

    /// <summary>RFC 6298 §2: alpha = 1/8, beta = 1/4, K = 4, clock granularity G.</summary>
    public const int RttK = 4;
    public static readonly TimeSpan ClockGranularity = TimeSpan.FromMilliseconds(1);

    /// <summary>RFC 5681 §3.2 / RFC 6675: DupThresh.</summary>
    public const int DupThresh = 3;

    /// <summary>RFC 6928: initial window of 10 segments.</summary>
    public const int InitialWindowSegments = 10;

    /// <summary>
    /// Least interval between "invalid-segment" ACKs of one connection or TIME-WAIT tuple (Linux tcp_invalid_ratelimit,
    /// 500 ms): duplicate ACKs for unacceptable pure ACKs (one half of an ACK loop between desynchronized peers, or a
    /// reflection flood) and RFC 5961 challenge ACKs share it, so a flood aimed at one tuple draws at most one ACK per
    /// interval and cannot use up anything other tuples need (CVE-2016-5696).
    /// </summary>
    public static readonly TimeSpan OutOfWindowAckInterval = TimeSpan.FromMilliseconds(500);

    /// <summary>RFC 7323 §5.5: TS.Recent invalid after 24 days idle.</summary>
    public static readonly TimeSpan PawsIdleLimit = TimeSpan.FromDays(24);
}
