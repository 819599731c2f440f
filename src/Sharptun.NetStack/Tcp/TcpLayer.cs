using System.Net;
using System.Net.Sockets;
using System.Runtime.InteropServices;
using System.Security.Cryptography;
using Sharptun.NetStack.Wire;
using Sharptun.Transport;

namespace Sharptun.NetStack.Tcp;

/// <summary>Chooses the source address for a connection to <paramref name="destination"/>.</summary>
internal delegate bool TcpSourceSelector(in IpAddr destination, out IpAddr source);

/// <summary>Counters for tests and diagnostics (mutated under the Gate).</summary>
internal sealed class TcpLayerStats
{
    public long SegmentsReceived;
    public long SegmentsSent;
    public long BadSegments;
    public long ResetsSent;
    public long ChallengeAcksSent;
    /// <summary>Challenge and TIME-WAIT ACKs not sent, for either limit (per tuple or global).</summary>
    public long ChallengeAcksSuppressed;
    /// <summary>The part of <see cref="ChallengeAcksSuppressed"/> due to the optional global cap.</summary>
    public long ChallengeAcksGlobalSuppressed;
    public long PawsRejected;
    public long SynsDropped;
    public long SynsRefused;
    public long TimeWaitEvictions;
    public long TimeWaitRestarts;
    public long OutOfWindowAcksSuppressed;
    public long KeepAlivesSent;
}

/// <summary>
/// The TCP layer: demultiplexes segments to connections (by 4-tuple), listeners and the TIME-WAIT table,
/// answers closed ports with RST (RFC 9293 §3.10.7.1), runs connection timers from a deadline queue and
/// builds outgoing segments in one scratch buffer (no allocation per segment).
/// </summary>
/// <remarks>
/// Threading: every method runs with <see cref="IStackContext.Gate"/> held (the stack calls OnSegment/Poll
/// under it; the socket API takes it). Awaiters are completed under the Gate but always continue
/// asynchronously, so user code never runs inside the lock.
/// </remarks>
internal sealed class TcpLayer
{
    private const int EphemeralFirst = 49152;
    private const int EphemeralCount = 65536 - EphemeralFirst;

    private readonly IStackContext _context;
    private readonly TcpOptions _options;
    private readonly Dictionary<FourTuple, TcpConnection> _connections = new();
    private readonly Dictionary<(IpAddr Address, ushort Port), TcpStreamListener> _listeners = new();
    private readonly Dictionary<FourTuple, TimeWaitEntry> _timeWait = new();
    private readonly PriorityQueue<(FourTuple Tuple, long Generation), TimeSpan> _timeWaitQueue = new();
    private readonly PriorityQueue<TcpConnection, TimeSpan> _timers = new();
    private readonly byte[] _segment = new byte[65536 + TcpPacket.MaxLength];
    private readonly byte[] _isnKey = new byte[32];
    private long _timeWaitGeneration;
    private readonly Random? _challengeTestRandom; // seeded stand-in for the CSPRNG (deterministic simulations)
    private long _challengeAllowance; // global challenge ACKs left in the current one-second interval
    private TimeSpan _challengeWindowStart;
    private bool _challengeWindowOpen;
    private int _nextEphemeral;

    public TcpLayer(IStackContext context, TcpOptions options)
        : this(context, options, deterministicSeed: null)
    {
    }

    /// <summary>
    /// Test hook: a non-null <paramref name="deterministicSeed"/> derives the ISN key, ephemeral ports and timestamp
    /// offsets from a seeded PRNG so a simulated run replays exactly. Production code passes null (CSPRNG).
    /// </summary>
    internal TcpLayer(IStackContext context, TcpOptions options, int? deterministicSeed)
    {
        ArgumentNullException.ThrowIfNull(context);
        ArgumentNullException.ThrowIfNull(options);
        options.Validate();
        _context = context;
        _options = options;
        if (deterministicSeed is { } seed)
        {
            _testRandom = new Random(seed);
            _testRandom.NextBytes(_isnKey);
            _nextEphemeral = _testRandom.Next(EphemeralCount);
            _challengeTestRandom = new Random(seed ^ 0x5961); // its own stream: draws here never shift ports or offsets
        }
        else
        {
            RandomNumberGenerator.Fill(_isnKey); // RFC 6528 §3: secret key
            _nextEphemeral = RandomNumberGenerator.GetInt32(EphemeralCount);
        }
    }

