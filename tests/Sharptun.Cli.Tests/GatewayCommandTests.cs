using Sharptun.Protocol;
using static Sharptun.Cli.Tests.CliTestHelper;

namespace Sharptun.Cli.Tests;

public sealed class GatewayCommandTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("sharptun-gw-").FullName;

    [Theory]
    [InlineData(new[] { "gateway" }, "missing -c FILE")]
    [InlineData(new[] { "gateway", "-c" }, "unexpected argument '-c'")]
    [InlineData(new[] { "gateway", "-c", "a.conf", "--bogus" }, "unexpected argument '--bogus'")]
    public void BadArguments_UsageOnStderr_Exit1(string[] args, string problem)
    {
        var (code, output, err) = Run(string.Empty, args);
        Assert.Equal(1, code);
        Assert.Equal(string.Empty, output);
        Assert.Contains(problem, err, StringComparison.Ordinal);
        Assert.Contains("Usage: sharptun gateway -c FILE", err, StringComparison.Ordinal);
    }

    [Fact]
    public void MissingFile_SaysSo_Exit1()
    {
        var (code, _, err) = Run(string.Empty, "gateway", "-c", Path.Combine(_dir, "nope.conf"));
        Assert.Equal(1, code);
        Assert.Contains("nope.conf", err, StringComparison.Ordinal);
    }

    [Fact]
    public void BadGatewaySection_NamesFileAndLine_Exit1()
    {
        var file = Path.Combine(_dir, "gw.conf");
        using var key = Key.GeneratePrivateKey();
        File.WriteAllText(file, $"[Interface]\nPrivateKey = {key}\nAddress = 10.66.0.1/32\n\n[Gateway]\nAllow = 10.0.0.0/99\n");
        var (code, _, err) = Run(string.Empty, "gateway", "-c", file);
        Assert.Equal(1, code);
        Assert.Contains($"{file}:6: '10.0.0.0/99'", err, StringComparison.Ordinal);
    }

    [Fact]
    public void BadWireGuardPart_IsReported_Exit1()
    {
        var file = Path.Combine(_dir, "gw.conf");
        File.WriteAllText(file, "[Interface]\nPrivateKey = nonsense\n\n[Gateway]\nDefault = deny\n");
        var (code, _, err) = Run(string.Empty, "gateway", "-c", file);
        Assert.Equal(1, code);
        Assert.StartsWith("sharptun: gateway: ", err, StringComparison.Ordinal);
        Assert.Contains("PrivateKey", err, StringComparison.Ordinal);
    }

    public void Dispose() => Directory.Delete(_dir, recursive: true);
}
