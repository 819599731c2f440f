using Sharptun.NetStack.Wire;

namespace Sharptun.NetStack.Tcp;

internal sealed partial class TcpConnection
{
    /// <summary>
    /// Sends whatever the state, windows and timers allow: SYN, loss-recovery retransmissions, new data
    /// (Nagle, RFC 896; sender SWS avoidance, RFC 9293 §3.8.6.2.1), FIN, and a pending ACK.
    /// </summary>
    internal void Dispatch(TimeSpan now)
    {
        if (State is TcpState.Closed or TcpState.TimeWait)
        {
            return;
        }

        if (_retryAt != TimeSpan.MaxValue && now < _retryAt)
        {
            return; // IP layer pushed back: retry from the timer
        }

        _retryAt = TimeSpan.MaxValue;
        bool force = _forceOne;
        _forceOne = false;
        for (int guard = 0; guard < 4096; guard++)
        {
            if (State is TcpState.SynSent or TcpState.SynReceived)
            {
                if (_sndNxt == _iss)
                {
                    if (!EmitSyn(now))
                    {
                        return;
                    }

                    continue;
                }

                break;
            }

            if (_rexmitPending)
            {
                _rexmitPending = false;
                int len = Math.Min(_smss, SentDataEnd - _sndUna); // what was sent: a retransmission, never new data

                if (!SendData(now, _sndUna, Math.Max(len, 0), retransmit: true, out int sent))
                {
                    return;
                }

                if (_highRxt < _sndUna + sent)
                {
                    _highRxt = _sndUna + sent;
                }

                continue;
            }

            if (_inRecovery && _sackEnabled)
            {
                // RFC 6675 §5 step (C): while cwnd - pipe >= SMSS, NextSeg()
                if (_cc.Cwnd - _recovery.Pipe(_sndUna, _sndMax) < _smss)
                {
                    break;
                }

                if (_recovery.NextLostHole(_sndUna, _smss, DataEnd, _finQueued && !_finAcked, FinSeq, out var holeSeq, out var holeLen))
                {
                    if (!SendData(now, holeSeq, holeLen, retransmit: true, out int sent))
                    {
                        return;
                    }

                    _highRxt = holeSeq + sent;
                    continue;
                }
            }

            // New data (or go-back-N resend after an RTO) and FIN.
            var dataEnd = DataEnd;
            int avail = Math.Max(dataEnd - _sndNxt, 0);
            long wndRoom = _sndWnd - (_sndNxt - _sndUna);
            long flight = _inRecovery && _sackEnabled ? _recovery.Pipe(_sndUna, _sndMax) : _sndNxt - _sndUna;
            long cwndRoom = _cc.Cwnd - flight;
            int n = (int)Math.Max(0, Math.Min(Math.Min(avail, _smss), Math.Min(wndRoom, cwndRoom)));
            bool finUnsent = _finQueued && !_finAcked && _sndNxt <= FinSeq;
            if (force && n == 0 && avail > 0 && wndRoom > 0)
            {
                n = (int)Math.Min(Math.Min(avail, _smss), wndRoom);
            }

            if (n > 0)
            {
                bool finNow = finUnsent && _sndNxt + n == FinSeq;
                bool idle = _sndNxt == _sndUna;
                bool send = n == _smss                                              // full segment
                    || (n == avail && (idle || NoDelay || _push || finNow))        // Nagle (RFC 896)
                    || (_maxSndWnd > 0 && n >= _maxSndWnd / 2 && (idle || NoDelay)) // SWS: ≥ Fs·max window
                    || _sndNxt < _sndMax                                           // go-back-N resend
                    || force;
                if (!send)
                {
                    break;
                }

                force = false;
                if (!SendData(now, _sndNxt, n, retransmit: _sndNxt < _sndMax))
                {
                    return;
                }

                continue;
            }

            if (finUnsent && avail == 0 && _sndNxt == FinSeq && (cwndRoom > 0 || force))
            {
                if (!SendData(now, _sndNxt, 0, retransmit: _sndNxt < _sndMax))
                {
                    return;
                }

                continue;
            }

            break;
        }

        if (DataEnd - _sndNxt <= 0)
        {
            _push = false;
        }

        // Persist timer (RFC 9293 §3.8.6.1): data waiting, nothing in flight, and the window (or SWS) holds it back.
        if (IsSynchronized && _sndUna == _sndMax && _rtoAt == TimeSpan.MaxValue && _persistAt == TimeSpan.MaxValue
            && (DataEnd - _sndNxt > 0))
        {
            long t = Math.Min(_rtt.Rto.Ticks << Math.Min(_persistBackoff, 10), TcpConstants.MaxRto.Ticks);
            _persistAt = now + TimeSpan.FromTicks(t);
        }

        if (_ackNow || _delAckAt <= now)
        {
            SendAckNow(now);
        }
    }

