using System.Net.Sockets;
using Sharptun.NetStack.Wire;

namespace Sharptun.NetStack.Tcp;

internal sealed partial class TcpConnection
{
    /// <summary>SEGMENT ARRIVES (RFC 9293 §3.10.7) for a connection in any state but LISTEN/CLOSED/TIME-WAIT.</summary>
    public void OnSegment(TimeSpan now, in TcpRepr seg, ReadOnlySpan<byte> payload)
    {
        if (State == TcpState.SynSent)
        {
            OnSegmentSynSent(now, seg);
        }
        else if (State != TcpState.Closed)
        {
            OnSegmentSynchronized(now, seg, payload);
        }

        if (State != TcpState.Closed)
        {
            if (_layer.Batching && _ooo.Count == 0)
            {
                // one of a batch of segments (NetworkStack.Write): answer once, after the batch (TcpLayer.EndBatch),
                // with one ACK for all of its in-order data, as Linux answers a GRO super-segment. A hole is still
                // answered at once, so the sender sees every duplicate ACK and its SACK blocks (RFC 5681 §4.2).
                _layer.Defer(this);
                return;
            }

            Dispatch(now);
            _layer.Schedule(this);
        }
    }

    /// <summary>In-order data arrived during a batch: the reader is woken when the batch ends (<see cref="FlushDeferred"/>).</summary>
    private bool _readDeferred;

    /// <summary>On <see cref="TcpLayer"/>'s list of connections to answer when the batch ends (under Gate).</summary>
    internal bool Deferred { get; set; }

    /// <summary>The end of a batch of segments: wake the reader once, then send what the batch's segments call for.</summary>
    internal void FlushDeferred(TimeSpan now)
    {
        if (_readDeferred)
        {
            _readDeferred = false;
            ReadSignal.Set();
        }

        if (_writeDeferred)
        {
            _writeDeferred = false;
            WriteSignal.Set();
        }

        if (State != TcpState.Closed && !Removed)
        {
            Dispatch(now);
            _layer.Schedule(this);
        }
    }

    // RFC 9293 §3.10.7.3
    private void OnSegmentSynSent(TimeSpan now, in TcpRepr seg)
    {
        bool hasAck = seg.Has(TcpFlags.Ack);
        if (hasAck && (seg.Ack <= _iss || seg.Ack > _sndMax))
        {
            if (!seg.Has(TcpFlags.Rst))
            {
                _layer.SendControl(this, TcpFlags.Rst, seg.Ack, default);
            }

            return;
        }

        if (seg.Has(TcpFlags.Rst))
        {
            if (hasAck)
            {
                Terminate(SocketError.ConnectionRefused); // "error: connection reset" → refused for a connect
            }

            return;
        }

        if (!seg.Has(TcpFlags.Syn))
        {
            return;
        }

        _irs = seg.Seq;
        _rcvNxt = seg.Seq + 1;
        _rcvAdvRight = _rcvNxt + SynWindow(); // what our SYN advertised (unscaled)
        _lastAckSent = _rcvNxt;
        NegotiateFromSyn(now, seg, passive: false);
        _sndWl1 = seg.Seq;
        _sndWl2 = seg.Ack;
        _sndWnd = seg.Window; // unscaled in SYN segments (RFC 7323 §2.2)
        _maxSndWnd = _sndWnd;
        if (hasAck)
        {
            EnsureBuffers();
            ProcessNewAck(now, seg, seg.Ack - _sndUna);
            State = TcpState.Established;
            _ackNow = true;
            ArmKeepAlive(now);
            ConnectSignal.Set();
            WriteSignal.Set();
        }
        else
        {
            // Simultaneous open (RFC 9293 §3.5 figure 8): SYN-SENT → SYN-RECEIVED, resend our SYN with ACK.
            State = TcpState.SynReceived;
            _sndNxt = _iss;
            _rtoAt = TimeSpan.MaxValue;
        }
    }

