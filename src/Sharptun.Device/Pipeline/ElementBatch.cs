namespace Sharptun.Device.Pipeline;

/// <summary>
/// Per-thread arrays for one batch of a peer's finished elements, taken from its ordered queue by the drainer of either
/// direction (one instance per thread and direction, allocated once): the elements, then the buffers and sizes of those
/// that go out, handed to the bind or the packet device in chunks of at most its batch size.
/// </summary>
internal sealed class ElementBatch
{
    public const int Capacity = 128;
    public readonly PacketElement[] Elements = new PacketElement[Capacity];
    public readonly byte[][] Buffers = new byte[Capacity][];
    public readonly int[] Sizes = new int[Capacity];
    private readonly byte[][][] _views = CreateViews();

    /// <summary>
    /// The next chunk of <c>Buffers[0 .. count]</c> from <paramref name="offset"/>, at most <paramref name="maxChunk"/>
    /// (at least 1) long: an exact-length array of its buffers (the batch APIs take arrays) and its sizes; advances
    /// <paramref name="offset"/>. False when every buffer was handed out.
    /// </summary>
    public bool TryNextChunk(int count, int maxChunk, ref int offset, out byte[][] buffers, out ReadOnlySpan<int> sizes)
    {
        if (offset >= count)
        {
            buffers = null!;
            sizes = default;
            return false;
        }

        var chunk = Math.Min(count - offset, Math.Max(1, maxChunk));
        if (offset == 0 && chunk == Capacity)
        {
            buffers = Buffers;
        }
        else
        {
            buffers = _views[chunk];
            Array.Copy(Buffers, offset, buffers, 0, chunk);
        }

        sizes = Sizes.AsSpan(offset, chunk);
        offset += chunk;
        return true;
    }

    /// <summary>views[n] is an n-element array, so a partial chunk is copied into the view of its length.</summary>
    private static byte[][][] CreateViews()
    {
        var views = new byte[Capacity + 1][][];
        for (var i = 0; i <= Capacity; i++)
        {
            views[i] = new byte[i][];
        }

        return views;
    }
}
