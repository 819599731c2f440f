using System.Net;
using System.Net.Sockets;
using System.Security.Cryptography;

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
    public long ChallengeAcksSuppressed;
    public long PawsRejected;
    public long SynsDropped;
    public long TimeWaitEvictions;
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
    private readonly Dictionary<(IpAddr Address, ushort Port), TcpListener> _listeners = new();
    private readonly Dictionary<FourTuple, TimeWaitEntry> _timeWait = new();
    private readonly Queue<(FourTuple Tuple, long Generation)> _timeWaitOrder = new();
    private readonly PriorityQueue<TcpConnection, TimeSpan> _timers = new();
    private readonly byte[] _segment = new byte[65536 + TcpHeader.MaxLength];
    private readonly byte[] _isnKey = new byte[32];
    private long _timeWaitGeneration;
    private int _challengeAcks;
    private TimeSpan _challengeWindowStart;
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

    /// <summary>Optional source-address selection for ConnectAsync without a local endpoint.</summary>
    public TcpSourceSelector? SelectSource { get; set; }

    public int ConnectionCount => _connections.Count;
    public int TimeWaitCount => _timeWait.Count;

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

            while (_timeWaitOrder.TryPeek(out var head))
            {
                if (_timeWait.TryGetValue(head.Tuple, out var e) && e.Generation == head.Generation)
                {
                    if (e.Expires < t)
                    {
                        t = e.Expires;
                    }

                    break;
                }

                _timeWaitOrder.Dequeue();
            }

            return t;
        }
    }

    internal int MssForMtu(bool v4) =>
        Math.Max(_context.Mtu - (v4 ? TcpConstants.Ipv4HeaderLength : TcpConstants.Ipv6HeaderLength) - TcpHeader.MinLength, 64);

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

    private TcpListener? FindListener(in IpAddr address, ushort port)
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

    private void AcceptSyn(TimeSpan now, TcpListener listener, FourTuple tuple, in TcpRepr syn)
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

    /// <summary>TIME-WAIT segment handling (RFC 9293 §3.10.7.4, RFC 1337, RFC 6191). True when consumed.</summary>
    private bool OnTimeWaitSegment(TimeSpan now, FourTuple tuple, TimeWaitEntry tw, in TcpRepr seg, int payloadLength)
    {
        if (seg.Has(TcpFlags.Rst))
        {
            return true; // RFC 1337: ignore RST in TIME-WAIT (no assassination)
        }

        if (seg.Has(TcpFlags.Syn) && !seg.Has(TcpFlags.Ack))
        {
            // RFC 6191 / RFC 9293 §3.10.7.4 note: a new SYN with a higher sequence number (or newer timestamp) may reopen.
            bool newer = seg.Seq > tw.RcvNxt || (tw.TsEnabled && seg.HasTimestamp && unchecked((int)(seg.TsVal - tw.TsRecent)) > 0);
            if (newer && FindListener(tuple.LocalAddress, tuple.LocalPort) is not null)
            {
                _timeWait.Remove(tuple);
                return false;
            }
        }

        // Retransmitted FIN (or anything else): ACK it and restart 2MSL.
        if (seg.Has(TcpFlags.Fin))
        {
            _timeWait[tuple] = tw with { Expires = now + _options.TimeWaitDuration, Generation = ++_timeWaitGeneration };
            _timeWaitOrder.Enqueue((tuple, _timeWaitGeneration));
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
        _ = payloadLength;
        return true;
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

        while (_timeWaitOrder.TryPeek(out var head))
        {
            if (!_timeWait.TryGetValue(head.Tuple, out var e) || e.Generation != head.Generation)
            {
                _timeWaitOrder.Dequeue();
                continue;
            }

            if (e.Expires > now)
            {
                break;
            }

            _timeWaitOrder.Dequeue();
            _timeWait.Remove(head.Tuple);
        }
    }

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

    public TcpListener Listen(IPEndPoint local, int backlog)
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

            var l = new TcpListener(this, local, backlog, key);
            _listeners.Add(key, l);
            return l;
        }
    }

    internal void RemoveListener(TcpListener listener) => _listeners.Remove(listener.Key);

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
            _timeWaitOrder.Clear();
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

        // Bounded table: evict the oldest entry when full.
        while (_timeWait.Count >= _options.MaxTimeWaitEntries && _timeWaitOrder.TryDequeue(out var oldest))
        {
            if (_timeWait.TryGetValue(oldest.Tuple, out var e) && e.Generation == oldest.Generation)
            {
                _timeWait.Remove(oldest.Tuple);
                Stats.TimeWaitEvictions++;
            }
        }

        var entry = new TimeWaitEntry(rcvNxt, sndNxt, tsEnabled, tsRecent, tsOffset, now + _options.TimeWaitDuration, ++_timeWaitGeneration);
        _timeWait[c.Tuple] = entry;
        _timeWaitOrder.Enqueue((c.Tuple, entry.Generation));
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

        Stats.SegmentsSent++;
        _context.Wake();
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

    /// <summary>RFC 5961 §7: challenge ACKs are rate limited per layer.</summary>
    internal void SendChallengeAck(TcpConnection c)
    {
        var now = _context.Now;
        if (now - _challengeWindowStart >= TimeSpan.FromSeconds(1))
        {
            _challengeWindowStart = now;
            _challengeAcks = 0;
        }

        if (_challengeAcks >= _options.ChallengeAckLimitPerSecond)
        {
            Stats.ChallengeAcksSuppressed++;
            return;
        }

        _challengeAcks++;
        Stats.ChallengeAcksSent++;
        c.SendAckNow(now);
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

    internal readonly record struct TimeWaitEntry(SeqNumber RcvNxt, SeqNumber SndNxt, bool TsEnabled, uint TsRecent, uint TsOffset, TimeSpan Expires, long Generation);
}
