namespace Sharptun.Transport;

/// <summary>
/// A pool of fixed-size packet buffers with a hard byte budget: the one place packet memory comes from, so the
/// whole pipeline (device queues, crypto, netstack) stays under a known ceiling instead of growing under load.
/// </summary>
/// <remarks>
/// <para>Buffers are allocated lazily (on the pinned object heap, so native I/O needs no extra pinning cost) until
/// <c>BudgetBytes / BufferSize</c> exist; after that a rent either waits for a return (<see cref="Rent(TimeSpan)"/>,
/// backpressure) or fails (<see cref="TryRent"/>, counted in <see cref="Failures"/>). Buffers are never freed
/// back to the GC, so the peak is the budget.</para>
/// <para>Thread-safe. Buffers are not cleared on return: callers that held secrets clear them first. Returning
/// a buffer twice or a buffer from elsewhere corrupts the accounting and is detected only partly (a wrong size
/// or more returns than rents throw).</para>
/// <para>A pool may have a <see cref="Large"/> companion of bigger buffers (with its own budget) for packets that do not
/// fit: <see cref="Return"/> and <see cref="ReturnBatch"/> hand a buffer of the companion's size to the companion, so
/// code that passes buffers around returns every one through the same pool whatever its size.</para>
/// </remarks>
public sealed class PacketBufferPool
{
    /// <summary>Default buffer size: a 1500-byte packet plus headroom for the WireGuard header and trailer room for padding and tag, rounded up.</summary>
    public const int DefaultBufferSize = 2048;

    private readonly object _lock = new();
    private readonly byte[][] _free;
    private int _freeCount;
    private int _allocated;
    private int _inUse;
    private int _peakInUse;
    private long _failures;
    private int _waiters;

    /// <summary>
    /// Creates a pool of <paramref name="bufferSize"/>-byte buffers holding at most <paramref name="budgetBytes"/> bytes in
    /// total, with an optional <paramref name="large"/> companion of bigger buffers (see <see cref="Large"/>).
    /// </summary>
    public PacketBufferPool(long budgetBytes, int bufferSize = DefaultBufferSize, PacketBufferPool? large = null)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(bufferSize, 64);
        ArgumentOutOfRangeException.ThrowIfLessThan(budgetBytes, bufferSize);
        if (large is not null && (large.BufferSize <= bufferSize || large.Large is not null))
        {
            throw new ArgumentException("the large companion needs bigger buffers and no companion of its own", nameof(large));
        }

