namespace Sharptun.Transport;

/// <summary>
/// A TUN-like device that carries whole IP packets (no link-layer header), moved in batches.
/// Implemented by the Linux TUN, by in-memory pairs for tests and by the userspace network stack,
/// so the WireGuard device cannot tell one from another. Shape follows wireguard-go's tun.Device.
/// </summary>
/// <remarks>
/// Buffers are owned by the caller. A packet occupies <c>buffers[i][offset .. offset + sizes[i]]</c>;
/// the bytes before <c>offset</c> are headroom the caller may use (e.g. for the 16-byte WireGuard
/// transport header so encryption runs in place). Implementations must be safe for one concurrent
/// reader and one concurrent writer. After <see cref="IDisposable.Dispose"/>, a blocked
/// <see cref="Read"/> returns 0 and <see cref="Write"/> throws <see cref="ObjectDisposedException"/>.
/// </remarks>
public interface IPacketDevice : IDisposable
{
    /// <summary>Interface name (e.g. "wg0"), or a descriptive name for in-memory devices.</summary>
    string Name { get; }

    /// <summary>The largest IP packet the device carries, in bytes.</summary>
    int Mtu { get; }

    /// <summary>The most packets one <see cref="Read"/> or <see cref="Write"/> call handles.</summary>
    int BatchSize { get; }

    /// <summary>
    /// Blocks until at least one packet is available, then reads up to <c>min(buffers.Length, BatchSize)</c>
    /// packets, each at <paramref name="offset"/> in its buffer, and stores their lengths in <paramref name="sizes"/>.
    /// Returns the number of packets read, or 0 once the device is closed (disposed, or the interface went away).
    /// Each buffer should hold <c>offset + Mtu</c> bytes: a packet that does not fit is dropped (and counted), never
    /// returned truncated — except by a device with an oversize pool (<c>LinuxTun.OversizePool</c>), which delivers it
    /// whole in a pool buffer that replaces <c>buffers[i]</c>.
    /// </summary>
    int Read(byte[][] buffers, Span<int> sizes, int offset);

    /// <summary>
    /// Writes <paramref name="count"/> packets, packet i being <c>buffers[i][offset .. offset + sizes[i]]</c>.
    /// May block briefly to apply backpressure. Returns the number of packets accepted; packets the device
    /// could not accept are dropped and counted by the device.
    /// </summary>
    int Write(byte[][] buffers, ReadOnlySpan<int> sizes, int offset, int count);
}
