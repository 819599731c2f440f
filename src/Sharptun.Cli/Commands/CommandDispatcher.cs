using System.Reflection;

namespace Sharptun.Cli.Commands;

/// <summary>Routes <c>sharptun &lt;cmd&gt; [args]</c> to a command; handles <c>--help</c> and <c>--version</c>.</summary>
internal static class CommandDispatcher
{
    public static async Task<int> RunAsync(IReadOnlyList<string> args, CliContext context)
    {
        if (args.Count == 0)
        {
            WriteUsage(context.Error);
            return 1;
        }

        var first = args[0];
        if (first is "--help" or "-h" or "help")
        {
            WriteUsage(context.Out);
            return 0;
        }

        if (first is "--version" or "-v" or "version")
        {
            context.Out.Write($"{CliContext.ProgramName} v{Version} - userspace WireGuard\n");
            return 0;
        }

        var command = CommandRegistry.Find(first);
        if (command is null && DaemonCommand.IsDaemonInvocation(args))
        {
            // wireguard-go's command line: `sharptun [-f] IFNAME` (what wg-quick runs).
            return await new DaemonCommand().RunAsync(args, context).ConfigureAwait(false);
        }

        if (command is null)
        {
            context.Error.Write($"Invalid subcommand: `{first}'\n");
            WriteUsage(context.Error);
            return 1;
        }

        return await command.RunAsync(args.Skip(1).ToArray(), context).ConfigureAwait(false);
    }

    public static string Version =>
        typeof(CommandDispatcher).Assembly.GetCustomAttribute<AssemblyInformationalVersionAttribute>()?.InformationalVersion.Split('+')[0]
        ?? typeof(CommandDispatcher).Assembly.GetName().Version?.ToString(3)
        ?? "0";

    public static void WriteUsage(TextWriter writer)
    {
        writer.Write($"Usage: {CliContext.ProgramName} <cmd> [<args>]\n\nAvailable subcommands:\n");
        foreach (var command in CommandRegistry.All)
        {
            writer.Write($"  {command.Name}: {command.Summary}\n");
        }

        writer.Write($"You may pass `--help' to any of these subcommands to view usage.\n");
    }
}
