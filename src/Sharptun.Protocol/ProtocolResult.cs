namespace Sharptun.Protocol;

/// <summary>Why input was rejected or an operation could not run. Rejected input never throws.</summary>
public enum ProtocolError : byte
{
    /// <summary>No error.</summary>
    None = 0,

    /// <summary>Shorter than its message type requires.</summary>
    Truncated,

    /// <summary>Longer than its message type allows.</summary>
    Oversized,

    /// <summary>The type byte is not 1–4.</summary>
    UnknownMessageType,

    /// <summary>One of the three reserved header bytes is not zero.</summary>
    ReservedBytesNonZero,

    /// <summary>mac1 does not match our public key (whitepaper §5.4.4).</summary>
    InvalidMac1,

    /// <summary>Under load and mac2 is missing or wrong; a cookie reply was written instead (whitepaper §5.4.7).</summary>
    CookieRequired,

    /// <summary>No session or handshake uses the receiver index.</summary>
    UnknownReceiverIndex,

    /// <summary>The initiator's static key is not a configured peer.</summary>
    UnknownPeer,

    /// <summary>An AEAD tag did not verify.</summary>
    DecryptionFailed,

    /// <summary>A Diffie-Hellman result was all zero (a low-order public key).</summary>
    LowOrderPoint,

    /// <summary>The initiation's TAI64N timestamp is not newer than the last accepted one from this peer (whitepaper §5.1).</summary>
    ReplayedTimestamp,

    /// <summary>Another initiation from this peer was accepted less than 1/50 s ago.</summary>
    InitiationFlood,

    /// <summary>A message that does not fit the handshake state (e.g. a response nobody asked for).</summary>
    UnexpectedMessage,

    /// <summary>The transport counter was already received or is older than the replay window.</summary>
    ReplayedCounter,

    /// <summary>The keypair is older than RejectAfterTime.</summary>
    KeypairExpired,

    /// <summary>The counter reached RejectAfterMessages.</summary>
    CounterLimitReached,

    /// <summary>No usable keypair to send with; a handshake has been requested (call <see cref="Peer.UpdateTimers"/>).</summary>
    NoSession,

    /// <summary>The destination buffer is too small.</summary>
    BufferTooSmall,

    /// <summary>The decrypted payload is neither a keepalive nor a well-formed IPv4/IPv6 packet.</summary>
    InvalidInnerPacket,

    /// <summary>The handshake was abandoned after RekeyAttemptTime (whitepaper §6.4): drop staged packets.</summary>
    HandshakeTimedOut,

    /// <summary>The peer's keys are unusable (its static public key gives an all-zero shared secret).</summary>
    InvalidPeerKey,

    /// <summary>The keypair was retired (rotated out, zeroed, or its peer removed) while the packet waited: drop it.</summary>
    KeypairRetired,

    /// <summary>The device has no private key (it was cleared): no handshake can be processed.</summary>
    NoPrivateKey,
}

/// <summary>What the caller must do after a call into the protocol core.</summary>
public enum ProtocolAction : byte
{
    /// <summary>Nothing to send or deliver.</summary>
    Done = 0,

    /// <summary>Send <see cref="ProtocolResult.Length"/> bytes at <see cref="ProtocolResult.Offset"/> of the destination buffer to the peer's endpoint (or back to the datagram's source).</summary>
    WriteToNetwork,

    /// <summary>Deliver the IP packet at <see cref="ProtocolResult.Offset"/>/<see cref="ProtocolResult.Length"/> to the tunnel interface (after the allowed-IPs source check).</summary>
    WriteToTunnel,

    /// <summary>The input was rejected or the operation failed; see <see cref="ProtocolResult.Error"/>.</summary>
    Error,
}

/// <summary>
/// The result of <see cref="ProtocolDevice.Decapsulate"/> and <see cref="Peer.UpdateTimers"/>.
/// A small value: no allocation.
/// </summary>
public readonly record struct ProtocolResult(ProtocolAction Action, int Offset, int Length, ProtocolError Error, Peer? Peer)
{
    /// <summary>Nothing to do.</summary>
    internal static ProtocolResult Done(Peer? peer = null) => new(ProtocolAction.Done, 0, 0, ProtocolError.None, peer);

    /// <summary>Rejected with a reason.</summary>
    internal static ProtocolResult Fail(ProtocolError error, Peer? peer = null) => new(ProtocolAction.Error, 0, 0, error, peer);

    internal static ProtocolResult Network(int length, Peer? peer) => new(ProtocolAction.WriteToNetwork, 0, length, ProtocolError.None, peer);

    internal static ProtocolResult Tunnel(int offset, int length, Peer peer) => new(ProtocolAction.WriteToTunnel, offset, length, ProtocolError.None, peer);

}
