using System.Globalization;
using System.Text;
using System.Net;
using Microsoft.Extensions.Logging;
using Sharptun.Cli.Daemon;
using Sharptun.Proxy;
using Sharptun.Proxy.Config;

namespace Sharptun.Cli.Commands;

/// <summary>
/// <c>sharptun proxy [-c FILE] [-n] [-s] [-d] [-v] [-i ADDR] [--max-connections N] [--memory-budget BYTES]
/// [--connect-timeout S] [--idle-timeout S]</c>: a rootless WireGuard client serving SOCKS5, HTTP and forwards from a
/// wireproxy config file, unchanged. The flags are wireproxy's; the four long ones are ours.
/// </summary>
/// <remarks>
/// <para>Without <c>-c</c> the first existing file of wireproxy's defaults is read: <c>/etc/wireproxy/wireproxy.conf</c>,
/// then <c>~/.config/wireproxy.conf</c>.</para>
/// <para><c>-d</c> detaches as wireproxy does: the config is checked first, then this program is started again without
/// <c>-d</c> in a new session with its standard streams on /dev/null, and the command exits 0 printing nothing once
/// the child reports that the tunnel and every front-end are up (unlike wireproxy, a start failure such as a port in
/// use is printed and exits 1). .NET cannot fork, so the child, given a pipe's descriptor in
/// <see cref="DetachedVariable"/>, calls setsid, redirects its streams and reports on the pipe itself.</para>
/// </remarks>
internal sealed class ProxyCommand : ICliCommand
{
    /// <summary>Set in the detached child's environment (<c>-d</c>): the descriptor it reports readiness on.</summary>
    public const string DetachedVariable = "SHARPTUN_PROXY_READY_FD";

    private static readonly TimeSpan StartupTimeout = TimeSpan.FromSeconds(60);

    private readonly string _etcDirectory;
    private readonly Func<string?> _home;

    /// <summary>The command with the real default config locations.</summary>
    public ProxyCommand()
        : this("/etc", () => Environment.GetEnvironmentVariable("HOME"))
    {
    }

    /// <summary>The command with the default locations under <paramref name="etcDirectory"/> and <paramref name="home"/> (tests).</summary>
    public ProxyCommand(string etcDirectory, Func<string?> home)
    {
        _etcDirectory = etcDirectory;
        _home = home;
    }

    public string Name => "proxy";

    public string Summary => "Runs a rootless WireGuard client with SOCKS5/HTTP proxies and forwards from a wireproxy config (-c FILE)";

    /// <summary>wireproxy's default config paths, in the order it tries them.</summary>
    public IReadOnlyList<string> DefaultConfigPaths
    {
        get
        {
            var paths = new List<string> { Path.Combine(_etcDirectory, "wireproxy", "wireproxy.conf") };
            if (_home() is { Length: > 0 } home)
            {
                paths.Add(Path.Combine(home, ".config", "wireproxy.conf"));
            }

            return paths;
        }
    }

