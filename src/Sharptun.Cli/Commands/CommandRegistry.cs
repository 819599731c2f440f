namespace Sharptun.Cli.Commands;

/// <summary>The subcommands, in the order <c>sharptun --help</c> lists them. Add new commands here.</summary>
internal static class CommandRegistry
{
    public static IReadOnlyList<ICliCommand> All { get; } =
    [
        new GenKeyCommand(),
        new GenPskCommand(),
        new PubKeyCommand(),
        new ShowCommand(),
        new DaemonCommand(),
        new DemoCommand(),
        new ProxyCommand(),
        new GatewayCommand(),
    ];

    public static ICliCommand? Find(string name)
    {
        foreach (var command in All)
        {
            if (command.Name == name)
            {
                return command;
            }
        }

        return null;
    }
}
