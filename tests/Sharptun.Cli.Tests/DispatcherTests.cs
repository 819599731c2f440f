using static Sharptun.Cli.Tests.CliTestHelper;

namespace Sharptun.Cli.Tests;

public sealed class DispatcherTests
{
    [Theory]
    [InlineData("--help")]
    [InlineData("-h")]
    [InlineData("help")]
    public void Help_ListsEverySubcommandOnStdout(string flag)
    {
        var (code, output, err) = Run(string.Empty, flag);
        Assert.Equal(0, code);
        Assert.Equal(string.Empty, err);
        Assert.StartsWith("Usage: sharptun <cmd> [<args>]\n", output);
        foreach (var command in Sharptun.Cli.Commands.CommandRegistry.All)
        {
            Assert.Contains($"  {command.Name}: {command.Summary}\n", output);
        }
    }

    [Fact]
    public void Version_PrintsAssemblyVersion()
    {
        var (code, output, _) = Run(string.Empty, "--version");
        Assert.Equal(0, code);
        Assert.Equal($"sharptun v{typeof(Sharptun.Cli.CliContext).Assembly.GetName().Version!.ToString(3)} - userspace WireGuard\n", output);
    }

    [Fact]
    public void NoArguments_UsageOnStderrAndExit1()
    {
        var (code, output, err) = Run(string.Empty);
        Assert.Equal(1, code);
        Assert.Equal(string.Empty, output);
        Assert.StartsWith("Usage: sharptun", err);
    }

    [Fact]
    public void UnknownSubcommand_NamesItAndExit1()
    {
        var (code, _, err) = Run(string.Empty, "frobnicate", "extra"); // a lone word is an interface name (wireguard-go style)
        Assert.Equal(1, code);
        Assert.StartsWith("Invalid subcommand: `frobnicate'\n", err);
    }

    [Fact]
    public void CommandNames_AreUnique()
    {
        var names = Sharptun.Cli.Commands.CommandRegistry.All.Select(c => c.Name).ToList();
        Assert.Equal(names.Count, names.Distinct().Count());
    }
}