    private void OnSegmentSynchronized(TimeSpan now, in TcpRepr seg, ReadOnlySpan<byte> payload)
    {
        bool rst = seg.Has(TcpFlags.Rst);
        bool syn = seg.Has(TcpFlags.Syn);
        bool fin = seg.Has(TcpFlags.Fin);
        int segLen = payload.Length + (syn ? 1 : 0) + (fin ? 1 : 0);
        int rcvWnd = Math.Max(_rcvAdvRight - _rcvNxt, 0);

        // RFC 7323 §5.3 PAWS: reject a segment whose TSval is older than TS.Recent.
        if (_tsEnabled && seg.HasTimestamp && !rst
            && unchecked((int)(seg.TsVal - _tsRecent)) < 0
            && now - _tsRecentAge < TcpConstants.PawsIdleLimit)
        {
            _layer.Stats.PawsRejected++;
            if (payload.Length > 0 && seg.Seq < _rcvNxt && _rcvNxt - seg.Seq < int.MaxValue / 2)
            {
                // an old duplicate: report it as Linux does (RFC 2883 §4.1)
                var dupEnd = seg.Seq + payload.Length;
                NoteDuplicate(seg.Seq, dupEnd <= _rcvNxt ? dupEnd : _rcvNxt);
            }

            SendDuplicateAck(now, segLen, syn);
            return;
        }

        // RFC 9293 §3.10.7.4 first: sequence number acceptability.
        bool acceptable;
        if (segLen == 0)
        {
            acceptable = rcvWnd == 0 ? seg.Seq == _rcvNxt : InWindow(seg.Seq, rcvWnd);
        }
        else
        {
            acceptable = rcvWnd != 0 && (InWindow(seg.Seq, rcvWnd) || InWindow(seg.Seq + (segLen - 1), rcvWnd));
        }

        if (!acceptable && rcvWnd == 0 && seg.Seq == _rcvNxt)
        {
            // Zero window: still process the ACK (RFC 9293 §3.10.7.4 "special allowance"), drop text and FIN.
            acceptable = true;
            payload = default;
            fin = false;
        }

        if (!acceptable)
        {
            if (!rst)
            {
                if (payload.Length > 0 && seg.Seq < _rcvNxt)
                {
                    // RFC 2883 §4.1: report the duplicate (seq arithmetic is safe: acceptability bounds the distance)
                    var dupEnd = seg.Seq + payload.Length;
                    NoteDuplicate(seg.Seq, dupEnd <= _rcvNxt ? dupEnd : _rcvNxt);
                }

                SendDuplicateAck(now, segLen, syn);
            }

            return;
        }

        // second: RST (RFC 5961 §3.2)
        if (rst)
        {
            if (seg.Seq == _rcvNxt)
            {
                if (State == TcpState.SynReceived && Listener != null && !Accepted)
                {
                    Terminate(SocketError.ConnectionReset);
                    return;
                }

                Terminate(State is TcpState.Closing or TcpState.LastAck or TcpState.TimeWait
                    ? SocketError.Success
                    : SocketError.ConnectionReset);
            }
            else
            {
                SendChallengeAck(now);
            }

            return;
        }

        // fourth: SYN in a synchronized state → challenge ACK (RFC 5961 §4.2)
        if (syn)
        {
            if (State == TcpState.SynReceived && seg.Seq == _irs && !seg.Has(TcpFlags.Ack))
            {
                _sndNxt = _iss; // retransmitted SYN: resend our SYN-ACK
                return;
            }

            SendChallengeAck(now);
            return;
        }

        // fifth: ACK
        if (!seg.Has(TcpFlags.Ack))
        {
            return;
        }

        // RFC 7323 §4.3: update TS.Recent when the segment covers Last.ACK.sent
        if (_tsEnabled && seg.HasTimestamp && seg.Seq <= _lastAckSent
            && unchecked((int)(seg.TsVal - _tsRecent)) >= 0)
        {
            _tsRecent = seg.TsVal;
            _tsRecentAge = now;
        }

        if (State == TcpState.SynReceived)
        {
            if (seg.Ack > _sndUna && seg.Ack <= _sndMax)
            {
                EnsureBuffers();
                State = TcpState.Established;
                _sndWnd = (long)seg.Window << _sndShift;
                _maxSndWnd = Math.Max(_maxSndWnd, _sndWnd);
                _sndWl1 = seg.Seq;
                _sndWl2 = seg.Ack;
                ArmKeepAlive(now);
                if (_finQueued)
                {
                    State = TcpState.FinWait1;
                }

                if (Listener != null && !Accepted)
                {
                    Listener.OnEstablished(this);
                }

                ConnectSignal.Set();
                WriteSignal.Set();
            }
            else
            {
                _layer.SendControl(this, TcpFlags.Rst, seg.Ack, default);
                return;
            }
        }

        if (!ProcessAck(now, seg, payload.Length, fin))
        {
            return;
        }

        if (State == TcpState.Closed)
        {
            return;
        }

        _keepAliveProbes = 0;
        ArmKeepAlive(now);

        // seventh: segment text (RFC 9293 §3.10.7.4)
        if (payload.Length > 0)
        {
            if (State is TcpState.Established or TcpState.FinWait1 or TcpState.FinWait2)
            {
                if (_appClosed)
                {
                    // RFC 1122 §4.2.2.13: data after the application closed → RST.
                    _layer.SendControl(this, TcpFlags.Rst | TcpFlags.Ack, _sndMax, _rcvNxt);
                    Terminate(SocketError.ConnectionReset);
                    return;
                }

                if (!AcceptText(now, seg.Seq, payload))
                {
                    fin = false; // truncated: the FIN did not fit either
                }
            }
            else
            {
                fin = false;
            }
        }

        // eighth: FIN
        if (fin)
        {
            var finSeq = seg.Seq + payload.Length;
            if (finSeq == _rcvNxt)
            {
                ProcessPeerFin(now);
            }
            else if (finSeq > _rcvNxt && !_peerFinPending)
            {
                _peerFinPending = true;
                _peerFinSeq = finSeq;
            }
        }
    }

