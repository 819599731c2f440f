using Microsoft.Extensions.Logging;

namespace Sharptun.Device.Uapi;

/// <summary>
/// The UAPI server's log messages (source-generated). Request text reaches them only through
/// <see cref="UapiServer"/>'s printable, key-free form and <see cref="UapiError"/> messages, which never hold a key
/// (issue 7 item 11); tests grep the text, so change it only on purpose.
/// </summary>
internal static partial class Log
{
    [LoggerMessage(EventId = 200, Level = LogLevel.Error, Message = "IPC error {Errno}: get failed: {Error}")]
    public static partial void GetFailed(ILogger logger, int errno, string error);

    [LoggerMessage(EventId = 201, Level = LogLevel.Error, Message = "IPC error {Errno}: set failed: {Error}")]
    public static partial void SetFailed(ILogger logger, int errno, string error);

    /// <summary>A rejected set request: <paramref name="error"/> is a <see cref="UapiError"/>'s text (<c>IPC error -22: ...</c>).</summary>
    [LoggerMessage(EventId = 202, Level = LogLevel.Error, Message = "{Error}")]
    public static partial void SetRejected(ILogger logger, string error);

    [LoggerMessage(EventId = 203, Level = LogLevel.Information, Message = "UAPI: applied a set request ({PeerSections} peer section(s))")]
    public static partial void SetApplied(ILogger logger, int peerSections);

    [LoggerMessage(EventId = 204, Level = LogLevel.Error, Message = "UAPI: cannot remove {SocketPath}: {Error}")]
    public static partial void SocketFileNotRemoved(ILogger logger, string socketPath, string error);

    [LoggerMessage(EventId = 205, Level = LogLevel.Error, Message = "UAPI: accept failed: {Error}")]
    public static partial void AcceptFailed(ILogger logger, string error);

    [LoggerMessage(EventId = 206, Level = LogLevel.Error, Message = "invalid UAPI operation: {Operation}")]
    public static partial void InvalidOperation(ILogger logger, string operation);

    [LoggerMessage(EventId = 207, Level = LogLevel.Error, Message = "UAPI: line longer than {MaxLineLength} bytes, closing the connection")]
    public static partial void LineTooLong(ILogger logger, int maxLineLength);

    [LoggerMessage(EventId = 208, Level = LogLevel.Debug, Message = "UAPI: client timed out, closing the connection")]
    public static partial void ClientTimedOut(ILogger logger);

    [LoggerMessage(EventId = 209, Level = LogLevel.Error, Message = "IPC error {Errno}: trailing characters in UAPI get: {Trailing}")]
    public static partial void TrailingCharactersInGet(ILogger logger, int errno, string trailing);

    [LoggerMessage(EventId = 210, Level = LogLevel.Error, Message = "UAPI: set request over the size limits ({MaxRequestBytes} bytes per request, {MaxBufferedBytes} in total), closing the connection")]
    public static partial void SetTooLarge(ILogger logger, int maxRequestBytes, long maxBufferedBytes);

    [LoggerMessage(EventId = 211, Level = LogLevel.Debug, Message = "UAPI: could not send the error status")]
    public static partial void ErrorStatusNotSent(ILogger logger);
}
