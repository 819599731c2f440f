using Sharptun.NetStack.Wire;

namespace Sharptun.NetStack.Tcp;

/// <summary>
/// SACK-based loss detection and recovery sending rate of one connection, beside <see cref="CongestionController"/>
/// and <see cref="RttEstimator"/>. It owns the SACK scoreboard (RFC 6675 §3), the send log and the state of:
/// RACK (RFC 8985 §6): every sent segment keeps its latest transmission time; a segment is lost when a segment sent
/// after it was delivered and more than RACK.rtt + RACK.reo_wnd has passed since it was sent. Time-based marking is
/// robust to reordering (the window adapts through D-SACK, RFC 8985 §6.2 step 4) and detects lost retransmissions.
/// PRR (RFC 6937): during recovery the sending rate follows the delivery rate down to ssthresh.
/// D-SACK undo (RFC 2883 §4, RFC 8985 §8 / Linux's undo_retrans): a recovery whose every retransmission is reported as a
/// duplicate was spurious, so the congestion window reduction is undone.
/// TLP (RFC 8985 §7): the probe timer (the probe itself is sent by the connection).
/// </summary>
/// <remarks>
/// Sans-I/O and owned by one <see cref="TcpConnection"/>: the connection passes its sequence variables (SND.UNA,
/// SND.MAX), SMSS and recovery flag in, and reads back timers, loss marks and counters. Runs under the stack's Gate.
/// </remarks>
internal sealed class LossRecovery
{
    private const byte SegSacked = 1;        // delivered out of order (SACKed)
    private const byte SegLost = 2;          // RACK marked it lost
    private const byte SegRetransLost = 4;   // retransmitted after being marked lost (counts in pipe again)
    private const byte SegEverRetrans = 8;   // retransmitted at least once (RACK RTT ambiguity, RFC 8985 §6.2 step 2)

    /// <summary>One transmitted segment in [SND.UNA, SND.MAX): a fixed array used as a deque, no allocation per segment.</summary>
    private struct SentSegment
    {
        public SeqNumber Start;
        public SeqNumber End;
        public TimeSpan XmitTime;
        public long XmitOrder; // strictly increasing per transmission: "sent after" without timestamp ties
        public byte Flags;
    }

    private SentSegment[] _segs = [];
    private int _segHead;
    private int _segCount;

    // RFC 8985 §6.1 RACK state
    private TimeSpan _rackXmit = TimeSpan.MinValue; // RACK.xmit_ts
    private long _rackOrder;                        // RACK.end_seq's role: transmission order of RACK.segment
    private long _xmitOrder;
    private TimeSpan _rackRtt;                      // RACK.rtt
    private SeqNumber _rackFack;                    // RACK.fack
    private bool _reorderingSeen;                   // RACK.reordering_seen
    private int _reoWndMult = 1;                    // RACK.reo_wnd_mult
    private int _reoWndPersist;                     // RACK.reo_wnd_persist
    private bool _dsackRoundValid;
    private SeqNumber _dsackRound;                  // RACK.dsack_round

    // RFC 6937 PRR state
    private long _prrDelivered;
    private long _prrOut;
    private long _recoverFs;

    // undo (RFC 8985 §8 with D-SACK, Linux undo_retrans)
    private int _undoRetrans;        // retransmissions of this episode not yet reported as duplicates
    private bool _undoValid;
    private SeqNumber _undoMarker;   // SND.UNA when the episode began
    private int _priorCwnd;
    private int _priorSsthresh;

    // RTT measured from the send log at clock resolution (the timestamp option only gives milliseconds, which reads
    // as 0 on a LAN or TUN): used for RACK's min_RTT/SRTT (reordering window) and the TLP timeout.
    private TimeSpan _preciseMinRtt = TimeSpan.MaxValue;
    private TimeSpan _preciseSrtt;

    private bool _tlpFired; // a tail loss probe was sent since the last new ACK or RTO

    public LossRecovery(int maxSackRanges, SeqNumber iss)
    {
        Scoreboard = new SeqRanges(maxSackRanges);
        _rackFack = iss;
    }

