namespace Sharptun.NetStack.Tcp;

/// <summary>
/// The arrays behind the TCP connections' send and receive rings (<see cref="ByteRing"/>). A ring takes an array only
/// while it holds bytes and gives it back when it empties, so a stack with many open but quiet connections (a proxy's
/// 100 downloads whose relays keep up, the send side of every download) holds arrays for the busy ones only.
/// </summary>
/// <remarks>
/// <para>Returned arrays are kept for the next ring that needs one and are never handed back to the GC: the pool's
/// memory is the most rings that ever held bytes at once, not the number of connections, and a ring that fills and
/// drains thousands of times a second costs no allocation (a pool that freed arrays would turn that churn into
/// middle-aged garbage, the costliest kind for a generational GC).</para>
/// <para>Thread-safe (a lock per call; the TCP layer calls it under its Gate, so the lock is uncontended).</para>
/// </remarks>
internal sealed class RingPool
{
    private readonly Lock _lock = new();
    private readonly List<(int Size, Stack<byte[]> Free)> _sizes = [];
    private long _allocatedBytes;
    private long _rentedBytes;

    /// <summary>Bytes of every array this pool ever allocated (the most held at once).</summary>
    public long AllocatedBytes
    {
        get
        {
            lock (_lock)
            {
                return _allocatedBytes;
            }
        }
    }

    /// <summary>Bytes of the arrays rings hold now.</summary>
    public long RentedBytes
    {
        get
        {
            lock (_lock)
            {
                return _rentedBytes;
            }
        }
    }

    /// <summary>An array of exactly <paramref name="size"/> bytes (contents undefined).</summary>
    public byte[] Rent(int size)
    {
        lock (_lock)
        {
            _rentedBytes += size;
            var free = FreeList(size);
            if (free.TryPop(out var array))
            {
                return array;
            }

            _allocatedBytes += size;
        }

        return GC.AllocateUninitializedArray<byte>(size);
    }

    /// <summary>Gives back an array from <see cref="Rent"/>.</summary>
    public void Return(byte[] array)
    {
        lock (_lock)
        {
            _rentedBytes -= array.Length;
            FreeList(array.Length).Push(array);
        }
    }

    private Stack<byte[]> FreeList(int size)
    {
        foreach (var (s, free) in _sizes)
        {
            if (s == size)
            {
                return free;
            }
        }

        var added = new Stack<byte[]>();
        _sizes.Add((size, added));
        return added;
    }
}
