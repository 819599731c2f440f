using Sharptun.Cli.Commands;
using Sharptun.Proxy;
using Sharptun.Proxy.Config;
using static Sharptun.Cli.Tests.CliTestHelper;

namespace Sharptun.Cli.Tests;

public sealed class ProxyCommandTests : IDisposable
{
    private const string GoodConfig = """
        [Interface]
        PrivateKey = 0IvQ7F2NDi3rEf1lGVIQrHK1nlN0jgiCneMtZQwd7HA=
        Address = 10.9.0.2/32

        [Peer]
        PublicKey = 2CKBqmLWCeTYQHLY04+ZeY8kwleYBMymfEVaIhiNYgg=
        Endpoint = 127.0.0.1:9
        AllowedIPs = 10.9.0.0/24

        """;

    private readonly string _dir = Directory.CreateTempSubdirectory("proxycmd").FullName;

    static ProxyCommandTests() => ProxyServiceCatalog.Register("CliTestFailingBind", (section, context) => new FailingBindService());

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    private string Write(string name, string text)
    {
        var path = Path.Combine(_dir, name);
        Directory.CreateDirectory(Path.GetDirectoryName(path)!);
        File.WriteAllText(path, text);
        return path;
    }

    private static (int Code, string Out, string Err) RunCommand(ProxyCommand command, CancellationToken cancellation, params string[] args)
    {
        var output = new StringWriter { NewLine = "\n" };
        var error = new StringWriter { NewLine = "\n" };
        var code = command.RunAsync(args, new CliContext(new StringReader(string.Empty), output, error, cancellation)).GetAwaiter().GetResult();
        return (code, output.ToString(), error.ToString());
    }

    [Fact]
    public void ConfigTest_GoodFile_PrintsConfigOk_Exit0()
    {
        var path = Write("good.conf", GoodConfig);
        Assert.Equal((0, "Config OK\n", string.Empty), Run(string.Empty, "proxy", "-c", path, "-n"));
        Assert.Equal((0, "Config OK\n", string.Empty), Run(string.Empty, "proxy", "--configtest", "--config=" + path));
    }

