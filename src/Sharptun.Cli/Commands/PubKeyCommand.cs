using Sharptun.Device;
using Sharptun.Protocol;

namespace Sharptun.Cli.Commands;

/// <summary>
/// <c>sharptun pubkey</c>: reads a base64 private key from stdin and writes its public key, with wg's rules:
/// exactly 44 characters first (leading whitespace is not skipped), then only whitespace or NULs may follow.
/// </summary>
internal sealed class PubKeyCommand : ICliCommand
{
    public string Name => "pubkey";

    public string Summary => "Reads a private key from stdin and writes a public key to stdout";

    public Task<int> RunAsync(IReadOnlyList<string> args, CliContext context)
    {
        if (args.Count != 0)
        {
            context.Error.Write($"Usage: {CliContext.ProgramName} {Name}\n");
            return Task.FromResult(1);
        }

        Span<char> base64 = stackalloc char[Key.Base64Length];
        var read = 0;
        while (read < base64.Length)
        {
            var n = context.In.Read(base64[read..]);
            if (n == 0)
            {
                break;
            }

            read += n;
        }

        try
        {
            if (read != base64.Length)
            {
                context.Error.Write($"{CliContext.ProgramName}: Key is not the correct length or format\n");
                return Task.FromResult(1);
            }

            int c;
            while ((c = context.In.Read()) >= 0)
            {
                if (c != 0 && !IsSpace(c))
                {
                    context.Error.Write($"{CliContext.ProgramName}: Trailing characters found after key\n");
                    return Task.FromResult(1);
                }
            }

            if (!Key.TryParse(base64, out var privateKey))
            {
                context.Error.Write($"{CliContext.ProgramName}: Key is not the correct length or format\n");
                return Task.FromResult(1);
            }

            using (privateKey)
            {
                context.Out.Write(privateKey.DerivePublicKey().ToString() + "\n");
            }

            return Task.FromResult(0);
        }
        finally
        {
            base64.Clear();
        }
    }

    // C isspace() in the "C" locale, which wg uses.
    private static bool IsSpace(int c) => c is ' ' or '\t' or '\n' or '\v' or '\f' or '\r';
}
