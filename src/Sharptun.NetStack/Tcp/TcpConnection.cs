using System.Net.Sockets;
using Sharptun.NetStack.Wire;

namespace Sharptun.NetStack.Tcp;

/// <summary>
/// One TCP connection's control block (RFC 9293 §3.3.1) and state machine. Sans-I/O: time is passed in,
/// output goes through <see cref="TcpLayer"/>. Every member runs under the stack's Gate.
/// Split by concern: this file holds state and the user-facing operations; .Input.cs processes segments
/// (RFC 9293 §3.10.7), .Output.cs builds segments, .Timers.cs runs retransmission/persist/keepalive timers and the
/// RACK/TLP timer handlers. SACK loss recovery (scoreboard, send log, RACK, PRR, undo) is its own object,
/// <see cref="LossRecovery"/>, beside <see cref="CongestionController"/> and <see cref="RttEstimator"/>.
/// </summary>
internal sealed partial class TcpConnection
{
    private readonly TcpLayer _layer;
    private readonly TcpOptions _options;
    private ByteRing _tx;
    private ByteRing _rx;
    private readonly SeqRanges _ooo;       // receive: out-of-order ranges held in _rx's free region
    private CongestionController _cc;
    private RttEstimator _rtt;
    private readonly LossRecovery _recovery; // send: SACK scoreboard, RACK/TLP loss detection, PRR, undo

    public FourTuple Tuple { get; }
    public TcpState State { get; private set; }
    public TcpStreamListener? Listener { get; set; }
    public bool Accepted { get; set; }
    public bool InAcceptQueue { get; set; }
    public SocketError Error { get; private set; } = SocketError.Success;
    public bool NoDelay { get; set; }

    public readonly TcpSignal ReadSignal;
    public readonly TcpSignal WriteSignal;
    public readonly TcpSignal ConnectSignal;

    // RFC 9293 §3.3.1 send sequence variables
    private SeqNumber _iss;
    private SeqNumber _sndUna;
    private SeqNumber _sndNxt;
    private SeqNumber _sndMax;   // highest sequence sent + 1 (RFC 6675 HighData + 1)
    private SeqNumber _sndWl1;
    private SeqNumber _sndWl2;
    private long _sndWnd;
    private long _maxSndWnd;
    private int _sndShift;      // peer's window scale
    private int _smss;          // bytes of data per full-sized segment we send (MSS minus the options every segment carries)
    private int _sndMss;        // RFC 6691 effective send MSS: data + options of one segment (excludes the 20-byte header)

    // receive sequence variables
    private SeqNumber _irs;
    private SeqNumber _rcvNxt;
    private SeqNumber _rcvAdvRight; // right edge of the window we last advertised (never moves left)
    private int _rcvShift;          // our window scale
    private int _rcvMss;            // MSS we advertised (receiver SWS threshold)

    // negotiated options
    private bool _wsEnabled;
    private bool _sackEnabled;
    private bool _tsEnabled;
    private uint _tsRecent;
    private TimeSpan _tsRecentAge;
    private TimeSpan _outOfWindowAckAllowedAt; // next time an unacceptable pure ACK or a challenge ACK may be sent
    private uint _tsOffset;
    private SeqNumber _lastAckSent;

    // FIN bookkeeping
    private bool _finQueued;       // application closed its sending side
    private bool _finAcked;
    private bool _peerFin;         // peer's FIN processed (RcvNxt covers it)
    private bool _peerFinPending;  // peer's FIN seen out of order
    private SeqNumber _peerFinSeq;
    private bool _appClosed;       // the stream was disposed (no reader anymore)

    // loss recovery (RFC 5681 §3.2, RFC 6582, RFC 6675)
    private int _dupAcks;
    private bool _inRecovery;
    private SeqNumber _recover;
    private SeqNumber _highRxt;
    private bool _rexmitPending;
    private int _retransmits;       // consecutive RTOs of the same data

    // RTT sampling without timestamps (Karn's algorithm)
    private bool _rttTiming;
    private SeqNumber _rttSeq;
    private TimeSpan _rttStart;

    // delayed ACK (RFC 1122 §4.2.3.2, RFC 5681 §4.2)
    private bool _ackNow;
    private int _unackedBytes;

    // timers (TimeSpan.MaxValue = not running)
    private TimeSpan _rtoAt = TimeSpan.MaxValue;
    private TimeSpan _persistAt = TimeSpan.MaxValue;
    private int _persistBackoff;
    private TimeSpan _delAckAt = TimeSpan.MaxValue;
    private TimeSpan _keepAliveAt = TimeSpan.MaxValue;
    private int _keepAliveProbes;
    private TimeSpan _finWait2At = TimeSpan.MaxValue;
    private TimeSpan _retryAt = TimeSpan.MaxValue; // output blocked by IP backpressure
    private bool _keepAlive;