    private bool _forceOne;

    private SeqNumber DataEnd => DataStart + _tx.Count;

    /// <summary>End of the data sent so far (SND.MAX without our FIN).</summary>
    private SeqNumber SentDataEnd => _sndMax > DataEnd ? DataEnd : _sndMax;

    private bool EmitSyn(TimeSpan now)
    {
        var flags = State == TcpState.SynReceived ? TcpFlags.Syn | TcpFlags.Ack : TcpFlags.Syn;
        var repr = BuildRepr(now, flags, _iss);
        if (!_layer.Transmit(this, repr, 0))
        {
            _retryAt = now + TimeSpan.FromMilliseconds(1);
            _layer.NoteBlocked(this);
            return false;
        }

        AfterAckSent(repr);
        if (_sndMax == _iss)
        {
            _sndMax = _iss + 1;
        }
        else
        {
            RetransmittedSegments++;
        }

        _sndNxt = _iss + 1;
        if (_rtoAt == TimeSpan.MaxValue)
        {
            _rtoAt = now + _rtt.Rto;
        }

        if (!_tsEnabled && _retransmits == 0 && !_rttTiming)
        {
            _rttTiming = true;
            _rttSeq = _iss;
            _rttStart = now;
        }

        return true;
    }

    /// <summary>Sends up to <paramref name="len"/> bytes from <paramref name="seq"/> on (see the overload with <c>sent</c>).</summary>
    private bool SendData(TimeSpan now, SeqNumber seq, int len, bool retransmit) => SendData(now, seq, len, retransmit, out _);

    /// <summary>
    /// Sends [seq, seq+sent) from the send buffer, with FIN when it ends at the FIN position. <paramref name="sent"/> is
    /// <paramref name="len"/> cut to the data that fits next to this segment's options (SACK blocks make it shorter than
    /// SMSS; RFC 6691 §2, RFC 9293 §3.7.1), so no segment exceeds the MTU; the rest goes in a later segment.
    /// </summary>
    private bool SendData(TimeSpan now, SeqNumber seq, int len, bool retransmit, out int sent)
    {
        var repr = BuildRepr(now, TcpFlags.Ack, seq, len);
        len = Math.Min(len, PayloadRoom(_sndMss, repr));
        sent = len;
        var end = seq + len;
        bool fin = _finQueued && !_finAcked && end == FinSeq;
        var flags = TcpFlags.Ack;
        if (fin)
        {
            flags |= TcpFlags.Fin;
        }

        if (len > 0 && end == DataEnd)
        {
            flags |= TcpFlags.Psh;
        }

        repr = repr with { Flags = flags };
        if (len > 0)
        {
            _tx.Peek(seq - DataStart, _layer.SegmentBuffer.Slice(repr.HeaderLength, len));
        }

        if (!_layer.Transmit(this, repr, len))
        {
            OnTransmitBlocked(now);
            return false;
        }

        AfterAckSent(repr);
        var newEnd = end + (fin ? 1 : 0);
        if (newEnd > _sndNxt)
        {
            _sndNxt = newEnd;
        }

        _recovery.OnSent(now, seq, newEnd, retransmit, _inRecovery); // send log; PRR and undo count it in recovery

        if (retransmit)
        {
            RetransmittedSegments++;
            RetransmittedBytes += len;

            if (_rttTiming && seq <= _rttSeq)
            {
                _rttTiming = false; // Karn: no sample from retransmitted data
            }
        }
        else if (!_tsEnabled && !_rttTiming && len > 0)
        {
            _rttTiming = true;
            _rttSeq = seq;
            _rttStart = now;
        }

        if (newEnd > _sndMax)
        {
            _sndMax = newEnd;
        }

        if (_rtoAt == TimeSpan.MaxValue)
        {
            _rtoAt = now + _rtt.Rto; // RFC 6298 §5.1
        }

        _persistAt = TimeSpan.MaxValue;
        if (!retransmit)
        {
            ArmTailLossProbe(now);
        }

        return true;
    }

    /// <summary>Sends a pure ACK now (also used as the RFC 5961 challenge ACK).</summary>
    internal void SendAckNow(TimeSpan now)
    {
        if (State is TcpState.SynSent or TcpState.Closed)
        {
            return;
        }

        var repr = BuildRepr(now, TcpFlags.Ack, AcceptableSeq);
        if (_layer.Transmit(this, repr, 0))
        {
            AfterAckSent(repr);
        }
        else
        {
            OnTransmitBlocked(now);
        }
    }