    public Lock Gate => _context.Gate;
    public TimeSpan Now => _context.Now;
    public TcpOptions Options => _options;
    public TcpLayerStats Stats { get; } = new();

    /// <summary>The arrays behind every connection's send and receive rings, held only while a ring holds bytes.</summary>
    internal RingPool Rings { get; } = new();

    /// <summary>Connections whose receive windows share <see cref="TcpOptions.ReceiveWindowBudget"/> (those with rings; under Gate).</summary>
    internal int WindowHolders { get; private set; }

    /// <summary>
    /// What one connection may have buffered plus offered (its share of <see cref="TcpOptions.ReceiveWindowBudget"/>):
    /// unlimited with no budget, else budget / connections, at least 4 KiB.
    /// </summary>
    internal long ReceiveWindowShare => ShareAmong(WindowHolders);

    /// <summary>The share a connection being opened offers in its SYN (as if it already held one).</summary>
    internal long NewConnectionWindowShare => ShareAmong(WindowHolders + 1);

    /// <summary>
    /// What one connection may hold in its send buffer (its share of <see cref="TcpOptions.SendBufferBudget"/>, among
    /// the same connections): unlimited with no budget, else budget / connections, at least 4 KiB.
    /// </summary>
    internal long SendBufferShare => ShareAmong(WindowHolders, _options.SendBufferBudget);

    private long ShareAmong(int holders) => ShareAmong(holders, _options.ReceiveWindowBudget);

    private static long ShareAmong(int holders, long budget) => budget <= 0
        ? long.MaxValue
        : Math.Max(4096, budget / Math.Max(1, holders));

    internal void AddWindowHolder() => WindowHolders++;

    internal void RemoveWindowHolder() => WindowHolders--;

    /// <summary>Optional source-address selection for ConnectAsync without a local endpoint.</summary>
    public TcpSourceSelector? SelectSource { get; set; }

    public int ConnectionCount => _connections.Count;
    public int TimeWaitCount => _timeWait.Count;

    /// <summary>Entries in the TIME-WAIT timer queue (tests: bounded by the number of TIME-WAIT tuples).</summary>
    internal int TimeWaitQueueLength => _timeWaitQueue.Count;

    internal Span<byte> SegmentBuffer => _segment;

    /// <summary>Next time <see cref="Poll"/> has work; TimeSpan.MaxValue if none.</summary>
    public TimeSpan NextDeadline
    {
        get
        {
            var t = TimeSpan.MaxValue;
            while (_timers.TryPeek(out var c, out var at))
            {
                if (c.Removed || c.ScheduledAt != at)
                {
                    _timers.Dequeue(); // stale entry
                    continue;
                }

                t = at;
                break;
            }

            if (TryPeekTimeWait(out _, out var expires) && expires < t)
            {
                t = expires;
            }

            return t;
        }
    }

    internal int MssForMtu(bool v4) =>
        Math.Max(_context.Mtu - (v4 ? TcpConstants.Ipv4HeaderLength : TcpConstants.Ipv6HeaderLength) - TcpPacket.MinLength, 64);

    // ------------------------------------------------------------------ inbound

    /// <summary>Inbound segment (called under Gate). Verifies the checksum; never throws for bad input.</summary>
    public void OnSegment(in IpAddr source, in IpAddr destination, ReadOnlySpan<byte> segment)
    {
        var now = _context.Now;
        if (!TcpRepr.TryParse(segment, source, destination, verifyChecksum: true, out var seg, out int payloadOffset))
        {
            Stats.BadSegments++;
            return;
        }

        Stats.SegmentsReceived++;
        var payload = segment[payloadOffset..];
        var tuple = new FourTuple(destination, seg.DestinationPort, source, seg.SourcePort);
        if (_connections.TryGetValue(tuple, out var conn))
        {
            conn.OnSegment(now, seg, payload);
            return;
        }

        if (_timeWait.TryGetValue(tuple, out var tw))
        {
            if (OnTimeWaitSegment(now, tuple, tw, seg, payload.Length))
            {
                return;
            }
        }

        if (seg.Has(TcpFlags.Rst))
        {
            return; // RFC 9293 §3.10.7.1: an incoming RST to a closed port is discarded
        }

        if (seg.Has(TcpFlags.Syn) && !seg.Has(TcpFlags.Ack) && !source.IsMulticastOrBroadcast && !destination.IsMulticastOrBroadcast
            && FindListener(destination, seg.DestinationPort) is { } listener)
        {
            if (listener.Admit is { } admit && !admit(new IPEndPoint(source.ToIPAddress(), seg.SourcePort), new IPEndPoint(destination.ToIPAddress(), seg.DestinationPort)))
            {
                // Refused like a closed port (CLOSED §3.10.7.1): <SEQ=0><ACK=SEG.SEQ+SEG.LEN><CTL=RST,ACK>
                Stats.SynsRefused++;
                SendReset(tuple, new SeqNumber(0), seg.Seq + seg.SegmentLength(payload.Length), TcpFlags.Rst | TcpFlags.Ack);
                return;
            }

            AcceptSyn(now, listener, tuple, seg);
            return;
        }

        if (seg.Has(TcpFlags.Ack))
        {
            // LISTEN §3.10.7.2 "any acknowledgment is bad": <SEQ=SEG.ACK><CTL=RST>
            SendReset(tuple, seg.Ack, default, TcpFlags.Rst);
        }
        else if (!seg.Has(TcpFlags.Syn) || FindListener(destination, seg.DestinationPort) is null)
        {
            // CLOSED §3.10.7.1: <SEQ=0><ACK=SEG.SEQ+SEG.LEN><CTL=RST,ACK>
            SendReset(tuple, new SeqNumber(0), seg.Seq + seg.SegmentLength(payload.Length), TcpFlags.Rst | TcpFlags.Ack);
        }
    }