    internal TimeSpan ScheduledAt = TimeSpan.MaxValue; // owned by TcpLayer's timer queue
    internal bool Removed;

    public TcpConnection(TcpLayer layer, TcpOptions options, FourTuple tuple, SeqNumber iss, uint tsOffset)
    {
        _layer = layer;
        _options = options;
        Tuple = tuple;
        _tx = EmptyRing; // allocated on reaching ESTABLISHED (EnsureBuffers): a SYN flood costs no buffer memory
        _rx = EmptyRing;
        _ooo = new SeqRanges(options.MaxOutOfOrderRanges);
        _rtt = new RttEstimator(options.MinRto);
        _iss = iss;
        _sndUna = _sndNxt = _sndMax = iss;
        _recover = iss;
        _highRxt = iss;
        _recovery = new LossRecovery(options.MaxOutOfOrderRanges, iss);
        _tsOffset = tsOffset;
        NoDelay = options.NoDelay;
        _keepAlive = options.KeepAlive;
        ReadSignal = new TcpSignal(layer.Gate);
        WriteSignal = new TcpSignal(layer.Gate);
        ConnectSignal = new TcpSignal(layer.Gate);

        _rcvMss = layer.MssForMtu(tuple.RemoteAddress.IsV4);
        _smss = tuple.RemoteAddress.IsV4 ? TcpConstants.DefaultMssV4 : TcpConstants.DefaultMssV6;
        _sndMss = _smss;
        _cc = CongestionController.Create(options.CongestionControl, _smss);
        if (options.EnableWindowScaling)
        {
            // RFC 7323 §2.3: smallest shift that lets the 16-bit field cover the whole buffer
            while (_rcvShift < TcpConstants.MaxWindowScale && (options.ReceiveBufferSize >> _rcvShift) > 65535)
            {
                _rcvShift++;
            }
        }
    }

    public bool KeepAlive
    {
        get => _keepAlive;
        set
        {
            _keepAlive = value;
            ArmKeepAlive(_layer.Now);
            _layer.Schedule(this);
        }
    }

    /// <summary>Bytes the application can read now.</summary>
    public int ReadableBytes => _rx.Count;

    /// <summary>True once the peer's FIN was consumed and all data before it read (reads return 0).</summary>
    public bool ReceiveFinished => (_peerFin && _rx.Count == 0) || State == TcpState.Closed && Error == SocketError.Success && _rx.Count == 0;

    public bool IsSynchronized => State is not (TcpState.Closed or TcpState.SynSent or TcpState.SynReceived);

    public bool SendShutdown => _finQueued;

    /// <summary>What <see cref="Send"/> would take now: the ring's free space within this connection's share of the send budget.</summary>
    public int SendBufferFree => (int)Math.Clamp(_layer.SendBufferShare - _tx.Count, 0, _tx.Free);

    public int SendBufferCount => _tx.Count;

    internal int Cwnd => _cc.Cwnd;
    internal int Ssthresh => _cc.Ssthresh;
    internal TimeSpan Rto => _rtt.Rto;
    internal int RtoBackoff => _rtt.Backoff;
    internal long SndWnd => _sndWnd;
    internal int AdvertisedWindow => Math.Max(_rcvAdvRight - _rcvNxt, 0);
    internal int Smss => _smss;
    internal bool SackEnabled => _sackEnabled;
    internal bool TimestampsEnabled => _tsEnabled;
    internal bool WindowScalingEnabled => _wsEnabled;
    internal SeqNumber RcvNxt => _rcvNxt;
    internal uint TsRecent => _tsRecent;
    internal SeqNumber SndMax => _sndMax;
    internal SeqNumber SndUna => _sndUna;
    internal SeqNumber SndNxt => _sndNxt;
    internal long RetransmittedSegments { get; private set; }
    internal long RetransmittedBytes { get; private set; }
    internal long FastRetransmits { get; private set; }
    internal long Timeouts { get; private set; }
    internal long LostRetransmits => _recovery.LostRetransmits;
    internal long TailLossProbes => _recovery.TailLossProbes;
    internal long DsacksReceived => _recovery.DsacksReceived;
    internal long SpuriousRecoveries => _recovery.SpuriousRecoveries;
    internal bool ReorderingSeen => _recovery.ReorderingSeen;
    internal bool InRecovery => _inRecovery;
    internal long PipeBytes => _recovery.Pipe(_sndUna, _sndMax);
    internal TimeSpan PreciseSrttForTests => _recovery.PreciseSrtt;
    internal int SendLogCapacityForTests => _recovery.SendLogCapacity;
    internal TimeSpan PreciseMinRttForTests => _recovery.PreciseMinRtt;

