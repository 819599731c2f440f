using System.Threading.Tasks.Sources;

namespace Sharptun.NetStack.Tcp;

/// <summary>
/// A reusable one-waiter awaitable (no allocation per wait). Armed and completed under the stack's Gate;
/// continuations always run asynchronously, so completing it never runs user code while the Gate is held.
/// </summary>
internal sealed class TcpSignal : IValueTaskSource
{
    private readonly Lock _gate;
    private ManualResetValueTaskSourceCore<bool> _core;
    private bool _armed;
    private CancellationTokenRegistration _ctr;

    public TcpSignal(Lock gate)
    {
        _gate = gate;
        _core.RunContinuationsAsynchronously = true;
    }

    public bool IsArmed => _armed;

    /// <summary>Arms the signal (caller holds Gate) and returns the ValueTask to await after releasing the Gate.</summary>
    public ValueTask Arm(CancellationToken ct)
    {
        if (_armed)
        {
            throw new InvalidOperationException("Another operation of the same kind is already pending on this stream.");
        }

        _core.Reset();
        _armed = true;
        if (ct.CanBeCanceled)
        {
            _ctr = ct.UnsafeRegister(static (s, token) => ((TcpSignal)s!).Cancel(token), this);
        }

        return new ValueTask(this, _core.Version);
    }

    /// <summary>Completes a pending wait (caller holds Gate). No-op when not armed.</summary>
    public void Set()
    {
        if (_armed)
        {
            _armed = false;
            _core.SetResult(true);
        }
    }

    public void SetException(Exception ex)
    {
        if (_armed)
        {
            _armed = false;
            _core.SetException(ex);
        }
    }

    private void Cancel(CancellationToken token)
    {
        lock (_gate)
        {
            SetException(new OperationCanceledException(token));
        }
    }

    void IValueTaskSource.GetResult(short token)
    {
        var ctr = _ctr;
        _ctr = default;
        ctr.Dispose();
        _core.GetResult(token);
    }

    ValueTaskSourceStatus IValueTaskSource.GetStatus(short token) => _core.GetStatus(token);

    void IValueTaskSource.OnCompleted(Action<object?> continuation, object? state, short token, ValueTaskSourceOnCompletedFlags flags) =>
        _core.OnCompleted(continuation, state, token, flags);
}