    private TcpStreamListener? FindListener(in IpAddr address, ushort port)
    {
        if (_listeners.TryGetValue((address, port), out var l))
        {
            return l;
        }

        if (_listeners.TryGetValue((address.IsV4 ? IpAddr.AnyV4 : IpAddr.AnyV6, port), out l) && _context.IsLocalAddress(address))
        {
            return l;
        }

        if (_listeners.TryGetValue((IpAddr.AnyV6, port), out l) && _context.IsLocalAddress(address))
        {
            return l; // an IPv6 "any" listener is dual-stack
        }

        // wildcard listener (port 0): every address and port the stack accepts (promiscuous mode)
        if (_listeners.TryGetValue((IpAddr.AnyV6, 0), out l) && _context.IsLocalAddress(address))
        {
            return l;
        }

        return null;
    }

    private void AcceptSyn(TimeSpan now, TcpStreamListener listener, FourTuple tuple, in TcpRepr syn)
    {
        if (!listener.CanAcceptSyn)
        {
            Stats.SynsDropped++; // SYN queue or accept queue full: drop, the peer retransmits (backpressure)
            return;
        }

        var conn = new TcpConnection(this, _options, tuple, GenerateIss(tuple, now), RandomTsOffset()) { Listener = listener };
        conn.NoDelay = listener.NoDelay;
        _connections.Add(tuple, conn);
        listener.OnSynReceived();
        conn.OpenPassive(now, syn);
    }

