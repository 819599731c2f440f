using Microsoft.Extensions.Logging;

namespace Sharptun;

/// <summary>The facade's log messages (category <c>Sharptun.WireGuardTunnel</c>). Never pass key material.</summary>
internal static partial class TunnelLog
{
    public const string Category = "Sharptun.WireGuardTunnel";

    [LoggerMessage(EventId = 900, Level = LogLevel.Information, Message = "Endpoint {Name} re-resolved: {Old} -> {New}")]
    public static partial void EndpointReresolved(ILogger logger, string name, string old, string @new);

    [LoggerMessage(EventId = 901, Level = LogLevel.Warning, Message = "Endpoint {Name} did not resolve again: {Error}")]
    public static partial void ReresolveFailed(ILogger logger, string name, string error);

    [LoggerMessage(EventId = 902, Level = LogLevel.Information, Message = "UAPI socket listening on {Path}")]
    public static partial void UapiListening(ILogger logger, string path);
}
