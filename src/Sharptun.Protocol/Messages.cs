using System.Buffers.Binary;
using System.Diagnostics.CodeAnalysis;
using System.Runtime.CompilerServices;

namespace Sharptun.Protocol;

// WireGuard message formats (whitepaper §5.4.2–§5.4.7). All integers are little-endian.
// Every message starts with a 4-byte header: the type in the first byte, then three reserved bytes that must be zero.
//
//  0      1      2      3      4
// +------+------+------+------+
// | type |   reserved (zero)  |
// +------+------+------+------+

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

/// <summary>Message classification shared by every message type.</summary>
public static class MessageHeader
{
    /// <summary>Length of the type + reserved header.</summary>
    public const int Length = 4;

    /// <summary>
    /// Reads the type of an untrusted datagram and checks its length against that type: handshake messages must have
    /// their exact size, transport data at least the header and tag. Never throws.
    /// </summary>
    public static ProtocolError TryGetType(ReadOnlySpan<byte> datagram, out MessageType type)
    {
        type = MessageType.None;
        if (datagram.Length < Length)
        {
            return ProtocolError.Truncated;
        }

        if (datagram[1] != 0 || datagram[2] != 0 || datagram[3] != 0)
        {
            return ProtocolError.ReservedBytesNonZero;
        }

        int expected;
        switch ((MessageType)datagram[0])
        {
            case MessageType.HandshakeInitiation:
                expected = HandshakeInitiationView.Size;
                break;
            case MessageType.HandshakeResponse:
                expected = HandshakeResponseView.Size;
                break;
            case MessageType.CookieReply:
                expected = CookieReplyView.Size;
                break;
            case MessageType.TransportData:
                if (datagram.Length < TransportDataView.MinSize)
                {
                    return ProtocolError.Truncated;
                }

                if (datagram.Length > ProtocolLimits.MaxDatagramLength)
                {
                    return ProtocolError.Oversized;
                }

                type = MessageType.TransportData;
                return ProtocolError.None;
            default:
                return ProtocolError.UnknownMessageType;
        }

        if (datagram.Length < expected)
        {
            return ProtocolError.Truncated;
        }

        if (datagram.Length > expected)
        {
            return ProtocolError.Oversized;
        }

        type = (MessageType)datagram[0];
        return ProtocolError.None;
    }

    internal static void Write(Span<byte> destination, MessageType type)
    {
        BinaryPrimitives.WriteUInt32LittleEndian(destination, (uint)type);
    }
}

/// <summary>
/// A checked view of a handshake initiation (whitepaper §5.4.2).
/// <code>
///  0                   1                   2                   3
/// +-------+-----------+---------------+
/// | 1 |res|  sender (4)  |  ephemeral (32)          ...   offset 8
/// | static: AEAD(32) + tag(16) = 48                ...   offset 40
/// | timestamp: AEAD(TAI64N 12) + tag(16) = 28      ...   offset 88
/// | mac1 (16)                                      ...   offset 116
/// | mac2 (16)                                      ...   offset 132, end 148
/// </code>
/// </summary>
public readonly ref struct HandshakeInitiationView
{
    public const int Size = 148;
    public const int SenderOffset = 4;
    public const int EphemeralOffset = 8;
    public const int StaticOffset = 40;
    public const int StaticLength = 32 + 16;
    public const int TimestampOffset = 88;
    public const int TimestampLength = 12 + 16;
    public const int Mac1Offset = 116;
    public const int Mac2Offset = 132;

    private readonly ReadOnlySpan<byte> _bytes;

    private HandshakeInitiationView(ReadOnlySpan<byte> bytes) => _bytes = bytes;

    /// <summary>Wraps <paramref name="bytes"/> when it has exactly the initiation size and type 1 with zero reserved bytes.</summary>
    public static bool TryCreate(ReadOnlySpan<byte> bytes, out HandshakeInitiationView view)
    {
        view = default;
        if (MessageHeader.TryGetType(bytes, out var type) != ProtocolError.None || type != MessageType.HandshakeInitiation)
        {
            return false;
        }

        view = new HandshakeInitiationView(bytes);
        return true;
    }

    public uint SenderIndex => BinaryPrimitives.ReadUInt32LittleEndian(_bytes[SenderOffset..]);
    public ReadOnlySpan<byte> Ephemeral => _bytes.Slice(EphemeralOffset, 32);
    public ReadOnlySpan<byte> EncryptedStatic => _bytes.Slice(StaticOffset, StaticLength);
    public ReadOnlySpan<byte> EncryptedTimestamp => _bytes.Slice(TimestampOffset, TimestampLength);
    public ReadOnlySpan<byte> Mac1 => _bytes.Slice(Mac1Offset, 16);
    public ReadOnlySpan<byte> Mac2 => _bytes.Slice(Mac2Offset, 16);

    /// <summary>The bytes covered by mac1 (everything before it).</summary>
    public ReadOnlySpan<byte> Mac1Input => _bytes[..Mac1Offset];

    /// <summary>The bytes covered by mac2 (everything before it).</summary>
    public ReadOnlySpan<byte> Mac2Input => _bytes[..Mac2Offset];
}

