namespace Sharptun.Transport;

/// <summary>
/// A UDP-like socket that moves datagrams in batches (the shape of wireguard-go's <c>conn.Bind</c>). Implemented
/// by the Linux UDP bind (recvmmsg/sendmmsg) and by the test kit's <c>InMemoryNetwork</c> (tests/Sharptun.Testing).
/// </summary>
/// <remarks>
/// Buffers are owned by the caller and only used during the call. Safe for one concurrent receiver and any number
/// of concurrent senders (sends are serialized internally). After <see cref="IDisposable.Dispose"/>, a blocked or
/// later <see cref="Receive"/> returns 0 and <see cref="Send"/> throws <see cref="ObjectDisposedException"/>.
/// To change the listening port, dispose the bind and open a new one (see <see cref="IDatagramBindFactory"/>).
/// </remarks>
public interface IDatagramBind : IDisposable
{
    /// <summary>The local UDP port (the kernel's choice when opened with port 0).</summary>
    ushort LocalPort { get; }

    /// <summary>The most datagrams one <see cref="Receive"/> or <see cref="Send"/> call handles.</summary>
    int BatchSize { get; }

    /// <summary>
    /// Blocks until at least one datagram has arrived, then receives up to
    /// <c>min(buffers.Length, sizes.Length, endpoints.Length, BatchSize)</c> datagrams: datagram i lands at
    /// <c>buffers[i][0 .. sizes[i]]</c> and its source in <c>endpoints[i]</c>. A datagram larger than its buffer is
    /// dropped (and counted), never truncated. Returns the number received, or 0 once the bind is closed.
    /// </summary>
    int Receive(byte[][] buffers, Span<int> sizes, Span<UdpEndpoint> endpoints);

    /// <summary>
    /// Sends <paramref name="count"/> datagrams to <paramref name="destination"/>, datagram i being
    /// <c>buffers[i][offset .. offset + sizes[i]]</c>. Blocks while the send buffer is full (backpressure).
    /// Returns the number of datagrams handed to the network; those it refused (unreachable destination,
    /// too large, filtered) are dropped and counted, not thrown.
    /// </summary>
    int Send(byte[][] buffers, ReadOnlySpan<int> sizes, int offset, int count, in UdpEndpoint destination);

    /// <summary>Sets the firewall mark (SO_MARK) on outgoing datagrams; 0 clears it. Throws <see cref="IOException"/> when the platform refuses.</summary>
    void SetMark(uint fwmark);
}

/// <summary>Opens <see cref="IDatagramBind"/>s: how a device (re)binds when its listening port changes.</summary>
public interface IDatagramBindFactory
{
    /// <summary>Opens a bind on <paramref name="port"/> (0 = a random free port).</summary>
    IDatagramBind Open(ushort port);
}
