using Sharptun.Cli.Show;
using Sharptun.Device;
using Sharptun.Device.Uapi;

namespace Sharptun.Cli.Commands;

/// <summary>
/// <c>sharptun show [IFNAME|all] [--json]</c>: asks each interface's UAPI socket for <c>get=1</c> and prints the
/// <c>wg show</c> view (or JSON). Works against any UAPI implementation (sharptun, wireguard-go), not against
/// kernel WireGuard interfaces (those have no socket; use <c>wg show</c>). Keys are hidden unless
/// <c>WG_HIDE_KEYS=never</c>, as in wg.
/// </summary>
internal sealed class ShowCommand : ICliCommand
{
    public string Name => "show";

    public string Summary => "Shows the current configuration and device information (like `wg show'; --json for JSON)";

    /// <summary>Socket directory; tests point it elsewhere.</summary>
    internal string SocketDirectory { get; init; } = UapiServer.DefaultSocketDirectory;

    public async Task<int> RunAsync(IReadOnlyList<string> args, CliContext context)
    {
        var json = false;
        string? target = null;
        foreach (var arg in args)
        {
            if (arg == "--json")
            {
                json = true;
            }
            else if (target is null && !arg.StartsWith('-'))
            {
                target = arg;
            }
            else
            {
                context.Error.Write($"Usage: {CliContext.ProgramName} {Name} [<interface> | all] [--json]\n");
                return 1;
            }
        }

        IReadOnlyList<string> names = target is null or "all" ? UapiClient.ListInterfaces(SocketDirectory) : [target];
        var shown = new List<(string Name, DeviceSnapshot Device)>();
        var failed = false;
        foreach (var name in names)
        {
            var path = UapiServer.GetSocketPath(name, SocketDirectory);
            if (!File.Exists(path))
            {
                context.Error.Write($"Unable to access interface {name}: No such file or directory ({path})\n");
                failed = true;
                continue;
            }

            try
            {
                var reply = await UapiClient.GetAsync(path, context.Cancellation).ConfigureAwait(false);
                if (!UapiParser.TryParseGet(reply, out var snapshot, out var error))
                {
                    context.Error.Write($"Unable to access interface {name}: {error!.Message}\n");
                    failed = true;
                    continue;
                }

                shown.Add((name, snapshot!));
            }
            catch (IOException e)
            {
                context.Error.Write($"Unable to access interface {name}: {e.Message}\n");
                failed = true;
            }
        }

        var hideKeys = Environment.GetEnvironmentVariable("WG_HIDE_KEYS") != "never";
        var now = DateTimeOffset.UtcNow.ToUnixTimeSeconds();
        if (json)
        {
            context.Out.Write(ShowFormatter.FormatJson(shown));
        }
        else
        {
            for (var i = 0; i < shown.Count; i++)
            {
                context.Out.Write(ShowFormatter.Format(shown[i].Name, shown[i].Device, now, hideKeys));
                if (i + 1 < shown.Count)
                {
                    context.Out.Write("\n");
                }
            }
        }

        foreach (var (_, device) in shown)
        {
            device.PrivateKey?.Clear();
        }

        return failed ? 1 : 0;
    }
}
