using Sharptun.Protocol;

namespace Sharptun.Device.Pipeline;

/// <summary>Limits and knobs of a <see cref="WireGuardDevice"/>. Defaults follow wireguard-go where it has a value.</summary>
public sealed record WireGuardDeviceOptions
{
    /// <summary>Byte budget of the packet buffer pool (every packet in flight lives in it). Default 4 MiB (2048 buffers).</summary>
    public long BufferBudgetBytes { get; init; } = 4 << 20;

    /// <summary>Size of one packet buffer: 16 bytes of header room + MTU + 15 padding + 16 tag must fit. Default 2048.</summary>
    public int BufferSize { get; init; } = 2048;

    /// <summary>
    /// Byte budget of the pool of large buffers (64 KiB: any packet up to 65535 bytes) for packets that do not fit
    /// <see cref="BufferSize"/> — a TUN MTU above about 2000, set at any time (wg-quick sets it after start). Allocated
    /// only when such packets flow. Default 32 MiB (511 buffers).
    /// </summary>
    public long LargeBufferBudgetBytes { get; init; } = 32 << 20;

    /// <summary>Packets staged per peer while a handshake is pending (wireguard-go QueueStagedSize). Oldest dropped first.</summary>
    public int StagedPacketsPerPeer { get; init; } = 128;

    /// <summary>Capacity of each peer's ordered outbound and inbound queues (wireguard-go QueueOutboundSize).</summary>
    public int PeerQueueCapacity { get; init; } = 1024;

    /// <summary>
    /// Sojourn time each peer's ordered queues steer towards (CoDel, RFC 8289): once packets have waited longer than this
    /// for a whole <see cref="QueueDelayInterval"/>, the queue's drainer drops one and then more at a rate growing with the
    /// square root of the drops, until the delay falls below it again (counted as <see cref="DropReason.QueueDelay"/>).
    /// Keeps a bulk TCP transfer from filling the pipeline with milliseconds of packets that everything else must wait
    /// behind. Default 2 ms; <see cref="TimeSpan.Zero"/> turns the limit off (the queues are then bounded only by
    /// <see cref="PeerQueueCapacity"/>).
    /// </summary>
    public TimeSpan QueueDelayTarget { get; init; } = TimeSpan.FromMilliseconds(2);

    /// <summary>How long the sojourn time must stay above <see cref="QueueDelayTarget"/> before the first drop (RFC 8289 INTERVAL, about the longest round-trip time expected). Default 100 ms.</summary>
    public TimeSpan QueueDelayInterval { get; init; } = TimeSpan.FromMilliseconds(100);

    /// <summary>Capacity of the handshake queue; past 1/8 of it the device is "under load" (cookie replies, rate limit).</summary>
    public int HandshakeQueueCapacity { get; init; } = 1024;

    /// <summary>
    /// Crypto worker threads; 0 = the reader threads (the packet device's reader, the UDP receiver) encrypt and decrypt
    /// what they read themselves. Default: none on a machine with one or two cores, else one per core
    /// (<see cref="DefaultCryptoWorkers"/>).
    /// </summary>
    public int CryptoWorkers { get; init; } = DefaultCryptoWorkers(Environment.ProcessorCount);

    /// <summary>
    /// The default <see cref="CryptoWorkers"/> for <paramref name="processorCount"/> cores: 0 on one or two, else one per
    /// core. On two cores the workers buy no parallelism (the readers, the peer's or the application's threads and the
    /// kernel's network work already keep both busy), and each hand-off costs a futex wake-up and a context switch per
    /// batch. Measured on a 2-core machine (docs/benchmarks.md, "Session 10"): a daemon pair moved 3.1–3.4 against 2.2–2.8
    /// Gbit/s at 2.0–2.3 against 2.6–3.4 CPU seconds per GB, and <c>sharptun proxy</c> used 10–25 % less CPU per GB.
    /// </summary>
    internal static int DefaultCryptoWorkers(int processorCount) => processorCount <= 2 ? 0 : processorCount;

    /// <summary>The monotonic clock (tests pass a sped-up one).</summary>
    public DeviceClock? Clock { get; init; }

    /// <summary>Wall clock for TAI64N and last-handshake times.</summary>
    public IWallClock? WallClock { get; init; }

    /// <summary>Timer jitter source (seed it for reproducible tests).</summary>
    public Random? Random { get; init; }

    /// <summary>Listening port to bind at start (0 = random) when no UAPI <c>listen_port</c> is set.</summary>
    public ushort InitialListenPort { get; init; }

    /// <summary>Resolves endpoint host names of config files at apply time (<see cref="WireGuardDevice.ApplyConfig"/>); default uses DNS.</summary>
    public Func<string, System.Net.IPAddress?>? ResolveHostname { get; init; }
}