    private bool InWindow(SeqNumber s, int wnd) => s >= _rcvNxt && (s - _rcvNxt) < wnd;

    /// <summary>
    /// The ACK owed to an unacceptable segment (RFC 9293 §3.10.7.4 first, RFC 7323 §5.3, SEG.ACK &gt; SND.NXT). One
    /// that occupies sequence space with data or a FIN is always answered: it may be a retransmission whose ACK was
    /// lost. A pure ACK is answered at most once per <see cref="TcpConstants.OutOfWindowAckInterval"/> (as Linux's
    /// tcp_oow_rate_limited), so an ACK loop or a flood of forged ACKs draws no ACK per segment. A SYN gets the
    /// challenge ACK (§3.10.7.4 fourth: "irrespective of the sequence number"; RFC 5961 §4.2; Linux syn_challenge),
    /// throttled the same way (it used to draw one unthrottled ACK per SYN, since a SYN occupies sequence space).
    /// </summary>
    private void SendDuplicateAck(TimeSpan now, int segLen, bool syn)
    {
        if (syn)
        {
            SendChallengeAck(now);
            return;
        }

        if (segLen == 0)
        {
            if (now < _outOfWindowAckAllowedAt)
            {
                _layer.Stats.OutOfWindowAcksSuppressed++;
                return;
            }

            _outOfWindowAckAllowedAt = now + TcpConstants.OutOfWindowAckInterval;
        }

        SendAckNow(now);
    }