    [Fact]
    public void ConfigTest_BadFile_NamesFileAndLine_Exit1()
    {
        var path = Write("bad.conf", GoodConfig + "[Socks6]\nBindAddress = 127.0.0.1:1080\n");
        var (code, output, err) = Run(string.Empty, "proxy", "-n", "-c", path);
        Assert.Equal(1, code);
        Assert.Equal(string.Empty, output);
        Assert.StartsWith($"sharptun proxy: {path}:9: unknown section [Socks6]", err, StringComparison.Ordinal);

        var badMtu = Write("mtu.conf", GoodConfig.Replace("Address = 10.9.0.2/32", "Address = 10.9.0.2/32\nMTU = 20", StringComparison.Ordinal));
        Assert.StartsWith($"sharptun proxy: {badMtu}:4: MTU must be", Run(string.Empty, "proxy", "-n", "-c", badMtu).Err, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("-d")]
    [InlineData("--daemon")]
    public void Daemon_WithStdioTunnel_RefusedBeforeDetaching_NamesTheSection_Exit1(string flag)
    {
        // A background process's stdin and stdout are /dev/null: nothing to tunnel. Refused in the calling process,
        // before a child is started, even with -n and -s.
        var path = Write("stdio.conf", GoodConfig + "[Socks5]\nBindAddress = 127.0.0.1:1080\n\n[stdiotunnel]\nTarget = 10.9.0.1:22\n");
        var expected = $"sharptun proxy: {path}:12: [stdiotunnel] cannot run with -d: a background process has no standard input and output to tunnel (run it without -d, e.g. as ssh's ProxyCommand)\n";
        Assert.Equal((1, string.Empty, expected), Run(string.Empty, "proxy", "-c", path, flag));
        Assert.Equal((1, string.Empty, expected), Run(string.Empty, "proxy", "-s", flag, "-n", "-c", path));

        // Without -d the same file is fine.
        Assert.Equal((0, "Config OK\n", string.Empty), Run(string.Empty, "proxy", "-n", "-c", path));
    }

    [Fact]
    public void MissingFile_IsAClearError()
    {
        var (code, _, err) = Run(string.Empty, "proxy", "-c", Path.Combine(_dir, "nowhere.conf"), "-n");
        Assert.Equal(1, code);
        Assert.Contains("nowhere.conf: cannot read the config: no such file", err, StringComparison.Ordinal);
    }

    [Fact]
    public void DefaultPaths_EtcFirst_ThenHome_AsWireproxy()
    {
        var etc = Path.Combine(_dir, "etc");
        var home = Path.Combine(_dir, "home");
        var command = new ProxyCommand(etc, () => home);
        Assert.Equal([Path.Combine(etc, "wireproxy", "wireproxy.conf"), Path.Combine(home, ".config", "wireproxy.conf")], command.DefaultConfigPaths);

        var none = RunCommand(command, default, "-n");
        Assert.Equal(1, none.Code);
        Assert.Contains(Path.Combine(etc, "wireproxy", "wireproxy.conf") + " and " + Path.Combine(home, ".config", "wireproxy.conf"), none.Err, StringComparison.Ordinal);

        var homeConfig = Write("home/.config/wireproxy.conf", GoodConfig + "[Broken]\n");
        var fromHome = RunCommand(command, default, "-n");
        Assert.Equal(1, fromHome.Code);
        Assert.Contains(homeConfig + ":9: unknown section [Broken]", fromHome.Err, StringComparison.Ordinal);

        Write("etc/wireproxy/wireproxy.conf", GoodConfig);
        Assert.Equal((0, "Config OK\n", string.Empty), RunCommand(command, default, "-n")); // /etc wins over ~/.config

        Assert.Single(new ProxyCommand(etc, () => null).DefaultConfigPaths);
    }

    [Theory]
    [InlineData("--bogus")]
    [InlineData("-c")]
    [InlineData("--max-connections", "0")]
    [InlineData("--max-connections", "many")]
    [InlineData("--memory-budget", "1K")]
    [InlineData("--memory-budget", "lots")]
    [InlineData("--connect-timeout", "0")]
    [InlineData("--idle-timeout", "-5")]
    [InlineData("-i", "9080")]
    [InlineData("-i", "localhost:99999")]
    [InlineData("-i", "[nothex]:80")]
    [InlineData("-i", "a b:80")]
    [InlineData("-n=yes")]
    public void BadArguments_Exit1_WithUsage(params string[] args)
    {
        var (code, output, err) = Run(string.Empty, ["proxy", .. args]);
        Assert.Equal(1, code);
        Assert.Equal(string.Empty, output);
        Assert.StartsWith("sharptun proxy: ", err, StringComparison.Ordinal);
        Assert.Contains("Usage: sharptun proxy", err, StringComparison.Ordinal);
    }

    [Fact]
    public void Arguments_AreParsed()
    {
        var parsed = ProxyArguments.Parse(["-c", "x.conf", "-s", "-i", ":9080", "--max-connections", "10", "--memory-budget=16M",
            "--connect-timeout", "5", "--idle-timeout", "60", "-d"]);
        Assert.Equal("x.conf", parsed.ConfigPath);
        Assert.True(parsed.Silent);
        Assert.True(parsed.Daemon);
        Assert.Equal(":9080", parsed.InfoAddress);
        var options = parsed.ToOptions(Microsoft.Extensions.Logging.Abstractions.NullLoggerFactory.Instance);
        Assert.Equal(10, options.MaxConnections);
        Assert.Equal(16L << 20, options.MemoryBudgetBytes);
        Assert.Equal(TimeSpan.FromSeconds(5), options.ConnectTimeout);
        Assert.Equal(TimeSpan.FromSeconds(60), options.IdleTimeout);
        Assert.Equal(":9080", options.InfoAddress);
        Assert.Equal("[::1]:80", ProxyArguments.Parse(["--info", "[::1]:80"]).InfoAddress);
        Assert.Equal("localhost:8080", ProxyArguments.Parse(["-i", "localhost:8080"]).InfoAddress);
        var defaults = ProxyArguments.Parse([]).ToOptions(Microsoft.Extensions.Logging.Abstractions.NullLoggerFactory.Instance);
        Assert.Equal((1024, WireGuardTunnelOptions.DefaultMemoryBudgetBytes, null), (defaults.MaxConnections, defaults.MemoryBudgetBytes, defaults.InfoAddress));
    }

    [Fact]
    public void Version_AndHelp()
    {
        var version = Run(string.Empty, "proxy", "-v");
        Assert.Equal(0, version.ExitCode);
        Assert.StartsWith("sharptun proxy, version ", version.Out, StringComparison.Ordinal);
        var help = Run(string.Empty, "proxy", "--help");
        Assert.Equal(0, help.ExitCode);
        Assert.Contains("-n, --configtest", help.Out, StringComparison.Ordinal);
        Assert.Contains("  proxy: ", Run(string.Empty, "--help").Out, StringComparison.Ordinal);
    }

    [Fact]
    public void Run_ServesUntilCancelled_Exit0_LogsStart()
    {
        var path = Write("run.conf", GoodConfig);
        using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(3));
        var (code, output, err) = RunCommand(new ProxyCommand(), cts.Token, "-c", path);
        Assert.Equal(0, code);
        Assert.Equal(string.Empty, output);
        Assert.Contains("Starting sharptun proxy version", err, StringComparison.Ordinal);
        Assert.Contains("Proxy started: tunnel address 10.9.0.2", err, StringComparison.Ordinal);
        Assert.Contains("Proxy stopped", err, StringComparison.Ordinal);
    }

    [Fact]
    public void Silent_PrintsNothing()
    {
        var path = Write("silent.conf", GoodConfig);
        using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(3));
        Assert.Equal((0, string.Empty, string.Empty), RunCommand(new ProxyCommand(), cts.Token, "-s", "-c", path));
    }

    [Fact]
    public void BindFailure_Exit1_NamesTheSection_EvenWhenSilent()
    {
        var path = Write("bind.conf", GoodConfig + "[CliTestFailingBind]\n");
        var loud = RunCommand(new ProxyCommand(), default, "-c", path);
        Assert.Equal(1, loud.Code);
        Assert.Contains($"{path}:9: [CliTestFailingBind] cannot start on 127.0.0.1:1: ", loud.Err, StringComparison.Ordinal);
        var silent = RunCommand(new ProxyCommand(), default, "-s", "-c", path);
        Assert.Equal(1, silent.Code);
        Assert.StartsWith($"sharptun proxy: {path}:9: [CliTestFailingBind] cannot start", silent.Err, StringComparison.Ordinal);
    }

    private sealed class FailingBindService : IProxyService
    {
        public string Kind => "failing";

        public string Endpoint => "127.0.0.1:1";

        public ProxyServiceCounters Counters { get; } = new();

        public void Start() => throw new System.Net.Sockets.SocketException((int)System.Net.Sockets.SocketError.AccessDenied);

        public Task RunAsync(CancellationToken cancellationToken) => Task.CompletedTask;
    }
}
