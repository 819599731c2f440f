using Sharptun.Cli.Commands;
using Sharptun.Device;
using static Sharptun.Cli.Tests.CliTestHelper;

namespace Sharptun.Cli.Tests;

public sealed class DaemonCommandTests
{
    [Theory]
    [InlineData(new[] { "wg0" }, true)]
    [InlineData(new[] { "-f", "wg0" }, true)]
    [InlineData(new[] { "--foreground", "wg0" }, true)]
    [InlineData(new[] { "-x" }, false)]
    [InlineData(new[] { "wg0", "extra" }, false)]
    [InlineData(new[] { "-f", "wg0", "extra" }, false)]
    [InlineData(new[] { "--tun-fd", "3", "wg0" }, true)]
    [InlineData(new[] { "-f", "--tun-fd", "3", "wg0" }, true)]
    [InlineData(new[] { "wg0", "--tun-fd=3" }, true)]
    [InlineData(new[] { "wg0", "--tun-fd" }, false)]
    [InlineData(new[] { "--tun-fd", "3", "--tun-fd", "4", "wg0" }, false)]
    [InlineData(new[] { "-f", "-f", "wg0" }, false)]
    public void IsDaemonInvocation_WireguardGoCommandLine(string[] args, bool expected)
    {
        Assert.Equal(expected, DaemonCommand.IsDaemonInvocation(args));
    }

    [Theory]
    [InlineData("wg0", true)]
    [InlineData("abcdefghijklmno", true)]
    [InlineData("abcdefghijklmnop", false)]
    [InlineData("", false)]
    [InlineData(".", false)]
    [InlineData("..", false)]
    [InlineData("a/b", false)]
    [InlineData("a:b", false)]
    [InlineData("a b", false)]
    public void IsValidInterfaceName_FollowsLinuxRules(string name, bool expected)
    {
        Assert.Equal(expected, DaemonCommand.IsValidInterfaceName(name));
    }

    [Fact]
    public void Dispatcher_BareInvalidName_ReachesDaemonAndFailsWithoutStarting()
    {
        var (code, output, err) = Run(string.Empty, "bad/name");

        Assert.Equal(1, code);
        Assert.Equal(string.Empty, output);
        Assert.StartsWith("sharptun: Invalid interface name `bad/name'", err, StringComparison.Ordinal);
    }

    [Fact]
    public void Daemon_WrongArgumentCount_PrintsWireguardGoUsage()
    {
        var (code, _, err) = Run(string.Empty, "daemon", "-f");

        Assert.Equal(1, code);
        Assert.Equal("Usage: sharptun [-f/--foreground] [--tun-fd FD] INTERFACE-NAME\n", err);
    }

    [Theory]
    [InlineData("abc")]
    [InlineData("-1")]
    [InlineData("3x")]
    [InlineData("99999999999")]
    public void Daemon_TunFdNotANumber_ClearErrorExit1(string value)
    {
        var (code, output, err) = Run(string.Empty, "--tun-fd", value, "-f", "wg0");

        Assert.Equal(1, code);
        Assert.Equal(string.Empty, output);
        Assert.Equal($"sharptun: --tun-fd `{value}': not a file descriptor number\n", err);
    }

    [Fact]
    public void ParseArguments_TakesFlagsInAnyOrder()
    {
        var parsed = DaemonCommand.ParseArguments(["wg7", "--tun-fd", "5", "--foreground"]);

        Assert.Equal(new DaemonArguments(true, "wg7", "5"), parsed);
    }

    [Theory]
    [InlineData("verbose", DeviceLogLevel.Verbose)]
    [InlineData("DEBUG", DeviceLogLevel.Verbose)]
    [InlineData("error", DeviceLogLevel.Error)]
    [InlineData("silent", DeviceLogLevel.Silent)]
    [InlineData(null, DeviceLogLevel.Error)]
    [InlineData("nonsense", DeviceLogLevel.Error)]
    public void LogLevel_ParsedLikeWireguardGo(string? text, DeviceLogLevel expected)
    {
        Assert.Equal(expected, DeviceLog.ParseLevel(text));
    }

    [Fact]
    public void DeviceLog_LinesCarryWireguardGoPrefixes_AndLevelFilters()
    {
        var output = new StringWriter();
        var log = new DeviceLog(DeviceLogLevel.Error, "wg0", output);

        log.Verbose("hidden");
        log.Error("shown");

        Assert.Matches(@"^ERROR: \(wg0\) \d{4}/\d{2}/\d{2} \d{2}:\d{2}:\d{2} shown\n$", output.ToString());
    }
}