    /// <summary>
    /// RFC 5961 §7 challenge ACK (for §3.2 in-window RST, §4.2 SYN, §5.2 too-old ACK), throttled as Linux does
    /// today: first per connection — at most one per <see cref="TcpConstants.OutOfWindowAckInterval"/>, an interval
    /// shared with the duplicate ACKs of <see cref="SendDuplicateAck"/> — then by the layer's optional global cap,
    /// whose per-second allowance is randomized (<see cref="TcpLayer.TryTakeGlobalChallengeAck"/>). A flood at one
    /// connection therefore cannot starve another one, and the count an off-path attacker observes is not a
    /// fixed, shared counter (CVE-2016-5696).
    /// </summary>
    private void SendChallengeAck(TimeSpan now)
    {
        if (_layer.TryTakeChallengeAck(now, ref _outOfWindowAckAllowedAt))
        {
            SendAckNow(now);
        }
    }

    /// <summary>ACK processing (RFC 9293 §3.10.7.4 fifth; RFC 5961 §5.2). Returns false to drop the segment.</summary>
    private bool ProcessAck(TimeSpan now, in TcpRepr seg, int payloadLength, bool fin)
    {
        var ack = seg.Ack;
        if (ack > _sndMax)
        {
            SendDuplicateAck(now, payloadLength + (fin ? 1 : 0), syn: false); // acks something not yet sent
            return false;
        }

        if (ack < _sndUna - (int)Math.Min(_maxSndWnd, int.MaxValue / 2))
        {
            SendChallengeAck(now); // RFC 5961 §5.2: too old
            return false;
        }

        long newWnd = (long)seg.Window << _sndShift;

        // RFC 2018 / RFC 6675: update the scoreboard from SACK blocks that lie in (SndUna, SndMax].
        var oldUna = _sndUna;
        long sackedBefore = 0;
        bool sackAdvanced = false;
        if (_sackEnabled)
        {
            sackedBefore = _recovery.Scoreboard.TotalBytes();
            for (int i = 0; i < seg.SackCount; i++)
            {
                var b = seg.GetSack(i);
                if (i == 0 && b.Left < b.Right
                    && (b.Right <= ack || (seg.SackCount > 1 && seg.GetSack(1).Left <= b.Left && b.Right <= seg.GetSack(1).Right)))
                {
                    OnDsack(b); // RFC 2883 §4: a duplicate report, not new SACK information
                    continue;
                }

                if (b.Left < b.Right && b.Left > _sndUna && b.Right <= _sndMax)
                {
                    _recovery.Scoreboard.Add(b.Left, b.Right);
                }
            }

            sackAdvanced = _recovery.Scoreboard.TotalBytes() != sackedBefore;
        }

        if (ack > _sndUna)
        {
            int acked = ack - _sndUna;
            ProcessNewAck(now, seg, acked);
        }
        else if (ack == _sndUna && payloadLength == 0 && !fin && newWnd == _sndWnd && _sndMax > _sndUna)
        {
            // RFC 5681 §2 duplicate acknowledgment
            _dupAcks++;
            if (_inRecovery && !_sackEnabled)
            {
                _cc.SetCwnd(_cc.Cwnd + _smss); // RFC 6582 §3.2 step 4: inflate
            }
        }
        else if (sackAdvanced)
        {
            _dupAcks++;
        }

        if (_sackEnabled)
        {
            // RFC 8985 §6.2: time-based loss marking (also finds lost retransmissions and, via the tail loss
            // probe's SACK, tail losses); RFC 6937: the sending rate during recovery.
            bool lost = _recovery.OnAck(now, _sndUna, _inRecovery, _smss, _rtt);
            if (lost && !_inRecovery && _sndMax > _sndUna)
            {
                EnterRecovery(now);
            }

            if (_inRecovery)
            {
                long delivered = (_sndUna - oldUna) + (_recovery.Scoreboard.TotalBytes() - sackedBefore);
                _recovery.PrrUpdate(delivered, _sndUna, _sndMax, _smss, _cc);
            }
        }
        else if (!_inRecovery && _sndMax > _sndUna && _sndUna >= _recover && _dupAcks >= TcpConstants.DupThresh)
        {
            // Loss detection → fast retransmit (RFC 5681 §3.2, RFC 6582 §3.2 step 2)
            EnterRecovery(now);
        }

        // Window update (RFC 9293 §3.10.7.4: SND.WL1/SND.WL2 rule)
        if (ack >= _sndUna && (_sndWl1 < seg.Seq || (_sndWl1 == seg.Seq && _sndWl2 <= ack)))
        {
            bool opened = newWnd > _sndWnd;
            _sndWnd = newWnd;
            _maxSndWnd = Math.Max(_maxSndWnd, newWnd);
            _sndWl1 = seg.Seq;
            _sndWl2 = ack;
            if (opened || newWnd > 0)
            {
                _persistAt = TimeSpan.MaxValue;
                _persistBackoff = 0;
            }
        }

        // FIN acknowledged → state transitions
        if (_finAcked)
        {
            switch (State)
            {
                case TcpState.FinWait1:
                    State = TcpState.FinWait2;
                    if (_appClosed)
                    {
                        _finWait2At = now + _options.FinWait2Timeout;
                    }

                    break;
                case TcpState.Closing:
                    EnterTimeWait(now);
                    return false;
                case TcpState.LastAck:
                    Terminate(SocketError.Success);
                    return false;
            }
        }

        return true;
    }

