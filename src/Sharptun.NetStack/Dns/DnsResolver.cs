using System.Buffers;
using System.Buffers.Binary;
using System.Net;
using System.Net.Sockets;
using System.Security.Cryptography;

namespace Sharptun.NetStack.Dns;

/// <summary>
/// A stub resolver (RFC 1034 §5.3.1) that looks names up through a <see cref="NetworkStack"/>, so that queries go to
/// the tunnel's DNS servers and never to the host's resolver.
/// </summary>
/// <remarks>
/// <para>
/// Each query is a standard RFC 1035 query (§4.1: one question, RD set) with a fresh 16-bit ID from a CSPRNG, sent over
/// UDP from a fresh socket on a random ephemeral port of the stack, connected to the server. It carries an EDNS(0) OPT
/// record (RFC 6891 §6) advertising a UDP payload size of 1232 octets (the DNS flag day value), so answers up to that
/// size come over UDP instead of being truncated at 512 (RFC 1035 §4.2.1). A server that answers the OPT record with
/// FORMERR or NOTIMP (RFC 6891 §7) is asked again at once without it, and for the next ten minutes gets no OPT record
/// (counted in <see cref="EdnsFallbacks"/>). A response is accepted only from the server's
/// address and port, with the query's ID, QR set and the same question; anything else (malformed, spoofed, for
/// another name) is dropped and counted in <see cref="ResponsesDropped"/> while the query keeps waiting. A truncated
/// response (TC) is asked again over TCP through the stack (RFC 7766 §5). SERVFAIL, REFUSED and other errors, ICMP
/// errors and timeouts move on to the next server; the server list is walked <see cref="DnsResolverOptions.Attempts"/>
/// times. NXDOMAIN ends the lookup with <see cref="SocketError.HostNotFound"/>.
/// </para>
/// <para>
/// IP literals return at once without a query. <c>localhost</c> and names under <c>.localhost</c> resolve to the
/// loopback addresses without a query (RFC 6761 §6.3), so they never reach the tunnel's servers, with or without search
/// domains. Names must be ASCII (pass internationalized names in their punycode A-label form). A name with a dot, or
/// with a trailing dot, is fully qualified; a single-label name (no dot) is tried with each of
/// <see cref="DnsResolverOptions.SearchDomains"/> appended, in order, and then as it is, the way resolv.conf's search
/// list works with <c>ndots:1</c> (a candidate that does not exist or has no address of the family moves on to the
/// next). No DNSSEC validation is done.
/// </para>
/// <para>
/// Answers are cached for their TTL (at most <see cref="DnsResolverOptions.MaxCacheTtl"/>), up to
/// <see cref="DnsResolverOptions.CacheCapacity"/> entries; NXDOMAIN for <see cref="DnsResolverOptions.NegativeCacheTtl"/>.
/// Thread-safe: lookups may run concurrently.
/// </para>
/// </remarks>
public sealed class DnsResolver
{
    /// <summary>
    /// Receive buffer for UDP answers: room for <see cref="DnsMessage.EdnsUdpPayloadSize"/> and more, so a server that
    /// sends more than it was offered (RFC 6891 §6.2.5) is still read; a datagram that does not fit is dropped.
    /// </summary>
    private const int UdpBufferLength = 4096;

    /// <summary>How long a server that rejected the OPT record is asked without one (RFC 6891 §7).</summary>
    private static readonly TimeSpan EdnsFallbackPeriod = TimeSpan.FromMinutes(10);

    private readonly NetworkStack _stack;
    private readonly IPAddress[] _servers;
    private readonly TimeSpan _timeout;
    private readonly int _attempts;
    private readonly int _port;
    private readonly TimeProvider _time;
    private readonly DnsCache _cache;
    private readonly string[] _searchDomains;
    private readonly long[] _noEdnsSince; // per server: timestamp of its last FORMERR/NOTIMP to OPT, 0 = speaks EDNS
    private long _queriesSent;
    private long _ednsFallbacks;
    private long _responsesDropped;
    private long _tcpRetries;

