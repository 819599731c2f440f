namespace Sharptun.NetStack.Tcp;

/// <summary>
/// Fixed-capacity byte ring buffer of one connection's send or receive side. Data is read from the head; new data is
/// appended after <see cref="Count"/>. <see cref="WriteAt"/> writes into the free region without making it
/// readable, for out-of-order segments; <see cref="Commit"/> makes it readable. Not thread-safe (Gate).
/// </summary>
/// <remarks>
/// With a <see cref="RingPool"/> the ring's memory is a row of chunks (<see cref="ChunkSize"/> bytes each) taken from the
/// pool when a byte is first written into them and given back as soon as no readable byte and no out-of-order byte
/// written past the end lies in them: the capacity (what the window advertises) stays, the memory follows the bytes
/// the ring holds, to the chunk. Without a pool the ring is one array allocated up front.
/// </remarks>
internal sealed class ByteRing
{
    /// <summary>Bytes per chunk of a pooled ring (a ring smaller than this is one chunk of its own size).</summary>
    public const int ChunkSize = 4096;

    private readonly RingPool? _pool;
    private readonly int _capacity;
    private readonly int _chunkSize;
    private readonly byte[]?[] _chunks;
    private int _held; // chunks taken from the pool
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
            _chunkSize = Math.Max(capacity, 1);
            _chunks = [GC.AllocateUninitializedArray<byte>(capacity)];
        }
        else
        {
            _chunkSize = Math.Min(capacity, ChunkSize);
            _chunks = new byte[]?[(capacity + _chunkSize - 1) / _chunkSize];
        }
    }

    public int Capacity => _capacity;
    public int Count => _count;
    public int Free => _capacity - _count;
    public bool IsEmpty => _count == 0;

    /// <summary>Whether any memory backs the ring now (always, without a pool).</summary>
    public bool HoldsArray => _pool is null || _held > 0;

    /// <summary>Bytes of the chunks the ring holds now (its whole array without a pool).</summary>
    public int HeldBytes => _pool is null ? _capacity : _held * _chunkSize;

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

        int length = data.Length;
        int pos = (_head + _count + offset) % _capacity;
        while (!data.IsEmpty)
        {
            int chunk = pos / _chunkSize;
            int within = pos - (chunk * _chunkSize);
            int n = Math.Min(data.Length, Math.Min(_chunkSize - within, _capacity - pos));
            var array = _chunks[chunk];
            if (array is null)
            {
                array = _chunks[chunk] = _pool!.Rent(_chunkSize);
                _held++;
            }

            data[..n].CopyTo(array.AsSpan(within));
            data = data[n..];
            pos = (pos + n) % _capacity;
        }

        _written = Math.Max(_written, offset + length);
    }

    /// <summary>Makes <paramref name="n"/> bytes written by <see cref="WriteAt"/> readable.</summary>
    public void Commit(int n)
    {
        if (n < 0 || n > Free || n > _written)
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

        int pos = (_head + offset) % Math.Max(_capacity, 1);
        while (!destination.IsEmpty)
        {
            int chunk = pos / _chunkSize;
            int within = pos - (chunk * _chunkSize);
            int n = Math.Min(destination.Length, Math.Min(_chunkSize - within, _capacity - pos));
            _chunks[chunk].AsSpan(within, n).CopyTo(destination);
            destination = destination[n..];
            pos = (pos + n) % _capacity;
        }
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

        int oldHead = _head;
        _head = (_head + n) % _capacity;
        _count -= n; // the head is not reset when empty: out-of-order bytes may sit beyond it
        if (_pool is null)
        {
            return;
        }

        if (_count == 0 && _written == 0)
        {
            ReturnAll();
            _head = 0;
            return;
        }

        // give back the chunks the discarded bytes ran through that no live byte (readable or written ahead) touches
        int pos = oldHead;
        int remaining = n;
        while (remaining > 0)
        {
            int c = pos / _chunkSize;
            int step = Math.Min(remaining, Math.Min(_chunkSize - (pos - (c * _chunkSize)), _capacity - pos));
            if (_chunks[c] is { } array && !IsLive(c))
            {
                _pool.Return(array);
                _chunks[c] = null;
                _held--;
            }

            remaining -= step;
            pos = (pos + step) % _capacity;
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

    /// <summary>Gives the chunks back to the pool whatever the ring holds (the connection is gone); the ring is empty after.</summary>
    public void Release()
    {
        if (_pool is not null)
        {
            ReturnAll();
        }

        _head = 0;
        _count = 0;
        _written = 0;
    }

    /// <summary>Whether chunk <paramref name="c"/> holds a byte of [head, head + count + written) (mod capacity).</summary>
    private bool IsLive(int c)
    {
        int live = Math.Min(_count + _written, _capacity);
        if (live == 0)
        {
            return false;
        }

        int start = c * _chunkSize;
        int end = Math.Min(start + _chunkSize, _capacity);
        if (_head >= start && _head < end)
        {
            return true;
        }

        int distance = (start - _head + _capacity) % _capacity; // from the head forward to the chunk's first byte
        return distance < live;
    }

    private void ReturnAll()
    {
        for (int c = 0; c < _chunks.Length && _held > 0; c++)
        {
            if (_chunks[c] is { } array)
            {
                _pool!.Return(array);
                _chunks[c] = null;
                _held--;
            }
        }
    }
}
