namespace Sharptun.Protocol;

/// <summary>
/// Wall-clock time, used only for the TAI64N timestamp of handshake initiations (whitepaper §5.4.2) and for reporting
/// the last handshake time. Everything else in the protocol core runs on the monotonic <c>TimeSpan now</c> the caller
/// passes in. Implementations must be thread-safe.
/// </summary>
public interface IWallClock
{
    /// <summary>The current UTC time.</summary>
    DateTime UtcNow { get; }
}
