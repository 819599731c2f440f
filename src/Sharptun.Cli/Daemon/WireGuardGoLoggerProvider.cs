using System.Globalization;
using Microsoft.Extensions.Logging;

namespace Sharptun.Cli.Daemon;

/// <summary>
/// The daemon's log output: every category's messages as wireguard-go's lines, <c>DEBUG: (wg0) 2026/11/22 02:31:20
/// message</c> for Trace/Debug/Information and <c>ERROR: (wg0) 2026/11/22 02:31:20 message</c> for Warning and above
/// (Go's <c>log.Ldate|log.Ltime</c>, local time), so scripts and operators that read wireguard-go's output read ours.
/// An exception passed to the logger is appended as <c>": " + exception</c> on the same entry.
/// </summary>
/// <remarks>Thread-safe: each line is written with one locked <see cref="TextWriter.Write(string)"/> call and flushed.
/// A closed output (stdout of a detached daemon) is ignored, never fatal.</remarks>
internal sealed class WireGuardGoLoggerProvider : ILoggerProvider
{
    private readonly TextWriter _output;
    private readonly Lock _gate = new();
    private readonly string _debugPrefix;
    private readonly string _errorPrefix;
    private readonly Func<DateTime> _now;

    /// <summary>Writes lines for <paramref name="interfaceName"/> at <paramref name="minimumLevel"/> and above to <paramref name="output"/>.</summary>
    public WireGuardGoLoggerProvider(string interfaceName, TextWriter output, LogLevel minimumLevel, Func<DateTime>? now = null)
    {
        ArgumentNullException.ThrowIfNull(output);
        _output = output;
        MinimumLevel = minimumLevel;
        _debugPrefix = "DEBUG: (" + interfaceName + ") ";
        _errorPrefix = "ERROR: (" + interfaceName + ") ";
        _now = now ?? (() => DateTime.Now);
    }

    /// <summary>The lowest level written (<see cref="LogLevel.None"/>: nothing).</summary>
    public LogLevel MinimumLevel { get; }

    /// <summary>
    /// wireguard-go's <c>LOG_LEVEL</c>: <c>verbose</c>/<c>debug</c> → <see cref="LogLevel.Debug"/> (DEBUG and ERROR
    /// lines), <c>silent</c> → <see cref="LogLevel.None"/>, anything else including unset → <see cref="LogLevel.Warning"/>
    /// (ERROR lines only, wireguard-go's default). Case-insensitive.
    /// </summary>
    public static LogLevel ParseLevel(string? text) => text?.Trim().ToLowerInvariant() switch
    {
        "verbose" or "debug" => LogLevel.Debug,
        "silent" => LogLevel.None,
        _ => LogLevel.Warning,
    };

    /// <summary>A factory whose loggers all write through a provider for these settings, filtered at <paramref name="minimumLevel"/>.</summary>
    public static ILoggerFactory CreateFactory(string interfaceName, TextWriter output, LogLevel minimumLevel) =>
        LoggerFactory.Create(builder => builder
            .SetMinimumLevel(minimumLevel)
            .AddProvider(new WireGuardGoLoggerProvider(interfaceName, output, minimumLevel)));

    /// <inheritdoc/>
    public ILogger CreateLogger(string categoryName) => new Logger(this);

    /// <inheritdoc/>
    public void Dispose()
    {
    }

    private bool IsEnabled(LogLevel level) => level != LogLevel.None && level >= MinimumLevel;

    private void Write(LogLevel level, string message, Exception? exception)
    {
        var prefix = level >= LogLevel.Warning ? _errorPrefix : _debugPrefix;
        var line = prefix + _now().ToString("yyyy'/'MM'/'dd HH':'mm':'ss", CultureInfo.InvariantCulture) + " " + message
            + (exception is null ? string.Empty : ": " + exception) + "\n";
        lock (_gate)
        {
            try
            {
                _output.Write(line);
                _output.Flush();
            }
            catch (IOException)
            {
                // A closed stdout must not take the daemon down.
            }
            catch (ObjectDisposedException)
            {
            }
        }
    }

    private sealed class Logger(WireGuardGoLoggerProvider provider) : ILogger
    {
        public IDisposable? BeginScope<TState>(TState state)
            where TState : notnull => null;

        public bool IsEnabled(LogLevel logLevel) => provider.IsEnabled(logLevel);

        public void Log<TState>(LogLevel logLevel, EventId eventId, TState state, Exception? exception, Func<TState, Exception?, string> formatter)
        {
            if (provider.IsEnabled(logLevel))
            {
                provider.Write(logLevel, formatter(state, exception), exception);
            }
        }
    }
}
