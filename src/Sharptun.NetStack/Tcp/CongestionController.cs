namespace Sharptun.NetStack.Tcp;

/// <summary>
/// Congestion window arithmetic, in bytes. The connection calls these from its ACK and loss paths; the
/// fast-retransmit / SACK recovery logic itself (RFC 5681 §3.2, RFC 6582, RFC 6675) lives in the connection.
/// </summary>
internal abstract class CongestionController
{
    protected CongestionController(int smss)
    {
        Smss = smss;
        // RFC 6928: IW = min(10*MSS, max(2*MSS, 14600))
        Cwnd = Math.Min(TcpConstants.InitialWindowSegments * smss, Math.Max(2 * smss, 14600));
        Ssthresh = int.MaxValue; // RFC 5681 §3.1: arbitrarily high
    }

    public int Smss { get; protected set; }
    public int Cwnd { get; protected set; }
    public int Ssthresh { get; protected set; }

    public void SetSmss(int smss)
    {
        Smss = smss;
        Cwnd = Math.Min(TcpConstants.InitialWindowSegments * smss, Math.Max(2 * smss, 14600));
    }

    /// <summary>New data acknowledged outside loss recovery.</summary>
    public abstract void OnAck(TimeSpan now, int ackedBytes, int flightSize, TimeSpan srtt, TimeSpan minRtt);

    /// <summary>Entering fast recovery (3 dup ACKs or SACK loss detection). Sets ssthresh and cwnd.</summary>
    public abstract void OnCongestionEvent(TimeSpan now, int flightSize);

    /// <summary>RTO expired: RFC 5681 §3.1 eqn (4) and cwnd = loss window (1 SMSS).</summary>
    public virtual void OnRetransmissionTimeout(TimeSpan now, int flightSize)
    {
        OnCongestionEvent(now, flightSize);
        Cwnd = Smss;
    }

    /// <summary>
    /// Undoes a reduction found to be spurious (RFC 8985 §8, D-SACK): cwnd and ssthresh return to at least their values
    /// before the episode.
    /// </summary>
    public virtual void Undo(int priorCwnd, int priorSsthresh)
    {
        Cwnd = Math.Max(Cwnd, priorCwnd);
        Ssthresh = Math.Max(Ssthresh, priorSsthresh);
    }

    /// <summary>Directly sets cwnd (used for RFC 6582 inflation/deflation and recovery exit).</summary>
    public void SetCwnd(int cwnd) => Cwnd = Math.Max(cwnd, Smss);

    public static CongestionController Create(TcpCongestionControl kind, int smss) => kind switch
    {
        TcpCongestionControl.NewReno => new NewRenoController(smss),
        _ => new CubicController(smss),
    };
}

/// <summary>RFC 5681 slow start and congestion avoidance (with appropriate byte counting, RFC 3465 L=2).</summary>
internal sealed class NewRenoController : CongestionController
{
    private long _caAcc;

    public NewRenoController(int smss) : base(smss)
    {
    }

    public override void OnAck(TimeSpan now, int ackedBytes, int flightSize, TimeSpan srtt, TimeSpan minRtt)
    {
        if (Cwnd < Ssthresh)
        {
            Cwnd += Math.Min(ackedBytes, 2 * Smss); // RFC 5681 §3.1 eqn (2), RFC 3465
            return;
        }

        // RFC 5681 §3.1 eqn (3) in byte-counting form: one SMSS per cwnd of acknowledged data.
        _caAcc += ackedBytes;
        if (_caAcc >= Cwnd)
        {
            _caAcc -= Cwnd;
            Cwnd += Smss;
        }
    }

    public override void OnCongestionEvent(TimeSpan now, int flightSize)
    {
        Ssthresh = Math.Max(flightSize / 2, 2 * Smss); // RFC 5681 §3.1 eqn (4)
        Cwnd = Ssthresh;
        _caAcc = 0;
    }
}