    /// <summary>
    /// TIME-WAIT segment handling (RFC 9293 §3.10.7.4, RFC 1337, RFC 6191, RFC 7323 §5.3, RFC 5961 §7). True when
    /// consumed. RCV.WND is 0 here (the peer's FIN closed its side; our TIME-WAIT ACKs advertise 0), so the only
    /// acceptable segments are a bare ACK at RCV.NXT (consumed silently) and the retransmission of the peer's FIN,
    /// the one segment TIME-WAIT exists for. Only that FIN restarts 2MSL, in place (no new timer entry); every ACK
    /// sent from here, for that FIN or for an unacceptable segment, is throttled like a challenge ACK
    /// (<see cref="TryTakeChallengeAck"/>: at most one per tuple per 500 ms, as Linux's TIME-WAIT
    /// tw_last_oow_ack_time, then the optional global cap), so a flood at a TIME-WAIT tuple costs no memory, draws at
    /// most two ACKs a second and takes nothing from other tuples.
    /// </summary>
    private bool OnTimeWaitSegment(TimeSpan now, FourTuple tuple, in TimeWaitEntry tw, in TcpRepr seg, int payloadLength)
    {
        if (seg.Has(TcpFlags.Rst))
        {
            // §3.10.7.4 first: an unacceptable RST is dropped without reply. An acceptable one (SEG.SEQ = RCV.NXT,
            // RFC 5961 §3.2) would delete the TCB (second check); RFC 1337 §3 ignores it instead (no TIME-WAIT
            // assassination). Either way: no ACK, no 2MSL restart.
            return true;
        }

        bool syn = seg.Has(TcpFlags.Syn);
        if (syn && !seg.Has(TcpFlags.Ack))
        {
            // RFC 6191 / RFC 9293 §3.10.7.4 note: a new SYN with a higher sequence number (or newer timestamp) may reopen.
            bool newer = seg.Seq > tw.RcvNxt || (tw.TsEnabled && seg.HasTimestamp && unchecked((int)(seg.TsVal - tw.TsRecent)) > 0);
            if (newer && FindListener(tuple.LocalAddress, tuple.LocalPort) is not null)
            {
                RemoveTimeWait(tuple);
                return false;
            }
        }

        // RFC 7323 §5.3 PAWS: a segment older than TS.Recent is unacceptable (answered like any other, below).
        bool pawsOk = !(tw.TsEnabled && seg.HasTimestamp && unchecked((int)(seg.TsVal - tw.TsRecent)) < 0);
        if (!pawsOk)
        {
            Stats.PawsRejected++;
        }

        // §3.10.7.4 first (RCV.WND = 0): a bare ACK at RCV.NXT is acceptable; fifth: it needs SEG.ACK =< SND.NXT.
        // Nothing is left to do with it (never ACK an ACK).
        bool ackOk = seg.Has(TcpFlags.Ack) && seg.Ack <= tw.SndNxt;
        if (pawsOk && ackOk && !syn && !seg.Has(TcpFlags.Fin) && payloadLength == 0 && seg.Seq == tw.RcvNxt)
        {
            return true;
        }

        // The retransmitted FIN: it ends exactly where the peer's FIN did (its FIN occupies RCV.NXT - 1), after any
        // retransmitted data. Eighth: "TIME-WAIT: remain, restart the 2 MSL time-wait timeout", updated in place.
        if (pawsOk && ackOk && !syn && seg.Has(TcpFlags.Fin) && seg.Seq + (payloadLength + 1) == tw.RcvNxt)
        {
            ref var entry = ref CollectionsMarshal.GetValueRefOrNullRef(_timeWait, tuple);
            entry = entry with { Expires = now + _options.TimeWaitDuration };
            Stats.TimeWaitRestarts++;
        }

        // That FIN is ACKed; so is everything else, which is unacceptable (old or future sequence numbers, data, SYN,
        // PAWS-rejected, SEG.ACK > SND.NXT, no ACK bit): §3.10.7.4 first "an acknowledgment should be sent in reply".
        // Both are throttled per tuple (and by the optional global cap), and neither adds a timer entry.
        ref var limited = ref CollectionsMarshal.GetValueRefOrNullRef(_timeWait, tuple);
        var ackAllowedAt = limited.AckAllowedAt;
        bool send = TryTakeChallengeAck(now, ref ackAllowedAt);
        limited = limited with { AckAllowedAt = ackAllowedAt };
        if (!send)
        {
            return true;
        }

        var repr = new TcpRepr
        {
            SourcePort = tuple.LocalPort,
            DestinationPort = tuple.RemotePort,
            Seq = tw.SndNxt,
            Ack = tw.RcvNxt,
            Flags = TcpFlags.Ack,
            Window = 0,
        };
        if (tw.TsEnabled)
        {
            repr = repr with { HasTimestamp = true, TsVal = unchecked((uint)(long)now.TotalMilliseconds + tw.TsOffset), TsEcr = tw.TsRecent };
        }

        TransmitRaw(tuple, repr, 0);
        return true;
    }

    /// <summary>
    /// The earliest-expiring TIME-WAIT entry. The queue holds one entry per TIME-WAIT tuple whose priority is never
    /// later than the tuple's real expiry (a 2MSL restart only moves the expiry later and edits the table in place),
    /// so fixing up the head — dropping entries of removed tuples, re-queueing restarted ones at their real expiry —
    /// yields the true minimum (a lazy increase-key).
    /// </summary>
    private bool TryPeekTimeWait(out FourTuple tuple, out TimeSpan expires)
    {
        while (_timeWaitQueue.TryPeek(out var head, out var at))
        {
            if (!_timeWait.TryGetValue(head.Tuple, out var e) || e.Generation != head.Generation)
            {
                _timeWaitQueue.Dequeue(); // the tuple left TIME-WAIT early (reopened by a SYN)
                continue;
            }

            if (e.Expires != at)
            {
                _timeWaitQueue.DequeueEnqueue(head, e.Expires); // 2MSL was restarted
                continue;
            }

            tuple = head.Tuple;
            expires = at;
            return true;
        }

        tuple = default;
        expires = default;
        return false;
    }

