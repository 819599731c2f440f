using System.Buffers.Binary;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;
using Sharptun.Transport;

namespace Sharptun.NetStack.Wire;

/// <summary>
/// The Internet checksum (RFC 1071): the 16-bit ones-complement of the ones-complement sum of 16-bit
/// big-endian words. Partial sums returned by <see cref="Add"/> and <see cref="PseudoHeader"/> are already
/// folded to at most 16 significant bits, so they can be chained and added freely.
/// </summary>
/// <remarks>
/// The ones-complement sum is byte-order independent (RFC 1071 §2(B)), so the bulk loop sums native-order
/// words in wide vector lanes (§2(C) "parallel summation") and swaps once at the end.
/// Only the last span of a chain may have odd length: an odd byte is summed as if followed by a zero byte.
/// </remarks>
internal static class Checksum
{
    /// <summary>Adds <paramref name="data"/> to the running partial sum <paramref name="sum"/>.</summary>
    public static uint Add(ReadOnlySpan<byte> data, uint sum = 0)
    {
        ulong acc = sum;
        acc += SumNative(data);
        return Fold(acc);
    }

    /// <summary>Folds a partial sum and returns its ones-complement: the value to store in a header field.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static ushort Finish(uint sum) => (ushort)~Fold(sum);

    /// <summary>
    /// Partial sum of the pseudo-header: RFC 768/793 for IPv4 (source, destination, zero, protocol, length),
    /// RFC 8200 §8.1 for IPv6 (source, destination, 32-bit length, 3 zero bytes, next header).
    /// </summary>
    public static uint PseudoHeader(in IpAddr source, in IpAddr destination, byte protocol, int upperLayerLength)
    {
        ulong acc;
        if (source.IsV4)
        {
            acc = (ulong)(source.V4Value >> 16) + (source.V4Value & 0xFFFF)
                + (destination.V4Value >> 16) + (destination.V4Value & 0xFFFF);
        }
        else
        {
            acc = Words(source.High) + Words(source.Low) + Words(destination.High) + Words(destination.Low);
        }

        acc += protocol;
        acc += ((uint)upperLayerLength >> 16) + ((uint)upperLayerLength & 0xFFFF);
        return Fold(acc);
    }

    /// <summary>
    /// RFC 1624 eqn. 3 incremental update: HC' = ~(~HC + ~m + m'), when one 16-bit field changes from
    /// <paramref name="oldField"/> to <paramref name="newField"/>.
    /// </summary>
    public static ushort Update(ushort oldChecksum, ushort oldField, ushort newField)
    {
        uint acc = (uint)(ushort)~oldChecksum + (ushort)~oldField + newField;
        return (ushort)~Fold(acc);
    }

    /// <summary>Finishes the checksum of <paramref name="data"/> in one call (e.g. an IPv4 header).</summary>
    public static ushort Compute(ReadOnlySpan<byte> data, uint sum = 0) => Finish(Add(data, sum));

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static ulong Words(ulong v) => (v >> 48) + ((v >> 32) & 0xFFFF) + ((v >> 16) & 0xFFFF) + (v & 0xFFFF);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static uint Fold(ulong acc)
    {
        acc = (acc >> 32) + (acc & 0xFFFF_FFFF);
        acc = (acc >> 16) + (acc & 0xFFFF);
        acc = (acc >> 16) + (acc & 0xFFFF);
        acc = (acc >> 16) + (acc & 0xFFFF);
        return (uint)acc;
    }

    /// <summary>Sums the data as big-endian 16-bit words; result folded to 16 bits.</summary>
    private static uint SumNative(ReadOnlySpan<byte> data)
    {
        ulong acc = 0;
        var i = 0;
        ref var start = ref MemoryMarshal.GetReference(data);

        if (Vector256.IsHardwareAccelerated && data.Length >= 64)
        {
            // Each 32-bit lane receives one 16-bit word per step; 32768 steps cannot overflow a lane.
            var mask = Vector256.Create(0xFFFFu);
            while (data.Length - i >= 32)
            {
                var a0 = Vector256<uint>.Zero;
                var a1 = Vector256<uint>.Zero;
                var steps = 0;
                while (data.Length - i >= 64 && steps < 16384)
                {
                    var v0 = Vector256.LoadUnsafe(ref Unsafe.As<byte, uint>(ref Unsafe.Add(ref start, i)));
                    var v1 = Vector256.LoadUnsafe(ref Unsafe.As<byte, uint>(ref Unsafe.Add(ref start, i + 32)));
                    a0 += (v0 & mask) + (v0 >> 16);
                    a1 += (v1 & mask) + (v1 >> 16);
                    i += 64;
                    steps++;
                }

                if (steps < 16384 && data.Length - i >= 32)
                {
                    var v0 = Vector256.LoadUnsafe(ref Unsafe.As<byte, uint>(ref Unsafe.Add(ref start, i)));
                    a0 += (v0 & mask) + (v0 >> 16);
                    i += 32;
                }

                acc += Vector256.Sum(Vector256.WidenLower(a0) + Vector256.WidenUpper(a0))
                     + Vector256.Sum(Vector256.WidenLower(a1) + Vector256.WidenUpper(a1));
            }
        }
        else if (Vector128.IsHardwareAccelerated && data.Length >= 32)
        {
            var mask = Vector128.Create(0xFFFFu);
            while (data.Length - i >= 16)
            {
                var a0 = Vector128<uint>.Zero;
                var steps = 0;
                while (data.Length - i >= 16 && steps < 16384)
                {
                    var v0 = Vector128.LoadUnsafe(ref Unsafe.As<byte, uint>(ref Unsafe.Add(ref start, i)));
                    a0 += (v0 & mask) + (v0 >> 16);
                    i += 16;
                    steps++;
                }

                acc += Vector128.Sum(Vector128.WidenLower(a0) + Vector128.WidenUpper(a0));
            }
        }

        // Scalar tail: native 32-bit words into a 64-bit accumulator.
        while (data.Length - i >= 8)
        {
            var w = Unsafe.ReadUnaligned<ulong>(ref Unsafe.Add(ref start, i));
            acc += (w >> 32) + (w & 0xFFFF_FFFF);
            i += 8;
        }

        while (data.Length - i >= 2)
        {
            acc += Unsafe.ReadUnaligned<ushort>(ref Unsafe.Add(ref start, i));
            i += 2;
        }

        var folded = Fold(acc);
        if (BitConverter.IsLittleEndian)
        {
            folded = BinaryPrimitives.ReverseEndianness((ushort)folded);
        }

        if (i < data.Length)
        {
            folded += (uint)data[i] << 8;   // RFC 1071 §4.1: pad the odd byte with zero
        }

        return folded;
    }
}
