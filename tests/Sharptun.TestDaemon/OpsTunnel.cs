using System.Globalization;
using System.Net;
using System.Runtime.InteropServices;
using Microsoft.Extensions.Logging;
using Sharptun.Hosting.Metrics;

namespace Sharptun.TestDaemon;

/// <summary>
/// <c>sharptun-testdaemon ops-tunnel CONFIG UAPI_SOCKET METRICS_ADDR [CHECKALIVE_IP INTERVAL_SECONDS]</c>: an in-process
/// tunnel (<see cref="WireGuardTunnel"/>) with the operations pieces the proxy and the gateway use: its UAPI socket at
/// UAPI_SOCKET, <see cref="MetricsServer"/> on METRICS_ADDR and, when given, an <see cref="AlivePinger"/>. Prints
/// <c>ready ADDR</c> once serving; runs until SIGTERM or SIGINT, then removes its socket. TunnelOperationsInteropTests runs it as uid 65534.
/// </summary>
internal static class OpsTunnel
{
    public const string Verb = "ops-tunnel";

    public static async Task<int> RunAsync(string[] args)
    {
        if (args.Length is not (3 or 5) || !MetricsServer.TryParseEndpoint(args[2], out var endpoint, out var error))
        {
            await Console.Error.WriteLineAsync("usage: ops-tunnel CONFIG UAPI_SOCKET METRICS_ADDR [CHECKALIVE_IP INTERVAL_SECONDS]");
            return 2;
        }

        using var loggers = Sharptun.Cli.Daemon.WireGuardGoLoggerProvider.CreateFactory("ops", Console.Error, LogLevel.Information);
        await using var tunnel = await WireGuardTunnel.StartAsync(await File.ReadAllTextAsync(args[0]), new WireGuardTunnelOptions
        {
            UapiSocketPath = args[1],
            LoggerFactory = loggers,
        });
        AlivePinger? pinger = args.Length == 5
            ? AlivePinger.Start(tunnel, [IPAddress.Parse(args[3])], TimeSpan.FromSeconds(double.Parse(args[4], CultureInfo.InvariantCulture)), loggers.CreateLogger("CheckAlive"))
            : null;
        var extra = new DelegateMetricsSource(w =>
        {
            w.BeginFamily("sharptun_testdaemon_info", MetricType.Gauge, "A caller-added metric.");
            w.Sample(1, "verb", Verb);
        });
        await using var server = MetricsServer.Start(endpoint!, tunnel, pinger, [extra], loggers.CreateLogger<MetricsServer>());
        Console.WriteLine($"ready {server.LocalEndPoint}");

        using var stop = new CancellationTokenSource();
        using var sigterm = PosixSignalRegistration.Create(PosixSignal.SIGTERM, c =>
        {
            c.Cancel = true;
            stop.Cancel();
        });
        using var sigint = PosixSignalRegistration.Create(PosixSignal.SIGINT, c =>
        {
            c.Cancel = true;
            stop.Cancel();
        });
        await Task.Delay(Timeout.Infinite, stop.Token).ContinueWith(_ => { }, TaskScheduler.Default);
        if (pinger is not null)
        {
            await pinger.DisposeAsync();
        }

        return 0;
    }
}
