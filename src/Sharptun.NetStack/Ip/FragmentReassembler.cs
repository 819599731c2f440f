using System.Buffers;
using Sharptun.Transport;

namespace Sharptun.NetStack.Ip;

/// <summary>Identifies one datagram being reassembled: RFC 791 §3.2 (source, destination, protocol, identification) for
/// IPv4, RFC 8200 §4.5 (source, destination, identification) for IPv6 (Protocol is 0).</summary>
internal readonly record struct FragmentKey(IpAddr Source, IpAddr Destination, uint Identification, byte Protocol);

/// <summary>Called for a reassembly that timed out after its first fragment (offset 0) arrived.</summary>
internal delegate void ReassemblyTimedOut(in FragmentKey key, ReadOnlySpan<byte> header, ReadOnlySpan<byte> firstFragment);

/// <summary>Outcome of offering a fragment to the reassembler.</summary>
internal enum FragmentResult
{
    /// <summary>Stored; the datagram is not complete yet.</summary>
    Pending,

    /// <summary>The datagram is complete; see the out parameters.</summary>
    Complete,

    /// <summary>The fragment was dropped (duplicate, malformed, over a limit, or its datagram was discarded).</summary>
    Dropped,
}

/// <summary>
/// Reassembles IPv4 (RFC 791 §3.2, RFC 815) and IPv6 (RFC 8200 §4.5) fragments within fixed limits: at most
/// <c>maxDatagrams</c> reassemblies, at most <c>maxBytes</c> of stored fragment data (also charged to the stack's
/// <see cref="ByteBudget"/>), at most <see cref="MaxFragmentsPerDatagram"/> fragments each, and a timeout after which
/// the partial datagram's memory is freed.
/// </summary>
/// <remarks>
/// Overlap policy: an exact duplicate fragment is ignored; any other overlap discards the whole datagram. RFC 5722
/// requires this for IPv6; for IPv4 it is stricter than RFC 791 (which lets later data overwrite) and matches Linux
/// since 2018 (overlapping IPv4 fragments are a classic evasion and resource attack). When a new datagram arrives and
/// a limit is reached, the oldest reassembly is evicted (as Linux does), so stale garbage cannot starve new traffic.
/// Fragments are stored individually (sorted by offset) in pooled arrays; the datagram is copied out only once, when
/// complete. Not thread-safe: used under the stack's Gate.
/// </remarks>
internal sealed class FragmentReassembler
{
    public const int MaxFragmentsPerDatagram = 64;
    private const int MaxDatagramPayload = 65535;

    private readonly ByteBudget _budget;
    private readonly int _maxDatagrams;
    private readonly long _maxBytes;
    private readonly TimeSpan _timeout;
    private readonly Dictionary<FragmentKey, Reassembly> _table = [];
    private readonly List<Reassembly> _byAge = [];   // insertion order == deadline order (constant timeout)
    private long _bytes;

    public FragmentReassembler(ByteBudget budget, int maxDatagrams, long maxBytes, TimeSpan timeout)
    {
        _budget = budget;
        _maxDatagrams = maxDatagrams;
        _maxBytes = maxBytes;
        _timeout = timeout;
    }

    public int Count => _table.Count;

    public long BytesInUse => _bytes;

    public long Timeouts { get; private set; }

    public long Overlaps { get; private set; }

    public long LimitDrops { get; private set; }

    public long Malformed { get; private set; }

    /// <summary>Earliest reassembly deadline, or <see cref="TimeSpan.MaxValue"/>.</summary>
    public TimeSpan NextDeadline => _byAge.Count == 0 ? TimeSpan.MaxValue : _byAge[0].Deadline;