    /// <summary>
    /// SEG.SEQ of a segment without data: SND.NXT (our <see cref="_sndMax"/>; <see cref="_sndNxt"/> rewinds for
    /// go-back-N), but never beyond the peer's window, SND.UNA + SND.WND (as Linux's tcp_acceptable_seq). After data
    /// past the window was lost, the peer's RCV.NXT is SND.UNA and, with its window closed, RFC 9293 §3.10.7.4 accepts a
    /// zero-length segment (and so processes its ACK) only at SEG.SEQ = RCV.NXT: an ACK at SND.NXT would be dropped,
    /// and the peer, its data acknowledged by nothing it accepts, would wait for an ACK that never comes.
    /// </summary>
    private SeqNumber AcceptableSeq
    {
        get
        {
            var windowEnd = _sndUna + (int)Math.Min(_sndWnd, int.MaxValue / 2);
            // A peer that scales its window announces it in units of 2^shift, rounded down: an edge it offered
            // earlier can come back up to 2^shift - 1 bytes to the left, with our data up to the old edge already
            // accepted. SND.NXT is then still its RCV.NXT, and an ACK at the rounded edge would fall below it and be
            // dropped by both sides' acceptability tests, for ever (a deadlock once both ends only send pure ACKs).
            // Linux's tcp_acceptable_seq allows the same slack.
            if (_sndMax > windowEnd && _sndMax - windowEnd < (1 << Math.Max(_sndShift, _rcvShift)))
            {
                return _sndMax;
            }

            return _sndMax > windowEnd ? windowEnd : _sndMax;
        }
    }

    /// <summary>
    /// The IP layer's outbound queue was full: retry from the timer, and keep the ACK owed. The segment was built, so
    /// its acknowledgment and window (the advertised right edge already moved) count as announced only once one is
    /// sent: without <see cref="_ackNow"/> the retry would find nothing to send and a window update would be lost for
    /// good (later reads see the edge already moved), leaving the peer to its persist timer, whose backoff reaches a
    /// minute.
    /// </summary>
    private void OnTransmitBlocked(TimeSpan now)
    {
        _retryAt = now + TimeSpan.FromMilliseconds(1);
        _layer.NoteBlocked(this);
        if (IsSynchronized)
        {
            _ackNow = true;
        }
    }

    /// <summary>Zero-window / keepalive probe: an ACK with SEG.SEQ = SND.UNA - 1 that the peer must answer.</summary>
    private void SendProbe(TimeSpan now)
    {
        var repr = BuildRepr(now, TcpFlags.Ack, _sndUna - 1);
        if (_layer.Transmit(this, repr, 0))
        {
            AfterAckSent(repr);
        }
    }

    private void AfterAckSent(in TcpRepr repr)
    {
        if (repr.Has(TcpFlags.Ack))
        {
            _ackNow = false;
            _unackedBytes = 0;
            _delAckAt = TimeSpan.MaxValue;
            _lastAckSent = repr.Ack;
            _dsackPending = false;
        }
    }

    /// <summary>
    /// RFC 6691 §2 / RFC 9293 §3.7.1: data bytes one segment can carry next to <paramref name="repr"/>'s options when
    /// data + options must not exceed the effective send MSS <paramref name="sndMss"/>.
    /// </summary>
    internal static int PayloadRoom(int sndMss, in TcpRepr repr) => Math.Max(sndMss - repr.OptionsLength, 0);

    /// <summary>
    /// SACK blocks (RFC 2018 §3: 2 + 8n option bytes, padded to 4 + 8n) that fit in a segment already carrying
    /// <paramref name="otherOptionsLength"/> option bytes: never beyond the 40-byte option space, and on a data segment
    /// (<paramref name="payload"/> &gt; 0) never so many that less than min(payload, SMSS/2) bytes of data remain
    /// within <paramref name="sndMss"/>: the SACK blocks cost data bytes, they never push a segment past the MTU.
    /// </summary>
    internal static int SackBlocksThatFit(int sndMss, int otherOptionsLength, int payload, int smss)
    {
        int space = TcpPacket.MaxLength - TcpPacket.MinLength - otherOptionsLength;
        if (payload > 0)
        {
            space = Math.Min(space, sndMss - otherOptionsLength - Math.Min(payload, Math.Max(smss / 2, 1)));
        }

        return Math.Clamp((space - 4) / 8, 0, 4);
    }

