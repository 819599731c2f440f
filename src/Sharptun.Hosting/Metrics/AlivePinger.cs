using System.Globalization;
using System.Net;
using System.Net.Sockets;
using System.Text;
using Microsoft.Extensions.Logging;

namespace Sharptun.Hosting.Metrics;

/// <summary>
/// wireproxy's <c>CheckAlive</c>: pings each target through the tunnel every <c>CheckAliveInterval</c> and records
/// when each last answered, for <see cref="MetricsServer"/>'s <c>/readyz</c>. A target is alive while its last pong
/// is at most interval + 2 s old (wireproxy's rule; the 2 s cover the ping's own time); the pinger is ready when every
/// target is alive. Each change of a target's state is logged (Information when it answers, Warning when it stops).
/// </summary>
/// <remarks>
/// Each round sends one echo request to every target at once and waits at most one interval for the replies, so rounds
/// never overlap; the first round starts at once. Thread-safe: the readers (<see cref="LastPong"/>,
/// <see cref="IsReady"/>) run on scrape threads while the loop writes.
/// </remarks>
public sealed partial class AlivePinger : IAsyncDisposable
{
    /// <summary>The grace on top of the interval (wireproxy's "+2 seconds to account for the time it takes to ping").</summary>
    public static readonly TimeSpan Grace = TimeSpan.FromSeconds(2);

    private readonly Func<IPAddress, TimeSpan, CancellationToken, ValueTask<bool>> _ping;
    private readonly IPAddress[] _targets;
    private readonly long[] _lastPongTicks; // UTC ticks, 0 = never; Interlocked
    private readonly bool?[] _alive; // loop thread only
    private readonly TimeProvider _time;
    private readonly ILogger? _log;
    private readonly CancellationTokenSource _stop = new();
    private readonly Task _loop;

    internal AlivePinger(
        Func<IPAddress, TimeSpan, CancellationToken, ValueTask<bool>> ping,
        IReadOnlyList<IPAddress> targets,
        TimeSpan interval,
        TimeProvider time,
        ILogger? logger,
        bool runLoop)
    {
        ArgumentNullException.ThrowIfNull(targets);
        ArgumentOutOfRangeException.ThrowIfLessThanOrEqual(interval, TimeSpan.Zero);
        if (targets.Count == 0)
        {
            throw new ArgumentException("CheckAlive needs at least one address.", nameof(targets));
        }

        _ping = ping;
        _targets = [.. targets];
        Interval = interval;
        _time = time;
        _log = logger;
        _lastPongTicks = new long[_targets.Length];
        _alive = new bool?[_targets.Length];
        _loop = runLoop ? Task.Run(RunAsync) : Task.CompletedTask;
    }

    /// <summary>The addresses pinged, in the configured order.</summary>
    public IReadOnlyList<IPAddress> Targets => _targets;

    /// <summary>The time between rounds (<c>CheckAliveInterval</c>).</summary>
    public TimeSpan Interval { get; }

    /// <summary>True when every target answered within the last <see cref="Interval"/> + <see cref="Grace"/>.</summary>
    public bool IsReady
    {
        get
        {
            var now = _time.GetUtcNow();
            for (var i = 0; i < _targets.Length; i++)
            {
                if (!IsAlive(i, now))
                {
                    return false;
                }
            }

            return true;
        }
    }

    /// <summary>
    /// Starts pinging <paramref name="targets"/> through <paramref name="tunnel"/> every <paramref name="interval"/>
    /// (wireproxy's <c>CheckAlive</c> and <c>CheckAliveInterval</c>, default 5 s there).
    /// </summary>
    /// <exception cref="ArgumentException">No targets, or an interval that is not positive.</exception>
    public static AlivePinger Start(WireGuardTunnel tunnel, IReadOnlyList<IPAddress> targets, TimeSpan interval, ILogger? logger = null)
    {
        ArgumentNullException.ThrowIfNull(tunnel);
        return new AlivePinger(
            async (target, timeout, ct) =>
            {
                try
                {
                    return await tunnel.PingAsync(target, timeout, ct).ConfigureAwait(false) is not null;
                }
                catch (Exception e) when (e is SocketException or IOException or InvalidOperationException)
                {
                    return false; // unroutable target, closed tunnel: no pong
                }
            },
            targets,
            interval,
            TimeProvider.System,
            logger,
            runLoop: true);
    }

    /// <summary>When <paramref name="target"/> last answered, or null when it never did (or is not a target).</summary>
    public DateTimeOffset? LastPong(IPAddress target)
    {
        var i = Array.IndexOf(_targets, target);
        if (i < 0)
        {
            return null;
        }

        var ticks = Interlocked.Read(ref _lastPongTicks[i]);
        return ticks == 0 ? null : new DateTimeOffset(ticks, TimeSpan.Zero);
    }

