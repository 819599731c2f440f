namespace Sharptun.NetStack.Dns;

/// <summary>Timeouts, retries and cache limits of a <see cref="DnsResolver"/>.</summary>
public sealed class DnsResolverOptions
{
    /// <summary>How long one query to one server waits for its answer (over UDP, or the whole TCP exchange). Default 2 s.</summary>
    public TimeSpan Timeout { get; set; } = TimeSpan.FromSeconds(2);

    /// <summary>How many rounds over the whole server list a lookup makes before it fails. Default 2.</summary>
    public int Attempts { get; set; } = 2;

    /// <summary>Most names (per record type) held in the answer cache; 0 turns the cache off. Default 256.</summary>
    public int CacheCapacity { get; set; } = 256;

    /// <summary>Upper bound on how long an answer is cached, whatever TTL the server gave. Default 5 minutes.</summary>
    public TimeSpan MaxCacheTtl { get; set; } = TimeSpan.FromMinutes(5);

    /// <summary>How long a "no such name" (NXDOMAIN) answer is cached; <see cref="TimeSpan.Zero"/> turns negative caching off. Default 5 s.</summary>
    public TimeSpan NegativeCacheTtl { get; set; } = TimeSpan.FromSeconds(5);

    /// <summary>The server port. Default 53 (RFC 1035 §4.2).</summary>
    public int Port { get; set; } = 53;

    /// <summary>
    /// Search domains (wg-quick's non-address <c>DNS =</c> entries): a single-label name is tried in each, in order,
    /// before it is tried as it is (resolv.conf's search list with <c>ndots:1</c>). Empty by default.
    /// </summary>
    public IList<string> SearchDomains { get; } = new List<string>();

    /// <summary>The clock for timeouts and cache expiry. Default <see cref="TimeProvider.System"/>.</summary>
    public TimeProvider TimeProvider { get; set; } = TimeProvider.System;
}