    /// <summary>Creates a resolver that asks <paramref name="servers"/> (in order) through <paramref name="stack"/>.</summary>
    /// <param name="stack">The stack the queries travel through (usually the tunnel's).</param>
    /// <param name="servers">The DNS servers, tried in this order; at least one.</param>
    /// <param name="options">Timeouts, retries and cache limits; null for the defaults.</param>
    /// <exception cref="ArgumentException"><paramref name="servers"/> is empty or an option is out of range.</exception>
    public DnsResolver(NetworkStack stack, IReadOnlyList<IPAddress> servers, DnsResolverOptions? options = null)
    {
        ArgumentNullException.ThrowIfNull(stack);
        ArgumentNullException.ThrowIfNull(servers);
        options ??= new DnsResolverOptions();
        if (servers.Count == 0)
        {
            throw new ArgumentException("At least one DNS server is needed.", nameof(servers));
        }

        foreach (var server in servers)
        {
            ArgumentNullException.ThrowIfNull(server, nameof(servers));
        }

        ArgumentOutOfRangeException.ThrowIfLessThanOrEqual(options.Timeout, TimeSpan.Zero, nameof(options));
        ArgumentOutOfRangeException.ThrowIfLessThan(options.Attempts, 1, nameof(options));
        ArgumentOutOfRangeException.ThrowIfNegative(options.CacheCapacity, nameof(options));
        ArgumentOutOfRangeException.ThrowIfLessThan(options.MaxCacheTtl, TimeSpan.Zero, nameof(options));
        ArgumentOutOfRangeException.ThrowIfLessThan(options.NegativeCacheTtl, TimeSpan.Zero, nameof(options));
        if (options.Port is < 1 or > 65535)
        {
            throw new ArgumentOutOfRangeException(nameof(options), "Port must be 1-65535.");
        }

        ArgumentNullException.ThrowIfNull(options.TimeProvider, nameof(options));
        ArgumentNullException.ThrowIfNull(options.SearchDomains, nameof(options));
        var searchDomains = new List<string>();
        foreach (var domain in options.SearchDomains)
        {
            var trimmed = domain?.TrimEnd('.');
            if (string.IsNullOrEmpty(trimmed) || IPAddress.TryParse(trimmed, out _) || DnsMessage.EncodeName(trimmed) is null)
            {
                throw new ArgumentException($"Search domain '{domain}' is not a valid DNS name.", nameof(options));
            }

            searchDomains.Add(trimmed.ToLowerInvariant());
        }

        _searchDomains = [.. searchDomains];
        _noEdnsSince = new long[servers.Count];
        _stack = stack;
        _servers = [.. servers];
        _timeout = options.Timeout;
        _attempts = options.Attempts;
        _port = options.Port;
        _time = options.TimeProvider;
        _cache = new DnsCache(options.CacheCapacity, options.MaxCacheTtl, options.NegativeCacheTtl, _time);
    }

    /// <summary>The DNS servers, in the order they are tried.</summary>
    public IReadOnlyList<IPAddress> Servers => _servers;

    /// <summary>The search domains single-label names are tried in, in order (lower case, no trailing dot).</summary>
    public IReadOnlyList<string> SearchDomains => _searchDomains;

    /// <summary>Queries asked again without the EDNS OPT record after a server answered it with FORMERR or NOTIMP.</summary>
    public long EdnsFallbacks => Interlocked.Read(ref _ednsFallbacks);

    /// <summary>Queries sent (UDP and TCP).</summary>
    public long QueriesSent => Interlocked.Read(ref _queriesSent);

    /// <summary>Responses dropped: malformed, from another address, with another ID or for another question.</summary>
    public long ResponsesDropped => Interlocked.Read(ref _responsesDropped);

    /// <summary>Queries asked again over TCP after a truncated UDP response.</summary>
    public long TcpRetries => Interlocked.Read(ref _tcpRetries);

    /// <summary>Lookups answered from the cache.</summary>
    public long CacheHits => _cache.Hits;

