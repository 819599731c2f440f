using System.Runtime.Versioning;
using System.Text;
using Microsoft.Extensions.Logging;
using Sharptun.Cli.Daemon;
using Sharptun.Device;

namespace Sharptun.Cli.Commands;

/// <summary>
/// <c>sharptun [-f|--foreground] IFNAME</c>: the wireguard-go drop-in that <c>wg</c> and <c>wg-quick</c> drive
/// (<c>WG_QUICK_USERSPACE_IMPLEMENTATION</c>). Creates the TUN and the UAPI socket, then detaches into the background
/// unless <c>-f</c> is given or <c>WG_PROCESS_FOREGROUND=1</c>.
/// </summary>
/// <remarks>
/// <para>.NET cannot fork, so detaching re-executes this program with <c>WG_PROCESS_FOREGROUND=1</c> and
/// <see cref="ReadyFdVariable"/> naming the write end of a pipe. The child starts a new session, points its
/// standard streams at /dev/null (stdout/stderr stay when <c>LOG_LEVEL</c> is set and not silent, as in
/// wireguard-go), creates the interface and socket, and writes <c>ok</c> or <c>error</c> plus a message to the pipe.
/// The parent exits 0 only after <c>ok</c>; otherwise it prints the message and exits 1.</para>
/// <para>Inherited descriptors: <c>--tun-fd FD</c> or <c>WG_TUN_FD</c> (an open TUN; the flag is our addition and wins)
/// and <c>WG_UAPI_FD</c> (a listening unix socket) are adopted instead of creating new ones. <c>SHARPTUN_UDP_BIND=portable</c>
/// runs the device on the portable UDP bind (System.Net.Sockets) instead of the Linux one; <c>SHARPTUN_UDP_GRO=0</c> keeps
/// the Linux bind off UDP GRO (receive offload). <c>LOG_LEVEL=verbose|error|silent</c> as in wireguard-go.</para>
/// </remarks>
internal sealed class DaemonCommand : ICliCommand
{
    /// <summary>Environment variable naming the readiness pipe's write descriptor (parent → child).</summary>
    public const string ReadyFdVariable = "SHARPTUN_READY_FD";

    /// <summary>wireguard-go's foreground variable.</summary>
    public const string ForegroundVariable = "WG_PROCESS_FOREGROUND";

    /// <summary>How long the parent waits for the child to report.</summary>
    private static readonly TimeSpan StartupTimeout = TimeSpan.FromSeconds(60);

    public string Name => "daemon";

    public string Summary => "Runs the WireGuard daemon for an interface, like wireguard-go ([-f] IFNAME; also `sharptun IFNAME')";

    /// <summary>
    /// True when <paramref name="args"/> is a wireguard-go style invocation (<c>IFNAME</c>, <c>-f IFNAME</c>, plus our
    /// <c>--tun-fd FD</c>) rather than a subcommand; the dispatcher asks this for words that are not subcommands.
    /// </summary>
    public static bool IsDaemonInvocation(IReadOnlyList<string> args) => ParseArguments(args) is not null;

    /// <summary>The daemon's command line: <c>[-f|--foreground] [--tun-fd FD] IFNAME</c> in any order; null when it is not one.</summary>
    internal static DaemonArguments? ParseArguments(IReadOnlyList<string> args)
    {
        var foreground = false;
        string? name = null;
        string? tunFd = null;
        for (var i = 0; i < args.Count; i++)
        {
            var arg = args[i];
            if (arg is "-f" or "--foreground" && !foreground)
            {
                foreground = true;
            }
            else if (arg == TunFdFlag && tunFd is null && i + 1 < args.Count)
            {
                tunFd = args[++i];
            }
            else if (arg.StartsWith(TunFdFlag + "=", StringComparison.Ordinal) && tunFd is null)
            {
                tunFd = arg[(TunFdFlag.Length + 1)..];
            }
            else if (!arg.StartsWith('-') && name is null)
            {
                name = arg;
            }
            else
            {
                return null;
            }
        }

        return name is null ? null : new DaemonArguments(foreground, name, tunFd);
    }

