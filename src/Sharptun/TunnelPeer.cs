using System.Net;

namespace Sharptun;

/// <summary>One peer's state, as <c>wg show</c> prints it (<see cref="WireGuardTunnel.Peers"/>).</summary>
/// <param name="PublicKey">The peer's public key (base64).</param>
/// <param name="Endpoint">The peer's current UDP endpoint, or null when unknown.</param>
/// <param name="LastHandshake">When the last handshake completed, or null when none has.</param>
/// <param name="ReceivedBytes">Bytes received from the peer (WireGuard datagrams).</param>
/// <param name="SentBytes">Bytes sent to the peer (WireGuard datagrams).</param>
/// <param name="AllowedIps">The peer's allowed IPs.</param>
/// <param name="PersistentKeepalive">The persistent keepalive interval, or null when off.</param>
public sealed record TunnelPeer(
    string PublicKey,
    IPEndPoint? Endpoint,
    DateTimeOffset? LastHandshake,
    long ReceivedBytes,
    long SentBytes,
    IReadOnlyList<IPNetwork> AllowedIps,
    TimeSpan? PersistentKeepalive)
{
    /// <summary>How long ago the last handshake completed (relative to now), or null when none has.</summary>
    public TimeSpan? LastHandshakeAge => LastHandshake is { } t ? DateTimeOffset.UtcNow - t : null;
}