    /// <summary>
    /// Removes a tuple from TIME-WAIT before it expired. Its queue entry goes stale; the queue is rebuilt when stale
    /// entries outnumber live ones, so it stays within 2 × <see cref="TimeWaitCount"/> + 64 entries.
    /// </summary>
    private void RemoveTimeWait(in FourTuple tuple)
    {
        _timeWait.Remove(tuple);
        if (_timeWaitQueue.Count > (2 * _timeWait.Count) + 64)
        {
            _timeWaitQueue.Clear();
            foreach (var (t, e) in _timeWait)
            {
                _timeWaitQueue.Enqueue((t, e.Generation), e.Expires);
            }
        }
    }

    // ------------------------------------------------------------------ timers

    /// <summary>Runs due timers (called under Gate).</summary>
    public void Poll(TimeSpan now)
    {
        while (_timers.TryPeek(out var c, out var at) && at <= now)
        {
            _timers.Dequeue();
            if (c.Removed || c.ScheduledAt != at)
            {
                continue;
            }

            c.ScheduledAt = TimeSpan.MaxValue;
            c.OnTimer(now);
            Schedule(c);
        }

        while (TryPeekTimeWait(out var tuple, out var expires) && expires <= now)
        {
            _timeWaitQueue.Dequeue();
            _timeWait.Remove(tuple);
        }
    }

    /// <summary>A connection whose segment met a full outbound queue (under Gate): retried by <see cref="RetryBlocked"/>.</summary>
    internal void NoteBlocked(TcpConnection c)
    {
        if (!c.BlockedListed)
        {
            c.BlockedListed = true;
            _blocked.Add(c);
        }
    }

    /// <summary>
    /// The outbound queue has room again (under Gate): the connections it held back send now, in the order they were
    /// blocked, until the queue is full again (those then wait for the next call, or their 1 ms retry timer). Without
    /// this a connection resumed only at its retry timer, so a full 64-packet queue cost a millisecond or more each time.
    /// </summary>
    internal void RetryBlocked(TimeSpan now)
    {
        if (_blocked.Count == 0)
        {
            return;
        }

        (_blocked, _retrying) = (_retrying, _blocked);
        foreach (var c in _retrying)
        {
            c.BlockedListed = false;
        }

        for (var i = 0; i < _retrying.Count; i++)
        {
            var c = _retrying[i];
            if (c.Removed)
            {
                continue;
            }

            if (_context.OutboundFull)
            {
                NoteBlocked(c); // still waits: keep its place for the next call
                continue;
            }

            c.RetryNow(now);
            Schedule(c);
        }

        _retrying.Clear();
    }

    /// <summary>True between <see cref="BeginBatch"/> and <see cref="EndBatch"/> (under Gate).</summary>
    internal bool Batching { get; private set; }

    /// <summary>
    /// A batch of inbound segments begins (under Gate): until <see cref="EndBatch"/>, connections that receive in-order
    /// segments are answered once at the end (one ACK, one reader wake-up) instead of after every segment.
    /// </summary>
    internal void BeginBatch() => Batching = true;

    /// <summary>The batch ended (under Gate): every connection it touched sends its ACK and wakes its reader once.</summary>
    internal void EndBatch(TimeSpan now)
    {
        Batching = false;
        for (var i = 0; i < _deferred.Count; i++)
        {
            var c = _deferred[i];
            c.Deferred = false;
            c.FlushDeferred(now);
        }

        _deferred.Clear();
    }

    /// <summary>A connection to answer at the end of the batch (under Gate).</summary>
    internal void Defer(TcpConnection c)
    {
        if (!c.Deferred)
        {
            c.Deferred = true;
            _deferred.Add(c);
        }
    }

    private readonly List<TcpConnection> _deferred = [];
    private List<TcpConnection> _blocked = [];
    private List<TcpConnection> _retrying = [];

    /// <summary>Re-arms a connection's entry in the deadline queue after its timers changed.</summary>
    internal void Schedule(TcpConnection c)
    {
        if (c.Removed)
        {
            return;
        }

        var at = c.PollAt;
        if (at < c.ScheduledAt)
        {
            c.ScheduledAt = at;
            _timers.Enqueue(c, at);
            _context.Wake();
        }
    }

    // ------------------------------------------------------------------ connections

