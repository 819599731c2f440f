namespace Sharptun.NetStack.Ip;

/// <summary>
/// The stack's byte budget for variable buffers (reassembly, UDP receive queues). Not thread-safe: used under the
/// stack's Gate. Reservations never exceed <see cref="Capacity"/>; a failed reservation is the caller's signal to
/// drop (and count) or apply backpressure — the stack never grows past its budget.
/// </summary>
internal sealed class ByteBudget(long capacity)
{
    public long Capacity { get; } = capacity;

    public long Used { get; private set; }

    public long Available => Capacity - Used;

    public bool TryReserve(long bytes)
    {
        if (bytes < 0 || bytes > Capacity - Used)
        {
            return false;
        }

        Used += bytes;
        return true;
    }

    public void Release(long bytes)
    {
        Used -= bytes;
        if (Used < 0)
        {
            throw new InvalidOperationException("ByteBudget released more than reserved.");
        }
    }
}
