namespace Sharptun.Cli.Commands;

/// <summary>
/// One <c>sharptun</c> subcommand. Implementations live one per file in this folder and are listed in
/// <see cref="CommandRegistry.All"/> (no reflection, so the CLI stays AOT/trim-safe).
/// </summary>
internal interface ICliCommand
{
    /// <summary>The subcommand word, e.g. <c>genkey</c>.</summary>
    string Name { get; }

    /// <summary>One line for <c>sharptun --help</c>.</summary>
    string Summary { get; }

    /// <summary>
    /// Runs the command. <paramref name="args"/> excludes the subcommand word. Returns the process exit code
    /// (0 success, 1 failure, like wg). Must not throw for bad user input: print to <see cref="CliContext.Error"/>.
    /// </summary>
    Task<int> RunAsync(IReadOnlyList<string> args, CliContext context);
}
