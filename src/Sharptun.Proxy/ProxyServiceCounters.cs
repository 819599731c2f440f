namespace Sharptun.Proxy;

/// <summary>Counters of one <see cref="IProxyService"/>, updated from any thread, read by the metrics endpoint.</summary>
public sealed class ProxyServiceCounters
{
    private long _accepted;
    private long _refused;
    private long _failed;
    private long _open;
    private long _bytesToTunnel;
    private long _bytesFromTunnel;

    /// <summary>Connections (or UDP associations) accepted.</summary>
    public long Accepted => Interlocked.Read(ref _accepted);

    /// <summary>Connections refused: over the connection cap, failed authentication, a malformed or denied request.</summary>
    public long Refused => Interlocked.Read(ref _refused);

    /// <summary>
    /// Accepted connections whose target could not be reached (unresolvable, refused, timed out), and connections whose
    /// handling failed unexpectedly (logged as errors).
    /// </summary>
    public long Failed => Interlocked.Read(ref _failed);

    /// <summary>Connections open now.</summary>
    public long Open => Interlocked.Read(ref _open);

    /// <summary>Payload bytes relayed into the tunnel.</summary>
    public long BytesToTunnel => Interlocked.Read(ref _bytesToTunnel);

    /// <summary>Payload bytes relayed out of the tunnel.</summary>
    public long BytesFromTunnel => Interlocked.Read(ref _bytesFromTunnel);

    /// <summary>Counts an accepted connection and marks it open (pair with <see cref="OnClosed"/>).</summary>
    public void OnAccepted()
    {
        Interlocked.Increment(ref _accepted);
        Interlocked.Increment(ref _open);
    }

    /// <summary>Marks an accepted connection closed.</summary>
    public void OnClosed() => Interlocked.Decrement(ref _open);

    /// <summary>Counts a refused connection.</summary>
    public void OnRefused() => Interlocked.Increment(ref _refused);

    /// <summary>Counts a connection whose target could not be reached.</summary>
    public void OnFailed() => Interlocked.Increment(ref _failed);

    /// <summary>Adds relayed payload bytes.</summary>
    public void AddBytes(long toTunnel, long fromTunnel)
    {
        Interlocked.Add(ref _bytesToTunnel, toTunnel);
        Interlocked.Add(ref _bytesFromTunnel, fromTunnel);
    }
}
