namespace Sharptun;

/// <summary>The peer a <see cref="WireGuardTunnel"/> event is about.</summary>
public sealed class TunnelPeerEventArgs(TunnelPeer peer) : EventArgs
{
    /// <summary>The peer's state when the change was seen.</summary>
    public TunnelPeer Peer { get; } = peer;
}
