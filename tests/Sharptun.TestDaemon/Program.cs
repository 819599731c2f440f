using Sharptun.Device.Pipeline;
using System.Globalization;
using Sharptun.Cli.Daemon;
using Sharptun.Device;

namespace Sharptun.TestDaemon;

/// <summary>
/// <c>sharptun-testdaemon [--time-scale N] ARGS...</c>: the sharptun CLI (ARGS as for <c>sharptun</c>, e.g.
/// <c>-f IFNAME</c>) with the device's monotonic clock running N times faster than real time, so the interop tests
/// watch RekeyAfterTime (120 s) pass in 3 s at N = 40. The shipped daemon has no such control (issue 7 item 15): the
/// clock is handed to <see cref="DaemonHost.DeviceOptionsForTests"/>, which only code inside the process can set.
/// </summary>
internal static class Program
{
    public static async Task<int> Main(string[] args)
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