    /// <summary>
    /// Stops pinging without waiting: the loop ends at its next await and then releases the token source. For a
    /// synchronous caller that must not block (<see cref="OperationsEndpoint.Start"/> when the server fails to start).
    /// </summary>
    internal void Stop()
    {
        _stop.Cancel();
        _ = _loop.ContinueWith(static (_, stop) => ((CancellationTokenSource)stop!).Dispose(), _stop, CancellationToken.None,
            TaskContinuationOptions.ExecuteSynchronously, TaskScheduler.Default);
    }

    /// <summary>The ping loop (tests: it ends after <see cref="Stop"/>).</summary>
    internal Task Loop => _loop;

    /// <summary>Stops pinging.</summary>
    public async ValueTask DisposeAsync()
    {
        await _stop.CancelAsync().ConfigureAwait(false);
        await _loop.ConfigureAwait(ConfigureAwaitOptions.SuppressThrowing);
        _stop.Dispose();
    }

    /// <summary>
    /// <c>/readyz</c>'s body, as wireproxy's: a JSON object mapping each target to the Unix time (seconds) of its last
    /// pong, 0 when none yet; <paramref name="ready"/> is <see cref="IsReady"/> at the same instant.
    /// </summary>
    internal string ReadinessJson(out bool ready)
    {
        var now = _time.GetUtcNow();
        ready = true;
        var json = new StringBuilder("{");
        for (var i = 0; i < _targets.Length; i++)
        {
            ready &= IsAlive(i, now);
            var ticks = Interlocked.Read(ref _lastPongTicks[i]);
            var seconds = ticks == 0 ? 0 : new DateTimeOffset(ticks, TimeSpan.Zero).ToUnixTimeSeconds();
            json.Append(i == 0 ? "" : ",").Append('"').Append(_targets[i]).Append("\":")
                .Append(seconds.ToString(CultureInfo.InvariantCulture));
        }

        return json.Append('}').ToString();
    }

    /// <summary>One round: pings every target at once, records the pongs, logs state changes.</summary>
    internal async Task PingRoundAsync(CancellationToken cancellationToken)
    {
        var replies = new Task<bool>[_targets.Length];
        for (var i = 0; i < _targets.Length; i++)
        {
            replies[i] = PingOne(_targets[i], cancellationToken);
        }

        await Task.WhenAll(replies).ConfigureAwait(false);
        var now = _time.GetUtcNow();
        for (var i = 0; i < _targets.Length; i++)
        {
            if (replies[i].Result)
            {
                Interlocked.Exchange(ref _lastPongTicks[i], now.UtcTicks);
            }

            var alive = IsAlive(i, now);
            if (_alive[i] != alive)
            {
                _alive[i] = alive;
                if (_log is not null)
                {
                    if (alive)
                    {
                        Log.TargetAlive(_log, _targets[i].ToString());
                    }
                    else
                    {
                        Log.TargetDead(_log, _targets[i].ToString(), Interval.TotalSeconds + Grace.TotalSeconds);
                    }
                }
            }
        }
    }

    private async Task<bool> PingOne(IPAddress target, CancellationToken cancellationToken)
    {
        try
        {
            return await _ping(target, Interval, cancellationToken).ConfigureAwait(false);
        }
        catch (Exception e) when (e is not OperationCanceledException)
        {
            return false; // a failing ping is a missing pong, never a dead loop
        }
    }

    private bool IsAlive(int i, DateTimeOffset now)
    {
        var ticks = Interlocked.Read(ref _lastPongTicks[i]);
        return ticks != 0 && now - new DateTimeOffset(ticks, TimeSpan.Zero) <= Interval + Grace;
    }

    private async Task RunAsync()
    {
        using var timer = new PeriodicTimer(Interval, _time);
        try
        {
            do
            {
                await PingRoundAsync(_stop.Token).ConfigureAwait(false);
            }
            while (await timer.WaitForNextTickAsync(_stop.Token).ConfigureAwait(false));
        }
        catch (OperationCanceledException)
        {
            // disposed
        }
    }

    private static partial class Log
    {
        [LoggerMessage(EventId = 1, Level = LogLevel.Information, Message = "CheckAlive: {Target} answers")]
        public static partial void TargetAlive(ILogger logger, string target);

        [LoggerMessage(EventId = 2, Level = LogLevel.Warning, Message = "CheckAlive: {Target} gave no pong in the last {Seconds} s")]
        public static partial void TargetDead(ILogger logger, string target, double seconds);
    }
}
