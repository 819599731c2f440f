using System.Buffers.Binary;

namespace Sharptun.Protocol;

/// <summary>A handshake initiation as plain values (whitepaper §5.4.2).</summary>
public readonly record struct HandshakeInitiation(
    uint SenderIndex, Bytes32 Ephemeral, Bytes48 EncryptedStatic, Bytes28 EncryptedTimestamp, Bytes16 Mac1, Bytes16 Mac2)
{
    /// <summary>Length in bytes of the encoded message.</summary>
    public const int Length = HandshakeInitiationView.Size;

    /// <summary>Parses <paramref name="bytes"/> (checked like the view's <c>TryCreate</c>); false when it is not this message.</summary>
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