    /// <summary>Builds the header for a segment meant to carry <paramref name="payload"/> data bytes (0 for pure ACKs).</summary>
    private TcpRepr BuildRepr(TimeSpan now, TcpFlags flags, SeqNumber seq, int payload = 0)
    {
        var r = new TcpRepr
        {
            SourcePort = Tuple.LocalPort,
            DestinationPort = Tuple.RemotePort,
            Seq = seq,
            Ack = _rcvNxt,
            Flags = flags,
        };

        if ((flags & TcpFlags.Syn) != 0)
        {
            bool active = State == TcpState.SynSent;
            int synWnd = SynWindow();
            if (!active && _rcvAdvRight < _rcvNxt + synWnd)
            {
                _rcvAdvRight = _rcvNxt + synWnd;
            }

            bool ws = active ? _options.EnableWindowScaling : _wsEnabled;
            bool ts = active ? _options.EnableTimestamps : _tsEnabled;
            r = r with
            {
                Window = (ushort)synWnd, // RFC 7323 §2.2: never scaled in a SYN
                Mss = (ushort)Math.Min(_rcvMss, 65535),
                WindowScale = ws ? (sbyte)_rcvShift : (sbyte)-1,
                SackPermitted = active ? _options.EnableSack : _sackEnabled,
                HasTimestamp = ts,
                TsVal = ts ? TsClock(now) : 0,
                TsEcr = ts && !active ? _tsRecent : 0,
            };
            return r;
        }

        UpdateReceiveWindow();
        r = r with { Window = (ushort)Math.Min((_rcvAdvRight - _rcvNxt) >> _rcvShift, 65535) };
        if (_tsEnabled)
        {
            r = r with { HasTimestamp = true, TsVal = TsClock(now), TsEcr = _tsRecent };
        }

        if (_sackEnabled && (_ooo.Count > 0 || _dsackPending) && (flags & TcpFlags.Rst) == 0)
        {
            // RFC 2018 §4: the first block reports the most recently received segment;
            // RFC 2883 §4: a D-SACK block for a duplicate goes before it.
            int max = SackBlocksThatFit(_sndMss, r.OptionsLength, payload, _smss);
            int n = 0;
            if (_dsackPending && n < max)
            {
                r = r.WithSack(n++, _dsackBlock);
            }

            int first = _ooo.LastTouched;
            if (first >= 0 && first < _ooo.Count && n < max)
            {
                r = r.WithSack(n++, _ooo[first]);
            }

            for (int i = _ooo.Count - 1; i >= 0 && n < max; i--)
            {
                if (i != first)
                {
                    r = r.WithSack(n++, _ooo[i]);
                }
            }

            r = r with { SackCount = n };
        }

        return r;
    }

    /// <summary>
    /// Receiver side of SWS avoidance (RFC 9293 §3.8.6.2.2, RFC 1122 §4.2.3.3): the right edge moves only when it
    /// can grow by at least min(RCV.BUFF/2, MSS); it never moves left (no window shrinking).
    /// </summary>
    private void UpdateReceiveWindow()
    {
        var candidate = CandidateRightEdge();
        if (candidate > _rcvAdvRight)
        {
            int inc = candidate - _rcvAdvRight;
            int cur = _rcvAdvRight - _rcvNxt;
            if (inc >= Math.Min(_options.ReceiveBufferSize / 2, _rcvMss))
            {
                _rcvAdvRight = candidate;
            }
        }

        if (_rcvAdvRight < _rcvNxt)
        {
            _rcvAdvRight = _rcvNxt;
        }
    }

    /// <summary>The window our SYN or SYN-ACK offers (unscaled, RFC 7323 §2.2): the ring within the connection's share.</summary>
    private int SynWindow()
    {
        if (_synWindow == 0)
        {
            _synWindow = (int)Math.Min(Math.Min(RxFree, _layer.NewConnectionWindowShare), 65535);
        }

        return _synWindow;
    }

    private SeqNumber CandidateRightEdge()
    {
        // the ring's free space, within this connection's share of the stack-wide receive budget (what it holds
        // counts against the share: buffered + offered <= share)
        long wnd = Math.Min(Math.Min((long)RxFree, Math.Max(0, _layer.ReceiveWindowShare - _rx.Count)), 65535L << _rcvShift);
        wnd = (wnd >> _rcvShift) << _rcvShift;
        return _rcvNxt + (int)wnd;
    }

    /// <summary>After the application read: announce a window that opened enough (RFC 1122 §4.2.3.3).</summary>
    private void MaybeSendWindowUpdate(TimeSpan now)
    {
        if (!IsSynchronized || _peerFin || State is TcpState.TimeWait)
        {
            return;
        }

        var candidate = CandidateRightEdge();
        int inc = candidate - _rcvAdvRight;
        int cur = _rcvAdvRight - _rcvNxt;
        if (inc >= Math.Min(_options.ReceiveBufferSize / 2, _rcvMss) && cur < _options.ReceiveBufferSize / 2)
        {
            SendAckNow(now);
            _layer.Schedule(this);
        }
    }
}
