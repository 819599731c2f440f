namespace Sharptun.NetStack.Tcp;

internal sealed partial class TcpConnection
{
    /// <summary>
    /// Tail loss probe (RFC 8985 §7): when the last segments of a flight are lost there are no duplicate ACKs, so
    /// after a probe timeout (2·SRTT, plus the peer's delayed-ACK allowance for a one-segment flight) send one segment
    /// to elicit a SACK that starts fast recovery instead of waiting for the (much longer) RTO.
    /// </summary>
    private void ArmTailLossProbe(TimeSpan now)
    {
        if (!_sackEnabled || _inRecovery || _tlpFired || !_rtt.HasSample || _sndMax == _sndUna || !IsSynchronized)
        {
            _tlpAt = TimeSpan.MaxValue;
            return;
        }

        // RFC 8985 §7.2: PTO = 2·SRTT (clock-resolution SRTT from the send log), plus the worst-case delayed ACK when a
        // single segment is outstanding; otherwise a 2 ms allowance for timer and scheduling slack (as Linux adds).
        var pto = RackSrtt * 2;
        pto += _sndMax - _sndUna <= _smss ? TimeSpan.FromMilliseconds(200) : TimeSpan.FromMilliseconds(2);

        var at = now + pto;
        _tlpAt = at < _rtoAt ? at : TimeSpan.MaxValue;
    }

    private void OnTailLossProbe(TimeSpan now)
    {
        _tlpAt = TimeSpan.MaxValue;
        if (_inRecovery || _sndMax == _sndUna || !IsSynchronized)
        {
            return;
        }

        _tlpFired = true;
        TailLossProbes++;
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
            // otherwise retransmit the last segment (with the FIN if that is outstanding)
            int dataOut = DataEnd - _sndUna;
            int len = Math.Min(_smss, Math.Max(dataOut, 0));
            var seq = DataEnd - len;
            if (seq < _sndUna)
            {
                seq = _sndUna;
            }

            SendData(now, seq, len, retransmit: true);
        }

        _rtoAt = now + _rtt.Rto; // RFC 8985 §7.3: re-arm the RTO after the probe
    }
}