    /// <summary>
    /// Resolves <paramref name="host"/> to its addresses: A records for <see cref="AddressFamily.InterNetwork"/>, AAAA
    /// records for <see cref="AddressFamily.InterNetworkV6"/>, both (asked in parallel; IPv4 addresses first) for
    /// <see cref="AddressFamily.Unspecified"/>.
    /// </summary>
    /// <param name="host">A host name or an IP literal.</param>
    /// <param name="family">Which addresses to return.</param>
    /// <param name="cancellationToken">Cancels the lookup.</param>
    /// <returns>
    /// At least one address. An IP literal of another family than <paramref name="family"/> gives an empty array.
    /// </returns>
    /// <exception cref="ArgumentException"><paramref name="host"/> is not a valid DNS name, or <paramref name="family"/> is not one of the three above.</exception>
    /// <exception cref="SocketException">
    /// <see cref="SocketError.HostNotFound"/>: the name does not exist (NXDOMAIN). <see cref="SocketError.NoData"/>:
    /// the name exists but has no address of the asked family. <see cref="SocketError.TryAgain"/>: no server gave a
    /// usable answer in time (timeouts, SERVFAIL, REFUSED, unreachable).
    /// </exception>
    /// <exception cref="OperationCanceledException"><paramref name="cancellationToken"/> was cancelled.</exception>
    public async ValueTask<IPAddress[]> ResolveAsync(string host, AddressFamily family = AddressFamily.Unspecified, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(host);
        if (family is not (AddressFamily.Unspecified or AddressFamily.InterNetwork or AddressFamily.InterNetworkV6))
        {
            throw new ArgumentException("Family must be Unspecified, InterNetwork or InterNetworkV6.", nameof(family));
        }

        var literal = host.Length > 2 && host[0] == '[' && host[^1] == ']' ? host[1..^1] : host;
        if (IPAddress.TryParse(literal, out var address))
        {
            return family == AddressFamily.Unspecified || address.AddressFamily == family ? [address] : [];
        }

        var name = host.EndsWith('.') ? host[..^1] : host;
        if (name.Equals("localhost", StringComparison.OrdinalIgnoreCase) || name.EndsWith(".localhost", StringComparison.OrdinalIgnoreCase))
        {
            // RFC 6761 §6.3: resolvers answer localhost themselves and never send it to a server.
            return family switch
            {
                AddressFamily.InterNetwork => [IPAddress.Loopback],
                AddressFamily.InterNetworkV6 => [IPAddress.IPv6Loopback],
                _ => [IPAddress.Loopback, IPAddress.IPv6Loopback],
            };
        }

        var wire = DnsMessage.EncodeName(name)
            ?? throw new ArgumentException($"'{host}' is not a valid DNS name (ASCII labels of 1-63 characters, at most 253 in all).", nameof(host));
        if (_searchDomains.Length > 0 && name.Length == host.Length && !name.Contains('.', StringComparison.Ordinal))
        {
            // resolv.conf semantics with ndots:1: a single-label name is tried in each search domain first.
            foreach (var domain in _searchDomains)
            {
                var candidate = string.Concat(name, ".", domain);
                if (DnsMessage.EncodeName(candidate) is not { } candidateWire)
                {
                    continue; // too long with this domain
                }

                try
                {
                    return await ResolveNameAsync(candidate, candidateWire, family, cancellationToken).ConfigureAwait(false);
                }
                catch (SocketException e) when (e.SocketErrorCode is SocketError.HostNotFound or SocketError.NoData)
                {
                    // not in this domain: try the next one, then the bare name
                }
            }
        }

        return await ResolveNameAsync(name, wire, family, cancellationToken).ConfigureAwait(false);
    }