    /// <summary>Active open; completes when established, or throws SocketException (ConnectionRefused, TimedOut, ...).</summary>
    public ValueTask<TcpStream> ConnectAsync(IPEndPoint remote, IPEndPoint? local, CancellationToken ct)
    {
        var conn = Connect(remote, local);
        return CompleteConnectAsync(conn, ct);
    }

    /// <summary>Starts an active open and returns the connection in SYN-SENT (sans-I/O entry point).</summary>
    internal TcpConnection Connect(IPEndPoint remote, IPEndPoint? local)
    {
        ArgumentNullException.ThrowIfNull(remote);
        TcpConnection conn;
        lock (Gate)
        {
            var remoteAddr = IpAddr.FromIPAddress(remote.Address);
            IpAddr localAddr;
            if (local is not null && !local.Address.Equals(IPAddress.Any) && !local.Address.Equals(IPAddress.IPv6Any))
            {
                localAddr = IpAddr.FromIPAddress(local.Address);
            }
            else if (SelectSource is null || !SelectSource(remoteAddr, out localAddr))
            {
                throw new SocketException((int)SocketError.NetworkUnreachable);
            }

            int port = local?.Port ?? 0;
            FourTuple tuple;
            if (port == 0)
            {
                if (!TryAllocatePort(localAddr, remoteAddr, (ushort)remote.Port, out tuple))
                {
                    throw new SocketException((int)SocketError.AddressAlreadyInUse);
                }
            }
            else
            {
                tuple = new FourTuple(localAddr, (ushort)port, remoteAddr, (ushort)remote.Port);
                if (_connections.ContainsKey(tuple) || _timeWait.ContainsKey(tuple))
                {
                    throw new SocketException((int)SocketError.AddressAlreadyInUse);
                }
            }

            var now = _context.Now;
            conn = new TcpConnection(this, _options, tuple, GenerateIss(tuple, now), RandomTsOffset());
            _connections.Add(tuple, conn);
            conn.OpenActive(now);
        }

        return conn;
    }

    private async ValueTask<TcpStream> CompleteConnectAsync(TcpConnection conn, CancellationToken ct)
    {
        while (true)
        {
            ValueTask wait;
            lock (Gate)
            {
                if (conn.IsSynchronized)
                {
                    return new TcpStream(this, conn);
                }

                if (conn.State == TcpState.Closed)
                {
                    throw new SocketException((int)(conn.Error == SocketError.Success ? SocketError.ConnectionRefused : conn.Error));
                }

                if (ct.IsCancellationRequested)
                {
                    conn.Abort(_context.Now);
                    ct.ThrowIfCancellationRequested();
                }

                wait = conn.ConnectSignal.Arm(ct);
            }

            try
            {
                await wait.ConfigureAwait(false);
            }
            catch (OperationCanceledException)
            {
                lock (Gate)
                {
                    conn.Abort(_context.Now);
                }

                throw;
            }
        }
    }

    private bool TryAllocatePort(in IpAddr localAddr, in IpAddr remoteAddr, ushort remotePort, out FourTuple tuple)
    {
        for (int i = 0; i < EphemeralCount; i++)
        {
            int p = EphemeralFirst + ((_nextEphemeral + i) % EphemeralCount);
            tuple = new FourTuple(localAddr, (ushort)p, remoteAddr, remotePort);
            if (!_connections.ContainsKey(tuple) && !_timeWait.ContainsKey(tuple) && !_listeners.ContainsKey((localAddr, (ushort)p)))
            {
                _nextEphemeral = (_nextEphemeral + i + 1) % EphemeralCount;
                return true;
            }
        }

        tuple = default;
        return false;
    }

    public TcpStreamListener Listen(IPEndPoint local, int backlog, Func<IPEndPoint, IPEndPoint, bool>? admit = null)
    {
        ArgumentNullException.ThrowIfNull(local);
        ArgumentOutOfRangeException.ThrowIfLessThan(backlog, 1);
        lock (Gate)
        {
            var addr = IpAddr.FromIPAddress(local.Address);
            var key = (addr, (ushort)local.Port);
            if (local.Port == 0)
            {
                key = (IpAddr.AnyV6, (ushort)0); // wildcard: any address, any port
            }

            if (_listeners.ContainsKey(key))
            {
                throw new SocketException((int)SocketError.AddressAlreadyInUse);
            }

            var l = new TcpStreamListener(this, local, backlog, key) { Admit = admit };
            _listeners.Add(key, l);
            return l;
        }
    }

    internal void RemoveListener(TcpStreamListener listener) => _listeners.Remove(listener.Key);