/// <summary>
/// A checked view of a handshake response (whitepaper §5.4.3).
/// <code>
/// | 2 |res| sender (4) | receiver (4) | ephemeral (32) | empty: AEAD(0)+tag (16) | mac1 (16) | mac2 (16) |
///  0       4            8              12               44                        60          76         92
/// </code>
/// </summary>
public readonly ref struct HandshakeResponseView
{
    public const int Size = 92;
    public const int SenderOffset = 4;
    public const int ReceiverOffset = 8;
    public const int EphemeralOffset = 12;
    public const int EmptyOffset = 44;
    public const int EmptyLength = 16;
    public const int Mac1Offset = 60;
    public const int Mac2Offset = 76;

    private readonly ReadOnlySpan<byte> _bytes;

    private HandshakeResponseView(ReadOnlySpan<byte> bytes) => _bytes = bytes;

    /// <summary>Wraps <paramref name="bytes"/> when it has exactly the response size and type 2 with zero reserved bytes.</summary>
    public static bool TryCreate(ReadOnlySpan<byte> bytes, out HandshakeResponseView view)
    {
        view = default;
        if (MessageHeader.TryGetType(bytes, out var type) != ProtocolError.None || type != MessageType.HandshakeResponse)
        {
            return false;
        }

        view = new HandshakeResponseView(bytes);
        return true;
    }

    public uint SenderIndex => BinaryPrimitives.ReadUInt32LittleEndian(_bytes[SenderOffset..]);
    public uint ReceiverIndex => BinaryPrimitives.ReadUInt32LittleEndian(_bytes[ReceiverOffset..]);
    public ReadOnlySpan<byte> Ephemeral => _bytes.Slice(EphemeralOffset, 32);
    public ReadOnlySpan<byte> EncryptedEmpty => _bytes.Slice(EmptyOffset, EmptyLength);
    public ReadOnlySpan<byte> Mac1 => _bytes.Slice(Mac1Offset, 16);
    public ReadOnlySpan<byte> Mac2 => _bytes.Slice(Mac2Offset, 16);
    public ReadOnlySpan<byte> Mac1Input => _bytes[..Mac1Offset];
    public ReadOnlySpan<byte> Mac2Input => _bytes[..Mac2Offset];
}

