namespace Sharptun.Protocol;

/// <summary>The message type byte (whitepaper §5.4.2–§5.4.6).</summary>
public enum MessageType : byte
{
    /// <summary>Not a valid type.</summary>
    None = 0,

    /// <summary>Handshake initiation, 148 bytes.</summary>
    HandshakeInitiation = 1,

    /// <summary>Handshake response, 92 bytes.</summary>
    HandshakeResponse = 2,

    /// <summary>Cookie reply, 64 bytes.</summary>
    CookieReply = 3,

    /// <summary>Transport data, 32 bytes or more.</summary>
    TransportData = 4,
}