    /// <summary>Send side SACK scoreboard (RFC 6675 §3): SACKed ranges above SND.UNA.</summary>
    public SeqRanges Scoreboard { get; }

    /// <summary>RACK reordering timer (RFC 8985 §6.3); <see cref="TimeSpan.MaxValue"/> when not running.</summary>
    public TimeSpan RackTimerAt { get; private set; } = TimeSpan.MaxValue;

    /// <summary>Tail loss probe timer (RFC 8985 §7.2); <see cref="TimeSpan.MaxValue"/> when not running.</summary>
    public TimeSpan TailLossProbeAt { get; private set; } = TimeSpan.MaxValue;

    public long DsacksReceived { get; private set; }
    public long SpuriousRecoveries { get; private set; }
    public long LostRetransmits { get; private set; }
    public long TailLossProbes { get; private set; }
    public bool ReorderingSeen => _reorderingSeen;
    public TimeSpan PreciseSrtt => _preciseSrtt;
    public TimeSpan PreciseMinRtt => _preciseMinRtt;

    /// <summary>
    /// Allocates the send log with the connection's buffers: 64 records at first, doubled as data in flight needs
    /// them, up to one per full-sized segment of the send buffer plus slack for splits (small segments merge when full).
    /// </summary>
    public void AllocateSendLog(int sendBufferSize, int smss)
    {
        _segsMax = Math.Clamp((sendBufferSize / Math.Max(smss, 256)) + 32, InitialSendLog, 8192);
        _segs = new SentSegment[InitialSendLog];
    }

    private const int InitialSendLog = 64;
    private int _segsMax;

    /// <summary>Records the send log can hold now (tests).</summary>
    internal int SendLogCapacity => _segs.Length;

    private ref SentSegment Seg(int i) => ref _segs[_segHead + i];

    /// <summary>Makes room at the end of the deque; false when the log is full.</summary>
    private bool EnsureSegRoom()
    {
        if (_segHead + _segCount < _segs.Length)
        {
            return true;
        }

        if (_segCount > _segs.Length / 2 && _segs.Length < _segsMax)
        {
            var grown = new SentSegment[Math.Min(_segs.Length * 2, _segsMax)];
            Array.Copy(_segs, _segHead, grown, 0, _segCount);
            _segs = grown;
            _segHead = 0;
            return true;
        }

        if (_segHead == 0)
        {
            return false;
        }

        Array.Copy(_segs, _segHead, _segs, 0, _segCount);
        _segHead = 0;
        return true;
    }

    /// <summary>Splits record <paramref name="i"/> at <paramref name="at"/> (Start &lt; at &lt; End); false when full.</summary>
    private bool SplitSeg(int i, SeqNumber at)
    {
        if (!EnsureSegRoom())
        {
            return false;
        }

        int abs = _segHead + i;
        Array.Copy(_segs, abs + 1, _segs, abs + 2, _segCount - i - 1);
        _segs[abs + 1] = _segs[abs];
        _segs[abs].End = at;
        _segs[abs + 1].Start = at;
        _segCount++;
        return true;
    }

    /// <summary>
    /// A transmission of [seq, end) (end includes a FIN) left: logs it and, in recovery, counts it for PRR and (when a
    /// retransmission) for undo.
    /// </summary>
    public void OnSent(TimeSpan now, SeqNumber seq, SeqNumber end, bool retransmit, bool inRecovery)
    {
        LogSent(now, seq, end);
        if (inRecovery)
        {
            _prrOut += end - seq; // RFC 6937: data sent during recovery
            if (retransmit)
            {
                _undoRetrans++;
            }
        }
    }