    /// <summary>Our addition to wireguard-go's command line: run on an already open TUN descriptor (as <c>WG_TUN_FD</c> does).</summary>
    public const string TunFdFlag = "--tun-fd";

    public async Task<int> RunAsync(IReadOnlyList<string> args, CliContext context)
    {
        if (ParseArguments(args) is not { } parsed)
        {
            context.Error.Write($"Usage: {CliContext.ProgramName} [-f/--foreground] [{TunFdFlag} FD] INTERFACE-NAME\n");
            return 1;
        }

        var foreground = parsed.Foreground;
        var interfaceName = parsed.InterfaceName;
        int? tunFd = null;
        if (parsed.TunFd is { } tunFdText)
        {
            if (!int.TryParse(tunFdText, System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out var number))
            {
                context.Error.Write($"{CliContext.ProgramName}: {TunFdFlag} `{tunFdText}': not a file descriptor number\n");
                return 1;
            }

            tunFd = number;
        }

        var bindText = Environment.GetEnvironmentVariable(Sharptun.Transport.DatagramBinds.EnvironmentVariable);
        if (!Sharptun.Transport.DatagramBinds.TryParseKind(bindText, out var bindKind))
        {
            context.Error.Write($"{CliContext.ProgramName}: {Sharptun.Transport.DatagramBinds.EnvironmentVariable}=`{bindText}': expected auto, linux or portable\n");
            return 1;
        }

        var groText = Environment.GetEnvironmentVariable(Sharptun.Transport.DatagramBinds.ReceiveOffloadVariable);
        if (!Sharptun.Transport.DatagramBinds.TryParseSwitch(groText, out var receiveOffload))
        {
            context.Error.Write($"{CliContext.ProgramName}: {Sharptun.Transport.DatagramBinds.ReceiveOffloadVariable}=`{groText}': expected 0 or 1 (off or on)\n");
            return 1;
        }

        if (!OperatingSystem.IsLinux())
        {
            context.Error.Write($"{CliContext.ProgramName}: the daemon needs Linux\n");
            return 1;
        }

        if (!IsValidInterfaceName(interfaceName))
        {
            context.Error.Write($"{CliContext.ProgramName}: Invalid interface name `{interfaceName}' (1 to 15 bytes; no '/', ':' or whitespace)\n");
            return 1;
        }

        foreground |= Environment.GetEnvironmentVariable(ForegroundVariable) == "1";
        return foreground
            ? await RunForegroundAsync(interfaceName, tunFd, Sharptun.Transport.DatagramBinds.For(bindKind, receiveOffload), context).ConfigureAwait(false)
            : await DetachAsync(args, context).ConfigureAwait(false);
    }

    /// <summary>Linux's dev_valid_name: 1..15 bytes, not "." or "..", no '/', ':' or whitespace.</summary>
    public static bool IsValidInterfaceName(string name)
    {
        if (name.Length == 0 || Encoding.UTF8.GetByteCount(name) > 15 || name is "." or "..")
        {
            return false;
        }

        foreach (var c in name)
        {
            if (c is '/' or ':' || char.IsWhiteSpace(c) || char.IsControl(c))
            {
                return false;
            }
        }

        return true;
    }