    /// <summary>Sequence number of the first byte in the send buffer.</summary>
    private SeqNumber DataStart => _sndUna + (_sndUna == _iss ? 1 : 0);

    /// <summary>Sequence number of our FIN (valid while <see cref="_finQueued"/> and not yet acknowledged).</summary>
    private SeqNumber FinSeq => DataStart + _tx.Count;

    // ---------------------------------------------------------------- opens

    /// <summary>Active OPEN (RFC 9293 §3.10.1): send SYN, enter SYN-SENT.</summary>
    public void OpenActive(TimeSpan now)
    {
        State = TcpState.SynSent;
        Dispatch(now);
        _layer.Schedule(this);
    }

    /// <summary>Passive OPEN from a listener's SYN (RFC 9293 §3.10.7.2): enter SYN-RECEIVED, send SYN-ACK.</summary>
    public void OpenPassive(TimeSpan now, in TcpRepr syn)
    {
        State = TcpState.SynReceived;
        _irs = syn.Seq;
        _rcvNxt = syn.Seq + 1;
        _rcvAdvRight = _rcvNxt;
        _lastAckSent = _rcvNxt;
        NegotiateFromSyn(now, syn, passive: true);
        _sndWnd = syn.Window; // RFC 7323 §2.2: the window in a SYN is never scaled
        _maxSndWnd = _sndWnd;
        _sndWl1 = syn.Seq;
        _sndWl2 = syn.Ack;
        Dispatch(now);
        _layer.Schedule(this);
    }

    private void NegotiateFromSyn(TimeSpan now, in TcpRepr syn, bool passive)
    {
        // RFC 7323 §2.2: scaling only when both SYNs carry the option
        _wsEnabled = _options.EnableWindowScaling && syn.WindowScale >= 0;
        _sndShift = _wsEnabled ? syn.WindowScale : 0;
        if (!_wsEnabled)
        {
            _rcvShift = 0;
        }

        _sackEnabled = _options.EnableSack && syn.SackPermitted;       // RFC 2018 §2
        _tsEnabled = _options.EnableTimestamps && syn.HasTimestamp;    // RFC 7323 §3.2
        if (_tsEnabled)
        {
            _tsRecent = syn.TsVal;
            _tsRecentAge = now;
        }

        // RFC 9293 §3.7.1 / RFC 6691: the effective send MSS = min(peer MSS, our MTU MSS) bounds data + options of each
        // segment. _smss (the full-sized segment for cwnd and Nagle) takes off the options every segment carries
        // (timestamps); a segment carrying more (SACK blocks) gets less data (SendData, PayloadRoom), as in Linux.
        int peerMss = syn.Mss != 0 ? syn.Mss : (Tuple.RemoteAddress.IsV4 ? TcpConstants.DefaultMssV4 : TcpConstants.DefaultMssV6);
        int fixedOptions = _tsEnabled ? TcpConstants.TimestampOptionLength : 0;
        int mss = Math.Min(peerMss, _rcvMss) - fixedOptions;
        _smss = Math.Max(mss, 64);
        _sndMss = Math.Min(_smss + fixedOptions, _rcvMss);
        _cc.SetSmss(_smss);
        _ = passive;
    }

    // ---------------------------------------------------------------- user operations

    /// <summary>Copies as much of <paramref name="data"/> into the send buffer as fits and transmits. Returns bytes taken.</summary>
    public int Send(ReadOnlySpan<byte> data, TimeSpan now)
    {
        // the stack-wide send budget (TcpOptions.SendBufferBudget): take only up to this connection's share
        int room = SendBufferFree;
        if (room <= 0)
        {
            return 0;
        }

        if (room < data.Length)
        {
            data = data[..room];
        }

        int n = _tx.Enqueue(data);
        if (n > 0 && IsSynchronized)
        {
            Dispatch(now);
            _layer.Schedule(this);
        }

        return n;
    }

    /// <summary>Reads buffered in-order data. Returns 0 when nothing is buffered.</summary>
    public int Receive(Span<byte> destination, TimeSpan now)
    {
        int n = _rx.Dequeue(destination);
        if (n > 0)
        {
            MaybeSendWindowUpdate(now);
        }

        return n;
    }

    /// <summary>Forces out a segment held back by Nagle (FlushAsync).</summary>
    public void Push(TimeSpan now)
    {
        if (IsSynchronized)
        {
            _push = true;
            Dispatch(now);
            _layer.Schedule(this);
        }
    }