    public async Task<int> RunAsync(IReadOnlyList<string> args, CliContext context)
    {
        ProxyArguments parsed;
        try
        {
            parsed = ProxyArguments.Parse(args);
        }
        catch (FormatException e)
        {
            context.Error.Write($"{CliContext.ProgramName} proxy: {e.Message}\n");
            WriteUsage(context.Error);
            return 1;
        }

        if (parsed.Help)
        {
            WriteUsage(context.Out);
            return 0;
        }

        if (parsed.Version)
        {
            context.Out.Write($"{CliContext.ProgramName} proxy, version {CommandDispatcher.Version}\n");
            return 0;
        }

        var path = parsed.ConfigPath ?? DefaultConfigPaths.FirstOrDefault(File.Exists);
        if (path is null)
        {
            context.Error.Write($"{CliContext.ProgramName} proxy: no config file: give -c FILE (looked for {string.Join(" and ", DefaultConfigPaths)})\n");
            return 1;
        }

        ProxyConfig config;
        try
        {
            config = ProxyConfig.Load(path);
            ProxyHost.Validate(config);
        }
        catch (ProxyConfigException e)
        {
            context.Error.Write($"{CliContext.ProgramName} proxy: {e.Message}\n");
            return 1;
        }

        if (parsed.Daemon && config.Services.FirstOrDefault(IsStdioTunnel) is { } stdio)
        {
            // Refused before anything starts: the background process's standard streams are /dev/null.
            var refusal = stdio.Error(stdio.Line, $"[{stdio.Name}] cannot run with -d: a background process has no standard input and output to tunnel (run it without -d, e.g. as ssh's ProxyCommand)");
            context.Error.Write($"{CliContext.ProgramName} proxy: {refusal.Message}\n");
            return 1;
        }

        if (parsed.ConfigTest)
        {
            context.Out.Write("Config OK\n");
            return 0;
        }

        if (parsed.Daemon)
        {
            return await DetachAsync(args, context).ConfigureAwait(false);
        }

        int? readyFd = null;
        var log = context.Error;
        if (int.TryParse(Environment.GetEnvironmentVariable(DetachedVariable), NumberStyles.None, CultureInfo.InvariantCulture, out var fd)
            && OperatingSystem.IsLinux())
        {
            // The background child of -d: its own session, no terminal, standard streams on /dev/null.
            readyFd = fd;
            Environment.SetEnvironmentVariable(DetachedVariable, null);
            DaemonNative.StartNewSession();
            DaemonNative.RedirectStandardStreamsToNull(keepOutput: false);
            context.In.Dispose();
            context.Out.Dispose();
            context.Error.Dispose();
            log = TextWriter.Null;
        }

        using var loggers = WireGuardGoLoggerProvider.CreateFactory("proxy", log, parsed.Silent ? LogLevel.None : LogLevel.Information);
        var logger = loggers.CreateLogger("Sharptun.Cli.Proxy");
        Log.Starting(logger, CliContext.ProgramName + " proxy", CommandDispatcher.Version);
        ProxyHost host;
        try
        {
            host = await ProxyHost.StartAsync(config, parsed.ToOptions(loggers), context.Cancellation).ConfigureAwait(false);
        }
        catch (Exception e) when (e is ProxyHostException or ProxyConfigException or OperationCanceledException)
        {
            var message = e is OperationCanceledException ? "stopped while starting" : e.Message;
            Log.StartFailed(logger, message);
            if (readyFd is { } pipe && OperatingSystem.IsLinux())
            {
                DaemonNative.WriteAndClose(pipe, Encoding.UTF8.GetBytes("error\n" + message + "\n"));
            }
            else if (parsed.Silent)
            {
                context.Error.Write($"{CliContext.ProgramName} proxy: {message}\n");
            }

            return 1;
        }

        await using (host.ConfigureAwait(false))
        {
            if (readyFd is { } pipe && OperatingSystem.IsLinux())
            {
                DaemonNative.WriteAndClose(pipe, "ok\n"u8);
            }

            try
            {
                await host.RunAsync(context.Cancellation).ConfigureAwait(false);
            }
            catch (ProxyHostException e)
            {
                Log.StartFailed(logger, e.Message);
                return 1;
            }
        }

        return 0;
    }

    private static bool IsStdioTunnel(ConfigSection section) =>
        string.Equals(section.Name, Sharptun.Proxy.Forwards.StdioTunnel.SectionName, StringComparison.OrdinalIgnoreCase);

    /// <summary>
    /// <c>-d</c>: starts this program again without <c>-d</c> and waits until it reports that the tunnel and every
    /// front-end are up (exit 0, printing nothing) or why not (the message, exit 1).
    /// </summary>
    private static async Task<int> DetachAsync(IReadOnlyList<string> args, CliContext context)
    {
        if (!OperatingSystem.IsLinux())
        {
            context.Error.Write($"{CliContext.ProgramName} proxy: -d needs Linux\n");
            return 1;
        }

        // Our caller's stdio must not stay open in the child (a shell or test reading our output would wait for as long
        // as the proxy runs): it gets pipes of ours, and points its streams at /dev/null as soon as it starts.
        var outcome = await DetachedStart.StartAsync(
            ["proxy", .. args.Where(a => a is not ("-d" or "--daemon"))],
            DetachedVariable,
            new Dictionary<string, string>(),
            keepOutput: false,
            StartupTimeout,
            exitWait: TimeSpan.Zero).ConfigureAwait(false);
        var program = $"{CliContext.ProgramName} proxy";
        switch (outcome.Result)
        {
            case DetachedResult.Ready:
                return 0;
            case DetachedResult.StartFailed:
                context.Error.Write($"{program}: cannot start the background process: {outcome.Message}\n");
                break;
            case DetachedResult.TimedOut:
                context.Error.Write($"{program}: the background process did not report within {StartupTimeout.TotalSeconds:0} s; stopping it\n");
                break;
            case DetachedResult.Failed:
                context.Error.Write($"{program}: {outcome.Message}\n");
                break;
            default:
                context.Error.Write($"{program}: the background process exited during startup\n");
                break;
        }

        return 1;
    }

