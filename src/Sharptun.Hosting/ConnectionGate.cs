namespace Sharptun.Hosting;

/// <summary>
/// A cap on concurrent connections: <see cref="TryEnter"/> admits a connection while fewer than
/// <see cref="Capacity"/> are open and hands back a lease whose disposal frees the slot. Thread-safe and lock-free:
/// front-ends admit and release from any thread.
/// </summary>
public sealed class ConnectionGate
{
    private int _open;
    private long _admitted;
    private long _refused;

    /// <summary>A gate admitting at most <paramref name="capacity"/> connections at once.</summary>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="capacity"/> is less than 1.</exception>
    public ConnectionGate(int capacity)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(capacity, 1);
        Capacity = capacity;
    }

    /// <summary>The most connections open at once.</summary>
    public int Capacity { get; }

    /// <summary>Connections open now.</summary>
    public int Open => Volatile.Read(ref _open);

    /// <summary>Connections admitted since start.</summary>
    public long Admitted => Interlocked.Read(ref _admitted);

    /// <summary>Connections refused because the gate was full.</summary>
    public long Refused => Interlocked.Read(ref _refused);

    /// <summary>
    /// Admits a connection if a slot is free. The returned lease frees the slot when disposed (once, however many times
    /// it is disposed); <see langword="null"/> when the gate is full (counted in <see cref="Refused"/>).
    /// </summary>
    public IDisposable? TryEnter()
    {
        var open = Volatile.Read(ref _open);
        while (true)
        {
            if (open >= Capacity)
            {
                Interlocked.Increment(ref _refused);
                return null;
            }

            var seen = Interlocked.CompareExchange(ref _open, open + 1, open);
            if (seen == open)
            {
                Interlocked.Increment(ref _admitted);
                return new Lease(this);
            }

            open = seen;
        }
    }

    private sealed class Lease(ConnectionGate gate) : IDisposable
    {
        private int _released;

        public void Dispose()
        {
            if (Interlocked.Exchange(ref _released, 1) == 0)
            {
                Interlocked.Decrement(ref gate._open);
            }
        }
    }
}
