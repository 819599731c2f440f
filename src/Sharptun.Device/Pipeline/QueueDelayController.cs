namespace Sharptun.Device.Pipeline;

/// <summary>
/// Bounds the time packets stand in one of a peer's ordered queues: CoDel, "Controlled Delay" (RFC 8289), applied where
/// the queue is drained. Each packet's sojourn time (drain time minus the time it entered the queue) is compared with a
/// target; once it has stayed above the target for a whole interval the controller drops one packet, then drops again at
/// intervals shrinking with the square root of the drop count until the sojourn time falls below the target.
/// </summary>
/// <remarks>
/// <para>Why here: the device applies backpressure instead of dropping between its stages (a full Outbound queue stops
/// the TUN reader), so when encryption or the socket is the bottleneck the standing queue lives in this pipeline and in
/// the TUN's own ring behind it — a TCP sender that sees no loss keeps growing it, and a ping behind a bulk transfer
/// waited 6–10 ms (issue 12 point 4). Dropping a few packets early, as a router's AQM does, makes the sender back off
/// while the queue is short. This is the queue-length-in-time half of the kernel's BQL idea; the byte half is the pool
/// budget and the queue capacities.</para>
/// <para>Not thread-safe: only the queue's drainer (one thread at a time, <see cref="OrderedQueue"/>) calls it. Times
/// come from the caller (the device clock), so tests drive it on a virtual clock.</para>
/// </remarks>
internal sealed class QueueDelayController(TimeSpan target, TimeSpan interval)
{
    private TimeSpan _firstAboveTime; // RFC 8289 §5.4 first_above_time (Zero = not above target)
    private TimeSpan _dropNext;       // §5.4 drop_next
    private int _count;               // §5.4 count: drops since entering the dropping state
    private int _lastCount;           // §5.4 lastcount
    private bool _dropping;           // §5.4 dropping_

    /// <summary>The sojourn time the controller steers towards (RFC 8289 §4.4 TARGET).</summary>
    public TimeSpan Target { get; } = target;

    /// <summary>How long the sojourn time must stay above the target before the first drop (§4.5 INTERVAL).</summary>
    public TimeSpan Interval { get; } = interval;

    /// <summary>True while in the dropping state (tests and diagnostics).</summary>
    public bool Dropping => _dropping;

    /// <summary>
    /// Decides for the packet leaving the queue now. <paramref name="sojourn"/> is how long it waited;
    /// <paramref name="backlog"/> how many packets stand behind it. True = drop it (RFC 8289 §5.5 dequeue).
    /// </summary>
    public bool ShouldDrop(TimeSpan now, TimeSpan sojourn, int backlog)
    {
        var okToDrop = OkToDrop(now, sojourn, backlog);
        if (_dropping)
        {
            if (!okToDrop)
            {
                _dropping = false; // sojourn below target: leave the dropping state
                return false;
            }

            if (now >= _dropNext)
            {
                _count++;
                _dropNext = ControlLaw(_dropNext, _count);
                return true;
            }

            return false;
        }

        if (!okToDrop)
        {
            return false;
        }

        // §5.5: enter the dropping state. If it was left only recently, resume near the old drop rate instead of
        // starting again from one drop per interval.
        _dropping = true;
        var delta = _count - _lastCount;
        _count = delta > 1 && now - _dropNext < 16 * Interval ? delta : 1;
        _dropNext = ControlLaw(now, _count);
        _lastCount = _count;
        return true;
    }

    /// <summary>RFC 8289 §5.5 dodequeue's ok_to_drop: above target for at least an interval, with more than one packet queued.</summary>
    private bool OkToDrop(TimeSpan now, TimeSpan sojourn, int backlog)
    {
        // A queue holding at most one packet (the MTU test of §5.5 in packets) is never the cause of the delay.
        if (sojourn < Target || backlog == 0)
        {
            _firstAboveTime = TimeSpan.Zero;
            return false;
        }

        if (_firstAboveTime == TimeSpan.Zero)
        {
            _firstAboveTime = now + Interval;
            return false;
        }

        return now >= _firstAboveTime;
    }

    /// <summary>§5.6 control_law: the next drop comes interval/√count after <paramref name="t"/>.</summary>
    private TimeSpan ControlLaw(TimeSpan t, int count) => t + (Interval / Math.Sqrt(count));
}