    private void EnterRecovery(TimeSpan now)
    {
        FastRetransmits++;
        _inRecovery = true;
        // RecoveryPoint (RFC 6582 §3.2 step 2 / RFC 6675) is set below
        int flight = _sndMax - _sndUna;
        bool afterRto = _sndUna < _recover; // RFC 6582 §4: data sent before an RTO was already paid for
        _recover = _sndMax;
        _recovery.OnRecoveryStart(_sndUna, _sndMax, _cc); // PRR, undo point; stops the tail loss probe
        if (!afterRto)
        {
            _cc.OnCongestionEvent(now, flight);
        }

        if (!_sackEnabled)
        {
            _cc.SetCwnd(_cc.Ssthresh + (TcpConstants.DupThresh * _smss)); // RFC 5681 §3.2 step 3
            _rexmitPending = true; // retransmit the first unacknowledged segment now
        }

        _highRxt = _sndUna;
        _rttTiming = false;    // Karn
    }

    /// <summary>
    /// A D-SACK (RFC 2883 §4) arrived. When it reports the last retransmission of the episode as a duplicate the
    /// recovery was spurious: <see cref="LossRecovery"/> has undone the window reduction, and the connection stops
    /// retransmitting what was marked lost (RFC 8985 §8).
    /// </summary>
    private void OnDsack(SackBlock b)
    {
        if (_recovery.OnDsack(b, _sndUna, _sndMax, _cc) && _inRecovery)
        {
            _inRecovery = false;
            _recovery.ClearLossMarks();
            _recover = _sndMax;
        }
    }

