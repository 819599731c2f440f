using System.Net;
using Sharptun.Transport;

namespace Sharptun.NetStack;

/// <summary>Result of one ping.</summary>
/// <param name="Success">True when a matching echo reply arrived before the timeout.</param>
/// <param name="RoundTripTime">Time from send to reply on the stack clock (zero on timeout).</param>
/// <param name="From">Address the reply came from (the destination on timeout).</param>
/// <param name="SequenceNumber">Sequence number used.</param>
/// <param name="DataLength">Echo data length in the reply.</param>
public readonly record struct EchoReply(bool Success, TimeSpan RoundTripTime, IpAddr From, ushort SequenceNumber, int DataLength);

/// <summary>
/// ICMP/ICMPv6 echo ("ping") socket of a <see cref="NetworkStack"/> (RFC 792, RFC 4443 §4). Each socket has its own
/// echo Identifier; replies are matched by identifier and sequence number. Timeouts run on the stack clock (so tests
/// drive them with <see cref="NetworkStack.Poll"/>). Thread-safe; after <see cref="Dispose"/> pending pings fail with
/// <see cref="ObjectDisposedException"/>.
/// </summary>
public sealed class IcmpEchoSocket : IDisposable
{
    private readonly NetworkStack _stack;
    private readonly Dictionary<ushort, Pending> _pending = [];
    private ushort _nextSequence;
    private bool _disposed;

    internal IcmpEchoSocket(NetworkStack stack, ushort identifier)
    {
        _stack = stack;
        Identifier = identifier;
    }

    /// <summary>The echo Identifier carried by this socket's requests.</summary>
    public ushort Identifier { get; }

    /// <summary>
    /// Sends one echo request carrying <paramref name="data"/> and waits for the reply or <paramref name="timeout"/>.
    /// </summary>
    /// <exception cref="System.Net.Sockets.SocketException">The request does not fit the MTU, or no source address.</exception>
    public async ValueTask<EchoReply> PingAsync(IPAddress destination, ReadOnlyMemory<byte> data, TimeSpan timeout, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(destination);
        var dst = IpAddr.FromIPAddress(destination);
        TaskCompletionSource<EchoReply> tcs;
        ushort sequence;
        while (true)
        {
            Task wait;
            lock (_stack.Gate)
            {
                ObjectDisposedException.ThrowIf(_disposed, this);
                sequence = _nextSequence;
                if (_stack.TrySendEchoRequest(dst, Identifier, sequence, data.Span))
                {
                    _nextSequence++;
                    tcs = new TaskCompletionSource<EchoReply>(TaskCreationOptions.RunContinuationsAsynchronously);
                    var now = _stack.CurrentTime;
                    _pending[sequence] = new Pending(tcs, dst, now, now + timeout);
                    _stack.Wake();
                    break;
                }

                wait = _stack.WaitForOutboundSpace();
            }

            await wait.WaitAsync(cancellationToken).ConfigureAwait(false);
        }

        try
        {
            return await tcs.Task.WaitAsync(cancellationToken).ConfigureAwait(false);
        }
        finally
        {
            lock (_stack.Gate)
            {
                _pending.Remove(sequence);
            }
        }
    }

    /// <summary>Unbinds the socket; pending echo requests fail with <see cref="ObjectDisposedException"/>. Idempotent.</summary>
    public void Dispose()
    {
        List<Pending> pending;
        lock (_stack.Gate)
        {
            if (_disposed)
            {
                return;
            }

            _disposed = true;
            _stack.Unbind(this);
            pending = [.. _pending.Values];
            _pending.Clear();
        }

        foreach (var p in pending)
        {
            p.Tcs.TrySetException(new ObjectDisposedException(nameof(IcmpEchoSocket)));
        }
    }

    /// <summary>Under Gate: earliest pending timeout.</summary>
    internal TimeSpan NextDeadline
    {
        get
        {
            var min = TimeSpan.MaxValue;
            foreach (var p in _pending.Values)
            {
                if (p.Deadline < min)
                {
                    min = p.Deadline;
                }
            }

            return min;
        }
    }

    /// <summary>Under Gate: an echo reply with this socket's identifier arrived.</summary>
    internal void OnReply(in IpAddr from, ushort sequence, int dataLength, TimeSpan now)
    {
        if (_pending.Remove(sequence, out var p))
        {
            p.Tcs.TrySetResult(new EchoReply(true, now - p.SentAt, from, sequence, dataLength));
        }
    }

    /// <summary>Under Gate: completes timed-out pings.</summary>
    internal void Expire(TimeSpan now)
    {
        if (_pending.Count == 0)
        {
            return;
        }

        List<ushort>? expired = null;
        foreach (var (sequence, p) in _pending)
        {
            if (p.Deadline <= now)
            {
                (expired ??= []).Add(sequence);
            }
        }

        if (expired is null)
        {
            return;
        }

        foreach (var sequence in expired)
        {
            _pending.Remove(sequence, out var p);
            p.Tcs.TrySetResult(new EchoReply(false, TimeSpan.Zero, p.Destination, sequence, 0));
        }
    }

    private readonly record struct Pending(TaskCompletionSource<EchoReply> Tcs, IpAddr Destination, TimeSpan SentAt, TimeSpan Deadline);
}
