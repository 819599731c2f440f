using Microsoft.Extensions.Logging;

namespace Sharptun.Cli.Daemon;

/// <summary>
/// The daemon's own log messages (category <see cref="Category"/>), source-generated. The text is wireguard-go's
/// where it has one; the Cli and interop tests grep it.
/// </summary>
internal static partial class Log
{
    /// <summary>The category of the daemon host's and the daemon command's messages.</summary>
    public const string Category = "Sharptun.Cli.Daemon";

    [LoggerMessage(EventId = 300, Level = LogLevel.Information, Message = "Starting {Program} version {Version}")]
    public static partial void Starting(ILogger logger, string program, string version);

    [LoggerMessage(EventId = 301, Level = LogLevel.Error, Message = "{Error}")]
    public static partial void StartFailed(ILogger logger, string error);

    [LoggerMessage(EventId = 302, Level = LogLevel.Warning, Message = "test daemon: protocol timers run {Scale} times faster than real time")]
    public static partial void SpedUpClock(ILogger logger, double scale);

    [LoggerMessage(EventId = 303, Level = LogLevel.Information, Message = "UAPI listener started")]
    public static partial void UapiListenerStarted(ILogger logger);

    [LoggerMessage(EventId = 304, Level = LogLevel.Information, Message = "Device started")]
    public static partial void DeviceStarted(ILogger logger);

    [LoggerMessage(EventId = 305, Level = LogLevel.Error, Message = "Device failed, shutting down: {Error}")]
    public static partial void DeviceFailed(ILogger logger, string? error);

    [LoggerMessage(EventId = 306, Level = LogLevel.Information, Message = "Interface closed, shutting down")]
    public static partial void InterfaceClosed(ILogger logger);

    [LoggerMessage(EventId = 307, Level = LogLevel.Error, Message = "UAPI socket file was removed, shutting down")]
    public static partial void SocketFileRemoved(ILogger logger);

    [LoggerMessage(EventId = 308, Level = LogLevel.Error, Message = "UAPI listener stopped, shutting down")]
    public static partial void UapiListenerStopped(ILogger logger);

    [LoggerMessage(EventId = 309, Level = LogLevel.Information, Message = "Shutting down")]
    public static partial void ShuttingDown(ILogger logger);

    [LoggerMessage(EventId = 310, Level = LogLevel.Information, Message = "UDP bind: {Bind}")]
    public static partial void UdpBindChosen(ILogger logger, string bind);

    [LoggerMessage(EventId = 311, Level = LogLevel.Information, Message = "Queue delay target: {Target}")]
    public static partial void QueueDelayChosen(ILogger logger, string target);

    [LoggerMessage(EventId = 312, Level = LogLevel.Warning, Message = "Ignoring {Variable}={Value}: expected milliseconds from 0 (off) to 1000; using the default")]
    public static partial void QueueDelayInvalid(ILogger logger, string variable, string value);

    [LoggerMessage(EventId = 313, Level = LogLevel.Information, Message = "Crypto workers: {Workers}")]
    public static partial void CryptoWorkersChosen(ILogger logger, string workers);

    [LoggerMessage(EventId = 314, Level = LogLevel.Warning, Message = "Ignoring {Variable}={Value}: expected a number of threads from 0 to 256; using the default")]
    public static partial void CryptoWorkersInvalid(ILogger logger, string variable, string value);

    [LoggerMessage(EventId = 315, Level = LogLevel.Information, Message = "udp: gso {Gso}, gro {Gro}")]
    public static partial void UdpOffloads(ILogger logger, string gso, string gro);

    [LoggerMessage(EventId = 316, Level = LogLevel.Information, Message = "tun offload: {Mode}")]
    public static partial void TunOffload(ILogger logger, string mode);
}