    /// <summary>New data acknowledged: release buffer space, RTT sample, congestion control, recovery bookkeeping.</summary>
    private void ProcessNewAck(TimeSpan now, in TcpRepr seg, int acked)
    {
        var ack = _sndUna + acked;
        int dataAcked = acked;
        if (_sndUna == _iss)
        {
            dataAcked--; // our SYN
        }

        if (_finQueued && !_finAcked && ack > FinSeq)
        {
            _finAcked = true;
            dataAcked--;
        }

        dataAcked = Math.Clamp(dataAcked, 0, _tx.Count);
        _tx.Discard(dataAcked);
        _sndUna = ack;
        if (_sndNxt < _sndUna)
        {
            _sndNxt = _sndUna;
        }

        _recovery.OnNewAck(_sndUna);
        if (_highRxt < _sndUna)
        {
            _highRxt = _sndUna;
        }

        // RTT: RFC 7323 §4.1 from TSecr, else one timed segment at a time (RFC 6298 §3, Karn).
        if (_tsEnabled && seg.HasTimestamp && seg.TsEcr != 0)
        {
            uint nowTs = TsClock(now);
            int ms = unchecked((int)(nowTs - seg.TsEcr));
            if (ms >= 0 && ms < 600_000)
            {
                _rtt.Sample(TimeSpan.FromMilliseconds(ms));
            }
        }
        else if (_rttTiming && ack > _rttSeq)
        {
            _rtt.Sample(now - _rttStart);
            _rttTiming = false;
        }

        _retransmits = 0;
        _rtt.ResetBackoff();

        int flight = _sndMax - _sndUna;
        if (_inRecovery)
        {
            if (ack >= _recover)
            {
                // Full acknowledgment: leave recovery (RFC 6582 §3.2 step 3; RFC 6675 §5)
                _inRecovery = false;
                _dupAcks = 0;
                _recovery.OnRecoveryEnd();

                _cc.SetCwnd(_sackEnabled ? _cc.Ssthresh : Math.Min(_cc.Ssthresh, Math.Max(flight, _smss) + _smss));
            }
            else if (!_sackEnabled)
            {
                // Partial acknowledgment (RFC 6582 §3.2 step 5): retransmit the next hole, deflate cwnd.
                _rexmitPending = true;
                int c = _cc.Cwnd - acked;
                if (acked >= _smss)
                {
                    c += _smss;
                }

                _cc.SetCwnd(c);
            }
        }
        else
        {
            _dupAcks = 0;
            if (dataAcked > 0)
            {
                _cc.OnAck(now, dataAcked, flight + acked, _rtt.Srtt, _rtt.MinRtt);
            }
        }

        // RFC 6298 §5.2/§5.3: stop the timer when all is acknowledged, otherwise restart it.
        _rtoAt = _sndUna == _sndMax ? TimeSpan.MaxValue : now + _rtt.Rto;
        ArmTailLossProbe(now);
        if (dataAcked > 0 && WriteSignal.IsArmed && SendBufferFree >= WriterWakeThreshold)
        {
            WakeOrDefer(WriteSignal, ref _writeDeferred); // one wake-up per batch of ACKs
        }
    }

    /// <summary>
    /// Completes <paramref name="signal"/> now, or during a batch (<see cref="TcpLayer.Batching"/>) once at its end
    /// (<see cref="FlushDeferred"/>): a reader or writer woken in the middle would only wait for the Gate. The
    /// connection is listed here, not only by <see cref="OnSegment"/>, which answers a segment that leaves a hole at once.
    /// </summary>
    private void WakeOrDefer(TcpSignal signal, ref bool deferred)
    {
        if (_layer.Batching)
        {
            deferred = true;
            _layer.Defer(this);
        }
        else
        {
            signal.Set();
        }
    }

    /// <summary>
    /// Free send space that wakes a waiting writer: a quarter of what it may hold (ring and budget share), as Linux
    /// wakes a writer only once a third of its send buffer is free (sk_stream_write_space). Waking it on every ACK made
    /// it copy two segments' worth per wake-up, a thread-pool hop each; the three quarters still buffered keep the
    /// path busy meanwhile.
    /// </summary>
    private int WriterWakeThreshold => Math.Max(1, (int)Math.Min(_tx.Capacity, _layer.SendBufferShare) / 4);

    private bool _writeDeferred;