    [SupportedOSPlatform("linux")]
    private static async Task<int> RunForegroundAsync(string interfaceName, int? tunFd, Sharptun.Transport.IDatagramBindFactory binds, CliContext context)
    {
        var levelText = Environment.GetEnvironmentVariable("LOG_LEVEL");
        var level = WireGuardGoLoggerProvider.ParseLevel(levelText);
        int? readyFd = int.TryParse(Environment.GetEnvironmentVariable(ReadyFdVariable), out var fd) ? fd : null;
        var output = context.Out;
        if (readyFd is not null)
        {
            // The detached child (wireguard-go: Setsid, stdio to /dev/null unless LOG_LEVEL asks for output).
            Environment.SetEnvironmentVariable(ReadyFdVariable, null);
            DaemonNative.StartNewSession();
            var keepOutput = levelText is not null && level != LogLevel.None;
            DaemonNative.RedirectStandardStreamsToNull(keepOutput);

            // .NET's console streams are dups of fds 0-2 taken before the redirect: close them too, or whoever
            // started us (wg-quick, a test capturing output) would wait on its pipe for as long as we run.
            context.In.Dispose();
            if (!keepOutput)
            {
                context.Out.Dispose();
                context.Error.Dispose();
                output = TextWriter.Null;
            }
        }

        // Files the daemon creates (the UAPI socket) are never readable or writable by others (issue 7 item 12).
        DaemonNative.SetPrivateUmask();
        using var loggers = WireGuardGoLoggerProvider.CreateFactory(interfaceName, output, level);
        var log = loggers.CreateLogger(Log.Category);
        Log.Starting(log, CliContext.ProgramName, CommandDispatcher.Version);

        DaemonHost host;
        try
        {
            host = DaemonHost.Start(interfaceName, loggers, binds: binds, tunFd: tunFd);
        }
        catch (DaemonStartException e)
        {
            Log.StartFailed(log, e.Message);
            if (readyFd is { } pipe)
            {
                DaemonNative.WriteAndClose(pipe, Encoding.UTF8.GetBytes("error\n" + e.Message + "\n"));
            }
            else if (level == LogLevel.None)
            {
                context.Error.Write($"{CliContext.ProgramName}: {e.Message}\n");
            }

            return 1;
        }

        using (host)
        {
            if (readyFd is { } pipe)
            {
                DaemonNative.WriteAndClose(pipe, "ok\n"u8);
            }

            return await host.RunAsync(context.Cancellation).ConfigureAwait(false);
        }
    }

    [SupportedOSPlatform("linux")]
    private static async Task<int> DetachAsync(IReadOnlyList<string> args, CliContext context)
    {
        // The child must not hold our caller's stdio (wg-quick or a test reading our output would wait for as long
        // as the daemon runs): give it pipes of ours instead, which close when we exit. With LOG_LEVEL set (and
        // not silent) stdout/stderr are passed through, as wireguard-go does.
        var levelText = Environment.GetEnvironmentVariable("LOG_LEVEL");
        var keepOutput = levelText is not null && WireGuardGoLoggerProvider.ParseLevel(levelText) != LogLevel.None;
        var outcome = await DetachedStart.StartAsync(
            args,
            ReadyFdVariable,
            new Dictionary<string, string> { [ForegroundVariable] = "1" },
            keepOutput,
            StartupTimeout,
            exitWait: TimeSpan.FromSeconds(5)).ConfigureAwait(false);
        switch (outcome.Result)
        {
            case DetachedResult.Ready:
                return 0;
            case DetachedResult.StartFailed:
                context.Error.Write($"{CliContext.ProgramName}: cannot start the daemon process: {outcome.Message}\n");
                break;
            case DetachedResult.TimedOut:
                context.Error.Write($"{CliContext.ProgramName}: the daemon did not report readiness within {StartupTimeout.TotalSeconds:0} s; stopping it\n");
                break;
            case DetachedResult.Failed:
                context.Error.Write($"{CliContext.ProgramName}: {outcome.Message}\n");
                break;
            default:
                context.Error.Write(outcome.ExitCode is { } code
                    ? $"{CliContext.ProgramName}: the daemon exited during startup (exit code {code})\n"
                    : $"{CliContext.ProgramName}: the daemon closed its readiness pipe without reporting\n");
                break;
        }

        return 1;
    }
}

/// <summary>The daemon's parsed command line.</summary>
/// <param name="Foreground">-f/--foreground.</param>
/// <param name="InterfaceName">IFNAME.</param>
/// <param name="TunFd">The text after --tun-fd, when given.</param>
internal sealed record DaemonArguments(bool Foreground, string InterfaceName, string? TunFd);
