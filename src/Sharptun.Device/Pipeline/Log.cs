using Microsoft.Extensions.Logging;

namespace Sharptun.Device.Pipeline;

/// <summary>
/// The device pipeline's log messages (source-generated, no formatting unless the level is enabled). The text is
/// wireguard-go's where it has one; operators and tests grep it, so change it only on purpose. Never pass key
/// material to these (docs/architecture.md, "Logging").
/// </summary>
internal static partial class Log
{
    [LoggerMessage(EventId = 100, Level = LogLevel.Debug, Message = "Thread {Thread} did not stop (blocked in the packet device?)")]
    public static partial void ThreadDidNotStop(ILogger logger, string? thread);

    [LoggerMessage(EventId = 101, Level = LogLevel.Debug, Message = "{Stage} stopped while disposing: {Error}")]
    public static partial void StageStoppedWhileDisposing(ILogger logger, string stage, string error);

    /// <summary>A pipeline thread died: the daemon's line ends with the exception (": " + exception).</summary>
    [LoggerMessage(EventId = 102, Level = LogLevel.Error, Message = "{Stage} failed, the device stops")]
    public static partial void StageFailed(ILogger logger, string stage, Exception exception);

    [LoggerMessage(EventId = 103, Level = LogLevel.Debug, Message = "Could not enlarge UDP socket buffers: {Error}")]
    public static partial void SocketBuffersNotEnlarged(ILogger logger, string error);

    [LoggerMessage(EventId = 104, Level = LogLevel.Debug, Message = "Failed to send a handshake or keepalive: {Error}")]
    public static partial void HandshakeSendFailed(ILogger logger, string error);

    [LoggerMessage(EventId = 105, Level = LogLevel.Debug, Message = "Failed to write packets to TUN device: {Error}")]
    public static partial void TunWriteFailed(ILogger logger, string error);

    [LoggerMessage(EventId = 106, Level = LogLevel.Information, Message = "Packet device closed, the device stops")]
    public static partial void PacketDeviceClosed(ILogger logger);

    [LoggerMessage(EventId = 107, Level = LogLevel.Debug, Message = "Failed to send data packets: {Error}")]
    public static partial void DataSendFailed(ILogger logger, string error);

    [LoggerMessage(EventId = 108, Level = LogLevel.Information, Message = "UDP bind updated, listening on port {Port}")]
    public static partial void BindUpdated(ILogger logger, int port);
}