    private static void WriteUsage(TextWriter writer) => writer.Write(
        $"""
        Usage: {CliContext.ProgramName} proxy [-c FILE] [-n] [-s] [-d] [-v] [-i ADDR] [options]
          -c, --config FILE        wireproxy config file (default: /etc/wireproxy/wireproxy.conf, then ~/.config/wireproxy.conf)
          -n, --configtest         check the config, print "Config OK" and exit 0 (1 and the error when it is wrong)
          -s, --silent             no log output
          -d, --daemon             run in the background (new session, output to /dev/null)
          -v, --version            print the version
          -i, --info ADDR          serve /metrics and /readyz on ADDR (host:port)
          --uapi-socket PATH       serve the wireguard-go UAPI there (wg show/set; link it into /var/run/wireguard)
          --max-connections N      connections open at once across all front-ends (default {ProxyHostOptions.DefaultMaxConnections})
          --memory-budget BYTES    tunnel packet and stack buffer budget (default {WireGuardTunnelOptions.DefaultMemoryBudgetBytes}; K, M, G suffixes)
          --connect-timeout SECONDS  connect through the tunnel; a SOCKS5 BIND waits as long (default 30)
          --idle-timeout SECONDS   close relayed connections silent this long both ways (default 600)

        """.Replace("\r", string.Empty, StringComparison.Ordinal));
}

/// <summary>The proxy command line, parsed.</summary>
internal sealed record ProxyArguments
{
    public string? ConfigPath { get; init; }

    public bool ConfigTest { get; init; }

    public bool Silent { get; init; }

    public bool Daemon { get; init; }

    public bool Version { get; init; }

    public bool Help { get; init; }

    public string? InfoAddress { get; init; }

    public string? UapiSocketPath { get; init; }

    public int MaxConnections { get; init; } = ProxyHostOptions.DefaultMaxConnections;

    public long MemoryBudgetBytes { get; init; } = WireGuardTunnelOptions.DefaultMemoryBudgetBytes;

    public TimeSpan ConnectTimeout { get; init; } = TimeSpan.FromSeconds(30);

    public TimeSpan IdleTimeout { get; init; } = TimeSpan.FromMinutes(10);

    public ProxyHostOptions ToOptions(ILoggerFactory loggers) => new()
    {
        MaxConnections = MaxConnections,
        MemoryBudgetBytes = MemoryBudgetBytes,
        ConnectTimeout = ConnectTimeout,
        IdleTimeout = IdleTimeout,
        InfoAddress = InfoAddress,
        UapiSocketPath = UapiSocketPath,
        LoggerFactory = loggers,
    };