    /// <summary>Records a transmission of [seq, end) (end includes a FIN).</summary>
    private void LogSent(TimeSpan now, SeqNumber seq, SeqNumber end)
    {
        if (_segs.Length == 0 || end <= seq)
        {
            return;
        }

        var logEnd = _segCount > 0 ? Seg(_segCount - 1).End : seq;
        if (seq < logEnd)
        {
            // (Re)transmission of logged data: split at the edges, refresh the transmission time.
            for (int i = 0; i < _segCount && seq < end; i++)
            {
                ref var r = ref Seg(i);
                if (r.End <= seq)
                {
                    continue;
                }

                if (r.Start >= end)
                {
                    break;
                }

                if (r.Start < seq)
                {
                    if (SplitSeg(i, seq))
                    {
                        continue; // handle the right part on the next iteration
                    }
                }

                ref var s = ref Seg(i);
                if (s.End > end)
                {
                    _ = SplitSeg(i, end);
                    s = ref Seg(i);
                }

                s.XmitTime = now;
                s.XmitOrder = ++_xmitOrder;
                s.Flags |= SegEverRetrans;
                if ((s.Flags & SegLost) != 0)
                {
                    s.Flags |= SegRetransLost;
                }
            }

            if (end <= logEnd)
            {
                return;
            }

            seq = logEnd;
        }

        if (_segCount > 0 && seq != logEnd)
        {
            seq = logEnd; // never leave a gap in the log
        }

        if (!EnsureSegRoom())
        {
            ref var last = ref Seg(_segCount - 1);
            last.End = end; // log full: merge into the newest record
            last.XmitTime = now;
            last.XmitOrder = ++_xmitOrder;
            return;
        }

        _segs[_segHead + _segCount] = new SentSegment { Start = seq, End = end, XmitTime = now, XmitOrder = ++_xmitOrder };
        _segCount++;
    }

    /// <summary>
    /// After an RTO: the scoreboard is cleared (RFC 6675 §5.1: the receiver may have reneged) and everything is resent
    /// (go-back-N); the episode can no longer be undone and a new tail loss probe is allowed.
    /// </summary>
    public void OnRetransmissionTimeout()
    {
        Scoreboard.Clear();
        _tlpFired = false;
        _undoValid = false;
        for (int i = 0; i < _segCount; i++)
        {
            Seg(i).Flags &= SegEverRetrans;
        }

        RackTimerAt = TimeSpan.MaxValue;
    }

    /// <summary>SND.UNA advanced to <paramref name="sndUna"/>: trims the scoreboard and allows a new tail loss probe.</summary>
    public void OnNewAck(SeqNumber sndUna)
    {
        Scoreboard.RemoveBelow(sndUna);
        _tlpFired = false;
    }

    /// <summary>RFC 6675 §4 SetPipe from the log: sent, not SACKed, and not lost unless retransmitted since.</summary>
    public long Pipe(SeqNumber sndUna, SeqNumber sndMax)
    {
        long pipe = 0;
        for (int i = 0; i < _segCount; i++)
        {
            ref var r = ref Seg(i);
            byte f = r.Flags;
            if ((f & SegSacked) == 0 && ((f & SegLost) == 0 || (f & SegRetransLost) != 0))
            {
                pipe += r.End - r.Start;
            }
        }

        var logEnd = _segCount > 0 ? Seg(_segCount - 1).End : sndUna;
        if (sndMax > logEnd)
        {
            pipe += sndMax - logEnd;
        }

        return pipe;
    }

    /// <summary>
    /// RFC 6675 NextSeg rule (1) with RACK's marks: the first lost segment not yet retransmitted, at most
    /// <paramref name="smss"/> bytes and not past <paramref name="dataEnd"/> (a zero-length hole qualifies when it is
    /// the outstanding FIN at <paramref name="finSeq"/>).
    /// </summary>
    public bool NextLostHole(SeqNumber sndUna, int smss, SeqNumber dataEnd, bool finOutstanding, SeqNumber finSeq, out SeqNumber seq, out int len)
    {
        for (int i = 0; i < _segCount; i++)
        {
            ref var r = ref Seg(i);
            if ((r.Flags & (SegLost | SegRetransLost | SegSacked)) != SegLost || r.End <= sndUna)
            {
                continue;
            }

            seq = SeqNumber.Max(r.Start, sndUna);
            len = Math.Min(Math.Min(r.End - seq, smss), Math.Max(dataEnd - seq, 0));
            if (len > 0 || (finOutstanding && seq == finSeq))
            {
                return true;
            }
        }

        seq = default;
        len = 0;
        return false;
    }

