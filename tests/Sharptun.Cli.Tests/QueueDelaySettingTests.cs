using Sharptun.Cli.Daemon;

namespace Sharptun.Cli.Tests;

/// <summary>SHARPTUN_QUEUE_DELAY_MS: the daemon's queue delay target (0 = off); anything else is refused with a warning and the default kept.</summary>
[System.Runtime.Versioning.SupportedOSPlatform("linux")]
public sealed class QueueDelaySettingTests
{
    [Theory]
    [InlineData("2", 2.0)]
    [InlineData("0", 0.0)]
    [InlineData("0.5", 0.5)]
    [InlineData("1000", 1000.0)]
    public void Valid(string text, double ms)
    {
        Assert.True(DaemonHost.TryParseQueueDelay(text, out var target));
        Assert.Equal(TimeSpan.FromMilliseconds(ms), target);
    }

    [Theory]
    [InlineData("")]
    [InlineData("fast")]
    [InlineData("-1")]
    [InlineData("1001")]
    [InlineData("NaN")]
    [InlineData("Infinity")]
    [InlineData("2ms")]
    public void Invalid(string text)
    {
        Assert.False(DaemonHost.TryParseQueueDelay(text, out _));
    }

    [Theory]
    [InlineData("0", 0)]
    [InlineData("2", 2)]
    [InlineData("256", 256)]
    public void CryptoWorkers_Valid(string text, int count)
    {
        Assert.True(DaemonHost.TryParseCryptoWorkers(text, out var parsed));
        Assert.Equal(count, parsed);
    }

    [Theory]
    [InlineData("")]
    [InlineData("-1")]
    [InlineData("257")]
    [InlineData("two")]
    [InlineData(" 2")]
    public void CryptoWorkers_Invalid(string text)
    {
        Assert.False(DaemonHost.TryParseCryptoWorkers(text, out _));
    }
}