    private bool _push;

    /// <summary>CLOSE of the sending direction (RFC 9293 §3.10.4): queue a FIN after the buffered data.</summary>
    public void ShutdownWrite(TimeSpan now)
    {
        if (_finQueued)
        {
            return;
        }

        switch (State)
        {
            case TcpState.SynSent:
            case TcpState.Closed:
                Terminate(SocketError.Success);
                return;
            case TcpState.SynReceived:
            case TcpState.Established:
                _finQueued = true;
                if (State == TcpState.Established)
                {
                    State = TcpState.FinWait1;
                }

                break;
            case TcpState.CloseWait:
                _finQueued = true;
                State = TcpState.LastAck;
                break;
            default:
                return;
        }

        Dispatch(now);
        _layer.Schedule(this);
    }

    /// <summary>Graceful close when the application disposes its stream.</summary>
    public void CloseByApplication(TimeSpan now)
    {
        _appClosed = true;
        if (State == TcpState.Closed)
        {
            ReleaseBuffers(force: true);
            return;
        }

        // RFC 1122 §4.2.2.13: closing with unread received data sends RST.
        if (_rx.Count > 0 && IsSynchronized)
        {
            Abort(now);
            return;
        }

        ShutdownWrite(now);
        if (State == TcpState.FinWait2)
        {
            _finWait2At = now + _options.FinWait2Timeout;
            _layer.Schedule(this);
        }
    }

    /// <summary>ABORT (RFC 9293 §3.10.5): send RST in synchronized states and delete the TCB.</summary>
    public void Abort(TimeSpan now)
    {
        _appClosed = true;
        if (State is TcpState.SynReceived or TcpState.Established or TcpState.FinWait1 or TcpState.FinWait2 or TcpState.CloseWait)
        {
            _layer.SendControl(this, TcpFlags.Rst | TcpFlags.Ack, _sndMax, _rcvNxt);
        }

        Terminate(SocketError.OperationAborted);
        _ = now;
    }

    /// <summary>Enters CLOSED, wakes every waiter and removes the connection from the layer.</summary>
    internal void Terminate(SocketError error)
    {
        if (State == TcpState.Closed && Removed)
        {
            return;
        }

        if (error != SocketError.Success && Error == SocketError.Success)
        {
            Error = error;
        }

        State = TcpState.Closed;
        _rtoAt = _persistAt = _delAckAt = _keepAliveAt = _finWait2At = _retryAt = TimeSpan.MaxValue;
        _recovery.StopTailLossProbe();
        _recovery.StopRackTimer();
        _layer.Remove(this);
        if (_appClosed)
        {
            ReleaseBuffers(force: true); // nobody can read any more; a stale timer entry must not pin the rings
        }

        WakeAll();
    }

    private void WakeAll()
    {
        ReadSignal.Set();
        WriteSignal.Set();
        ConnectSignal.Set();
    }

    /// <summary>Releases the buffers (TIME-WAIT or CLOSED with no reader) so the memory budget is returned.</summary>
    internal void ReleaseBuffers(bool force = false)
    {
        _buffersAllocated = true; // never re-allocate
        if (_holdsWindowShare)
        {
            _holdsWindowShare = false;
            _layer.RemoveWindowHolder();
        }

        if (_rx.Count == 0 || force)
        {
            _rx.Release();
            _rx = EmptyRing;
        }

        _tx.Release();
        _tx = EmptyRing;
    }

    private static readonly ByteRing EmptyRing = new(0);

    private bool _buffersAllocated;
    private bool _holdsWindowShare;
    private int _synWindow; // the window our SYN / SYN-ACK offered, kept so a retransmitted SYN and the SYN-ACK's processing agree

    /// <summary>Free receive space; before the buffers exist, the full configured size (what the SYN advertises).</summary>
    private int RxFree => _buffersAllocated ? _rx.Free : _options.ReceiveBufferSize;

    /// <summary>Creates the per-connection rings once the handshake completes (their arrays come later, with data).</summary>
    private void EnsureBuffers()
    {
        if (!_buffersAllocated)
        {
            _buffersAllocated = true;
            // the rings' arrays come from the layer's pool while they hold bytes (RingPool): capacity is what the
            // windows advertise, memory follows what is buffered
            _tx = new ByteRing(_options.SendBufferSize, _layer.Rings);
            _recovery.AllocateSendLog(_options.SendBufferSize, _smss);
            _rx = new ByteRing(_options.ReceiveBufferSize, _layer.Rings);
            _holdsWindowShare = true;
            _layer.AddWindowHolder();
        }
    }
}
