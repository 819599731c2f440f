using Sharptun.Protocol;
using Sharptun.Transport;

namespace Sharptun.Device.Pipeline;

/// <summary>
/// One packet moving through the pipeline: its pooled buffer, the peer, and (outbound) the keypair and counter
/// reserved in order, or (inbound) the keypair found by receiver index and the source endpoint. Elements are pooled
/// by the device; one is owned by exactly one stage at a time (reader → ordered queue + crypto worker → drainer).
/// </summary>
internal sealed class PacketElement
{
    public const int Pending = 0;
    public const int Ready = 1;
    public const int Failed = 2;

    /// <summary>Finished without output: the keypair was retired (keys wiped) while the packet waited (counted as KeypairRetired).</summary>
    public const int Retired = 3;

    public byte[] Buffer = null!;

    /// <summary>Outbound: plaintext length at offset 16 before, datagram length at offset 0 after encryption. Inbound: datagram length before, plaintext length at offset 16 after.</summary>
    public int Length;

    public DevicePeer Peer = null!;
    public Keypair Keypair = null!;
    public ulong Counter;
    public UdpEndpoint Source;
    public bool IsInbound;

    /// <summary>Device-clock time the element entered its ordered queue (sojourn time for <see cref="QueueDelayController"/>).</summary>
    public TimeSpan EnqueuedAt;
    public volatile int State;

    public void Clear()
    {
        Buffer = null!;
        Peer = null!;
        Keypair = null!;
        Length = 0;
        Counter = 0;
        Source = default;
        EnqueuedAt = default;
        State = Pending;
    }
}
