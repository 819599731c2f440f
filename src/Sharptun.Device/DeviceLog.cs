using System.Globalization;

namespace Sharptun.Device;

/// <summary>How much a <see cref="DeviceLog"/> writes (wireguard-go's <c>LOG_LEVEL</c>).</summary>
public enum DeviceLogLevel
{
    /// <summary>Nothing.</summary>
    Silent = 0,

    /// <summary>Errors only (the default, as in wireguard-go).</summary>
    Error = 1,

    /// <summary>Errors and debug messages.</summary>
    Verbose = 2,
}

/// <summary>
/// wireguard-go-compatible log lines: <c>DEBUG: (wg0) 2026/11/22 02:31:20 message</c> and
/// <c>ERROR: (wg0) 2026/11/22 02:31:20 message</c> (Go's <c>log.Ldate|log.Ltime</c>, local time), so scripts
/// and operators that read wireguard-go's output read ours. Never pass key material to it.
/// </summary>
/// <remarks>Thread-safe: each line is written with one locked <see cref="TextWriter.Write(string)"/> call and flushed.
/// Not for per-packet use: every call formats a string.</remarks>
public sealed class DeviceLog
{
    private readonly TextWriter? _output;
    private readonly Lock _gate = new();
    private readonly string _debugPrefix;
    private readonly string _errorPrefix;

    /// <summary>Creates a log for interface <paramref name="interfaceName"/> writing to <paramref name="output"/>.</summary>
    public DeviceLog(DeviceLogLevel level, string interfaceName, TextWriter? output)
    {
        Level = output is null ? DeviceLogLevel.Silent : level;
        _output = output;
        _debugPrefix = "DEBUG: (" + interfaceName + ") ";
        _errorPrefix = "ERROR: (" + interfaceName + ") ";
    }

    /// <summary>A log that writes nothing.</summary>
    public static DeviceLog Silent { get; } = new(DeviceLogLevel.Silent, string.Empty, null);

    /// <summary>The configured level.</summary>
    public DeviceLogLevel Level { get; }

    /// <summary>True when <see cref="Verbose"/> writes; check it before building an expensive message.</summary>
    public bool IsVerbose => Level >= DeviceLogLevel.Verbose;

    /// <summary>
    /// Parses wireguard-go's <c>LOG_LEVEL</c> values: <c>verbose</c>/<c>debug</c>, <c>error</c>, <c>silent</c>
    /// (case-insensitive); anything else, including null, means <see cref="DeviceLogLevel.Error"/>.
    /// </summary>
    public static DeviceLogLevel ParseLevel(string? text) => text?.Trim().ToLowerInvariant() switch
    {
        "verbose" or "debug" => DeviceLogLevel.Verbose,
        "silent" => DeviceLogLevel.Silent,
        _ => DeviceLogLevel.Error,
    };

    /// <summary>Writes a DEBUG line when the level is <see cref="DeviceLogLevel.Verbose"/>.</summary>
    public void Verbose(string message)
    {
        if (Level >= DeviceLogLevel.Verbose)
        {
            Write(_debugPrefix, message);
        }
    }

    /// <summary>Writes an ERROR line unless the level is <see cref="DeviceLogLevel.Silent"/>.</summary>
    public void Error(string message)
    {
        if (Level >= DeviceLogLevel.Error)
        {
            Write(_errorPrefix, message);
        }
    }

    private void Write(string prefix, string message)
    {
        var line = prefix + DateTime.Now.ToString("yyyy'/'MM'/'dd HH':'mm':'ss", CultureInfo.InvariantCulture) + " " + message + "\n";
        lock (_gate)
        {
            try
            {
                _output!.Write(line);
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
}
