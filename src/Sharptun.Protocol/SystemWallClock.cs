namespace Sharptun.Protocol;

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
