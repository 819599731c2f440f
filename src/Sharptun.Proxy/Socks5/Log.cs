using System.Net;
using System.Net.Sockets;
using Microsoft.Extensions.Logging;

namespace Sharptun.Proxy.Socks5;

/// <summary>The SOCKS5 front-end's log messages (source-generated). Names reach them only after <see cref="Socks5Protocol.TryDecodeName"/> (printable ASCII).</summary>
internal static partial class Log
{
    [LoggerMessage(EventId = 1100, Level = LogLevel.Information, Message = "SOCKS5 listening on {EndPoint} ({Auth})")]
    public static partial void Listening(ILogger logger, EndPoint endPoint, string auth);

    [LoggerMessage(EventId = 1101, Level = LogLevel.Warning, Message = "SOCKS5: refused {Client}: {Open} connections open, the cap is reached")]
    public static partial void OverCap(ILogger logger, EndPoint? client, int open);

    [LoggerMessage(EventId = 1102, Level = LogLevel.Debug, Message = "SOCKS5: refused {Client}: {Reason}")]
    public static partial void Refused(ILogger logger, EndPoint? client, string reason);

    [LoggerMessage(EventId = 1103, Level = LogLevel.Information, Message = "SOCKS5: {Client} failed authentication as '{User}'")]
    public static partial void AuthenticationFailed(ILogger logger, EndPoint? client, string user);

    [LoggerMessage(EventId = 1104, Level = LogLevel.Debug, Message = "SOCKS5: {Client} gave no complete request within {Seconds} s")]
    public static partial void HandshakeTimedOut(ILogger logger, EndPoint? client, double seconds);

    [LoggerMessage(EventId = 1105, Level = LogLevel.Information, Message = "SOCKS5: {Client} CONNECT {Target} port {Port} failed: {Error} (reply {Reply})")]
    public static partial void ConnectFailed(ILogger logger, EndPoint? client, string target, int port, SocketError error, string reply);

    [LoggerMessage(EventId = 1106, Level = LogLevel.Debug, Message = "SOCKS5: {Client} CONNECT {Target} port {Port} ended ({End}): {Up} bytes up, {Down} bytes down")]
    public static partial void ConnectEnded(ILogger logger, EndPoint? client, string target, int port, string end, long up, long down);

    [LoggerMessage(EventId = 1107, Level = LogLevel.Debug, Message = "SOCKS5: {Client} UDP ASSOCIATE relaying on {Relay}")]
    public static partial void AssociationStarted(ILogger logger, EndPoint? client, EndPoint relay);

    [LoggerMessage(EventId = 1108, Level = LogLevel.Debug, Message = "SOCKS5: {Client} UDP association ended ({Reason}): {Up} bytes up, {Down} bytes down")]
    public static partial void AssociationEnded(ILogger logger, EndPoint? client, string reason, long up, long down);

    [LoggerMessage(EventId = 1109, Level = LogLevel.Debug, Message = "SOCKS5: UDP association of {Client} dropped a datagram: {Reason}")]
    public static partial void DatagramDropped(ILogger logger, EndPoint? client, string reason);

    [LoggerMessage(EventId = 1110, Level = LogLevel.Debug, Message = "SOCKS5: {Client} BIND listening on {Bound} for {Expected}")]
    public static partial void BindListening(ILogger logger, EndPoint? client, EndPoint bound, string expected);

    [LoggerMessage(EventId = 1111, Level = LogLevel.Information, Message = "SOCKS5: {Client} BIND refused a connection from {From}: it expects {Expected}")]
    public static partial void BindPeerRefused(ILogger logger, EndPoint? client, EndPoint? from, IPAddress expected);

    [LoggerMessage(EventId = 1112, Level = LogLevel.Information, Message = "SOCKS5: {Client} BIND on {Bound} got no connection within {Seconds} s (reply TTL expired)")]
    public static partial void BindTimedOut(ILogger logger, EndPoint? client, EndPoint bound, double seconds);

    [LoggerMessage(EventId = 1113, Level = LogLevel.Information, Message = "SOCKS5: {Client} BIND failed on {What}: {Error} (reply {Reply})")]
    public static partial void BindFailed(ILogger logger, EndPoint? client, string what, SocketError error, string reply);

    [LoggerMessage(EventId = 1114, Level = LogLevel.Debug, Message = "SOCKS5: {Client} BIND ended ({End}): {Up} bytes up, {Down} bytes down")]
    public static partial void BindEnded(ILogger logger, EndPoint? client, string end, long up, long down);
}
