namespace Sharptun.NetStack.Tcp;

/// <summary>
/// Fixed-capacity byte ring buffer, allocated once per connection. Data is read from the head; new data is
/// appended after <see cref="Count"/>. <see cref="WriteAt"/> writes into the free region without making it
/// readable, for out-of-order segments; <see cref="Commit"/> makes it readable. Not thread-safe (Gate).
/// </summary>
internal sealed class ByteRing
{
    private readonly byte[] _buffer;
    private int _head;
    private int _count;

    public ByteRing(int capacity) => _buffer = GC.AllocateUninitializedArray<byte>(capacity);

    public int Capacity => _buffer.Length;
    public int Count => _count;
    public int Free => _buffer.Length - _count;
    public bool IsEmpty => _count == 0;

    /// <summary>Appends as much of <paramref name="data"/> as fits; returns the number of bytes taken.</summary>
    public int Enqueue(ReadOnlySpan<byte> data)
    {
        int n = Math.Min(data.Length, Free);
        WriteAt(0, data[..n]);
        _count += n;
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

        int pos = (_head + _count + offset) % _buffer.Length;
        int first = Math.Min(data.Length, _buffer.Length - pos);
        data[..first].CopyTo(_buffer.AsSpan(pos));
        data[first..].CopyTo(_buffer);
    }

    /// <summary>Makes <paramref name="n"/> bytes written by <see cref="WriteAt"/> readable.</summary>
    public void Commit(int n)
    {
        if (n < 0 || n > Free)
        {
            throw new ArgumentOutOfRangeException(nameof(n));
        }

        _count += n;
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

        int pos = (_head + offset) % _buffer.Length;
        int first = Math.Min(destination.Length, _buffer.Length - pos);
        _buffer.AsSpan(pos, first).CopyTo(destination);
        _buffer.AsSpan(0, destination.Length - first).CopyTo(destination[first..]);
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

        _head = (_head + n) % _buffer.Length;
        _count -= n; // the head is not reset when empty: out-of-order bytes may sit beyond it
    }

    /// <summary>Reads and consumes up to destination.Length bytes.</summary>
    public int Dequeue(Span<byte> destination)
    {
        int n = Math.Min(destination.Length, _count);
        Peek(0, destination[..n]);
        Discard(n);
        return n;
    }
}
