using Microsoft.Extensions.Logging;

namespace Sharptun.Testing.Logging;

/// <summary>One captured log call: its level, event, formatted message, structured values and exception.</summary>
public sealed record LogEntry(LogLevel Level, EventId EventId, string Message, IReadOnlyList<KeyValuePair<string, object?>> State, Exception? Exception)
{
    /// <summary>Everything a sink could write for this entry: the message, every structured value and the exception.</summary>
    public string AllText =>
        Message + "\n" + string.Join("\n", State.Select(p => p.Key + "=" + p.Value)) + (Exception is null ? string.Empty : "\n" + Exception);
}

/// <summary>
/// An <see cref="ILogger"/> that records every call at or above <see cref="MinimumLevel"/> (thread-safe), for tests that
/// check what a component logs through Microsoft.Extensions.Logging.
/// </summary>
public sealed class CapturingLogger : ILogger
{
    private readonly List<LogEntry> _entries = [];
    private readonly Lock _gate = new();

    /// <summary>The lowest level recorded (and reported by <see cref="IsEnabled"/>).</summary>
    public LogLevel MinimumLevel { get; init; } = LogLevel.Trace;

    /// <summary>A snapshot of the entries so far.</summary>
    public IReadOnlyList<LogEntry> Entries
    {
        get
        {
            lock (_gate)
            {
                return [.. _entries];
            }
        }
    }

    /// <summary>Every entry's <see cref="LogEntry.AllText"/>, one after another.</summary>
    public string AllText => string.Join("\n", Entries.Select(e => e.AllText));

    /// <inheritdoc/>
    public IDisposable? BeginScope<TState>(TState state)
        where TState : notnull => null;

    /// <inheritdoc/>
    public bool IsEnabled(LogLevel logLevel) => logLevel != LogLevel.None && logLevel >= MinimumLevel;

    /// <inheritdoc/>
    public void Log<TState>(LogLevel logLevel, EventId eventId, TState state, Exception? exception, Func<TState, Exception?, string> formatter)
    {
        ArgumentNullException.ThrowIfNull(formatter);
        if (!IsEnabled(logLevel))
        {
            return;
        }

        var values = state is IEnumerable<KeyValuePair<string, object?>> pairs ? pairs.ToList() : [];
        var entry = new LogEntry(logLevel, eventId, formatter(state, exception), values, exception);
        lock (_gate)
        {
            _entries.Add(entry);
        }
    }

    /// <summary>Waits until an entry matches <paramref name="predicate"/>; false after <paramref name="timeout"/>.</summary>
    public async Task<bool> WaitForAsync(Func<LogEntry, bool> predicate, TimeSpan timeout)
    {
        var deadline = DateTime.UtcNow + timeout;
        while (!Entries.Any(predicate))
        {
            if (DateTime.UtcNow >= deadline)
            {
                return false;
            }

            await Task.Delay(10).ConfigureAwait(false);
        }

        return true;
    }
}
