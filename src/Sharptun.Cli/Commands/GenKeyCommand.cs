using Sharptun.Device;
using Sharptun.Protocol;

namespace Sharptun.Cli.Commands;

/// <summary><c>sharptun genkey</c>: a new clamped X25519 private key in base64, like <c>wg genkey</c>.</summary>
internal sealed class GenKeyCommand : ICliCommand
{
    public string Name => "genkey";

    public string Summary => "Generates a new private key and writes it to stdout";

    public Task<int> RunAsync(IReadOnlyList<string> args, CliContext context)
    {
        if (args.Count != 0)
        {
            context.Error.Write($"Usage: {CliContext.ProgramName} {Name}\n");
            return Task.FromResult(1);
        }

        using var key = Key.GeneratePrivateKey();
        context.Out.Write(key.ToString() + "\n");
        return Task.FromResult(0);
    }
}
