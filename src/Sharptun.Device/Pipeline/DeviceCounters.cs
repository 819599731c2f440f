namespace Sharptun.Device.Pipeline;

/// <summary>Why the device dropped a packet or datagram (one counter each, see <see cref="DeviceCounters"/>).</summary>
public enum DropReason
{
    /// <summary>Outbound packet whose destination no peer's allowed IPs cover.</summary>
    NoRoute,

    /// <summary>Outbound packet that is not IPv4/IPv6, is truncated, or does not leave room for padding and tag.</summary>
    InvalidOutboundPacket,

    /// <summary>Outbound packet dropped because the device has no private key.</summary>
    NoPrivateKey,

    /// <summary>Staged packet pushed out by a newer one (the per-peer staging queue was full).</summary>
    StagedOverflow,

    /// <summary>Staged packets dropped because the handshake was abandoned (RekeyAttemptTime) or the peer removed.</summary>
    StagedExpired,

    /// <summary>Packet or message to a peer with no known endpoint.</summary>
    NoEndpoint,

    /// <summary>Datagrams the bind refused or a send that failed (socket closed during a rebind).</summary>
    SendFailed,

    /// <summary>The packet buffer budget was spent (a reader could not rent a buffer, or an ordered queue was full).</summary>
    BufferBudget,

    /// <summary>A datagram that is not a well-formed WireGuard message (bad type, reserved bytes, length).</summary>
    MalformedDatagram,

    /// <summary>A handshake message when the handshake queue was full.</summary>
    HandshakeQueueFull,

    /// <summary>A handshake message from a source over its rate limit while under load.</summary>
    HandshakeRateLimited,

    /// <summary>A handshake message that failed authentication or did not fit the state (bad mac1, unknown peer, replayed timestamp ...).</summary>
    HandshakeRejected,

    /// <summary>Transport data naming no live receiver index, or an expired keypair.</summary>
    UnknownReceiver,

    /// <summary>Transport data whose tag did not verify.</summary>
    DecryptionFailed,

    /// <summary>A packet (either way) whose keypair was retired — its keys wiped — while it waited in the pipeline.</summary>
    KeypairRetired,

    /// <summary>Transport data with a counter already seen or older than the replay window.</summary>
    Replayed,

    /// <summary>Decrypted payload that is not a plausible IP packet.</summary>
    InvalidInnerPacket,

    /// <summary>Decrypted packet whose source address is not in the sending peer's allowed IPs.</summary>
    SourceNotAllowed,

    /// <summary>Packets the packet device did not accept.</summary>
    TunWriteFailed,

    /// <summary>
    /// Packets (either way) dropped because packets had stood in the peer's ordered queue longer than
    /// <see cref="WireGuardDeviceOptions.QueueDelayTarget"/> for a whole interval (CoDel, RFC 8289): the early loss that
    /// makes a TCP sender slow down before the queue grows long.
    /// </summary>
    QueueDelay,
}

/// <summary>
/// Per-device drop counters by <see cref="DropReason"/>. Lock-free (one interlocked add per drop), allocation-free.
/// </summary>
public sealed class DeviceCounters
{
    private readonly long[] _drops = new long[Enum.GetValues<DropReason>().Length];

    /// <summary>The number of drops for <paramref name="reason"/>.</summary>
    public long this[DropReason reason] => Interlocked.Read(ref _drops[(int)reason]);

    /// <summary>The sum over all reasons.</summary>
    public long TotalDrops
    {
        get
        {
            long sum = 0;
            for (var i = 0; i < _drops.Length; i++)
            {
                sum += Interlocked.Read(ref _drops[i]);
            }

            return sum;
        }
    }

    /// <summary>Every reason with a nonzero count, as "reason=count" pairs (diagnostics; allocates).</summary>
    public override string ToString()
    {
        var parts = new List<string>();
        foreach (var reason in Enum.GetValues<DropReason>())
        {
            var n = this[reason];
            if (n != 0)
            {
                parts.Add(reason + "=" + n);
            }
        }

        return string.Join(' ', parts);
    }

    internal void Drop(DropReason reason) => Interlocked.Increment(ref _drops[(int)reason]);

    internal void Drop(DropReason reason, int count) => Interlocked.Add(ref _drops[(int)reason], count);
}