/// <summary>
/// A checked view of a cookie reply (whitepaper §5.4.7).
/// <code>
/// | 3 |res| receiver (4) | nonce (24) | cookie: XAEAD(16) + tag(16) = 32 |
///  0       4              8            32                                 64
/// </code>
/// </summary>
public readonly ref struct CookieReplyView
{
    public const int Size = 64;
    public const int ReceiverOffset = 4;
    public const int NonceOffset = 8;
    public const int NonceLength = 24;
    public const int CookieOffset = 32;
    public const int CookieLength = 16 + 16;

    private readonly ReadOnlySpan<byte> _bytes;

    private CookieReplyView(ReadOnlySpan<byte> bytes) => _bytes = bytes;

    /// <summary>Wraps <paramref name="bytes"/> when it has exactly the cookie reply size and type 3 with zero reserved bytes.</summary>
    public static bool TryCreate(ReadOnlySpan<byte> bytes, out CookieReplyView view)
    {
        view = default;
        if (MessageHeader.TryGetType(bytes, out var type) != ProtocolError.None || type != MessageType.CookieReply)
        {
            return false;
        }

        view = new CookieReplyView(bytes);
        return true;
    }

    public uint ReceiverIndex => BinaryPrimitives.ReadUInt32LittleEndian(_bytes[ReceiverOffset..]);
    public ReadOnlySpan<byte> Nonce => _bytes.Slice(NonceOffset, NonceLength);
    public ReadOnlySpan<byte> EncryptedCookie => _bytes.Slice(CookieOffset, CookieLength);
}

/// <summary>
/// A checked view of a transport data message (whitepaper §5.4.6).
/// <code>
/// | 4 |res| receiver (4) | counter (8) | encrypted packet (16·n) | tag (16) |
///  0       4              8             16
/// </code>
/// </summary>
public readonly ref struct TransportDataView
{
    public const int HeaderSize = 16;
    public const int TagSize = 16;
    public const int MinSize = HeaderSize + TagSize;
    public const int ReceiverOffset = 4;
    public const int CounterOffset = 8;

    private readonly ReadOnlySpan<byte> _bytes;

    private TransportDataView(ReadOnlySpan<byte> bytes) => _bytes = bytes;

    /// <summary>Wraps <paramref name="bytes"/> when it is at least 32 bytes of type 4 with zero reserved bytes.</summary>
    public static bool TryCreate(ReadOnlySpan<byte> bytes, out TransportDataView view)
    {
        view = default;
        if (MessageHeader.TryGetType(bytes, out var type) != ProtocolError.None || type != MessageType.TransportData)
        {
            return false;
        }

        view = new TransportDataView(bytes);
        return true;
    }

    public uint ReceiverIndex => BinaryPrimitives.ReadUInt32LittleEndian(_bytes[ReceiverOffset..]);
    public ulong Counter => BinaryPrimitives.ReadUInt64LittleEndian(_bytes[CounterOffset..]);
    public ReadOnlySpan<byte> EncryptedPacket => _bytes[HeaderSize..^TagSize];
    public ReadOnlySpan<byte> Tag => _bytes[^TagSize..];
}

/// <summary>A handshake initiation as plain values (whitepaper §5.4.2).</summary>
public readonly record struct HandshakeInitiation(
    uint SenderIndex, Bytes32 Ephemeral, Bytes48 EncryptedStatic, Bytes28 EncryptedTimestamp, Bytes16 Mac1, Bytes16 Mac2)
{
    public const int Length = HandshakeInitiationView.Size;

    public static bool TryParse(ReadOnlySpan<byte> bytes, out HandshakeInitiation message)
    {
        message = default;
        if (!HandshakeInitiationView.TryCreate(bytes, out var v))
        {
            return false;
        }

        message = new HandshakeInitiation(v.SenderIndex, new(v.Ephemeral), new(v.EncryptedStatic), new(v.EncryptedTimestamp), new(v.Mac1), new(v.Mac2));
        return true;
    }

    /// <summary>Writes the 148 bytes to <paramref name="destination"/>.</summary>
    public void Emit(Span<byte> destination)
    {
        MessageHeader.Write(destination, MessageType.HandshakeInitiation);
        BinaryPrimitives.WriteUInt32LittleEndian(destination[HandshakeInitiationView.SenderOffset..], SenderIndex);
        Ephemeral.CopyTo(destination[HandshakeInitiationView.EphemeralOffset..]);
        EncryptedStatic.CopyTo(destination[HandshakeInitiationView.StaticOffset..]);
        EncryptedTimestamp.CopyTo(destination[HandshakeInitiationView.TimestampOffset..]);
        Mac1.CopyTo(destination[HandshakeInitiationView.Mac1Offset..]);
        Mac2.CopyTo(destination[HandshakeInitiationView.Mac2Offset..]);
    }
}

