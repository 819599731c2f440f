using Sharptun.Device.Pipeline;
using System.Globalization;
using Sharptun.Cli.Daemon;
using Sharptun.Device;
using Sharptun.Testing.Memory;

namespace Sharptun.TestDaemon;

/// <summary>
/// <c>sharptun-testdaemon [--time-scale N] ARGS...</c>: the sharptun CLI (ARGS as for <c>sharptun</c>, e.g.
/// <c>-f IFNAME</c>) with the device's monotonic clock running N times faster than real time, so the interop tests
/// watch RekeyAfterTime (120 s) pass in 3 s at N = 40. The shipped daemon has no such control (issue 7 item 15): the
/// clock is handed to <see cref="DaemonHost.DeviceOptionsForTests"/>, which only code inside the process can set.
/// <c>sharptun-testdaemon netstack-memory ARGS...</c> runs the test kit's <see cref="NetStackMemoryBenchmark"/>
/// instead (NetStackMemoryTests), so a clean process measures the stack's memory. <c>sharptun-testdaemon exec-with-tun
/// IFNAME PROGRAM ARGS...</c> creates the TUN and execs PROGRAM with it inherited (<see cref="ExecWithTun"/>).
/// <c>sharptun-testdaemon ops-tunnel ...</c> runs an in-process tunnel with its UAPI socket and metrics endpoint (<see cref="OpsTunnel"/>).
/// </summary>
internal static class Program
{
    public static int Main(string[] args) =>
        args.Length >= 1 && args[0] == NetStackMemoryVerb
            ? NetStackMemoryBenchmark.Run(args[1..], NetStackMemoryVerb)
            : args.Length >= 1 && args[0] == ExecWithTun.Verb
                ? ExecWithTun.Run(args[1..])
                : args.Length >= 1 && args[0] == OpsTunnel.Verb
                    ? OpsTunnel.RunAsync(args[1..]).GetAwaiter().GetResult()
                    : RunDaemonAsync(args).GetAwaiter().GetResult();

    private const string NetStackMemoryVerb = "netstack-memory";

    // Kept out of Main so the netstack-memory run (and its --baseline child) never loads the CLI and device assemblies.
    private static async Task<int> RunDaemonAsync(string[] args)
    {
        if (OperatingSystem.IsLinux() && args.Length >= 2 && args[0] == "--time-scale")
        {
            if (!double.TryParse(args[1], NumberStyles.Float, CultureInfo.InvariantCulture, out var scale) || !(scale >= 1))
            {
                await Console.Error.WriteLineAsync($"--time-scale {args[1]}: must be a number >= 1 (slower than real time would stretch key lifetimes)");
                return 1;
            }

            DaemonHost.DeviceOptionsForTests = new WireGuardDeviceOptions { Clock = new DeviceClock(scale) };
            args = args[2..];
        }

        return await Sharptun.Cli.Program.Main(args);
    }
}
