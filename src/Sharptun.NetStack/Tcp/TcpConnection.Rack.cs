using Sharptun.NetStack.Wire;

namespace Sharptun.NetStack.Tcp;

/// <summary>
/// SACK-based loss detection and recovery sending rate:
/// RACK (RFC 8985 §6): every sent segment keeps its latest transmission time; a segment is lost when a segment sent
/// after it was delivered and more than RACK.rtt + RACK.reo_wnd has passed since it was sent. Time-based marking is
/// robust to reordering (the window adapts through D-SACK, RFC 8985 §6.2 step 4) and detects lost retransmissions.
/// PRR (RFC 6937): during recovery the sending rate follows the delivery rate down to ssthresh.
/// D-SACK undo (RFC 2883 §4, RFC 8985 §8 / Linux's undo_retrans): a recovery whose every retransmission is reported as a
/// duplicate was spurious, so the congestion window reduction is undone.
/// </summary>
internal sealed partial class TcpConnection
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
    private TimeSpan _rackAt = TimeSpan.MaxValue;   // RACK reordering timer

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

    internal long DsacksReceived { get; private set; }
    internal long SpuriousRecoveries { get; private set; }
    internal bool ReorderingSeen => _reorderingSeen;
    internal bool InRecovery => _inRecovery;
    internal long PipeBytes => Pipe();

    private void AllocateSegmentLog()
    {
        // One record per full-sized segment of the send buffer, plus slack for splits; small segments merge when full.
        int cap = Math.Clamp((_options.SendBufferSize / Math.Max(_smss, 256)) + 32, 64, 8192);
        _segs = new SentSegment[cap];
    }

    private ref SentSegment Seg(int i) => ref _segs[_segHead + i];

    /// <summary>Makes room at the end of the deque; false when the log is full.</summary>
    private bool EnsureSegRoom()
    {
        if (_segHead + _segCount < _segs.Length)
        {
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

    /// <summary>After an RTO: the scoreboard is cleared and everything is resent (go-back-N).</summary>
    private void ResetSegmentMarks()
    {
        for (int i = 0; i < _segCount; i++)
        {
            Seg(i).Flags &= SegEverRetrans;
        }

        _rackAt = TimeSpan.MaxValue;
    }

    /// <summary>RFC 6675 §4 SetPipe from the log: sent, not SACKed, and not lost unless retransmitted since.</summary>
    private long Pipe()
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

        var logEnd = _segCount > 0 ? Seg(_segCount - 1).End : _sndUna;
        if (_sndMax > logEnd)
        {
            pipe += _sndMax - logEnd;
        }

        return pipe;
    }

    /// <summary>RFC 6675 NextSeg rule (1) with RACK's marks: the first lost segment not yet retransmitted.</summary>
    private bool NextLostHole(out SeqNumber seq, out int len)
    {
        for (int i = 0; i < _segCount; i++)
        {
            ref var r = ref Seg(i);
            if ((r.Flags & (SegLost | SegRetransLost | SegSacked)) != SegLost || r.End <= _sndUna)
            {
                continue;
            }

            seq = SeqNumber.Max(r.Start, _sndUna);
            len = Math.Min(Math.Min(r.End - seq, _smss), Math.Max(DataEnd - seq, 0));
            if (len > 0 || (_finQueued && !_finAcked && seq == FinSeq))
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
    private bool RackOnAck(TimeSpan now)
    {
        // steps 1–3 over newly delivered segments (cumulatively acknowledged or newly SACKed)
        int sackIdx = 0;
        for (int i = 0; i < _segCount; i++)
        {
            ref var r = ref Seg(i);
            bool delivered;
            if (r.End <= _sndUna)
            {
                delivered = (r.Flags & SegSacked) == 0;
            }
            else
            {
                if ((r.Flags & SegSacked) != 0)
                {
                    continue;
                }

                while (sackIdx < _sacked.Count && _sacked[sackIdx].Right <= r.Start)
                {
                    sackIdx++;
                }

                delivered = sackIdx < _sacked.Count && _sacked[sackIdx].Left <= r.Start && r.End <= _sacked[sackIdx].Right;
                if (!delivered && sackIdx >= _sacked.Count)
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

            var rtt = now - r.XmitTime;
            if ((r.Flags & SegEverRetrans) != 0 && rtt < RackMinRtt)
            {
                // step 2: may have been delivered by the original transmission; ambiguous
            }
            else
            {
                _rackRtt = rtt;
                if ((r.Flags & SegEverRetrans) == 0)
                {
                    PreciseRttSample(rtt);
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
        while (k < _segCount && Seg(k).End <= _sndUna)
        {
            k++;
        }

        _segHead += k;
        _segCount -= k;
        if (_segCount == 0)
        {
            _segHead = 0;
        }

        if (_rackFack < _sndUna)
        {
            _rackFack = _sndUna;
        }

        return RackDetectLoss(now);
    }

    // RTT measured from the send log at clock resolution (the timestamp option only gives milliseconds, which reads
    // as 0 on a LAN or TUN): used for RACK's min_RTT/SRTT (reordering window) and the TLP timeout.
    private TimeSpan _preciseMinRtt = TimeSpan.MaxValue;
    private TimeSpan _preciseSrtt;

    private void PreciseRttSample(TimeSpan rtt)
    {
        if (rtt < _preciseMinRtt)
        {
            _preciseMinRtt = rtt;
        }

        _preciseSrtt = _preciseSrtt == TimeSpan.Zero ? rtt : (_preciseSrtt * 7 / 8) + (rtt / 8);
    }

    internal TimeSpan PreciseSrttForTests => _preciseSrtt;
    internal TimeSpan PreciseMinRttForTests => _preciseMinRtt;

    private TimeSpan RackMinRtt => _preciseMinRtt != TimeSpan.MaxValue ? _preciseMinRtt : _rtt.MinRtt;

    private TimeSpan RackSrtt => _preciseSrtt != TimeSpan.Zero ? _preciseSrtt : _rtt.Srtt;

    /// <summary>RFC 8985 §6.2 step 4: the reordering window.</summary>
    private TimeSpan ReoWnd()
    {
        if (!_reorderingSeen && (_inRecovery || _sacked.TotalBytes() >= (long)TcpConstants.DupThresh * _smss))
        {
            return TimeSpan.Zero;
        }

        var w = RackMinRtt / 4 * _reoWndMult;
        var srtt = RackSrtt;
        return w < srtt ? w : srtt;
    }

    /// <summary>RFC 8985 §6.2 step 5 (RACK_detect_loss) and the reordering timer.</summary>
    private bool RackDetectLoss(TimeSpan now)
    {
        _rackAt = TimeSpan.MaxValue;
        if (_rackXmit == TimeSpan.MinValue)
        {
            return HasUnsentLoss();
        }

        var reo = ReoWnd();
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
            _rackAt = now + timeout;
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

    /// <summary>The RACK reordering timer fired (RFC 8985 §6.3): re-run detection and start recovery if needed.</summary>
    private void OnRackTimer(TimeSpan now)
    {
        _rackAt = TimeSpan.MaxValue;
        if (!_sackEnabled || _sndUna == _sndMax || !IsSynchronized)
        {
            return;
        }

        if (RackDetectLoss(now))
        {
            long delivered = 0;
            if (!_inRecovery)
            {

                EnterRecovery(now);
                delivered = _sacked.TotalBytes(); // what arrived beyond the hole while the timer ran (PRR's DeliveredData)
            }

            PrrUpdate(delivered);
            Dispatch(now);
        }
    }

    /// <summary>
    /// RFC 2883 §4: the first SACK block reports a duplicate when it lies below the cumulative ACK or inside the second
    /// block. Adapts the reordering window (RFC 8985 §6.2 step 4) and counts toward undoing a spurious recovery.
    /// </summary>
    private void OnDsack(TimeSpan now, SackBlock b)
    {
        DsacksReceived++;
        if (!_dsackRoundValid || _dsackRound <= _sndUna)
        {
            _reoWndMult++;
            _dsackRound = _sndMax;
            _dsackRoundValid = true;
            _reoWndPersist = 16;
        }

        // Undo: a duplicate of data retransmitted in the current (or just finished) episode.
        if (_undoValid && b.Left >= _undoMarker && _undoRetrans > 0)
        {
            _undoRetrans--;
            if (_undoRetrans == 0)
            {
                UndoRecovery(now);
            }
        }
    }

    private void UndoRecovery(TimeSpan now)
    {
        _undoValid = false;
        SpuriousRecoveries++;
        _cc.Undo(_priorCwnd, _priorSsthresh);
        if (_inRecovery)
        {
            // RFC 8985 §8: the losses were spurious; stop retransmitting what was marked lost
            _inRecovery = false;
            for (int i = 0; i < _segCount; i++)
            {
                Seg(i).Flags &= unchecked((byte)~(SegLost | SegRetransLost));
            }

            _recover = _sndMax;
        }

        _ = now;
    }

    private void PrrStart()
    {
        _prrDelivered = 0;
        _prrOut = 0;
        _recoverFs = Math.Max(_sndMax - _sndUna, 1);
        _priorCwnd = _cc.Cwnd;
        _priorSsthresh = _cc.Ssthresh;
    }

    /// <summary>RFC 6937 §3 on each ACK in recovery: sets cwnd = pipe + sndcnt.</summary>
    private void PrrUpdate(long deliveredData)
    {
        _prrDelivered += Math.Max(deliveredData, 0);
        long pipe = Pipe();
        long ssthresh = _cc.Ssthresh;
        long sndcnt;
        if (pipe > ssthresh)
        {
            // proportional rate reduction
            sndcnt = ((_prrDelivered * ssthresh) + _recoverFs - 1) / _recoverFs - _prrOut;
        }
        else
        {
            // slow start reduction bound (PRR-SSRB)
            long limit = Math.Max(_prrDelivered - _prrOut, deliveredData) + _smss;
            sndcnt = Math.Min(ssthresh - pipe, limit);
        }

        if (sndcnt < 0)
        {
            sndcnt = 0;
        }

        if (_prrOut == 0 && sndcnt < _smss && HasUnsentLoss())
        {
            sndcnt = _smss; // fast retransmit: the first lost segment goes out at once (as Linux does)
        }

        _cc.SetCwnd((int)Math.Min(pipe + sndcnt, int.MaxValue / 2));
    }
}