/// <summary>A handshake response as plain values (whitepaper §5.4.3).</summary>
public readonly record struct HandshakeResponse(
    uint SenderIndex, uint ReceiverIndex, Bytes32 Ephemeral, Bytes16 EncryptedEmpty, Bytes16 Mac1, Bytes16 Mac2)
{
    public const int Length = HandshakeResponseView.Size;

    public static bool TryParse(ReadOnlySpan<byte> bytes, out HandshakeResponse message)
    {
        message = default;
        if (!HandshakeResponseView.TryCreate(bytes, out var v))
        {
            return false;
        }

        message = new HandshakeResponse(v.SenderIndex, v.ReceiverIndex, new(v.Ephemeral), new(v.EncryptedEmpty), new(v.Mac1), new(v.Mac2));
        return true;
    }

    public void Emit(Span<byte> destination)
    {
        MessageHeader.Write(destination, MessageType.HandshakeResponse);
        BinaryPrimitives.WriteUInt32LittleEndian(destination[HandshakeResponseView.SenderOffset..], SenderIndex);
        BinaryPrimitives.WriteUInt32LittleEndian(destination[HandshakeResponseView.ReceiverOffset..], ReceiverIndex);
        Ephemeral.CopyTo(destination[HandshakeResponseView.EphemeralOffset..]);
        EncryptedEmpty.CopyTo(destination[HandshakeResponseView.EmptyOffset..]);
        Mac1.CopyTo(destination[HandshakeResponseView.Mac1Offset..]);
        Mac2.CopyTo(destination[HandshakeResponseView.Mac2Offset..]);
    }
}

/// <summary>A cookie reply as plain values (whitepaper §5.4.7).</summary>
public readonly record struct CookieReply(uint ReceiverIndex, Bytes24 Nonce, Bytes32 EncryptedCookie)
{
    public const int Length = CookieReplyView.Size;

    public static bool TryParse(ReadOnlySpan<byte> bytes, out CookieReply message)
    {
        message = default;
        if (!CookieReplyView.TryCreate(bytes, out var v))
        {
            return false;
        }

        message = new CookieReply(v.ReceiverIndex, new(v.Nonce), new(v.EncryptedCookie));
        return true;
    }

    public void Emit(Span<byte> destination)
    {
        MessageHeader.Write(destination, MessageType.CookieReply);
        BinaryPrimitives.WriteUInt32LittleEndian(destination[CookieReplyView.ReceiverOffset..], ReceiverIndex);
        Nonce.CopyTo(destination[CookieReplyView.NonceOffset..]);
        EncryptedCookie.CopyTo(destination[CookieReplyView.CookieOffset..]);
    }
}

/// <summary>The 16-byte transport data header as plain values (whitepaper §5.4.6); the payload is not copied.</summary>
public readonly record struct TransportDataHeader(uint ReceiverIndex, ulong Counter)
{
    public const int Length = TransportDataView.HeaderSize;

    public static bool TryParse(ReadOnlySpan<byte> bytes, out TransportDataHeader header)
    {
        header = default;
        if (!TransportDataView.TryCreate(bytes, out var v))
        {
            return false;
        }

        header = new TransportDataHeader(v.ReceiverIndex, v.Counter);
        return true;
    }

    public void Emit(Span<byte> destination)
    {
        MessageHeader.Write(destination, MessageType.TransportData);
        BinaryPrimitives.WriteUInt32LittleEndian(destination[TransportDataView.ReceiverOffset..], ReceiverIndex);
        BinaryPrimitives.WriteUInt64LittleEndian(destination[TransportDataView.CounterOffset..], Counter);
    }
}

