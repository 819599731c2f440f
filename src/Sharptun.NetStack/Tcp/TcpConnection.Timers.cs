using System.Net.Sockets;
using Sharptun.NetStack.Wire;

namespace Sharptun.NetStack.Tcp;

internal sealed partial class TcpConnection
{
    /// <summary>Earliest timer deadline (smoltcp's poll_at); TimeSpan.MaxValue when idle.</summary>
    public TimeSpan PollAt
    {
        get
        {
            var t = _rtoAt;
            if (_persistAt < t)
            {
                t = _persistAt;
            }

            if (_delAckAt < t)
            {
                t = _delAckAt;
            }

            if (_keepAliveAt < t)
            {
                t = _keepAliveAt;
            }

            if (_finWait2At < t)
            {
                t = _finWait2At;
            }

            if (_retryAt < t)
            {
                t = _retryAt;
            }

            if (_recovery.TailLossProbeAt < t)
            {
                t = _recovery.TailLossProbeAt;
            }

            if (_recovery.RackTimerAt < t)
            {
                t = _recovery.RackTimerAt;
            }

            return t;
        }
    }

    /// <summary>
    /// The IP layer's queue has room again: send what a full queue held back now rather than at the retry timer
    /// (<see cref="TcpLayer.RetryBlocked"/>). No-op unless a retry is pending.
    /// </summary>
    internal void RetryNow(TimeSpan now)
    {
        if (_retryAt == TimeSpan.MaxValue || State is TcpState.Closed or TcpState.TimeWait)
        {
            return;
        }

        _retryAt = TimeSpan.MaxValue;
        Dispatch(now);
    }

    /// <summary>On <see cref="TcpLayer"/>'s list of connections a full queue held back (under Gate).</summary>
    internal bool BlockedListed { get; set; }

    /// <summary>Runs every timer that is due at <paramref name="now"/>.</summary>
    public void OnTimer(TimeSpan now)
    {
        if (State is TcpState.Closed or TcpState.TimeWait)
        {
            return;
        }

        if (_retryAt <= now)
        {
            _retryAt = TimeSpan.MaxValue;
            Dispatch(now);
        }

        if (_rtoAt <= now)
        {
            _recovery.StopTailLossProbe();
            OnRetransmissionTimeout(now);
        }
        else if (_recovery.TailLossProbeAt <= now)
        {
            OnTailLossProbe(now);
        }

        if (_recovery.RackTimerAt <= now && State != TcpState.Closed)
        {
            OnRackTimer(now);
        }

        if (State == TcpState.Closed)
        {
            return;
        }

        if (_persistAt <= now)
        {
            OnPersist(now);
        }

        if (_keepAliveAt <= now)
        {
            OnKeepAlive(now);
        }

        if (State == TcpState.Closed)
        {
            return;
        }

        if (_finWait2At <= now)
        {
            _finWait2At = TimeSpan.MaxValue;
            if (State == TcpState.FinWait2)
            {
                Terminate(SocketError.Success);
                return;
            }
        }

        if (_delAckAt <= now)
        {
            _delAckAt = TimeSpan.MaxValue;
            SendAckNow(now);
        }
    }

    /// <summary>The RACK reordering timer fired (RFC 8985 §6.3): re-run detection and start recovery if needed.</summary>
    private void OnRackTimer(TimeSpan now)
    {
        _recovery.StopRackTimer();
        if (!_sackEnabled || _sndUna == _sndMax || !IsSynchronized)
        {
            return;
        }

        if (_recovery.DetectLoss(now, _inRecovery, _smss, _rtt))
        {
            long delivered = 0;
            if (!_inRecovery)
            {

                EnterRecovery(now);
                delivered = _recovery.Scoreboard.TotalBytes(); // what arrived beyond the hole while the timer ran (PRR's DeliveredData)
            }

            _recovery.PrrUpdate(delivered, _sndUna, _sndMax, _smss, _cc);
            Dispatch(now);
        }
    }

    /// <summary>
    /// Tail loss probe (RFC 8985 §7): when the last segments of a flight are lost there are no duplicate ACKs, so
    /// after a probe timeout (2·SRTT, plus the peer's delayed-ACK allowance for a one-segment flight) send one segment
    /// to elicit a SACK that starts fast recovery instead of waiting for the (much longer) RTO.
    /// </summary>
    private void ArmTailLossProbe(TimeSpan now)
    {
        bool eligible = _sackEnabled && !_inRecovery && _rtt.HasSample && _sndMax != _sndUna && IsSynchronized;
        _recovery.ArmTailLossProbe(now, eligible, _sndMax - _sndUna, _smss, _rtt, _rtoAt);
    }

    private void OnTailLossProbe(TimeSpan now)
    {
        _recovery.StopTailLossProbe();
        if (_inRecovery || _sndMax == _sndUna || !IsSynchronized)
        {
            return;
        }

        _recovery.OnTailLossProbeSent();
        long wndRoom = _sndWnd - (_sndNxt - _sndUna);
        int avail = DataEnd - _sndNxt;
        if (avail > 0 && wndRoom > 0 && _sndNxt == _sndMax)
        {
            // RFC 8985 §7.3: prefer a new segment
            int len = (int)Math.Min(Math.Min(avail, _smss), wndRoom);
            SendData(now, _sndNxt, len, retransmit: false);
        }
        else
        {
            // otherwise retransmit the last segment sent (with the FIN if that is outstanding); never unsent data,
            // which may lie beyond the peer's window
            var sentEnd = SentDataEnd;
            int dataOut = sentEnd - _sndUna;
            int len = Math.Min(_smss, Math.Max(dataOut, 0));
            var seq = sentEnd - len;
            if (seq < _sndUna)
            {
                seq = _sndUna;
            }

            SendData(now, seq, len, retransmit: true);
        }

        _rtoAt = now + _rtt.Rto; // RFC 8985 §7.3: re-arm the RTO after the probe
    }

