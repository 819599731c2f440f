using System.Diagnostics;

namespace Sharptun.Device.Pipeline;

/// <summary>
/// The device's monotonic clock: <see cref="Now"/> is the time since the clock was created, optionally sped up by
/// <see cref="Scale"/> so tests can run protocol timers (RekeyAfterTime = 120 s) in a second of real time.
/// </summary>
/// <remarks>Thread-safe, allocation-free. The protocol core only ever sees <see cref="Now"/>.</remarks>
public sealed class DeviceClock
{
    private readonly long _start = Stopwatch.GetTimestamp();

    /// <summary>A clock running at real speed.</summary>
    public DeviceClock()
        : this(1.0)
    {
    }

    /// <summary>A clock running <paramref name="scale"/> times faster than real time (tests only).</summary>
    public DeviceClock(double scale)
    {
        ArgumentOutOfRangeException.ThrowIfLessThanOrEqual(scale, 0);
        Scale = scale;
    }

    /// <summary>How many clock seconds pass per real second.</summary>
    public double Scale { get; }

    /// <summary>Monotonic time since the clock was created (scaled).</summary>
    public TimeSpan Now
    {
        get
        {
            var real = Stopwatch.GetElapsedTime(_start);
            return Scale == 1.0 ? real : TimeSpan.FromTicks((long)(real.Ticks * Scale));
        }
    }

    /// <summary>The real time to wait for <paramref name="clockTime"/> of this clock to pass.</summary>
    public TimeSpan ToRealTime(TimeSpan clockTime) =>
        Scale == 1.0 ? clockTime : TimeSpan.FromTicks((long)(clockTime.Ticks / Scale));
}
