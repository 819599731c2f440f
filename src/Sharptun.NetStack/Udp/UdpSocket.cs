using System.Buffers;
using System.Net;
using System.Net.Sockets;
using Sharptun.NetStack.Ip;
using Sharptun.Transport;

namespace Sharptun.NetStack.Udp;

/// <summary>One received UDP datagram's metadata (allocation-free; endpoints are built only on request).</summary>
/// <param name="Length">Bytes copied into the caller's buffer.</param>
/// <param name="RemoteAddress">Sender address.</param>
/// <param name="RemotePort">Sender port.</param>
/// <param name="LocalAddress">Destination address the datagram was sent to (any address in promiscuous mode).</param>
/// <param name="LocalPort">Destination port.</param>
/// <param name="Truncated">True when the datagram was longer than the buffer (the rest was discarded).</param>
public readonly record struct UdpReceiveResult(int Length, IpAddr RemoteAddress, ushort RemotePort, IpAddr LocalAddress, ushort LocalPort, bool Truncated)
{
    /// <summary>Allocates the sender's endpoint.</summary>
    public IPEndPoint RemoteEndPoint => new(RemoteAddress.ToIPAddress(), RemotePort);

    /// <summary>Allocates the destination endpoint.</summary>
    public IPEndPoint LocalEndPoint => new(LocalAddress.ToIPAddress(), LocalPort);
}

/// <summary>
/// A UDP socket of a <see cref="NetworkStack"/> (RFC 768). Created by <see cref="NetworkStack.BindUdp"/> (or
/// <see cref="NetworkStack.BindUdpAnyDestination"/> for a promiscuous catch-all).
/// </summary>
/// <remarks>
/// Receive: datagrams wait in a bounded queue (count and the stack's byte budget); when it is full new datagrams are
/// dropped and counted in <see cref="ReceiveQueueDrops"/>. Send: a datagram that does not fit the MTU in one IP packet
/// fails with <see cref="SocketException"/> (<see cref="SocketError.MessageSize"/>) — the stack does not fragment; when
/// the outbound queue is full, sends wait for space (backpressure) instead of dropping.
/// Thread-safe. After <see cref="Dispose"/>, pending and new operations throw <see cref="ObjectDisposedException"/>
/// and queued datagrams are freed. Caller buffers are only used for the duration of the call.
/// </remarks>
public sealed class UdpSocket : IDisposable
{
    private readonly NetworkStack _stack;
    private readonly Queue<Datagram> _queue;
    private readonly int _queueLength;
    private TaskCompletionSource? _receiveWaiter;
    private SocketError _pendingError;
    private long _drops;
    private bool _disposed;

    internal UdpSocket(NetworkStack stack, IpAddr localAddress, ushort localPort, bool dualStack, bool anyDestination, int queueLength)
    {
        _stack = stack;
        LocalAddress = localAddress;
        LocalPort = localPort;
        DualStack = dualStack;
        AnyDestination = anyDestination;
        _queueLength = queueLength;
        _queue = new Queue<Datagram>(queueLength);
    }

    /// <summary>The bound local endpoint (address may be unspecified = any local address).</summary>
    public IPEndPoint LocalEndPoint => new(LocalAddress.ToIPAddress(), LocalPort);

    /// <summary>The connected remote endpoint, or null.</summary>
    public IPEndPoint? RemoteEndPoint => IsConnected ? new IPEndPoint(RemoteAddress.ToIPAddress(), RemotePort) : null;

    /// <summary>Datagrams dropped because the receive queue or the stack's byte budget was full.</summary>
    public long ReceiveQueueDrops => Volatile.Read(ref _drops);

    internal IpAddr LocalAddress { get; }

    internal ushort LocalPort { get; }

    internal bool DualStack { get; }

    internal bool AnyDestination { get; }

    internal bool IsConnected { get; private set; }

    internal IpAddr RemoteAddress { get; private set; }

    internal ushort RemotePort { get; private set; }

    /// <summary>
    /// Fixes the remote endpoint: only datagrams from it are received, and <see cref="SendAsync"/> sends to it.
    /// </summary>
    public void Connect(IPEndPoint remote)
    {
        ArgumentNullException.ThrowIfNull(remote);
        lock (_stack.Gate)
        {
            ObjectDisposedException.ThrowIf(_disposed, this);
            RemoteAddress = IpAddr.FromIPAddress(remote.Address);
            RemotePort = (ushort)remote.Port;
            IsConnected = true;
        }
    }