    /// <summary>RFC 6298 §5.4–§5.7 with RFC 5681 §3.1 eqn (4) and go-back-N from SND.UNA.</summary>
    private void OnRetransmissionTimeout(TimeSpan now)
    {
        _rtoAt = TimeSpan.MaxValue;
        bool handshaking = State is TcpState.SynSent or TcpState.SynReceived;
        if (_sndUna == _sndMax && !handshaking)
        {
            return;
        }

        int limit = handshaking ? _options.MaxSynRetransmissions : _options.MaxRetransmissions;
        if (++_retransmits > limit)
        {
            if (IsSynchronized || State == TcpState.SynReceived)
            {
                _layer.SendControl(this, TcpFlags.Rst | TcpFlags.Ack, _sndMax, _rcvNxt);
            }

            Terminate(SocketError.TimedOut);
            return;
        }

        Timeouts++;
        if (!handshaking)
        {
            int flight = _sndMax - _sndUna;
            if (_retransmits == 1)
            {
                _cc.OnRetransmissionTimeout(now, flight);
            }
            else
            {
                _cc.SetCwnd(_smss); // RFC 5681 §3.1: ssthresh is not reduced again for the same data
            }
        }

        _rtt.OnTimeout(); // RFC 6298 §5.5: back off the timer
        _inRecovery = false;
        _rexmitPending = false;
        _dupAcks = 0;
        _recovery.OnRetransmissionTimeout(); // RFC 6675 §5.1: scoreboard cleared (the receiver may have reneged)
        _recover = _sndMax; // RFC 6582 §4: avoid a false fast retransmit after the timeout
        _highRxt = _sndUna;
        _rttTiming = false;
        _sndNxt = handshaking ? _iss : _sndUna;

        // The first unacknowledged segment goes out whatever the window (as Linux's tcp_retransmit_skb allows for
        // SND.UNA): with the peer's window closed it is the probe (RFC 9293 §3.8.6.1) that the persist timer, idle
        // while data is in flight, does not send, and at SEG.SEQ = RCV.NXT the peer processes its ACK (§3.10.7.4).
        // Without it, a lost segment past a window that then closed left both ends backing off with nothing sent.
        _rexmitPending = !handshaking;
        Dispatch(now);
        if (_rtoAt == TimeSpan.MaxValue && (_sndMax > _sndUna || handshaking))
        {
            _rtoAt = now + _rtt.Rto;
        }
    }

    /// <summary>Zero-window probe (RFC 9293 §3.8.6.1, RFC 1122 §4.2.2.17) with exponential backoff.</summary>
    private void OnPersist(TimeSpan now)
    {
        _persistAt = TimeSpan.MaxValue;
        if (!IsSynchronized || DataEnd - _sndNxt <= 0 || _sndUna != _sndMax)
        {
            return;
        }

        long wndRoom = _sndWnd - (_sndNxt - _sndUna);
        if (wndRoom > 0)
        {
            _forceOne = true; // SWS override timeout: send what the window allows
            Dispatch(now);
        }
        else
        {
            SendProbe(now);
        }

        _persistBackoff++;
        if (_persistAt == TimeSpan.MaxValue && _sndUna == _sndMax)
        {
            long t = Math.Min(_rtt.Rto.Ticks << Math.Min(_persistBackoff, 10), TcpConstants.MaxRto.Ticks);
            _persistAt = now + TimeSpan.FromTicks(t);
        }
    }

    private void ArmKeepAlive(TimeSpan now)
    {
        _keepAliveAt = _keepAlive && IsSynchronized && State != TcpState.TimeWait
            ? now + (_keepAliveProbes == 0 ? _options.KeepAliveIdle : _options.KeepAliveInterval)
            : TimeSpan.MaxValue;
    }

    /// <summary>RFC 1122 §4.2.3.6 keepalive: probe an idle connection; abort after KeepAliveCount unanswered probes.</summary>
    private void OnKeepAlive(TimeSpan now)
    {
        _keepAliveAt = TimeSpan.MaxValue;
        if (!_keepAlive || !IsSynchronized)
        {
            return;
        }

        if (_keepAliveProbes >= _options.KeepAliveCount)
        {
            _layer.SendControl(this, TcpFlags.Rst | TcpFlags.Ack, _sndMax, _rcvNxt);
            Terminate(SocketError.TimedOut);
            return;
        }

        _keepAliveProbes++;
        _layer.Stats.KeepAlivesSent++;
        SendProbe(now);
        _keepAliveAt = now + _options.KeepAliveInterval;
    }
}

internal sealed partial class TcpConnection
{
    /// <summary>Diagnostic snapshot (tests and debugging only; allocates).</summary>
    internal string DebugState() =>
        $"{State} err={Error} timeouts={Timeouts} rexmits={_retransmits} fr={FastRetransmits} una={_sndUna} nxt={_sndNxt} max={_sndMax} wnd={_sndWnd} cwnd={_cc.Cwnd} ssth={_cc.Ssthresh} tx={_tx.Count} " +
        $"rx={_rx.Count} rcvNxt={_rcvNxt} adv={_rcvAdvRight - _rcvNxt} ooo={_ooo.Count} sacked={_recovery.Scoreboard.Count} rec={_inRecovery} " +
        $"dup={_dupAcks} tlp={TailLossProbes} lostrx={LostRetransmits} rto={_rtoAt} persist={_persistAt} delack={_delAckAt} retry={_retryAt} fin={_finQueued}/{_finAcked} peerFin={_peerFin} sched={ScheduledAt} removed={Removed}";
}