    /// <summary>Parses wireproxy's flags (<c>-c FILE</c>, <c>--config FILE</c>, <c>--config=FILE</c>, ...) and ours.</summary>
    /// <exception cref="FormatException">An unknown flag, a missing or bad value; the message says which.</exception>
    public static ProxyArguments Parse(IReadOnlyList<string> args)
    {
        var result = new ProxyArguments();
        for (var i = 0; i < args.Count; i++)
        {
            var arg = args[i];
            string? inline = null;
            if (arg.StartsWith("--", StringComparison.Ordinal) && arg.IndexOf('=', StringComparison.Ordinal) is var eq and > 0)
            {
                inline = arg[(eq + 1)..];
                arg = arg[..eq];
            }

            string Value()
            {
                if (inline is not null)
                {
                    return inline;
                }

                if (i + 1 >= args.Count)
                {
                    throw new FormatException($"{arg} needs a value");
                }

                return args[++i];
            }

            void NoValue()
            {
                if (inline is not null)
                {
                    throw new FormatException($"{arg} takes no value");
                }
            }

            switch (arg)
            {
                case "-c" or "--config":
                    result = result with { ConfigPath = NonEmpty(arg, Value()) };
                    break;
                case "-n" or "--configtest":
                    NoValue();
                    result = result with { ConfigTest = true };
                    break;
                case "-s" or "--silent":
                    NoValue();
                    result = result with { Silent = true };
                    break;
                case "-d" or "--daemon":
                    NoValue();
                    result = result with { Daemon = true };
                    break;
                case "-v" or "--version":
                    NoValue();
                    result = result with { Version = true };
                    break;
                case "-h" or "--help":
                    NoValue();
                    result = result with { Help = true };
                    break;
                case "-i" or "--info":
                    result = result with { InfoAddress = ParseInfoAddress(arg, Value()) };
                    break;
                case "--uapi-socket":
                    result = result with { UapiSocketPath = Value() };
                    break;
                case "--max-connections":
                    result = result with { MaxConnections = (int)Number(arg, Value(), 1, 1 << 20) };
                    break;
                case "--memory-budget":
                    result = result with { MemoryBudgetBytes = Bytes(arg, Value()) };
                    break;
                case "--connect-timeout":
                    result = result with { ConnectTimeout = TimeSpan.FromSeconds(Number(arg, Value(), 1, 3600)) };
                    break;
                case "--idle-timeout":
                    result = result with { IdleTimeout = TimeSpan.FromSeconds(Number(arg, Value(), 1, 7 * 24 * 3600)) };
                    break;
                default:
                    throw new FormatException($"unknown argument `{args[i]}'");
            }
        }

        return result;
    }

    /// <summary>
    /// wireproxy's <c>-i</c> address, as Go's net.Listen takes it: <c>host:port</c>, <c>[v6]:port</c> or <c>:port</c>
    /// (every address). Returned as given.
    /// </summary>
    public static string ParseInfoAddress(string flag, string text)
    {
        var colon = text.LastIndexOf(':');
        var port = colon < 0 ? string.Empty : text[(colon + 1)..];
        var host = colon < 0 ? string.Empty : text[..colon];
        if (host.StartsWith('[') && host.EndsWith(']'))
        {
            host = host[1..^1];
            if (!IPAddress.TryParse(host, out var v6) || v6.AddressFamily != System.Net.Sockets.AddressFamily.InterNetworkV6)
            {
                throw new FormatException($"{flag} `{text}': [{host}] is not an IPv6 address");
            }
        }
        else if (host.Contains(':', StringComparison.Ordinal)
                 || (host.Length > 0 && !host.All(c => char.IsAsciiLetterOrDigit(c) || c is '.' or '-' or '_')))
        {
            throw new FormatException($"{flag} `{text}': expected host:port, [v6]:port or :port");
        }

        if (colon < 0 || !int.TryParse(port, NumberStyles.None, CultureInfo.InvariantCulture, out var number) || number is < 1 or > 65535)
        {
            throw new FormatException($"{flag} `{text}': expected host:port, [v6]:port or :port with a port from 1 to 65535");
        }

        return text;
    }

    private static string NonEmpty(string flag, string value) =>
        value.Length > 0 ? value : throw new FormatException($"{flag} needs a value");

    private static long Number(string flag, string text, long min, long max) =>
        long.TryParse(text, NumberStyles.None, CultureInfo.InvariantCulture, out var value) && value >= min && value <= max
            ? value
            : throw new FormatException($"{flag} `{text}': expected a whole number from {min} to {max}");

    private static long Bytes(string flag, string text)
    {
        var multiplier = 1L;
        var digits = text;
        if (text.Length > 1 && char.ToUpperInvariant(text[^1]) is 'K' or 'M' or 'G')
        {
            multiplier = char.ToUpperInvariant(text[^1]) switch { 'K' => 1L << 10, 'M' => 1L << 20, _ => 1L << 30 };
            digits = text[..^1];
        }

        var min = WireGuardTunnelOptions.MinimumMemoryBudgetBytes;
        return long.TryParse(digits, NumberStyles.None, CultureInfo.InvariantCulture, out var value) && value <= (64L << 30) / multiplier && value * multiplier >= min
            ? value * multiplier
            : throw new FormatException($"{flag} `{text}': expected a byte count of at least {min} (K, M, G suffixes allowed)");
    }
}