/// <summary>16 bytes by value.</summary>
[InlineArray(16)]
public struct Bytes16 : IEquatable<Bytes16>
{
    private byte _e0;

    public Bytes16(ReadOnlySpan<byte> source) => source[..16].CopyTo(this);

    [UnscopedRef]
    public Span<byte> AsSpan() => this;

    public readonly bool Equals(Bytes16 other) => ((ReadOnlySpan<byte>)this).SequenceEqual(other);

    public override readonly bool Equals(object? obj) => obj is Bytes16 b && Equals(b);

    public override readonly int GetHashCode() => BinaryPrimitives.ReadInt32LittleEndian(this);

    public readonly void CopyTo(Span<byte> destination) => ((ReadOnlySpan<byte>)this).CopyTo(destination);
}

/// <summary>24 bytes by value.</summary>
[InlineArray(24)]
public struct Bytes24 : IEquatable<Bytes24>
{
    private byte _e0;

    public Bytes24(ReadOnlySpan<byte> source) => source[..24].CopyTo(this);

    [UnscopedRef]
    public Span<byte> AsSpan() => this;

    public readonly bool Equals(Bytes24 other) => ((ReadOnlySpan<byte>)this).SequenceEqual(other);

    public override readonly bool Equals(object? obj) => obj is Bytes24 b && Equals(b);

    public override readonly int GetHashCode() => BinaryPrimitives.ReadInt32LittleEndian(this);

    public readonly void CopyTo(Span<byte> destination) => ((ReadOnlySpan<byte>)this).CopyTo(destination);
}

/// <summary>28 bytes by value.</summary>
[InlineArray(28)]
public struct Bytes28 : IEquatable<Bytes28>
{
    private byte _e0;

    public Bytes28(ReadOnlySpan<byte> source) => source[..28].CopyTo(this);

    [UnscopedRef]
    public Span<byte> AsSpan() => this;

    public readonly bool Equals(Bytes28 other) => ((ReadOnlySpan<byte>)this).SequenceEqual(other);

    public override readonly bool Equals(object? obj) => obj is Bytes28 b && Equals(b);

    public override readonly int GetHashCode() => BinaryPrimitives.ReadInt32LittleEndian(this);

    public readonly void CopyTo(Span<byte> destination) => ((ReadOnlySpan<byte>)this).CopyTo(destination);
}

/// <summary>32 bytes by value.</summary>
[InlineArray(32)]
public struct Bytes32 : IEquatable<Bytes32>
{
    private byte _e0;

    public Bytes32(ReadOnlySpan<byte> source) => source[..32].CopyTo(this);

    [UnscopedRef]
    public Span<byte> AsSpan() => this;

    public readonly bool Equals(Bytes32 other) => ((ReadOnlySpan<byte>)this).SequenceEqual(other);

    public override readonly bool Equals(object? obj) => obj is Bytes32 b && Equals(b);

    public override readonly int GetHashCode() => BinaryPrimitives.ReadInt32LittleEndian(this);

    public readonly void CopyTo(Span<byte> destination) => ((ReadOnlySpan<byte>)this).CopyTo(destination);
}

/// <summary>48 bytes by value.</summary>
[InlineArray(48)]
public struct Bytes48 : IEquatable<Bytes48>
{
    private byte _e0;

    public Bytes48(ReadOnlySpan<byte> source) => source[..48].CopyTo(this);

    [UnscopedRef]
    public Span<byte> AsSpan() => this;

    public readonly bool Equals(Bytes48 other) => ((ReadOnlySpan<byte>)this).SequenceEqual(other);

    public override readonly bool Equals(object? obj) => obj is Bytes48 b && Equals(b);

    public override readonly int GetHashCode() => BinaryPrimitives.ReadInt32LittleEndian(this);

    public readonly void CopyTo(Span<byte> destination) => ((ReadOnlySpan<byte>)this).CopyTo(destination);
}