    /// <summary>
    /// Stack shutdown: resets every connection (RST to synchronized peers), fails every pending operation and stops
    /// every listener. Streams then throw; nothing is left for timers to run.
    /// </summary>
    public void AbortAll()
    {
        lock (Gate)
        {
            var now = _context.Now;
            foreach (var c in _connections.Values.ToArray())
            {
                c.Abort(now);
            }

            foreach (var l in _listeners.Values.ToArray())
            {
                l.Dispose();
            }

            _timeWait.Clear();
            _timeWaitQueue.Clear();
            _timers.Clear();
        }
    }

    internal void Remove(TcpConnection c)
    {
        if (c.Removed)
        {
            return;
        }

        c.Removed = true;
        if (_connections.TryGetValue(c.Tuple, out var existing) && ReferenceEquals(existing, c))
        {
            _connections.Remove(c.Tuple);
        }

        if (c.Listener is { } l && !c.Accepted)
        {
            l.OnConnectionGone(c);
        }
    }

    internal void EnterTimeWait(TcpConnection c, SeqNumber rcvNxt, SeqNumber sndNxt, bool tsEnabled, uint tsRecent, uint tsOffset, TimeSpan now)
    {
        Remove(c);
        c.ReleaseBuffers();
        if (_options.MaxTimeWaitEntries == 0)
        {
            return;
        }

        // Bounded table: evict the entry closest to expiry when full.
        while (_timeWait.Count >= _options.MaxTimeWaitEntries && TryPeekTimeWait(out var oldest, out _))
        {
            _timeWaitQueue.Dequeue();
            _timeWait.Remove(oldest);
            Stats.TimeWaitEvictions++;
        }

        if (_timeWait.ContainsKey(c.Tuple))
        {
            RemoveTimeWait(c.Tuple); // cannot happen (the tuple was a live connection); keeps one queue entry per tuple
        }

        var entry = new TimeWaitEntry(rcvNxt, sndNxt, tsEnabled, tsRecent, tsOffset, now + _options.TimeWaitDuration, ++_timeWaitGeneration);
        _timeWait[c.Tuple] = entry;
        _timeWaitQueue.Enqueue((c.Tuple, entry.Generation), entry.Expires);
        _context.Wake();
    }

    internal bool IsInTimeWait(in FourTuple tuple) => _timeWait.ContainsKey(tuple);

    // ------------------------------------------------------------------ output

    /// <summary>
    /// Emits a segment whose payload (if any) the caller already wrote at <see cref="SegmentBuffer"/>[HeaderLength..].
    /// </summary>
    internal bool Transmit(TcpConnection c, in TcpRepr repr, int payloadLength) => TransmitRaw(c.Tuple, repr, payloadLength);

    private bool TransmitRaw(in FourTuple tuple, in TcpRepr repr, int payloadLength)
    {
        int len = repr.Emit(_segment, payloadLength, tuple.LocalAddress, tuple.RemoteAddress);
        if (!_context.TrySendIp(tuple.LocalAddress, tuple.RemoteAddress, TcpConstants.IpProtocol, _segment.AsSpan(0, len)))
        {
            return false;
        }

        // No driver wake-up here: the packet is in the stack's outbound queue, whose reader has its own signal, and a
        // timer the segment arms (RTO, TLP) reaches the driver through Schedule, which wakes it when a connection's
        // deadline moves earlier. Waking per segment cost a driver round (Poll under the gate) per ACK of a download.
        Stats.SegmentsSent++;
        return true;
    }

    /// <summary>Sends a bare control segment (RST) for a connection.</summary>
    internal void SendControl(TcpConnection c, TcpFlags flags, SeqNumber seq, SeqNumber ack) =>
        SendReset(c.Tuple, seq, ack, flags);

    private void SendReset(in FourTuple tuple, SeqNumber seq, SeqNumber ack, TcpFlags flags)
    {
        var repr = new TcpRepr
        {
            SourcePort = tuple.LocalPort,
            DestinationPort = tuple.RemotePort,
            Seq = seq,
            Ack = ack,
            Flags = flags,
        };
        if ((flags & TcpFlags.Rst) != 0)
        {
            Stats.ResetsSent++;
        }

        TransmitRaw(tuple, repr, 0);
    }

