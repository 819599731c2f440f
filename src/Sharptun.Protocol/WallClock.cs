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

/// <summary><see cref="IWallClock"/> backed by <see cref="DateTime.UtcNow"/>.</summary>
public sealed class SystemWallClock : IWallClock
{
    /// <summary>The shared instance.</summary>
    public static readonly SystemWallClock Instance = new();

    private SystemWallClock()
    {
    }

    /// <inheritdoc/>
    public DateTime UtcNow => DateTime.UtcNow;
}