    /// <summary>Sends to the connected remote endpoint.</summary>
    /// <exception cref="InvalidOperationException">Not connected.</exception>
    public ValueTask SendAsync(ReadOnlyMemory<byte> data, CancellationToken cancellationToken = default)
    {
        if (!IsConnected)
        {
            throw new InvalidOperationException("The socket is not connected.");
        }

        return SendCoreAsync(data, LocalAddress, RemoteAddress, RemotePort, cancellationToken);
    }

    /// <summary>Sends one datagram to <paramref name="remote"/>.</summary>
    public ValueTask SendToAsync(ReadOnlyMemory<byte> data, IPEndPoint remote, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(remote);
        return SendCoreAsync(data, LocalAddress, IpAddr.FromIPAddress(remote.Address), (ushort)remote.Port, cancellationToken);
    }

    /// <summary>Sends one datagram to <paramref name="remoteAddress"/>:<paramref name="remotePort"/> (allocation-free).</summary>
    public ValueTask SendToAsync(ReadOnlyMemory<byte> data, IpAddr remoteAddress, ushort remotePort, CancellationToken cancellationToken = default) =>
        SendCoreAsync(data, LocalAddress, remoteAddress, remotePort, cancellationToken);

    /// <summary>
    /// Sends from an explicit source address (e.g. the original destination of a datagram received by a promiscuous
    /// catch-all socket, so the reply appears to come from it). The source port is this socket's port unless
    /// <paramref name="sourcePort"/> is given (catch-all sockets only).
    /// </summary>
    public ValueTask SendFromAsync(ReadOnlyMemory<byte> data, IpAddr source, IpAddr remoteAddress, ushort remotePort, ushort sourcePort = 0, CancellationToken cancellationToken = default)
    {
        if (sourcePort != 0 && !AnyDestination)
        {
            throw new InvalidOperationException("Only a catch-all socket may choose its source port.");
        }

        return SendCoreAsync(data, source, remoteAddress, remotePort, cancellationToken, sourcePort == 0 ? LocalPort : sourcePort);
    }

    private ValueTask SendCoreAsync(ReadOnlyMemory<byte> data, IpAddr source, IpAddr remote, ushort remotePort, CancellationToken ct, ushort sourcePort = 0)
    {
        if (sourcePort == 0)
        {
            sourcePort = LocalPort;
        }

        // Fast path without an async state machine: the queue has room (the common case).
        Task wait;
        lock (_stack.Gate)
        {
            ObjectDisposedException.ThrowIf(_disposed, this);
            ThrowPendingError();
            if (_stack.TrySendUdp(source, sourcePort, remote, remotePort, data.Span))
            {
                return default;
            }

            wait = _stack.WaitForOutboundSpace();   // registered under the same lock: no lost wake-up
        }

        return SendSlowAsync(wait, data, source, remote, remotePort, sourcePort, ct);
    }

    private async ValueTask SendSlowAsync(Task wait, ReadOnlyMemory<byte> data, IpAddr source, IpAddr remote, ushort remotePort, ushort sourcePort, CancellationToken ct)
    {
        while (true)
        {
            await wait.WaitAsync(ct).ConfigureAwait(false);
            lock (_stack.Gate)
            {
                ObjectDisposedException.ThrowIf(_disposed, this);
                if (_stack.TrySendUdp(source, sourcePort, remote, remotePort, data.Span))
                {
                    return;
                }

                wait = _stack.WaitForOutboundSpace();
            }
        }
    }

    /// <summary>Receives one datagram into <paramref name="buffer"/>, waiting until one arrives.</summary>
    public ValueTask<UdpReceiveResult> ReceiveFromAsync(Memory<byte> buffer, CancellationToken cancellationToken = default)
    {
        lock (_stack.Gate)
        {
            ObjectDisposedException.ThrowIf(_disposed, this);
            if (TryDequeue(buffer.Span, out var result))
            {
                return new ValueTask<UdpReceiveResult>(result);
            }

            ThrowPendingError();
        }

        return ReceiveSlowAsync(buffer, cancellationToken);
    }

    private async ValueTask<UdpReceiveResult> ReceiveSlowAsync(Memory<byte> buffer, CancellationToken cancellationToken)
    {
        while (true)
        {
            Task wait;
            lock (_stack.Gate)
            {
                ObjectDisposedException.ThrowIf(_disposed, this);
                if (TryDequeue(buffer.Span, out var result))
                {
                    return result;
                }

                ThrowPendingError();
                _receiveWaiter ??= new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
                wait = _receiveWaiter.Task;
            }

            await wait.WaitAsync(cancellationToken).ConfigureAwait(false);
        }
    }

