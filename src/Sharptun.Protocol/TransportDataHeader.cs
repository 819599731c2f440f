using System.Buffers.Binary;

namespace Sharptun.Protocol;

/// <summary>The 16-byte transport data header as plain values (whitepaper §5.4.6); the payload is not copied.</summary>
public readonly record struct TransportDataHeader(uint ReceiverIndex, ulong Counter)
{
    /// <summary>Length in bytes of the encoded header.</summary>
    public const int Length = TransportDataView.HeaderSize;

    /// <summary>Parses <paramref name="bytes"/> (checked like the view's <c>TryCreate</c>); false when it is not this message.</summary>
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

    /// <summary>Writes the encoded header to <paramref name="destination"/>, which must hold <see cref="Length"/> bytes.</summary>
    public void Emit(Span<byte> destination)
    {
        MessageHeader.Write(destination, MessageType.TransportData);
        BinaryPrimitives.WriteUInt32LittleEndian(destination[TransportDataView.ReceiverOffset..], ReceiverIndex);
        BinaryPrimitives.WriteUInt64LittleEndian(destination[TransportDataView.CounterOffset..], Counter);
    }
}
