namespace Sharptun.NetStack.Ip;

/// <summary>
/// Bounded FIFO of outbound IP packets in preallocated MTU-sized slots (allocated on first use, then reused: no
/// allocation per packet). Not thread-safe: used under the stack's Gate.
/// </summary>
internal sealed class OutboundQueue
{
    private readonly byte[]?[] _slots;
    private readonly int[] _lengths;
    private readonly int _slotSize;
    private int _head;
    private int _count;

    public OutboundQueue(int capacity, int slotSize)
    {
        _slots = new byte[]?[capacity];
        _lengths = new int[capacity];
        _slotSize = slotSize;
    }

    public int Count => _count;

    public int Capacity => _slots.Length;

    public bool IsFull => _count == _slots.Length;

    /// <summary>Returns the next free slot's buffer to write a packet into, or an empty span when full.</summary>
    public Span<byte> TryBegin()
    {
        if (IsFull)
        {
            return default;
        }

        var index = (_head + _count) % _slots.Length;
        return _slots[index] ??= new byte[_slotSize];
    }

    /// <summary>Enqueues the packet written into the span from <see cref="TryBegin"/>.</summary>
    public void Commit(int length)
    {
        var index = (_head + _count) % _slots.Length;
        _lengths[index] = length;
        _count++;
    }

    public ReadOnlySpan<byte> Peek() => _slots[_head].AsSpan(0, _lengths[_head]);

    public void Dequeue()
    {
        _head = (_head + 1) % _slots.Length;
        _count--;
    }
}