    /// <summary>Receives one queued datagram without waiting; false when none is queued.</summary>
    /// <exception cref="SocketException">A connected socket's peer reported an ICMP error (reported once).</exception>
    public bool TryReceiveFrom(Span<byte> buffer, out UdpReceiveResult result)
    {
        lock (_stack.Gate)
        {
            ObjectDisposedException.ThrowIf(_disposed, this);
            if (TryDequeue(buffer, out result))
            {
                return true;
            }

            ThrowPendingError();
            return false;
        }
    }

    /// <summary>
    /// Under Gate: an ICMP error about a datagram this connected socket sent (RFC 1122 §4.1.3.3). Like Linux, it is
    /// reported once, by the next receive that finds the queue empty (or the next send).
    /// </summary>
    internal void OnIcmpError(SocketError error)
    {
        _pendingError = error;
        var waiter = _receiveWaiter;
        _receiveWaiter = null;
        waiter?.TrySetResult();
    }

    private void ThrowPendingError()
    {
        var error = _pendingError;
        if (error != SocketError.Success)
        {
            _pendingError = SocketError.Success;
            throw new SocketException((int)error);
        }
    }

    /// <summary>Unbinds the port, frees queued datagrams and fails pending operations.</summary>
    public void Dispose()
    {
        TaskCompletionSource? waiter;
        lock (_stack.Gate)
        {
            if (_disposed)
            {
                return;
            }

            _disposed = true;
            _stack.Unbind(this);
            while (_queue.TryDequeue(out var d))
            {
                Free(d);
            }

            waiter = _receiveWaiter;
            _receiveWaiter = null;
        }

        waiter?.TrySetException(new ObjectDisposedException(nameof(UdpSocket)));
    }

    /// <summary>Called under Gate by the stack: true when the datagram matches this socket's bind/connect filter.</summary>
    internal bool Matches(in IpAddr source, ushort sourcePort, in IpAddr destination)
    {
        if (IsConnected && (RemoteAddress != source || RemotePort != sourcePort))
        {
            return false;
        }

        if (LocalAddress.IsUnspecified)
        {
            return LocalAddress.IsV4 == destination.IsV4 || DualStack;
        }

        return LocalAddress == destination;
    }

    /// <summary>Called under Gate: queues a copy of the payload, or drops and counts it.</summary>
    internal bool Enqueue(ByteBudget budget, ReadOnlySpan<byte> payload, in IpAddr source, ushort sourcePort, in IpAddr destination, ushort destinationPort)
    {
        if (_queue.Count >= _queueLength)
        {
            _drops++;
            return false;
        }

        // Charge the pooled array's real size (the pool rounds up), so the budget bounds actual memory.
        var buffer = ArrayPool<byte>.Shared.Rent(Math.Max(payload.Length, 1));
        if (!budget.TryReserve(buffer.Length))
        {
            ArrayPool<byte>.Shared.Return(buffer);
            _drops++;
            return false;
        }

        payload.CopyTo(buffer);
        _queue.Enqueue(new Datagram(buffer, payload.Length, buffer.Length, source, sourcePort, destination, destinationPort, budget));
        var waiter = _receiveWaiter;
        _receiveWaiter = null;
        waiter?.TrySetResult();   // continuations run asynchronously, never under Gate
        return true;
    }

    private bool TryDequeue(Span<byte> destination, out UdpReceiveResult result)
    {
        if (!_queue.TryDequeue(out var d))
        {
            result = default;
            return false;
        }

        var n = Math.Min(d.Length, destination.Length);
        d.Buffer.AsSpan(0, n).CopyTo(destination);
        result = new UdpReceiveResult(n, d.Source, d.SourcePort, d.Destination, d.DestinationPort, n < d.Length);
        Free(d);
        return true;
    }

    private static void Free(in Datagram d)
    {
        d.Budget.Release(d.Charged);
        ArrayPool<byte>.Shared.Return(d.Buffer);
    }

    private readonly record struct Datagram(byte[] Buffer, int Length, int Charged, IpAddr Source, ushort SourcePort, IpAddr Destination, ushort DestinationPort, ByteBudget Budget);
}
