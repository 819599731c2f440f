using System.Net;

namespace Sharptun.NetStack.Dns;

/// <summary>
/// The resolver's answer cache: (name, type) to addresses until the answer's TTL runs out (RFC 1035 §3.2.1, capped),
/// or to "no such name" for the negative TTL (RFC 2308 §5). Holds at most <c>capacity</c> entries: when full, expired
/// entries go first, then the one closest to expiry. Thread-safe.
/// </summary>
internal sealed class DnsCache(int capacity, TimeSpan maxTtl, TimeSpan negativeTtl, TimeProvider time)
{
    private readonly Lock _gate = new();
    private readonly Dictionary<(string Name, DnsRecordType Type), Entry> _entries = [];
    private long _hits;

    public long Hits => Interlocked.Read(ref _hits);

    public int Count
    {
        get
        {
            lock (_gate)
            {
                return _entries.Count;
            }
        }
    }

    /// <summary>A live entry: <paramref name="addresses"/> is a copy, or null for a cached NXDOMAIN.</summary>
    public bool TryGet(string name, DnsRecordType type, out IPAddress[]? addresses)
    {
        lock (_gate)
        {
            if (_entries.TryGetValue((name, type), out var entry))
            {
                if (entry.Expires > time.GetUtcNow())
                {
                    Interlocked.Increment(ref _hits);
                    addresses = entry.Addresses is null ? null : [.. entry.Addresses];
                    return true;
                }

                _entries.Remove((name, type));
            }
        }

        addresses = null;
        return false;
    }

    public void Add(string name, DnsRecordType type, IPAddress[] addresses, uint ttlSeconds)
    {
        var ttl = TimeSpan.FromSeconds(ttlSeconds);
        Store(name, type, [.. addresses], ttl < maxTtl ? ttl : maxTtl);
    }

    public void AddNegative(string name, DnsRecordType type) => Store(name, type, null, negativeTtl);

    private void Store(string name, DnsRecordType type, IPAddress[]? addresses, TimeSpan ttl)
    {
        if (capacity == 0 || ttl <= TimeSpan.Zero)
        {
            return;
        }

        var now = time.GetUtcNow();
        lock (_gate)
        {
            if (_entries.Count >= capacity && !_entries.ContainsKey((name, type)))
            {
                Evict(now);
            }

            _entries[(name, type)] = new Entry(addresses, now + ttl);
        }
    }

    private void Evict(DateTimeOffset now)
    {
        (string, DnsRecordType)? soonest = null;
        var soonestExpiry = DateTimeOffset.MaxValue;
        List<(string, DnsRecordType)>? expired = null;
        foreach (var (key, entry) in _entries)
        {
            if (entry.Expires <= now)
            {
                (expired ??= []).Add(key);
            }
            else if (entry.Expires < soonestExpiry)
            {
                soonestExpiry = entry.Expires;
                soonest = key;
            }
        }

        if (expired is not null)
        {
            foreach (var key in expired)
            {
                _entries.Remove(key);
            }
        }
        else if (soonest is { } key)
        {
            _entries.Remove(key);
        }
    }

    private readonly record struct Entry(IPAddress[]? Addresses, DateTimeOffset Expires);
}
