namespace Sharptun.NetStack.Tcp;

/// <summary>
/// Fixed-capacity byte ring buffer of one connection's send or receive side. Data is read from the head; new data is
/// appended after <see cref="Count"/>. <see cref="WriteAt"/> writes into the free region without making it
/// readable, for out-of-order segments; <see cref="Commit"/> makes it readable. Not thread-safe (Gate).
/// </summary>
/// <remarks>
/// With a <see cref="RingPool"/> the array behind the ring is taken from the pool on the first write and given back
/// as soon as the ring holds nothing (no readable byte and no out-of-order byte written past the end): the capacity
/// (what the window advertises) stays, the memory goes to whichever ring holds bytes. Without a pool the array is
/// allocated once, up front.
/// </remarks>
internal sealed class ByteRing
{
    private readonly RingPool? _pool;
    private readonly int _capacity;
    private byte[]? _buffer;
    private int _head;
    private int _count;
    private int _written; // bytes written by WriteAt past the readable end and not committed yet (an upper bound)

    public ByteRing(int capacity, RingPool? pool = null)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(capacity);
        _capacity = capacity;
        _pool = capacity == 0 ? null : pool;
        if (_pool is null)
        {
            _buffer = GC.AllocateUninitializedArray<byte>(capacity);
        }
    }

    public int Capacity => _capacity;
    public int Count => _count;
    public int Free => _capacity - _count;
    public bool IsEmpty => _count == 0;

    /// <summary>Whether an array backs the ring now (always, without a pool).</summary>
    public bool HoldsArray => _buffer is not null;

    /// <summary>Appends as much of <paramref name="data"/> as fits; returns the number of bytes taken.</summary>
    public int Enqueue(ReadOnlySpan<byte> data)
    {
        int n = Math.Min(data.Length, Free);
        WriteAt(0, data[..n]);
        Commit(n);
        return n;
    }

    /// <summary>Writes <paramref name="data"/> at <paramref name="offset"/> bytes past the readable end (must fit in Free).</summary>
    public void WriteAt(int offset, ReadOnlySpan<byte> data)
    {
        if (offset < 0 || offset + data.Length > Free)
        {
            throw new ArgumentOutOfRangeException(nameof(offset));
        }

        if (data.IsEmpty)
        {
            return;
        }

        var buffer = _buffer ??= _pool!.Rent(_capacity);
        int pos = (_head + _count + offset) % buffer.Length;
        int first = Math.Min(data.Length, buffer.Length - pos);
        data[..first].CopyTo(buffer.AsSpan(pos));
        data[first..].CopyTo(buffer);
        _written = Math.Max(_written, offset + data.Length);
    }

    /// <summary>Makes <paramref name="n"/> bytes written by <see cref="WriteAt"/> readable.</summary>
    public void Commit(int n)
    {
        if (n < 0 || n > Free || (n > 0 && _buffer is null))
        {
            throw new ArgumentOutOfRangeException(nameof(n));
        }

        _count += n;
        _written = Math.Max(0, _written - n);
    }

    /// <summary>Copies bytes at <paramref name="offset"/> from the head into <paramref name="destination"/> without consuming.</summary>
    public void Peek(int offset, Span<byte> destination)
    {
        if (offset < 0 || offset + destination.Length > _count)
        {
            throw new ArgumentOutOfRangeException(nameof(offset));
        }

        if (destination.IsEmpty)
        {
            return;
        }

        var buffer = _buffer!;
        int pos = (_head + offset) % buffer.Length;
        int first = Math.Min(destination.Length, buffer.Length - pos);
        buffer.AsSpan(pos, first).CopyTo(destination);
        buffer.AsSpan(0, destination.Length - first).CopyTo(destination[first..]);
    }

    /// <summary>Drops <paramref name="n"/> bytes from the head.</summary>
    public void Discard(int n)
    {
        if (n < 0 || n > _count)
        {
            throw new ArgumentOutOfRangeException(nameof(n));
        }

        if (n == 0)
        {
            return;
        }

        _head = (_head + n) % _capacity;
        _count -= n; // the head is not reset when empty: out-of-order bytes may sit beyond it
        if (_count == 0 && _written == 0 && _pool is not null)
        {
            _pool.Return(_buffer!);
            _buffer = null;
            _head = 0;
        }
    }

    /// <summary>Reads and consumes up to destination.Length bytes.</summary>
    public int Dequeue(Span<byte> destination)
    {
        int n = Math.Min(destination.Length, _count);
        Peek(0, destination[..n]);
        Discard(n);
        return n;
    }

    /// <summary>Gives the array back to the pool whatever the ring holds (the connection is gone); the ring is empty after.</summary>
    public void Release()
    {
        if (_pool is not null && _buffer is not null)
        {
            _pool.Return(_buffer);
            _buffer = null;
        }

        _head = 0;
        _count = 0;
        _written = 0;
    }
}
