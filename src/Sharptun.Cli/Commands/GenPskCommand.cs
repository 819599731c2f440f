using Sharptun.Device;
using Sharptun.Protocol;

namespace Sharptun.Cli.Commands;

/// <summary><c>sharptun genpsk</c>: 32 random bytes in base64, like <c>wg genpsk</c>.</summary>
internal sealed class GenPskCommand : ICliCommand
{
    public string Name => "genpsk";

    public string Summary => "Generates a new preshared key and writes it to stdout";

    public Task<int> RunAsync(IReadOnlyList<string> args, CliContext context)
    {
        if (args.Count != 0)
        {
            context.Error.Write($"Usage: {CliContext.ProgramName} {Name}\n");
            return Task.FromResult(1);
        }

        using var key = Key.Random();
        context.Out.Write(key.ToString() + "\n");
        return Task.FromResult(0);
    }
}