    /// <summary>
    /// Per-ACK RACK processing (RFC 8985 §6.2 steps 1–5) after the scoreboard and SND.UNA were updated: marks newly
    /// delivered segments, advances RACK.xmit_ts/end_seq/rtt and fack, notes reordering, drops acknowledged records,
    /// then marks lost segments. Returns true when any segment is (now) marked lost and not yet retransmitted.
    /// </summary>
    public bool OnAck(TimeSpan now, SeqNumber sndUna, bool inRecovery, int smss, in RttEstimator rtt)
    {
        var sacked = Scoreboard;

        // steps 1–3 over newly delivered segments (cumulatively acknowledged or newly SACKed)
        int sackIdx = 0;
        for (int i = 0; i < _segCount; i++)
        {
            ref var r = ref Seg(i);
            bool delivered;
            if (r.End <= sndUna)
            {
                delivered = (r.Flags & SegSacked) == 0;
            }
            else
            {
                if ((r.Flags & SegSacked) != 0)
                {
                    continue;
                }

                while (sackIdx < sacked.Count && sacked[sackIdx].Right <= r.Start)
                {
                    sackIdx++;
                }

                delivered = sackIdx < sacked.Count && sacked[sackIdx].Left <= r.Start && r.End <= sacked[sackIdx].Right;
                if (!delivered && sackIdx >= sacked.Count)
                {
                    break; // nothing above is SACKed: the rest of the log is undelivered
                }

                if (delivered)
                {
                    r.Flags |= SegSacked;
                }
            }

            if (!delivered)
            {
                continue;
            }

            var sample = now - r.XmitTime;
            if ((r.Flags & SegEverRetrans) != 0 && sample < RackMinRtt(rtt))
            {
                // step 2: may have been delivered by the original transmission; ambiguous
            }
            else
            {
                _rackRtt = sample;
                if ((r.Flags & SegEverRetrans) == 0)
                {
                    PreciseRttSample(sample);
                }

                if (r.XmitOrder > _rackOrder)
                {
                    _rackXmit = r.XmitTime;
                    _rackOrder = r.XmitOrder;
                }
            }

            // step 3: reordering
            if (r.End > _rackFack)
            {
                _rackFack = r.End;
            }
            else if (r.End < _rackFack && (r.Flags & SegEverRetrans) == 0)
            {
                _reorderingSeen = true;
            }
        }

        // drop acknowledged records
        int k = 0;
        while (k < _segCount && Seg(k).End <= sndUna)
        {
            k++;
        }

        _segHead += k;
        _segCount -= k;
        if (_segCount == 0)
        {
            _segHead = 0;
        }

        if (_rackFack < sndUna)
        {
            _rackFack = sndUna;
        }

        return DetectLoss(now, inRecovery, smss, rtt);
    }

    private void PreciseRttSample(TimeSpan rtt)
    {
        if (rtt < _preciseMinRtt)
        {
            _preciseMinRtt = rtt;
        }

        _preciseSrtt = _preciseSrtt == TimeSpan.Zero ? rtt : (_preciseSrtt * 7 / 8) + (rtt / 8);
    }

    private TimeSpan RackMinRtt(in RttEstimator rtt) => _preciseMinRtt != TimeSpan.MaxValue ? _preciseMinRtt : rtt.MinRtt;

    private TimeSpan RackSrtt(in RttEstimator rtt) => _preciseSrtt != TimeSpan.Zero ? _preciseSrtt : rtt.Srtt;

