using System.Diagnostics;
using System.IO.Pipes;
using System.Runtime.Versioning;
using System.Text;

namespace Sharptun.Cli.Daemon;

/// <summary>
/// How <c>sharptun</c> goes to the background (the daemon without <c>-f</c>, <c>sharptun proxy -d</c>): .NET cannot
/// fork, so it starts this program again with the given arguments and the write end of a pipe named in an environment
/// variable, and waits until the child writes <c>ok\n</c> (it is up) or <c>error\nMESSAGE\n</c> (why not) and closes it.
/// The child gets pipes of ours for its standard streams unless asked to keep them, so a caller reading our output
/// (a shell, wg-quick, a test) does not wait for as long as the child runs.
/// </summary>
internal static class DetachedStart
{
    /// <summary>Starts the child and waits for its report; the caller words the outcome.</summary>
    /// <param name="args">The child's arguments (after the program, or after <c>sharptun.dll</c> under dotnet).</param>
    /// <param name="readyVariable">The environment variable that names the pipe's write end to the child.</param>
    /// <param name="environment">More environment variables for the child.</param>
    /// <param name="keepOutput">Pass our standard output and error through instead of redirecting them.</param>
    /// <param name="timeout">How long the child may take to report; after it the child is killed.</param>
    /// <param name="exitWait">After the pipe closed without a report: how long to wait for the child's exit code.</param>
    [SupportedOSPlatform("linux")]
    public static async Task<DetachedOutcome> StartAsync(
        IEnumerable<string> args,
        string readyVariable,
        IReadOnlyDictionary<string, string> environment,
        bool keepOutput,
        TimeSpan timeout,
        TimeSpan exitWait)
    {
        using var ready = new AnonymousPipeServerStream(PipeDirection.In, HandleInheritability.Inheritable);
        DaemonNative.SetCloseOnExec((int)ready.SafePipeHandle.DangerousGetHandle()); // only the write end goes to the child
        var start = new ProcessStartInfo(Environment.ProcessPath ?? throw new InvalidOperationException("no process path")) { UseShellExecute = false };
        if (Path.GetFileNameWithoutExtension(start.FileName) == "dotnet")
        {
            start.ArgumentList.Add(Path.Combine(AppContext.BaseDirectory, CliContext.ProgramName + ".dll"));
        }

        foreach (var arg in args)
        {
            start.ArgumentList.Add(arg);
        }

        start.RedirectStandardInput = true;
        start.RedirectStandardOutput = !keepOutput;
        start.RedirectStandardError = !keepOutput;
        foreach (var (key, value) in environment)
        {
            start.Environment[key] = value;
        }

        start.Environment[readyVariable] = ready.GetClientHandleAsString();
        Process child;
        try
        {
            child = Process.Start(start) ?? throw new InvalidOperationException("Process.Start returned null");
        }
        catch (Exception e) when (e is System.ComponentModel.Win32Exception or InvalidOperationException)
        {
            return new DetachedOutcome(DetachedResult.StartFailed, e.Message, null);
        }
        finally
        {
            ready.DisposeLocalCopyOfClientHandle();
        }

        using (child)
        {
            string report;
            using var deadline = new CancellationTokenSource(timeout);
            try
            {
                using var reader = new StreamReader(ready, Encoding.UTF8);
                report = await reader.ReadToEndAsync(deadline.Token).ConfigureAwait(false);
            }
            catch (OperationCanceledException)
            {
                child.Kill();
                return new DetachedOutcome(DetachedResult.TimedOut, null, null);
            }

            if (report.StartsWith("ok\n", StringComparison.Ordinal))
            {
                return new DetachedOutcome(DetachedResult.Ready, null, null);
            }

            if (report.StartsWith("error\n", StringComparison.Ordinal))
            {
                return new DetachedOutcome(DetachedResult.Failed, report["error\n".Length..].TrimEnd('\n'), null);
            }

            return new DetachedOutcome(DetachedResult.Closed, null, child.WaitForExit(exitWait) ? child.ExitCode : null);
        }
    }
}

/// <summary>What became of a <see cref="DetachedStart"/>.</summary>
internal enum DetachedResult
{
    /// <summary>The child reported <c>ok</c>.</summary>
    Ready,

    /// <summary>The child reported an error (<see cref="DetachedOutcome.Message"/>).</summary>
    Failed,

    /// <summary>The child could not be started (<see cref="DetachedOutcome.Message"/>).</summary>
    StartFailed,

    /// <summary>The child did not report in time and was killed.</summary>
    TimedOut,

    /// <summary>The child closed the pipe without a report (<see cref="DetachedOutcome.ExitCode"/> if it exited).</summary>
    Closed,
}

/// <summary>The result of <see cref="DetachedStart.StartAsync"/>.</summary>
internal readonly record struct DetachedOutcome(DetachedResult Result, string? Message, int? ExitCode);