/// <summary>CUBIC, RFC 9438 (C = 0.4, beta_cubic = 0.7, fast convergence, Reno-friendly region).</summary>
internal sealed class CubicController : CongestionController
{
    private const double C = 0.4;        // RFC 9438 §5.1
    private const double BetaCubic = 0.7; // RFC 9438 §4.6
    private double _wMax;                 // segments
    private double _wLastMax;
    private double _k;                    // seconds
    private TimeSpan _epochStart = TimeSpan.MinValue;
    private double _wEst;                 // segments, RFC 9438 §4.3
    private double _cwndSeg;              // fractional cwnd in segments while in CA

    public CubicController(int smss) : base(smss)
    {
    }

    public override void OnAck(TimeSpan now, int ackedBytes, int flightSize, TimeSpan srtt, TimeSpan minRtt)
    {
        if (Cwnd < Ssthresh)
        {
            Cwnd += Math.Min(ackedBytes, 2 * Smss);
            return;
        }

        double segs = (double)ackedBytes / Smss;
        if (_epochStart == TimeSpan.MinValue)
        {
            // RFC 9438 §4.2: start of a congestion avoidance epoch
            _epochStart = now;
            _cwndSeg = (double)Cwnd / Smss;
            if (_wMax <= _cwndSeg)
            {
                _wMax = _cwndSeg;
                _k = 0;
            }
            else
            {
                _k = Math.Cbrt((_wMax - _cwndSeg) / C); // RFC 9438 eqn 2 with cwnd_epoch
            }

            _wEst = _cwndSeg;
        }

        double rtt = (srtt > TimeSpan.Zero ? srtt : TimeSpan.FromMilliseconds(100)).TotalSeconds;
        double t = (now - _epochStart).TotalSeconds;
        double target = WCubic(t + rtt); // RFC 9438 §4.2: W_cubic(t + RTT)
        double cwnd = _cwndSeg;
        if (target < cwnd)
        {
            target = cwnd;
        }
        else if (target > 1.5 * cwnd)
        {
            target = 1.5 * cwnd;
        }

        // RFC 9438 §4.3: Reno-friendly estimate, alpha_cubic = 3(1-beta)/(1+beta)
        const double alpha = 3.0 * (1 - BetaCubic) / (1 + BetaCubic);
        _wEst += alpha * segs / cwnd;

        if (_wEst > WCubic(t))
        {
            cwnd += segs * (_wEst - cwnd) / cwnd; // Reno-friendly region
            if (_wEst < cwnd)
            {
                cwnd = Math.Max(cwnd, (double)Cwnd / Smss);
            }
        }
        else
        {
            cwnd += segs * (target - cwnd) / cwnd; // §4.4/§4.5
        }

        _cwndSeg = Math.Max(cwnd, (double)Cwnd / Smss);
        Cwnd = (int)Math.Min(_cwndSeg * Smss, int.MaxValue / 2);
    }

    private double WCubic(double t)
    {
        double d = t - _k;
        return (C * d * d * d) + _wMax; // RFC 9438 eqn 1
    }

    public override void OnCongestionEvent(TimeSpan now, int flightSize)
    {
        double cwndSeg = (double)Cwnd / Smss;
        // RFC 9438 §4.7 fast convergence
        if (cwndSeg < _wLastMax)
        {
            _wLastMax = cwndSeg;
            _wMax = cwndSeg * (1 + BetaCubic) / 2;
        }
        else
        {
            _wLastMax = cwndSeg;
            _wMax = cwndSeg;
        }

        // RFC 9438 §4.6: ssthresh = flight_size * beta_cubic
        Ssthresh = Math.Max((int)(flightSize * BetaCubic), 2 * Smss);
        Cwnd = Ssthresh;
        _epochStart = TimeSpan.MinValue;
    }

    public override void Undo(int priorCwnd, int priorSsthresh)
    {
        base.Undo(priorCwnd, priorSsthresh);
        _wMax = _wLastMax;
        _epochStart = TimeSpan.MinValue;
    }

    public override void OnRetransmissionTimeout(TimeSpan now, int flightSize)
    {
        base.OnRetransmissionTimeout(now, flightSize);
        _epochStart = TimeSpan.MinValue; // RFC 9438 §4.8
    }
}
