namespace Sharptun.NetStack.Tcp;

/// <summary>Retransmission timeout computation, RFC 6298 §2–§5 (with Karn's algorithm applied by the caller).</summary>
internal struct RttEstimator
{
    private TimeSpan _srtt;
    private TimeSpan _rttvar;
    private bool _hasSample;
    private TimeSpan _minRto;
    private int _backoff;

    public RttEstimator(TimeSpan minRto)
    {
        _minRto = minRto;
        BaseRto = TcpConstants.InitialRto; // RFC 6298 §2.1
        _backoff = 0;
    }

    public TimeSpan BaseRto { get; private set; }
    public TimeSpan Srtt => _hasSample ? _srtt : TimeSpan.Zero;
    public TimeSpan MinRtt { get; private set; }
    public bool HasSample => _hasSample;
    public int Backoff => _backoff;

    /// <summary>The current RTO including exponential backoff (RFC 6298 §5.5), capped at 60 s.</summary>
    public readonly TimeSpan Rto
    {
        get
        {
            long ticks = BaseRto.Ticks << Math.Min(_backoff, 16);
            return ticks > TcpConstants.MaxRto.Ticks || ticks < 0 ? TcpConstants.MaxRto : TimeSpan.FromTicks(ticks);
        }
    }

    public void Sample(TimeSpan r)
    {
        if (r < TimeSpan.Zero)
        {
            return;
        }

        if (!_hasSample || r < MinRtt)
        {
            MinRtt = r;
        }

        if (!_hasSample)
        {
            // RFC 6298 §2.2
            _srtt = r;
            _rttvar = r / 2;
            _hasSample = true;
        }
        else
        {
            // RFC 6298 §2.3: beta = 1/4, alpha = 1/8
            var delta = _srtt - r;
            if (delta < TimeSpan.Zero)
            {
                delta = -delta;
            }

            _rttvar = (_rttvar * 3 / 4) + (delta / 4);
            _srtt = (_srtt * 7 / 8) + (r / 8);
        }

        var k = _rttvar * TcpConstants.RttK;
        var rto = _srtt + (k > TcpConstants.ClockGranularity ? k : TcpConstants.ClockGranularity);
        if (rto < _minRto)
        {
            rto = _minRto; // RFC 6298 §2.4 (lower bound configurable)
        }

        BaseRto = rto > TcpConstants.MaxRto ? TcpConstants.MaxRto : rto;
        _backoff = 0; // a valid sample collapses the backoff (RFC 6298 §5.7 note)
    }

    public void OnTimeout() => _backoff++;

    public void ResetBackoff() => _backoff = 0;
}
