namespace Sharptun.Protocol;

/// <summary>
/// The WireGuard protocol constants, named as in the whitepaper (§6.1 "Preliminaries", §5.4 for the strings).
/// Implementation limits that are our own choice live in <see cref="ProtocolLimits"/>.
/// </summary>
public static class ProtocolConstants
{
    /// <summary>Initiate a new handshake after this many messages sent with one keypair (whitepaper §6.1: 2^60).</summary>
    public const ulong RekeyAfterMessages = 1UL << 60;

    /// <summary>Never send or accept a message with a counter at or above this (whitepaper §6.1: 2^64 − 2^13 − 1).</summary>
    public const ulong RejectAfterMessages = ulong.MaxValue - (1UL << 13);

    /// <summary>The initiator starts a new handshake when its current keypair is this old (whitepaper §6.1: 120 s).</summary>
    public static readonly TimeSpan RekeyAfterTime = TimeSpan.FromSeconds(120);

    /// <summary>A keypair older than this is never used to send or receive (whitepaper §6.1: 180 s).</summary>
    public static readonly TimeSpan RejectAfterTime = TimeSpan.FromSeconds(180);

    /// <summary>Give up retrying a handshake after this long (whitepaper §6.1: 90 s).</summary>
    public static readonly TimeSpan RekeyAttemptTime = TimeSpan.FromSeconds(90);

    /// <summary>Retry an unanswered handshake initiation after this long, plus jitter (whitepaper §6.1: 5 s).</summary>
    public static readonly TimeSpan RekeyTimeout = TimeSpan.FromSeconds(5);

    /// <summary>Send a keepalive when data was received but nothing was sent for this long (whitepaper §6.1: 10 s).</summary>
    public static readonly TimeSpan KeepaliveTimeout = TimeSpan.FromSeconds(10);

    /// <summary>Cookie secret rotation period and cookie lifetime (whitepaper §5.4.7: 2 minutes).</summary>
    public static readonly TimeSpan CookieRefreshTime = TimeSpan.FromSeconds(120);

    /// <summary>Upper bound (exclusive) of the random jitter added to <see cref="RekeyTimeout"/> (whitepaper §6.1: 0–333 ms).</summary>
    public static readonly TimeSpan RekeyTimeoutJitterMax = TimeSpan.FromMilliseconds(334);

    /// <summary>Handshake attempts before giving up: RekeyAttemptTime / RekeyTimeout (as wireguard-go's MaxTimerHandshakes).</summary>
    public const int MaxTimerHandshakes = 90 / 5;

    /// <summary>Minimum spacing of accepted initiations from one peer (wireguard-go HandshakeInitationRate: 1/50 s).</summary>
    public static readonly TimeSpan HandshakeInitiationRate = TimeSpan.FromMilliseconds(20);

    /// <summary>Noise protocol name (whitepaper §5.4: CONSTRUCTION).</summary>
    public const string Construction = "Noise_IKpsk2_25519_ChaChaPoly_BLAKE2s";

    /// <summary>Prologue (whitepaper §5.4: IDENTIFIER).</summary>
    public const string Identifier = "WireGuard v1 zx2c4 Jason@zx2c4.com";

    /// <summary>mac1 key label (whitepaper §5.4: LABEL-MAC1).</summary>
    public const string LabelMac1 = "mac1----";

    /// <summary>Cookie encryption key label (whitepaper §5.4: LABEL-COOKIE).</summary>
    public const string LabelCookie = "cookie--";
}

/// <summary>Sharptun's own limits (not from the whitepaper).</summary>
public static class ProtocolLimits
{
    /// <summary>Packets behind the highest seen counter that are still accepted (RFC 6479 ring of 256 × 64-bit blocks, minus one block).</summary>
    public const int ReplayWindowSize = ReplayWindow.WindowSize;

    /// <summary>Largest transport datagram accepted (the largest UDP payload).</summary>
    public const int MaxDatagramLength = 65535;
}
