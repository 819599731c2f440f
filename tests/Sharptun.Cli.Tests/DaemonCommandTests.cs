using Microsoft.Extensions.Logging;
using Sharptun.Cli.Commands;
using Sharptun.Cli.Daemon;
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
    [InlineData(null, true)]
    [InlineData("", true)]
    [InlineData("1", true)]
    [InlineData("on", true)]
    [InlineData("0", false)]
    [InlineData(" 0 ", false)]
    [InlineData("false", false)]
    [InlineData("OFF", false)]
    [InlineData("no", false)]
    [System.Runtime.Versioning.SupportedOSPlatform("linux")]
    public void TunOffloadVariable_OnUnlessZeroFalseOffOrNo(string? value, bool expected)
    {
        Assert.Equal("SHARPTUN_TUN_OFFLOAD", DaemonHost.TunOffloadVariable);
        Assert.Equal(expected, DaemonHost.OffloadEnabled(value));
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
    [InlineData("verbose", LogLevel.Debug)]
    [InlineData("DEBUG", LogLevel.Debug)]
    [InlineData("error", LogLevel.Warning)]
    [InlineData("silent", LogLevel.None)]
    [InlineData(null, LogLevel.Warning)]
    [InlineData("nonsense", LogLevel.Warning)]
    public void LogLevel_ParsedLikeWireguardGo(string? text, LogLevel expected)
    {
        Assert.Equal(expected, WireGuardGoLoggerProvider.ParseLevel(text));
    }

    [Theory]
    [InlineData("verbose", "DEBUG: info|DEBUG: debug|ERROR: warning|ERROR: error|ERROR: critical")]
    [InlineData("error", "ERROR: warning|ERROR: error|ERROR: critical")]
    [InlineData(null, "ERROR: warning|ERROR: error|ERROR: critical")]
    [InlineData("silent", "")]
    public void LogLevel_FiltersAndMapsLevelsToWireguardGoPrefixes(string? logLevel, string expected)
    {
        var output = new StringWriter();
        using (var factory = WireGuardGoLoggerProvider.CreateFactory("wg0", output, WireGuardGoLoggerProvider.ParseLevel(logLevel)))
        {
            var log = factory.CreateLogger("Sharptun.Device.Pipeline.WireGuardDevice");
            log.Log(LogLevel.Trace, "trace");
            log.Log(LogLevel.Information, "info");
            log.Log(LogLevel.Debug, "debug");
            log.Log(LogLevel.Warning, "warning");
            log.Log(LogLevel.Error, "error");
            log.Log(LogLevel.Critical, "critical");
        }

        // "DEBUG: (wg0) 2026/12/06 14:52:33 info" -> "DEBUG: info"
        var lines = output.ToString().Split('\n', StringSplitOptions.RemoveEmptyEntries)
            .Select(l => l[..6] + " " + l[(l.LastIndexOf(' ') + 1)..]);
        Assert.Equal(expected, string.Join('|', lines));
    }

    [Fact]
    public void Lines_HaveWireguardGoShape_AndCarryTheException()
    {
        var output = new StringWriter();
        var now = new DateTime(2026, 12, 6, 14, 52, 33, DateTimeKind.Local);
        using var provider = new WireGuardGoLoggerProvider("wg0", output, LogLevel.Debug, () => now);
        var log = provider.CreateLogger(Log.Category);

        Log.DeviceStarted(log);
        log.LogError(new IOException("errno 9999"), "Receiver failed, the device stops");

        Assert.Equal(
            "DEBUG: (wg0) 2026/12/06 14:52:33 Device started\n"
            + "ERROR: (wg0) 2026/12/06 14:52:33 Receiver failed, the device stops: System.IO.IOException: errno 9999\n",
            output.ToString());
    }

    [Fact]
    public void Lines_WithRealClock_MatchGoDateFormat()
    {
        var output = new StringWriter();
        using var provider = new WireGuardGoLoggerProvider("wg0", output, LogLevel.Warning);
        var log = provider.CreateLogger(Log.Category);

        Log.ShuttingDown(log); // Information: not at LOG_LEVEL=error
        Log.UapiListenerStopped(log);

        Assert.Matches(@"^ERROR: \(wg0\) \d{4}/\d{2}/\d{2} \d{2}:\d{2}:\d{2} UAPI listener stopped, shutting down\n$", output.ToString());
    }

    [Fact]
    public void ClosedOutput_IsIgnored()
    {
        using var provider = new WireGuardGoLoggerProvider("wg0", new ThrowingWriter(), LogLevel.Debug);

        provider.CreateLogger(Log.Category).LogError("lost"); // must not throw
    }

    private sealed class ThrowingWriter : TextWriter
    {
        public override System.Text.Encoding Encoding => System.Text.Encoding.UTF8;

        public override void Write(string? value) => throw new IOException("EPIPE");
    }
}
