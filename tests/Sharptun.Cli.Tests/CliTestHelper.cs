using Sharptun.Cli;
using Sharptun.Cli.Commands;

namespace Sharptun.Cli.Tests;

internal static class CliTestHelper
{
    public static (int ExitCode, string Out, string Err) Run(string stdin, params string[] args)
    {
        var output = new StringWriter { NewLine = "\n" };
        var error = new StringWriter { NewLine = "\n" };
        var code = CommandDispatcher.RunAsync(args, new CliContext(new StringReader(stdin), output, error)).GetAwaiter().GetResult();
        return (code, output.ToString(), error.ToString());
    }
}