    /// <summary>RFC 8985 §6.2 step 4: the reordering window.</summary>
    private TimeSpan ReoWnd(bool inRecovery, int smss, in RttEstimator rtt)
    {
        if (!_reorderingSeen && (inRecovery || Scoreboard.TotalBytes() >= (long)TcpConstants.DupThresh * smss))
        {
            return TimeSpan.Zero;
        }

        var w = RackMinRtt(rtt) / 4 * _reoWndMult;
        var srtt = RackSrtt(rtt);
        return w < srtt ? w : srtt;
    }

    /// <summary>
    /// RFC 8985 §6.2 step 5 (RACK_detect_loss) and the reordering timer. Returns true when any segment is (now) marked
    /// lost and not yet retransmitted.
    /// </summary>
    public bool DetectLoss(TimeSpan now, bool inRecovery, int smss, in RttEstimator rtt)
    {
        RackTimerAt = TimeSpan.MaxValue;
        if (_rackXmit == TimeSpan.MinValue)
        {
            return HasUnsentLoss();
        }

        var reo = ReoWnd(inRecovery, smss, rtt);
        var timeout = TimeSpan.Zero;
        bool any = false;
        for (int i = 0; i < _segCount; i++)
        {
            ref var r = ref Seg(i);
            byte f = r.Flags;
            if ((f & SegSacked) != 0)
            {
                continue;
            }

            if ((f & SegLost) != 0 && (f & SegRetransLost) == 0)
            {
                any = true; // already marked, waiting to be retransmitted
                continue;
            }

            if (r.XmitOrder >= _rackOrder)
            {
                continue; // sent after the most recently delivered segment
            }

            var remaining = r.XmitTime + _rackRtt + reo - now;
            if (remaining <= TimeSpan.Zero)
            {
                if ((f & SegEverRetrans) != 0)
                {
                    LostRetransmits++;
                }

                r.Flags = (byte)((f | SegLost) & ~SegRetransLost);
                any = true;
            }
            else if (remaining > timeout)
            {
                timeout = remaining;
            }
        }

        if (timeout > TimeSpan.Zero)
        {
            RackTimerAt = now + timeout;
        }

        return any;
    }

    private bool HasUnsentLoss()
    {
        for (int i = 0; i < _segCount; i++)
        {
            if ((Seg(i).Flags & (SegLost | SegRetransLost | SegSacked)) == SegLost)
            {
                return true;
            }
        }

        return false;
    }

    /// <summary>Stops the RACK reordering timer (it fired, or the connection closed).</summary>
    public void StopRackTimer() => RackTimerAt = TimeSpan.MaxValue;

    /// <summary>
    /// RFC 2883 §4: the first SACK block reports a duplicate when it lies below the cumulative ACK or inside the second
    /// block. Adapts the reordering window (RFC 8985 §6.2 step 4) and counts toward undoing a spurious recovery.
    /// Returns true when this was the last outstanding retransmission of the episode: the episode was spurious and the
    /// congestion window reduction has been undone on <paramref name="cc"/>; the connection then leaves recovery
    /// (<see cref="ClearLossMarks"/>).
    /// </summary>
    public bool OnDsack(SackBlock b, SeqNumber sndUna, SeqNumber sndMax, CongestionController cc)
    {
        DsacksReceived++;
        if (!_dsackRoundValid || _dsackRound <= sndUna)
        {
            _reoWndMult++;
            _dsackRound = sndMax;
            _dsackRoundValid = true;
            _reoWndPersist = 16;
        }

        // Undo: a duplicate of data retransmitted in the current (or just finished) episode.
        if (_undoValid && b.Left >= _undoMarker && _undoRetrans > 0)
        {
            _undoRetrans--;
            if (_undoRetrans == 0)
            {
                _undoValid = false;
                SpuriousRecoveries++;
                cc.Undo(_priorCwnd, _priorSsthresh);
                return true;
            }
        }

        return false;
    }

    /// <summary>RFC 8985 §8: the losses were spurious; stop retransmitting what was marked lost.</summary>
    public void ClearLossMarks()
    {
        for (int i = 0; i < _segCount; i++)
        {
            Seg(i).Flags &= unchecked((byte)~(SegLost | SegRetransLost));
        }
    }