    /// <summary>
    /// RFC 5961 §7 throttle for challenge ACKs and every ACK sent from TIME-WAIT, as Linux does it today
    /// (tcp_send_challenge_ack, tcp_timewait_check_oow_rate_limit). First per tuple: at most one per
    /// <see cref="TcpConstants.OutOfWindowAckInterval"/>, tracked in <paramref name="allowedAt"/> (the connection's or
    /// the TIME-WAIT entry's own timestamp), so a flood aimed at one tuple draws at most one ACK per interval and
    /// cannot use up anything another tuple needs. Then, only when <see cref="TcpOptions.ChallengeAckLimitPerSecond"/>
    /// is set (Linux, since 6.0, leaves its global limit off by default: it is the CVE-2016-5696 side channel),
    /// <see cref="TryTakeGlobalChallengeAck"/>. A suppressed ACK does not move <paramref name="allowedAt"/>.
    /// </summary>
    internal bool TryTakeChallengeAck(TimeSpan now, ref TimeSpan allowedAt)
    {
        if (now < allowedAt || !TryTakeGlobalChallengeAck(now))
        {
            Stats.ChallengeAcksSuppressed++;
            return false;
        }

        allowedAt = now + TcpConstants.OutOfWindowAckInterval;
        Stats.ChallengeAcksSent++;
        return true;
    }

    /// <summary>
    /// The optional layer-wide cap. Its allowance is drawn afresh for each one-second interval (virtual clock),
    /// uniformly from [⌈L/2⌉, ⌈L/2⌉ + L − 1] for L = <see cref="TcpOptions.ChallengeAckLimitPerSecond"/> (mean ≈ L), as
    /// Linux's "tcp: make challenge acks less predictable": an off-path attacker who counts the challenge ACKs it gets
    /// cannot tell how many other tuples took from the same interval, so the count is no oracle for sequence numbers or
    /// for whether a 4-tuple exists (CVE-2016-5696). <see cref="int.MaxValue"/> (the default) disables the cap.
    /// </summary>
    internal bool TryTakeGlobalChallengeAck(TimeSpan now)
    {
        int limit = _options.ChallengeAckLimitPerSecond;
        if (limit == int.MaxValue)
        {
            return true;
        }

        if (!_challengeWindowOpen || now - _challengeWindowStart >= TimeSpan.FromSeconds(1))
        {
            _challengeWindowOpen = true;
            _challengeWindowStart = now;
            int half = (int)(((long)limit + 1) / 2);
            int spread = _challengeTestRandom is { } r ? r.Next(limit) : RandomNumberGenerator.GetInt32(limit);
            _challengeAllowance = (long)half + spread;
        }

        if (_challengeAllowance <= 0)
        {
            Stats.ChallengeAcksGlobalSuppressed++;
            return false;
        }

        _challengeAllowance--;
        return true;
    }

    // ------------------------------------------------------------------ ISN

    /// <summary>
    /// RFC 6528 §3: ISN = M + F(localip, localport, remoteip, remoteport, secretkey), M a 4 µs clock and F a
    /// keyed hash (HMAC-SHA256 truncated to 32 bits) of the 4-tuple.
    /// </summary>
    internal SeqNumber GenerateIss(in FourTuple tuple, TimeSpan now)
    {
        Span<byte> input = stackalloc byte[36];
        int o = tuple.LocalAddress.WriteTo(input);
        input[o++] = (byte)(tuple.LocalPort >> 8);
        input[o++] = (byte)tuple.LocalPort;
        o += tuple.RemoteAddress.WriteTo(input[o..]);
        input[o++] = (byte)(tuple.RemotePort >> 8);
        input[o++] = (byte)tuple.RemotePort;
        Span<byte> mac = stackalloc byte[32];
        HMACSHA256.HashData(_isnKey, input[..o], mac);
        uint f = System.Buffers.Binary.BinaryPrimitives.ReadUInt32BigEndian(mac);
        uint m = unchecked((uint)(now.Ticks / 40)); // 4 µs ticks (TimeSpan tick = 100 ns)
        return new SeqNumber(unchecked(m + f));
    }

    private uint RandomTsOffset() =>
        (uint)(_testRandom is { } r ? r.Next(int.MaxValue) : RandomNumberGenerator.GetInt32(int.MaxValue)); // RFC 7323 §5.4

    private readonly Random? _testRandom;

    // AckAllowedAt: next time an ACK may be sent for this tuple (TryTakeChallengeAck).
    internal readonly record struct TimeWaitEntry(SeqNumber RcvNxt, SeqNumber SndNxt, bool TsEnabled, uint TsRecent, uint TsOffset, TimeSpan Expires, long Generation, TimeSpan AckAllowedAt = default);
}
