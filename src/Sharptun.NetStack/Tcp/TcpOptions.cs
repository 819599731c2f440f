namespace Sharptun.NetStack.Tcp;

/// <summary>Congestion control algorithm for new connections.</summary>
public enum TcpCongestionControl
{
    /// <summary>CUBIC (RFC 9438), the default.</summary>
    Cubic,

    /// <summary>NewReno (RFC 5681 + RFC 6582).</summary>
    NewReno,
}

/// <summary>
/// Configuration of the TCP layer: per-connection buffer sizes (the fixed memory budget), congestion control,
/// timers and table bounds. Read when a connection is created; changing it afterwards affects only new connections.
/// </summary>
/// <remarks>
/// Buffer sizes are a memory/throughput trade-off. A ring takes 4 KiB chunks from the stack's pool only for the
/// bytes it holds, so quiet connections cost no buffer memory and a ring's capacity (<see cref="SendBufferSize"/>,
/// <see cref="ReceiveBufferSize"/>) costs nothing until data waits in it. Two stack-wide budgets bound what all
/// connections together may hold, however many are open: <see cref="ReceiveWindowBudget"/> divides the offered receive
/// windows (which also bounds what peers can have in flight towards the stack, the packets queued in front of it) and
/// <see cref="SendBufferBudget"/> divides the send buffers (docs/benchmarks.md, "NetStack memory"). A single
/// connection can have at most its window or send buffer in flight, so its throughput is capped at that / RTT: a
/// 512 KiB buffer allows about 4 Gbit/s at 1 ms RTT, 420 Mbit/s at 10 ms and 84 Mbit/s at 50 ms. With 32 KiB (the
/// default once) a tunnel through wireguard-go on this project's 2-core test machine, where queueing alone makes the
/// RTT a few milliseconds, moved 330–370 Mbit/s down instead of 540–730; with the 1 MiB receive buffer instead of
/// 512 KiB a download through `sharptun proxy` moved 1,057–1,088 Mbit/s instead of 832–987 (docs/benchmarks.md).
/// Raise the sizes and budgets for long fat paths; lower the budgets for a tighter memory bound.
/// </remarks>
public sealed class TcpOptions
{
    /// <summary>
    /// Receive buffer per connection in bytes (caps the advertised window, so the peer's throughput to us is at most
    /// this / RTT; memory is held only for the bytes it holds, and <see cref="ReceiveWindowBudget"/> bounds what all
    /// connections hold together). Default 1 MiB (see the remarks on the class for the trade-off).
    /// </summary>
    public int ReceiveBufferSize { get; set; } = 1024 * 1024;

    /// <summary>
    /// Bytes that all connections' receive windows share (RFC 9293 §3.8.6.2.2 leaves the offered window to the
    /// receiver's resources): each connection offers at most max(4 KiB, budget / connections)
    /// beyond what it already holds, never more than its <see cref="ReceiveBufferSize"/>. Default 1 MiB: one or two
    /// connections get their full window, 100 connections 10 KiB each; 0 turns the shared cap off. Windows are never shrunk: a new
    /// connection lowers the others' shares as they advance.
    /// </summary>
    public long ReceiveWindowBudget { get; set; } = 1024 * 1024;

    /// <summary>
    /// Send buffer per connection in bytes (WriteAsync waits when full; unacknowledged data stays in it, so our
    /// throughput is at most this / RTT; memory is held only for the bytes it holds). Default 512 KiB (see the remarks
    /// on the class for the trade-off).
    /// </summary>
    public int SendBufferSize { get; set; } = 512 * 1024;

    /// <summary>
    /// Bytes that all connections' send buffers share: a write is taken only while the
    /// connection holds less than max(4 KiB, budget / connections), never more than its <see cref="SendBufferSize"/>;
    /// the writer waits for acknowledgments otherwise. Default 1 MiB; 0 turns the shared cap off. A connection that
    /// already holds more than a new share keeps its bytes and takes more once it is below the share.
    /// </summary>
    public long SendBufferBudget { get; set; } = 1024 * 1024;

    /// <summary>Congestion control for new connections. Default CUBIC.</summary>
    public TcpCongestionControl CongestionControl { get; set; } = TcpCongestionControl.Cubic;

    /// <summary>Disables Nagle's algorithm (RFC 896) for new connections when true. Default false.</summary>
    public bool NoDelay { get; set; }

    /// <summary>Offer/accept SACK (RFC 2018). Default true.</summary>
    public bool EnableSack { get; set; } = true;