    /// <summary>
    /// A recovery episode begins (before <paramref name="cc"/> reacts to the congestion event): starts PRR, remembers
    /// the window for undo and stops the tail loss probe.
    /// </summary>
    public void OnRecoveryStart(SeqNumber sndUna, SeqNumber sndMax, CongestionController cc)
    {
        _prrDelivered = 0;
        _prrOut = 0;
        _recoverFs = Math.Max(sndMax - sndUna, 1);
        _priorCwnd = cc.Cwnd;
        _priorSsthresh = cc.Ssthresh;
        _undoValid = true;
        _undoMarker = sndUna;
        _undoRetrans = 0;
        TailLossProbeAt = TimeSpan.MaxValue;
    }

    /// <summary>The episode ended with a full acknowledgment: a widened reordering window lapses after 16 of them.</summary>
    public void OnRecoveryEnd()
    {
        if (_reoWndPersist > 0 && --_reoWndPersist == 0)
        {
            _reoWndMult = 1; // RFC 8985 §6.2 step 4: the widened window lapses after 16 recoveries
        }
    }

    /// <summary>RFC 6937 §3 on each ACK in recovery: sets cwnd = pipe + sndcnt.</summary>
    public void PrrUpdate(long deliveredData, SeqNumber sndUna, SeqNumber sndMax, int smss, CongestionController cc)
    {
        _prrDelivered += Math.Max(deliveredData, 0);
        long pipe = Pipe(sndUna, sndMax);
        long ssthresh = cc.Ssthresh;
        long sndcnt;
        if (pipe > ssthresh)
        {
            // proportional rate reduction
            sndcnt = ((_prrDelivered * ssthresh) + _recoverFs - 1) / _recoverFs - _prrOut;
        }
        else
        {
            // slow start reduction bound (PRR-SSRB)
            long limit = Math.Max(_prrDelivered - _prrOut, deliveredData) + smss;
            sndcnt = Math.Min(ssthresh - pipe, limit);
        }

        if (sndcnt < 0)
        {
            sndcnt = 0;
        }

        if (_prrOut == 0 && sndcnt < smss && HasUnsentLoss())
        {
            sndcnt = smss; // fast retransmit: the first lost segment goes out at once (as Linux does)
        }

        cc.SetCwnd((int)Math.Min(pipe + sndcnt, int.MaxValue / 2));
    }

    /// <summary>
    /// Arms the tail loss probe (RFC 8985 §7.2) when <paramref name="eligible"/> (SACK on, not in recovery, an RTT
    /// sample, data outstanding, synchronized) and no probe was sent since the last new ACK; only when it would fire
    /// before the RTO at <paramref name="rtoAt"/>.
    /// </summary>
    public void ArmTailLossProbe(TimeSpan now, bool eligible, int outstanding, int smss, in RttEstimator rtt, TimeSpan rtoAt)
    {
        if (!eligible || _tlpFired)
        {
            TailLossProbeAt = TimeSpan.MaxValue;
            return;
        }

        // RFC 8985 §7.2: PTO = 2·SRTT (clock-resolution SRTT from the send log), plus the worst-case delayed ACK when a
        // single segment is outstanding; otherwise a 2 ms allowance for timer and scheduling slack (as Linux adds).
        var pto = RackSrtt(rtt) * 2;
        pto += outstanding <= smss ? TimeSpan.FromMilliseconds(200) : TimeSpan.FromMilliseconds(2);

        var at = now + pto;
        TailLossProbeAt = at < rtoAt ? at : TimeSpan.MaxValue;
    }

    /// <summary>Stops the tail loss probe timer (it fired, the RTO fired, or the connection closed).</summary>
    public void StopTailLossProbe() => TailLossProbeAt = TimeSpan.MaxValue;

    /// <summary>A tail loss probe is being sent: no other until new data is acknowledged or an RTO.</summary>
    public void OnTailLossProbeSent()
    {
        _tlpFired = true;
        TailLossProbes++;
    }

}
