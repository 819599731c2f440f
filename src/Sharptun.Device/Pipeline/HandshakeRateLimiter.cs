using Sharptun.Transport;

namespace Sharptun.Device.Pipeline;

/// <summary>
/// Per-source token bucket for handshake messages under load (wireguard-go ratelimiter.go): each IPv4 address, and
/// each IPv6 /64, may send <see cref="PacketsPerSecond"/> with a burst of <see cref="PacketsBurstable"/>. Entries idle
/// for a second are forgotten; the table holds at most <see cref="MaxEntries"/> sources.
/// </summary>
/// <remarks>
/// <para>Only charge addresses a message has proven (a valid mac2, whitepaper §5.4.4): a budget keyed by an
/// unauthenticated address could be spent, or the table filled, by a flood with spoofed sources.</para>
/// <para>Thread-safe (one lock). Allocation-free in steady state except when a new source appears.</para>
/// </remarks>
internal sealed class HandshakeRateLimiter
{
    public const int PacketsPerSecond = 20;
    public const int PacketsBurstable = 5;
    public const int MaxEntries = 1 << 16;

    private static readonly long PacketCost = TimeSpan.TicksPerSecond / PacketsPerSecond;
    private static readonly long MaxTokens = PacketCost * PacketsBurstable;
    private static readonly TimeSpan GcInterval = TimeSpan.FromSeconds(1);

    private readonly Lock _lock = new();
    private readonly Dictionary<UInt128, Entry> _entries = [];
    private readonly List<UInt128> _stale = [];
    private TimeSpan _lastGc;

    /// <summary>Number of sources tracked.</summary>
    public int Count
    {
        get
        {
            lock (_lock)
            {
                return _entries.Count;
            }
        }
    }

    /// <summary>The key a source is limited (and fairly queued) by: its IPv4 address, or its IPv6 /64 as wireguard-go does.</summary>
    public static UInt128 AddressKey(in UdpEndpoint source)
    {
        Span<byte> address = stackalloc byte[16];
        source.WriteAddress16(address);
        var key = System.Buffers.Binary.BinaryPrimitives.ReadUInt128BigEndian(address);
        return source.IsIPv4 ? key : key & ~(UInt128)ulong.MaxValue;
    }

    /// <summary>
    /// True when a message from <paramref name="source"/> may be processed at <paramref name="now"/>.
    /// <paramref name="tracked"/> is false when the table was full and the source is new: then it is allowed but not
    /// limited (the caller bounds that work otherwise), so a full table never locks a proven source out.
    /// </summary>
    public bool Allow(in UdpEndpoint source, TimeSpan now, out bool tracked)
    {
        var key = AddressKey(source);
        lock (_lock)
        {
            if (now - _lastGc >= GcInterval)
            {
                CollectLocked(now);
            }

            if (!_entries.TryGetValue(key, out var entry))
            {
                tracked = _entries.Count < MaxEntries;
                if (tracked)
                {
                    _entries[key] = new Entry { LastTime = now, Tokens = MaxTokens - PacketCost };
                }

                return true;
            }

            tracked = true;
            var tokens = Math.Min(MaxTokens, entry.Tokens + (now - entry.LastTime).Ticks);
            entry.LastTime = now;
            var allowed = tokens > PacketCost;
            if (allowed)
            {
                tokens -= PacketCost;
            }

            entry.Tokens = tokens;
            return allowed;
        }
    }

    private void CollectLocked(TimeSpan now)
    {
        _lastGc = now;
        foreach (var (key, entry) in _entries)
        {
            if (now - entry.LastTime > GcInterval)
            {
                _stale.Add(key);
            }
        }

        foreach (var key in _stale)
        {
            _entries.Remove(key);
        }

        _stale.Clear();
    }

    private sealed class Entry
    {
        public TimeSpan LastTime;
        public long Tokens;
    }
}
