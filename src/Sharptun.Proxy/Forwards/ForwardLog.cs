using System.Net.Sockets;
using Microsoft.Extensions.Logging;

namespace Sharptun.Proxy.Forwards;

/// <summary>The forwards' log messages (event ids 1500-1549), source-generated so nothing is formatted unless the level is on.</summary>
internal static partial class ForwardLog
{
    [LoggerMessage(EventId = 1500, Level = LogLevel.Information, Message = "{Kind} forward serving on {Endpoint} to {Target}")]
    public static partial void Serving(ILogger logger, string kind, string endpoint, string target);

    [LoggerMessage(EventId = 1501, Level = LogLevel.Warning, Message = "{Kind} {Endpoint}: connection from {Client} refused: {Reason}")]
    public static partial void Refused(ILogger logger, string kind, string endpoint, string? client, string reason);

    [LoggerMessage(EventId = 1502, Level = LogLevel.Warning, Message = "{Kind} {Endpoint}: cannot reach {Target}: {Error}")]
    public static partial void TargetFailed(ILogger logger, string kind, string endpoint, string target, string error);

    [LoggerMessage(EventId = 1503, Level = LogLevel.Debug, Message = "{Kind} {Endpoint}: {Client} ↔ {Target} ended ({End}): {Up} bytes up, {Down} bytes down")]
    public static partial void RelayEnded(ILogger logger, string kind, string endpoint, string? client, string target, Sharptun.Hosting.RelayEnd end, long up, long down);

    [LoggerMessage(EventId = 1504, Level = LogLevel.Debug, Message = "udp {Endpoint}: session for {Client} opened (tunnel port {TunnelPort})")]
    public static partial void UdpSessionOpened(ILogger logger, string endpoint, string client, int tunnelPort);

    [LoggerMessage(EventId = 1505, Level = LogLevel.Debug, Message = "udp {Endpoint}: session for {Client} closed ({Reason})")]
    public static partial void UdpSessionClosed(ILogger logger, string endpoint, string client, string reason);

    /// <summary>Formats an exception of a failed connect for logs: the socket error's message.</summary>
    public static string Describe(Exception e) => e is SocketException s ? $"{s.SocketErrorCode}: {s.Message}" : e.Message;
}