    /// <summary>Places segment text into the receive buffer (in order or out of order). Returns false if it was truncated.</summary>
    private bool AcceptText(TimeSpan now, SeqNumber seq, ReadOnlySpan<byte> payload)
    {
        bool complete = true;
        if (seq < _rcvNxt)
        {
            int d = _rcvNxt - seq;
            NoteDuplicate(seq, seq + Math.Min(d, payload.Length)); // RFC 2883 §4.1 case: below the cumulative ACK
            if (d >= payload.Length)
            {
                _ackNow = true; // duplicate
                return true;
            }

            payload = payload[d..];
            seq = _rcvNxt;
        }

        int off = seq - _rcvNxt;
        int room = Math.Min(_rx.Free, Math.Max(_rcvAdvRight - _rcvNxt, 0)) - off;
        if (room <= 0)
        {
            _ackNow = true;
            return false;
        }

        if (payload.Length > room)
        {
            payload = payload[..room];
            complete = false;
        }

        if (off == 0)
        {
            _rx.WriteAt(0, payload);
            _rx.Commit(payload.Length);
            _rcvNxt += payload.Length;
            bool hadHoles = _ooo.Count > 0;
            while (_ooo.TryTakeContiguous(_rcvNxt, out var right))
            {
                int more = right - _rcvNxt;
                _rx.Commit(more);
                _rcvNxt = right;
            }

            _unackedBytes += payload.Length;
            if (hadHoles || _unackedBytes >= 2 * (_rcvMss - (_tsEnabled ? 12 : 0)) || _options.DelayedAckTimeout <= TimeSpan.Zero)
            {
                _ackNow = true; // RFC 5681 §4.2: ACK every second full segment; immediately when filling a hole
            }
            else if (_delAckAt == TimeSpan.MaxValue)
            {
                _delAckAt = now + _options.DelayedAckTimeout;
            }

            if (_peerFinPending && _peerFinSeq == _rcvNxt)
            {
                _peerFinPending = false;
                ProcessPeerFin(now);
            }

            WakeOrDefer(ReadSignal, ref _readDeferred);
        }
        else
        {
            // Out of order: keep it if the range table has room (bounded by the receive buffer), ACK at once
            // so the sender sees a duplicate ACK with SACK blocks (RFC 5681 §4.2, RFC 2018 §4).
            if (IsOutOfOrderDuplicate(seq, seq + payload.Length))
            {
                NoteDuplicate(seq, seq + payload.Length); // RFC 2883 §4.2: duplicate above the cumulative ACK
            }

            if (_ooo.Add(seq, seq + payload.Length))
            {
                _rx.WriteAt(off, payload);
            }

            _ackNow = true;
        }

        return complete;
    }

    /// <summary>RFC 2883: remember a duplicate range to report as the first SACK block of the next ACK.</summary>
    private void NoteDuplicate(SeqNumber left, SeqNumber right)
    {
        if (_sackEnabled && right > left)
        {
            _dsackPending = true;
            _dsackBlock = new SackBlock(left, right);
        }
    }

    private bool IsOutOfOrderDuplicate(SeqNumber left, SeqNumber right)
    {
        for (int i = 0; i < _ooo.Count; i++)
        {
            if (_ooo[i].Left <= left && right <= _ooo[i].Right)
            {
                return true;
            }
        }

        return false;
    }

    private bool _dsackPending;
    private SackBlock _dsackBlock;

    private void ProcessPeerFin(TimeSpan now)
    {
        if (_peerFin)
        {
            return;
        }

        _peerFin = true;
        _rcvNxt += 1;
        _ackNow = true;
        switch (State)
        {
            case TcpState.SynReceived:
            case TcpState.Established:
                State = TcpState.CloseWait;
                break;
            case TcpState.FinWait1:
                if (_finAcked)
                {
                    EnterTimeWait(now);
                }
                else
                {
                    State = TcpState.Closing;
                }

                break;
            case TcpState.FinWait2:
                EnterTimeWait(now);
                break;
        }

        ReadSignal.Set();
    }

    private void EnterTimeWait(TimeSpan now)
    {
        State = TcpState.TimeWait;
        SendAckNow(now);
        _rtoAt = _persistAt = _delAckAt = _keepAliveAt = _finWait2At = _retryAt = TimeSpan.MaxValue;
        _recovery.StopTailLossProbe();
        _recovery.StopRackTimer();
        _layer.EnterTimeWait(this, _rcvNxt, _sndMax, _tsEnabled, _tsRecent, _tsOffset, now); // SND.MAX: _sndNxt rewinds for go-back-N
        WakeAll();
    }

    internal uint TsClock(TimeSpan now) => unchecked((uint)(long)now.TotalMilliseconds + _tsOffset);
}