    /// <summary>Offer/accept timestamps (RFC 7323). Default true.</summary>
    public bool EnableTimestamps { get; set; } = true;

    /// <summary>Offer/accept window scaling (RFC 7323). Default true.</summary>
    public bool EnableWindowScaling { get; set; } = true;

    /// <summary>Delayed ACK timeout (RFC 1122 §4.2.3.2: at most 500 ms). Default 40 ms; zero disables delayed ACKs.</summary>
    public TimeSpan DelayedAckTimeout { get; set; } = TimeSpan.FromMilliseconds(40);

    /// <summary>Lower bound for the RTO. RFC 6298 §2.4 suggests 1 s; like Linux we default to 200 ms.</summary>
    public TimeSpan MinRto { get; set; } = TimeSpan.FromMilliseconds(200);

    /// <summary>Retransmissions of one segment before the connection is aborted with TimedOut. Default 15 (RFC 1122 R2 ≥ 100 s).</summary>
    public int MaxRetransmissions { get; set; } = 15;

    /// <summary>SYN retransmissions before ConnectAsync fails with TimedOut. Default 6.</summary>
    public int MaxSynRetransmissions { get; set; } = 6;

    /// <summary>Enable keepalive probes (RFC 1122 §4.2.3.6) for new connections. Default false.</summary>
    public bool KeepAlive { get; set; }

    /// <summary>Idle time before the first keepalive probe. RFC 1122: at least 2 hours by default.</summary>
    public TimeSpan KeepAliveIdle { get; set; } = TimeSpan.FromHours(2);

    /// <summary>Time between unanswered keepalive probes. Default 75 s.</summary>
    public TimeSpan KeepAliveInterval { get; set; } = TimeSpan.FromSeconds(75);

    /// <summary>Unanswered probes before the connection is aborted. Default 9.</summary>
    public int KeepAliveCount { get; set; } = 9;

    /// <summary>Time in TIME-WAIT (2×MSL, RFC 9293 §3.4.2). Default 60 s.</summary>
    public TimeSpan TimeWaitDuration { get; set; } = TimeSpan.FromSeconds(60);

    /// <summary>Largest number of TIME-WAIT entries; the oldest is evicted when full. Default 4096.</summary>
    public int MaxTimeWaitEntries { get; set; } = 4096;

    /// <summary>How long a closed (disposed) connection may stay in FIN-WAIT-2. Default 60 s.</summary>
    public TimeSpan FinWait2Timeout { get; set; } = TimeSpan.FromSeconds(60);

    /// <summary>
    /// Optional layer-wide cap on RFC 5961 §7 challenge ACKs and TIME-WAIT ACKs, per second: the allowance of each
    /// second is drawn at random with this mean (from ⌈L/2⌉ to ⌈L/2⌉ + L − 1), so it cannot serve as a counter for an
    /// off-path attacker (CVE-2016-5696). Each connection and TIME-WAIT tuple is limited on its own anyway, to one such
    /// ACK per 500 ms. Default <see cref="int.MaxValue"/>: no global cap, as Linux since 6.0.
    /// </summary>
    public int ChallengeAckLimitPerSecond { get; set; } = int.MaxValue;

    /// <summary>Largest number of out-of-order byte ranges kept per connection. Default 32.</summary>
    public int MaxOutOfOrderRanges { get; set; } = 32;

    internal void Validate()
    {
        if (ReceiveBufferSize < 1024 || SendBufferSize < 1024)
        {
            throw new ArgumentOutOfRangeException(nameof(ReceiveBufferSize), "Buffers must be at least 1 KiB.");
        }

        if (ReceiveWindowBudget < 0)
        {
            throw new ArgumentOutOfRangeException(nameof(ReceiveWindowBudget), "Must be 0 (no shared cap) or more.");
        }

        if (SendBufferBudget < 0)
        {
            throw new ArgumentOutOfRangeException(nameof(SendBufferBudget), "Must be 0 (no shared cap) or more.");
        }

        if (MaxTimeWaitEntries < 0 || MaxOutOfOrderRanges < 1)
        {
            throw new ArgumentOutOfRangeException(nameof(MaxTimeWaitEntries));
        }

        if (ChallengeAckLimitPerSecond < 1)
        {
            throw new ArgumentOutOfRangeException(nameof(ChallengeAckLimitPerSecond), "Must be at least 1 (int.MaxValue: no global cap).");
        }
    }
}