    /// <summary>Looks up one fully qualified name (no trailing dot, validated, wire form in <paramref name="wire"/>).</summary>
    private async ValueTask<IPAddress[]> ResolveNameAsync(string name, byte[] wire, AddressFamily family, CancellationToken cancellationToken)
    {
        var host = name;
        var key = name.ToLowerInvariant();
        if (family != AddressFamily.Unspecified)
        {
            var type = family == AddressFamily.InterNetwork ? DnsRecordType.A : DnsRecordType.Aaaa;
            var found = await LookupAsync(key, wire, type, cancellationToken).ConfigureAwait(false);
            return found.Length > 0 ? found : throw NoData(host);
        }

        var v4 = LookupAsync(key, wire, DnsRecordType.A, cancellationToken).AsTask();
        var v6 = LookupAsync(key, wire, DnsRecordType.Aaaa, cancellationToken).AsTask();
        try
        {
            await Task.WhenAll(v4, v6).ConfigureAwait(false);
        }
        catch (Exception) when (v4.IsCompleted && v6.IsCompleted)
        {
            // Looked at below: one family may have succeeded.
        }

        cancellationToken.ThrowIfCancellationRequested();
        foreach (var task in (Task<IPAddress[]>[])[v4, v6])
        {
            if (task.Exception?.InnerException is SocketException { SocketErrorCode: SocketError.HostNotFound } notFound)
            {
                throw notFound; // NXDOMAIN is about the name, not one type (RFC 8020 §2)
            }
        }

        if (v4.IsFaulted && v6.IsFaulted)
        {
            await v4.ConfigureAwait(false); // rethrows the IPv4 failure
        }

        IPAddress[] result = [.. v4.IsCompletedSuccessfully ? v4.Result : [], .. v6.IsCompletedSuccessfully ? v6.Result : []];
        return result.Length > 0 ? result : throw NoData(host);
    }

    private async ValueTask<IPAddress[]> LookupAsync(string key, byte[] name, DnsRecordType type, CancellationToken cancellationToken)
    {
        if (_cache.TryGet(key, type, out var cached))
        {
            return cached ?? throw HostNotFound(key);
        }

        for (var attempt = 0; attempt < _attempts; attempt++)
        {
            for (var server = 0; server < _servers.Length; server++)
            {
                var response = await QueryAsync(server, name, type, cancellationToken).ConfigureAwait(false);
                switch (response?.ResponseCode)
                {
                    case DnsMessage.NoError:
                        _cache.Add(key, type, response.Value.Addresses, response.Value.MinTtl);
                        return [.. response.Value.Addresses];
                    case DnsMessage.NameError:
                        _cache.AddNegative(key, type);
                        throw HostNotFound(key);
                    default:
                        break; // no answer, SERVFAIL (RFC 1035 §4.1.1 RCODE 2), REFUSED, ...: next server
                }
            }
        }

        throw new SocketException((int)SocketError.TryAgain, $"No DNS server answered for '{key}' ({_servers.Length} server(s), {_attempts} attempt(s)).");
    }

    /// <summary>
    /// One query to server number <paramref name="index"/>, with an OPT record unless the server recently rejected
    /// one; asked again without it when the server answers FORMERR or NOTIMP (RFC 6891 §7). Null when the server gave
    /// no usable answer in time.
    /// </summary>
    private async ValueTask<DnsResponse?> QueryAsync(int index, byte[] name, DnsRecordType type, CancellationToken cancellationToken)
    {
        var since = Volatile.Read(ref _noEdnsSince[index]);
        var edns = since == 0 || _time.GetElapsedTime(since) >= EdnsFallbackPeriod;
        var response = await QueryAsync(_servers[index], name, type, edns, cancellationToken).ConfigureAwait(false);
        if (edns && response is { Status: DnsParseStatus.Ok, ResponseCode: DnsMessage.FormatError or DnsMessage.NotImplemented })
        {
            Volatile.Write(ref _noEdnsSince[index], Math.Max(1, _time.GetTimestamp()));
            Interlocked.Increment(ref _ednsFallbacks);
            response = await QueryAsync(_servers[index], name, type, edns: false, cancellationToken).ConfigureAwait(false);
        }

        return response;
    }