    /// <summary>
    /// Offers one fragment. <paramref name="header"/> is the IP header to put in front of the reassembled data (taken
    /// from the fragment with offset 0; ignored for others). On <see cref="FragmentResult.Complete"/>,
    /// <paramref name="datagram"/> is a pooled array holding header + data in its first <paramref name="length"/> bytes
    /// and <paramref name="headerLength"/> is the header's length; the caller must pass it to <see cref="ReturnBuffer"/>.
    /// </summary>
    public FragmentResult Add(
        in FragmentKey key, int offset, bool moreFragments, ReadOnlySpan<byte> data, ReadOnlySpan<byte> header, TimeSpan now,
        out byte[]? datagram, out int length, out int headerLength)
    {
        datagram = null;
        length = 0;
        headerLength = 0;
        var end = offset + data.Length;
        // Every fragment but the last carries a multiple of 8 bytes (RFC 791 §3.2, RFC 8200 §4.5).
        if (data.Length == 0 && moreFragments || moreFragments && data.Length % 8 != 0 || end > MaxDatagramPayload)
        {
            Malformed++;
            return FragmentResult.Dropped;
        }

        if (!_table.TryGetValue(key, out var r))
        {
            while (_table.Count >= _maxDatagrams && _byAge.Count > 0)
            {
                LimitDrops++;
                Discard(_byAge[0]);
            }

            r = new Reassembly(key, now + _timeout);
            _table.Add(key, r);
            _byAge.Add(r);
        }

        // Overlap and duplicate detection against stored fragments (sorted by offset).
        var insertAt = r.Fragments.Count;
        for (var i = 0; i < r.Fragments.Count; i++)
        {
            var f = r.Fragments[i];
            if (f.Offset == offset && f.Length == data.Length)
            {
                return FragmentResult.Dropped;   // exact duplicate: ignore, keep the datagram
            }

            if (offset < f.Offset + f.Length && f.Offset < end)
            {
                Overlaps++;
                Discard(r);   // RFC 5722 §4: discard the whole datagram, silently
                return FragmentResult.Dropped;
            }

            if (f.Offset > offset && insertAt == r.Fragments.Count)
            {
                insertAt = i;
            }
        }

        if (!moreFragments)
        {
            if (r.TotalLength >= 0 && r.TotalLength != end || r.MaxEnd > end)
            {
                Malformed++;
                Discard(r);
                return FragmentResult.Dropped;
            }

            r.TotalLength = end;
        }
        else if (r.TotalLength >= 0 && end > r.TotalLength)
        {
            Malformed++;
            Discard(r);
            return FragmentResult.Dropped;
        }

        if (r.Fragments.Count >= MaxFragmentsPerDatagram)
        {
            LimitDrops++;
            Discard(r);
            return FragmentResult.Dropped;
        }

        // Charge the pooled array's real size (the pool rounds up), so the limits bound actual memory.
        var buffer = ArrayPool<byte>.Shared.Rent(Math.Max(data.Length, 1));
        var charge = buffer.Length + (offset == 0 ? header.Length : 0);
        while (_bytes + charge > _maxBytes || !_budget.TryReserve(charge))
        {
            var victim = _byAge[0];
            LimitDrops++;
            Discard(victim);
            if (victim == r)
            {
                ArrayPool<byte>.Shared.Return(buffer);
                return FragmentResult.Dropped;
            }
        }

        _bytes += charge;
        r.Charged += charge;
        data.CopyTo(buffer);
        r.Fragments.Insert(insertAt, new Fragment(offset, data.Length, buffer));
        r.MaxEnd = Math.Max(r.MaxEnd, end);
        if (offset == 0)
        {
            r.Header = header.ToArray();
        }

        if (r.TotalLength < 0 || r.Header is null || !r.IsContiguous())
        {
            return FragmentResult.Pending;
        }

        headerLength = r.Header.Length;
        length = headerLength + r.TotalLength;
        datagram = ArrayPool<byte>.Shared.Rent(length);
        r.Header.CopyTo(datagram, 0);
        foreach (var f in r.Fragments)
        {
            Buffer.BlockCopy(f.Buffer, 0, datagram, headerLength + f.Offset, f.Length);
        }

        Discard(r);
        return FragmentResult.Complete;
    }

    public static void ReturnBuffer(byte[] datagram) => ArrayPool<byte>.Shared.Return(datagram);

    /// <summary>
    /// Frees every reassembly whose deadline has passed (RFC 791 §3.2 timer, RFC 8200 §4.5 60 s). For those whose first
    /// fragment had arrived, <paramref name="onTimeout"/> is called first, so the stack can send ICMP Time Exceeded
    /// (RFC 792, RFC 1122 §3.3.2, RFC 8200 §4.5).
    /// </summary>
    public void Expire(TimeSpan now, ReassemblyTimedOut? onTimeout = null)
    {
        while (_byAge.Count > 0 && _byAge[0].Deadline <= now)
        {
            var r = _byAge[0];
            Timeouts++;
            if (onTimeout is not null && r.Header is not null && r.Fragments.Count > 0 && r.Fragments[0].Offset == 0)
            {
                var first = r.Fragments[0];
                onTimeout(r.Key, r.Header, first.Buffer.AsSpan(0, first.Length));
            }

            Discard(r);
        }
    }

    private void Discard(Reassembly r)
    {
        _table.Remove(r.Key);
        _byAge.Remove(r);
        foreach (var f in r.Fragments)
        {
            ArrayPool<byte>.Shared.Return(f.Buffer);
        }

        r.Fragments.Clear();
        _bytes -= r.Charged;
        _budget.Release(r.Charged);
        r.Charged = 0;
    }

    private readonly record struct Fragment(int Offset, int Length, byte[] Buffer);

    private sealed class Reassembly(FragmentKey key, TimeSpan deadline)
    {
        public FragmentKey Key { get; } = key;

        public TimeSpan Deadline { get; } = deadline;

        public List<Fragment> Fragments { get; } = [];

        public byte[]? Header { get; set; }

        public int TotalLength { get; set; } = -1;

        public int MaxEnd { get; set; }

        public long Charged { get; set; }

        public bool IsContiguous()
        {
            var next = 0;
            foreach (var f in Fragments)
            {
                if (f.Offset != next)
                {
                    return false;
                }

                next += f.Length;
            }

            return next == TotalLength;
        }
    }
}
