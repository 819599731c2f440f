using System.Buffers.Binary;

namespace Sharptun.Protocol;

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
