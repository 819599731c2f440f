using System.Buffers.Binary;

namespace Sharptun.Protocol;

/// <summary>A handshake response as plain values (whitepaper §5.4.3).</summary>
public readonly record struct HandshakeResponse(
    uint SenderIndex, uint ReceiverIndex, Bytes32 Ephemeral, Bytes16 EncryptedEmpty, Bytes16 Mac1, Bytes16 Mac2)
{
    /// <summary>Length in bytes of the encoded message.</summary>
    public const int Length = HandshakeResponseView.Size;

    /// <summary>Parses <paramref name="bytes"/> (checked like the view's <c>TryCreate</c>); false when it is not this message.</summary>
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

    /// <summary>Writes the encoded message to <paramref name="destination"/>, which must hold <see cref="Length"/> bytes.</summary>
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
