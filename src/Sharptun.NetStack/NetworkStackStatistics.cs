namespace Sharptun.NetStack;

/// <summary>
/// Packet counters of a <see cref="NetworkStack"/>, including drops by reason. Values are updated under the stack's lock
/// and may be read from any thread (each read is atomic; a set of reads is not a consistent snapshot).
/// </summary>
public sealed class NetworkStackStatistics
{
    internal long ReceivedPackets;
    internal long SentPackets;
    internal long MalformedDrops;
    internal long ChecksumDrops;
    internal long NotForUsDrops;
    internal long InvalidSourceDrops;
    internal long UnknownProtocolDrops;
    internal long UdpNoSocketDrops;
    internal long UdpReceiveQueueDrops;
    internal long OutboundQueueFull;
    internal long OutboundOversizeDrops;
    internal long OutboundInvalidDrops;
    internal long IcmpEchoRequests;
    internal long IcmpErrorsSent;
    internal long IcmpErrorsRateLimited;
    internal long IcmpErrorsReceived;
    internal long TcpUnavailableDrops;
    internal long ReassembledDatagrams;

    /// <summary>IP packets written to the stack by the device.</summary>
    public long Received => Volatile.Read(ref ReceivedPackets);

    /// <summary>IP packets queued for the device.</summary>
    public long Sent => Volatile.Read(ref SentPackets);

    /// <summary>Dropped: truncated or malformed headers.</summary>
    public long Malformed => Volatile.Read(ref MalformedDrops);

    /// <summary>Dropped: bad IPv4 header, ICMP or UDP checksum.</summary>
    public long BadChecksum => Volatile.Read(ref ChecksumDrops);

    /// <summary>Dropped: destination not one of the stack's addresses (and not promiscuous).</summary>
    public long NotForUs => Volatile.Read(ref NotForUsDrops);

    /// <summary>Dropped: multicast/broadcast source address (RFC 1122 §3.2.1.3).</summary>
    public long InvalidSource => Volatile.Read(ref InvalidSourceDrops);

    /// <summary>Dropped: unsupported upper-layer protocol.</summary>
    public long UnknownProtocol => Volatile.Read(ref UnknownProtocolDrops);

    /// <summary>Dropped: UDP to a port with no socket.</summary>
    public long UdpNoSocket => Volatile.Read(ref UdpNoSocketDrops);

    /// <summary>Dropped: a UDP socket's receive queue (or the byte budget) was full.</summary>
    public long UdpReceiveQueueFull => Volatile.Read(ref UdpReceiveQueueDrops);

    /// <summary>Times a send found the outbound queue full (TCP/UDP keep their data; ICMP replies are dropped).</summary>
    public long OutboundFull => Volatile.Read(ref OutboundQueueFull);

    /// <summary>
    /// Dropped on the way out: a transport segment that would exceed the MTU. Always 0 unless a layer mis-sizes a segment
    /// (the stack counts and drops it rather than throwing on the packet path).
    /// </summary>
    public long OutboundOversize => Volatile.Read(ref OutboundOversizeDrops);

    /// <summary>Dropped on the way out: source and destination of different address families (an internal error; always 0).</summary>
    public long OutboundInvalid => Volatile.Read(ref OutboundInvalidDrops);

    /// <summary>ICMP/ICMPv6 echo requests answered.</summary>
    public long EchoRequestsAnswered => Volatile.Read(ref IcmpEchoRequests);

    /// <summary>ICMP errors sent (port/protocol unreachable, parameter problem).</summary>
    public long IcmpErrorsSentCount => Volatile.Read(ref IcmpErrorsSent);

    /// <summary>ICMP errors suppressed by the rate limit.</summary>
    public long IcmpErrorsSuppressed => Volatile.Read(ref IcmpErrorsRateLimited);

    /// <summary>ICMP error messages received (counted, not acted upon).</summary>
    public long IcmpErrorsReceivedCount => Volatile.Read(ref IcmpErrorsReceived);

    /// <summary>Dropped: TCP segments while no TCP layer is attached.</summary>
    public long TcpUnavailable => Volatile.Read(ref TcpUnavailableDrops);

    /// <summary>Datagrams reassembled from fragments.</summary>
    public long Reassembled => Volatile.Read(ref ReassembledDatagrams);

    /// <summary>Fragment drops: reassembly timeouts (memory freed).</summary>
    public long ReassemblyTimeouts => (V4?.Timeouts ?? 0) + (V6?.Timeouts ?? 0);

    /// <summary>Fragment drops: overlapping fragments (whole datagram discarded, RFC 5722).</summary>
    public long ReassemblyOverlaps => (V4?.Overlaps ?? 0) + (V6?.Overlaps ?? 0);

    /// <summary>Fragment drops: concurrency / byte limits (oldest evicted).</summary>
    public long ReassemblyLimitDrops => (V4?.LimitDrops ?? 0) + (V6?.LimitDrops ?? 0);

    /// <summary>Fragment drops: inconsistent lengths or offsets.</summary>
    public long ReassemblyMalformed => (V4?.Malformed ?? 0) + (V6?.Malformed ?? 0);

    internal Ip.FragmentReassembler? V4 { get; set; }

    internal Ip.FragmentReassembler? V6 { get; set; }
}