        Large = large;
        BufferSize = bufferSize;
        MaxBuffers = (int)Math.Min(budgetBytes / bufferSize, Array.MaxLength);
        BudgetBytes = budgetBytes;
        _free = new byte[MaxBuffers][];
    }

    /// <summary>The size of every buffer.</summary>
    public int BufferSize { get; }

    /// <summary>
    /// The companion pool of bigger buffers for packets larger than <see cref="BufferSize"/> allows (jumbo MTUs), or
    /// null. Buffers rented from it may be returned through this pool.
    /// </summary>
    public PacketBufferPool? Large { get; }

    /// <summary>The byte budget the pool never exceeds.</summary>
    public long BudgetBytes { get; }

    /// <summary>The most buffers that can exist (budget / buffer size).</summary>
    public int MaxBuffers { get; }

    /// <summary>Buffers currently rented.</summary>
    public int InUse => Volatile.Read(ref _inUse);

    /// <summary>The most buffers ever rented at once.</summary>
    public int PeakInUse => Volatile.Read(ref _peakInUse);

    /// <summary>Buffers allocated so far (at most <see cref="MaxBuffers"/>).</summary>
    public int Allocated => Volatile.Read(ref _allocated);

    /// <summary>Bytes allocated so far (<see cref="Allocated"/> × <see cref="BufferSize"/>).</summary>
    public long AllocatedBytes => (long)Allocated * BufferSize;

    /// <summary>Rents that failed because the budget was spent (<see cref="TryRent"/> returning false, <see cref="Rent(TimeSpan)"/> timing out).</summary>
    public long Failures => Interlocked.Read(ref _failures);

    /// <summary>Rents a buffer, or returns false (counting a failure) when the budget is spent. Never blocks.</summary>
    public bool TryRent(out byte[] buffer)
    {
        lock (_lock)
        {
            if (TryRentLocked(out buffer))
            {
                return true;
            }
        }

        Interlocked.Increment(ref _failures);
        return false;
    }

    /// <summary>
    /// Rents a buffer, waiting up to <paramref name="timeout"/> (<see cref="Timeout.InfiniteTimeSpan"/> = forever) for
    /// one to be returned when the budget is spent. Throws <see cref="TimeoutException"/> when the wait runs out.
    /// </summary>
    public byte[] Rent(TimeSpan timeout)
    {
        var deadline = timeout == Timeout.InfiniteTimeSpan ? long.MaxValue : Environment.TickCount64 + (long)timeout.TotalMilliseconds;
        lock (_lock)
        {
            while (true)
            {
                if (TryRentLocked(out var buffer))
                {
                    return buffer;
                }

                var remaining = deadline == long.MaxValue ? Timeout.Infinite : (int)Math.Clamp(deadline - Environment.TickCount64, 0, int.MaxValue);
                if (remaining == 0)
                {
                    Interlocked.Increment(ref _failures);
                    throw new TimeoutException($"packet buffer budget of {BudgetBytes} bytes spent");
                }

                _waiters++;
                try
                {
                    Monitor.Wait(_lock, remaining);
                }
                finally
                {
                    _waiters--;
                }
            }
        }
    }

    /// <summary>Rents a buffer, waiting as long as it takes for one to be returned.</summary>
    public byte[] Rent() => Rent(Timeout.InfiniteTimeSpan);

    /// <summary>
    /// Rents up to <paramref name="count"/> buffers into <c>destination[0 ..]</c> under one lock, without waiting.
    /// Returns how many were rented (fewer when the budget is spent; the shortfall counts as one failure).
    /// </summary>
    public int TryRentBatch(Span<byte[]> destination, int count)
    {
        count = Math.Min(count, destination.Length);
        var n = 0;
        lock (_lock)
        {
            while (n < count && TryRentLocked(out destination[n]))
            {
                n++;
            }
        }

        if (n < count)
        {
            Interlocked.Increment(ref _failures);
        }

        return n;
    }

    /// <summary>Returns a buffer rented from this pool. The caller must not touch it afterwards.</summary>
    public void Return(byte[] buffer)
    {
        if (IsLarge(buffer))
        {
            Large!.Return(buffer);
            return;
        }

        CheckReturned(buffer);
        lock (_lock)
        {
            ReturnLocked(buffer);
            if (_waiters > 0)
            {
                Monitor.Pulse(_lock);
            }
        }
    }

    /// <summary>Returns <paramref name="buffers"/> (all rented from this pool) under one lock; null entries are skipped and the span's entries are cleared.</summary>
    public void ReturnBatch(Span<byte[]> buffers)
    {
        for (var i = 0; i < buffers.Length; i++)
        {
            if (buffers[i] is { } b)
            {
                if (IsLarge(b))
                {
                    Large!.Return(b);
                    buffers[i] = null!;
                }
                else
                {
                    CheckReturned(b);
                }
            }
        }

        lock (_lock)
        {
            var returned = 0;
            for (var i = 0; i < buffers.Length; i++)
            {
                if (buffers[i] is { } b)
                {
                    ReturnLocked(b);
                    buffers[i] = null!;
                    returned++;
                }
            }

            if (_waiters > 0 && returned > 0)
            {
                Monitor.PulseAll(_lock);
            }
        }
    }

    private bool TryRentLocked(out byte[] buffer)
    {
        if (_freeCount > 0)
        {
            buffer = _free[--_freeCount];
            _free[_freeCount] = null!;
        }
        else if (_allocated < MaxBuffers)
        {
            buffer = GC.AllocateUninitializedArray<byte>(BufferSize, pinned: true);
            _allocated++;
        }
        else
        {
            buffer = null!;
            return false;
        }

        _inUse++;
        if (_inUse > _peakInUse)
        {
            _peakInUse = _inUse;
        }

        return true;
    }

    private void ReturnLocked(byte[] buffer)
    {
        if (_inUse == 0 || _freeCount == _free.Length)
        {
            throw new InvalidOperationException("more buffers returned than rented");
        }

        _inUse--;
        _free[_freeCount++] = buffer;
    }

    private bool IsLarge(byte[]? buffer) => Large is { } large && buffer is not null && buffer.Length == large.BufferSize;

    private void CheckReturned(byte[] buffer)
    {
        ArgumentNullException.ThrowIfNull(buffer);
        if (buffer.Length != BufferSize)
        {
            throw new ArgumentException($"buffer of {buffer.Length} bytes does not come from this pool of {BufferSize}-byte buffers", nameof(buffer));
        }
    }
}
