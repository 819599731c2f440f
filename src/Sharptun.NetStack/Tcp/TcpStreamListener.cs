using System.Net;
using Sharptun.Transport;

namespace Sharptun.NetStack.Tcp;

/// <summary>
/// A passive-open endpoint (RFC 9293 LISTEN) of the stack that hands out <see cref="TcpStream"/>s; named so that it
/// does not clash with <see cref="System.Net.Sockets.TcpListener"/> in files that use both. Incoming SYNs create
/// connections in SYN-RECEIVED; at most <c>backlog</c> may be half-open (the SYN queue) and at most <c>backlog</c>
/// established connections may wait for <see cref="AcceptAsync"/>; SYNs beyond that are dropped so the peer
/// retransmits (no unbounded memory).
/// </summary>
/// <remarks>
/// Thread-safe. Concurrent AcceptAsync calls take turns (each gets its own connection, in call order). Dispose stops listening, resets connections that were never
/// accepted and fails a pending AcceptAsync with <see cref="ObjectDisposedException"/>.
/// </remarks>
public sealed class TcpStreamListener : IDisposable
{
    private readonly TcpLayer _layer;
    private readonly Queue<TcpConnection> _acceptQueue = new();
    private readonly TcpSignal _acceptSignal;
    private readonly SemaphoreSlim _acceptTurn = new(1, 1); // the signal has one waiter: concurrent acceptors queue here
    private readonly int _backlog;
    private int _synQueue;
    private bool _disposed;

    internal TcpStreamListener(TcpLayer layer, IPEndPoint local, int backlog, (IpAddr, ushort) key)
    {
        _layer = layer;
        LocalEndPoint = local;
        _backlog = backlog;
        Key = key;
        _acceptSignal = new TcpSignal(layer.Gate);
        NoDelay = layer.Options.NoDelay;
    }

    /// <summary>The endpoint this listener was bound to.</summary>
    public IPEndPoint LocalEndPoint { get; }

    /// <summary>NoDelay for connections accepted from now on.</summary>
    public bool NoDelay { get; set; }

    internal (IpAddr Address, ushort Port) Key { get; }

    /// <summary>
    /// Decides, under the stack's lock, whether a SYN from (source, destination) may open a connection; a refused one is
    /// answered with RST like a closed port. Null: every SYN is admitted.
    /// </summary>
    internal Func<IPEndPoint, IPEndPoint, bool>? Admit { get; init; }

    internal bool CanAcceptSyn => !_disposed && _synQueue < _backlog && _acceptQueue.Count < _backlog;

    internal int PendingAccepts => _acceptQueue.Count;

    internal int HalfOpen => _synQueue;

    internal void OnSynReceived() => _synQueue++;

    internal void OnEstablished(TcpConnection c)
    {
        _synQueue--;
        if (_disposed)
        {
            c.Accepted = true;
            c.Abort(_layer.Now);
            return;
        }

        _acceptQueue.Enqueue(c);
        c.InAcceptQueue = true;
        _acceptSignal.Set();
    }

    internal void OnConnectionGone(TcpConnection c)
    {
        if (c.InAcceptQueue)
        {
            return; // it stays queued; AcceptAsync hands it out and reads see the reset/close
        }

        _synQueue--;
    }

    /// <summary>Takes an established connection without waiting (sans-I/O entry point; caller holds Gate).</summary>
    internal bool TryAccept(out TcpConnection connection)
    {
        if (_acceptQueue.TryDequeue(out connection!))
        {
            connection.Accepted = true;
            connection.InAcceptQueue = false;
            return true;
        }

        return false;
    }

    /// <summary>Waits for the next established connection.</summary>
    /// <exception cref="ObjectDisposedException">The listener was disposed.</exception>
    public async ValueTask<TcpStream> AcceptAsync(CancellationToken cancellationToken = default)
    {
        await _acceptTurn.WaitAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            return await AcceptOneAsync(cancellationToken).ConfigureAwait(false);
        }
        finally
        {
            _acceptTurn.Release();
        }
    }

    private async ValueTask<TcpStream> AcceptOneAsync(CancellationToken cancellationToken)
    {
        while (true)
        {
            ValueTask wait;
            lock (_layer.Gate)
            {
                ObjectDisposedException.ThrowIf(_disposed, this);
                if (_acceptQueue.TryDequeue(out var c))
                {
                    c.Accepted = true;
                    c.InAcceptQueue = false;
                    return new TcpStream(_layer, c);
                }

                cancellationToken.ThrowIfCancellationRequested();
                wait = _acceptSignal.Arm(cancellationToken);
            }

            await wait.ConfigureAwait(false);
        }
    }

    /// <summary>Stops listening (see the class remarks).</summary>
    public void Dispose()
    {
        lock (_layer.Gate)
        {
            if (_disposed)
            {
                return;
            }

            _disposed = true;
            _layer.RemoveListener(this);
            var now = _layer.Now;
            while (_acceptQueue.TryDequeue(out var c))
            {
                c.InAcceptQueue = false;
                c.Accepted = true;
                c.Abort(now);
            }

            _acceptSignal.SetException(new ObjectDisposedException(nameof(TcpStreamListener)));
        }
    }
}
