namespace Sharptun.NetStack.Ip;

/// <summary>
/// Token bucket on the stack clock, used to rate-limit ICMP error messages (RFC 1812 §4.3.2.8, RFC 4443 §2.4(f)).
/// Not thread-safe: used under the stack's Gate.
/// </summary>
internal sealed class TokenBucket
{
    private readonly double _ratePerSecond;
    private readonly double _burst;
    private double _tokens;
    private TimeSpan _last;

    public TokenBucket(double ratePerSecond, int burst)
    {
        _ratePerSecond = ratePerSecond;
        _burst = burst;
        _tokens = burst;
        _last = TimeSpan.Zero;
    }

    public bool TryTake(TimeSpan now)
    {
        if (now > _last)
        {
            _tokens = Math.Min(_burst, _tokens + (now - _last).TotalSeconds * _ratePerSecond);
            _last = now;
        }

        if (_tokens < 1)
        {
            return false;
        }

        _tokens -= 1;
        return true;
    }
}