    /// <summary>One query to one server: UDP, then TCP if truncated. Null when the server gave no usable answer in time.</summary>
    private async ValueTask<DnsResponse?> QueryAsync(IPAddress server, byte[] name, DnsRecordType type, bool edns, CancellationToken cancellationToken)
    {
        var id = (ushort)RandomNumberGenerator.GetInt32(0x10000);
        var query = DnsMessage.BuildQuery(id, name, type, edns);
        try
        {
            DnsResponse response;
            using (var timer = new CancellationTokenSource(_timeout, _time))
            using (var linked = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken, timer.Token))
            {
                response = await QueryUdpAsync(server, query, id, name, type, linked.Token).ConfigureAwait(false);
            }

            if (response.Status != DnsParseStatus.Truncated)
            {
                return response;
            }

            Interlocked.Increment(ref _tcpRetries);
            using (var timer = new CancellationTokenSource(_timeout, _time))
            using (var linked = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken, timer.Token))
            {
                return await QueryTcpAsync(server, query, id, name, type, linked.Token).ConfigureAwait(false);
            }
        }
        catch (OperationCanceledException) when (!cancellationToken.IsCancellationRequested)
        {
            return null; // this try timed out
        }
        catch (SocketException)
        {
            return null; // ICMP unreachable, connection refused or reset
        }
        catch (IOException)
        {
            return null; // TCP stream ended early
        }
    }

    private async ValueTask<DnsResponse> QueryUdpAsync(IPAddress server, byte[] query, ushort id, byte[] name, DnsRecordType type, CancellationToken cancellationToken)
    {
        var any = server.AddressFamily == AddressFamily.InterNetworkV6 ? IPAddress.IPv6Any : IPAddress.Any;
        using var socket = _stack.BindUdp(new IPEndPoint(any, 0), receiveQueueLength: 16);
        // Connected: the stack keeps datagrams from other sources away, and an ICMP port unreachable from the server
        // fails the receive at once (ConnectionRefused) instead of waiting for the timeout.
        socket.Connect(new IPEndPoint(server, _port));
        Interlocked.Increment(ref _queriesSent);
        await socket.SendAsync(query, cancellationToken).ConfigureAwait(false);
        var buffer = ArrayPool<byte>.Shared.Rent(UdpBufferLength);
        try
        {
            while (true)
            {
                var received = await socket.ReceiveFromAsync(buffer.AsMemory(0, UdpBufferLength), cancellationToken).ConfigureAwait(false);
                if (!received.RemoteAddress.ToIPAddress().Equals(server) || received.RemotePort != _port || received.Truncated)
                {
                    Interlocked.Increment(ref _responsesDropped);
                    continue;
                }

                var response = DnsMessage.ParseResponse(buffer.AsSpan(0, received.Length), id, name, type);
                if (response.Status is DnsParseStatus.Ok or DnsParseStatus.Truncated)
                {
                    return response;
                }

                Interlocked.Increment(ref _responsesDropped);
            }
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(buffer);
        }
    }

    /// <summary>The same query over TCP, each message behind a two-octet length (RFC 1035 §4.2.2, RFC 7766 §8).</summary>
    private async ValueTask<DnsResponse?> QueryTcpAsync(IPAddress server, byte[] query, ushort id, byte[] name, DnsRecordType type, CancellationToken cancellationToken)
    {
        var stream = await _stack.ConnectTcpAsync(new IPEndPoint(server, _port), null, cancellationToken).ConfigureAwait(false);
        await using (stream.ConfigureAwait(false))
        {
            var framed = new byte[2 + query.Length];
            BinaryPrimitives.WriteUInt16BigEndian(framed, (ushort)query.Length);
            query.CopyTo(framed, 2);
            Interlocked.Increment(ref _queriesSent);
            await stream.WriteAsync(framed, cancellationToken).ConfigureAwait(false);
            var lengthBytes = new byte[2];
            await stream.ReadExactlyAsync(lengthBytes, cancellationToken).ConfigureAwait(false);
            var length = BinaryPrimitives.ReadUInt16BigEndian(lengthBytes);
            var message = new byte[length]; // at most 64 KiB, bounded by the framing
            await stream.ReadExactlyAsync(message, cancellationToken).ConfigureAwait(false);
            var response = DnsMessage.ParseResponse(message, id, name, type);
            if (response.Status == DnsParseStatus.Ok)
            {
                return response;
            }

            Interlocked.Increment(ref _responsesDropped);
            return null;
        }
    }

    private static SocketException HostNotFound(string name) =>
        new((int)SocketError.HostNotFound, $"DNS name '{name}' does not exist (NXDOMAIN).");

    private static SocketException NoData(string name) =>
        new((int)SocketError.NoData, $"DNS name '{name}' has no address of the requested family.");
}
