using System.Diagnostics;

namespace Sharptun.NetStack;

/// <summary>
/// The thread that drives a <see cref="NetworkStack"/> in real time: it owns the Stopwatch clock and calls the stack's
/// deterministic core (<see cref="NetworkStack.Poll"/> with the elapsed time) whenever <see cref="NetworkStack.NextDeadline"/>
/// passes or <see cref="Wake"/> is called. The core itself never reads a clock; while a driver is attached the stack
/// takes its current time from <see cref="Now"/>. Created by <see cref="NetworkStack.Start"/>; stops when the stack is
/// disposed.
/// </summary>
internal sealed class NetworkStackDriver
{
    private readonly NetworkStack _stack;
    // no spinning before blocking: the driver waits for timers (milliseconds), and on a two-core machine a spinning
    // driver takes the CPU from the threads that would move its deadlines
    private readonly ManualResetEventSlim _wake = new(false, spinCount: 0);
    private readonly long _epoch;
    private readonly Thread _thread;

    /// <summary>A driver whose clock continues from <paramref name="startTime"/> (the stack's virtual time so far).</summary>
    public NetworkStackDriver(NetworkStack stack, TimeSpan startTime)
    {
        _stack = stack;
        _epoch = Stopwatch.GetTimestamp() - (long)(startTime.TotalSeconds * Stopwatch.Frequency);
        _thread = new Thread(Run) { IsBackground = true, Name = "sharptun-netstack" };
    }

    /// <summary>Starts the thread.</summary>
    public void Start() => _thread.Start();

    /// <summary>Stopwatch time since the stack's time zero.</summary>
    public TimeSpan Now => Stopwatch.GetElapsedTime(_epoch);

    /// <summary>Asks the thread to poll soon. Safe from any thread.</summary>
    public void Wake() => _wake.Set();

    /// <summary>Waits for the thread to end (after the stack was disposed and <see cref="Wake"/> called).</summary>
    public void Join()
    {
        if (_thread != Thread.CurrentThread)
        {
            _thread.Join();
        }
    }

    private void Run()
    {
        while (!_stack.IsDisposed)
        {
            _wake.Reset();
            _stack.Poll(Now);
            var deadline = _stack.NextDeadline;
            if (deadline == TimeSpan.MaxValue)
            {
                _wake.Wait();
                continue;
            }

            var wait = deadline - Now;
            if (wait > TimeSpan.Zero)
            {
                _wake.Wait((int)Math.Min(int.MaxValue, Math.Ceiling(wait.TotalMilliseconds)));
            }
        }
    }
}
