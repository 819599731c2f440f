using System.Text.RegularExpressions;
using static Sharptun.Cli.Tests.CliTestHelper;

namespace Sharptun.Cli.Tests;

/// <summary>README's first command: <c>sharptun demo</c>, two in-process tunnels on the facade.</summary>
public sealed partial class DemoCommandTests
{
    [Fact]
    public void Demo_HandshakesFetchesOverHttpMovesBulkEachWay_AndShowsBothPeers()
    {
        var (code, output, err) = Run(string.Empty, "demo");
        Assert.True(code == 0, err + output);
        Assert.Equal(string.Empty, err);
        Assert.Matches(@"handshake \+ TCP connect through the tunnel: \d+\.\d ms", output);
        Assert.Contains("hello from bob, served inside his userspace TCP/IP stack", output, StringComparison.Ordinal);
        Assert.Contains("warm-up: 67.1 MB each way, untimed", output, StringComparison.Ordinal);
        Assert.Matches(@"bulk alice -> bob: 134\.2 MB over TCP in \d+\.\d\d s = \d+ Mbit/s", output);
        Assert.Matches(@"bulk bob -> alice: 134\.2 MB over TCP in \d+\.\d\d s = \d+ Mbit/s", output);
        Assert.True(
            output.IndexOf("warm-up:", StringComparison.Ordinal) < output.IndexOf("bulk alice -> bob", StringComparison.Ordinal),
            "the warm-up comes before the timed transfers: " + output);
        Assert.Equal(2, InterfaceLine().Matches(output).Count);
        Assert.Equal(2, HandshakeLine().Matches(output).Count);
    }

    [Fact]
    public void Demo_WithArguments_PrintsUsage()
    {
        var (code, _, err) = Run(string.Empty, "demo", "extra");
        Assert.Equal(1, code);
        Assert.Equal("Usage: sharptun demo\n", err);
    }

    [GeneratedRegex(@"^interface: (alice|bob)$", RegexOptions.Multiline)]
    private static partial Regex InterfaceLine();

    [GeneratedRegex(@"^  latest handshake: .+ ago$", RegexOptions.Multiline)]
    private static partial Regex HandshakeLine();
}
