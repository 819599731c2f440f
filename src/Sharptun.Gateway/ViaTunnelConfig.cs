using System.Globalization;
using Sharptun.Device.Config;
using Sharptun.Hosting;

namespace Sharptun.Gateway;

/// <summary>
/// A tunnel that carries another tunnel's WireGuard UDP (<c>[Interface] Via = FILE</c>, multihop in one process): a
/// wg-quick config read from <see cref="Path"/>, started before the tunnel that names it; that tunnel's UDP socket
/// (for the gateway: its <c>ListenPort</c>) is then a UDP socket of this tunnel's netstack
/// (<see cref="WireGuardTunnel.CreateDatagramBindFactory"/>). It may name a <see cref="Via"/> of its own (a chain;
/// a loop is a config error). The rules are <c>sharptun proxy</c>'s: a relative path is relative to the file that
/// names it; without an <c>MTU</c> the naming tunnel's MTU is this one's less 80 bytes of outer headers; an explicit
/// MTU that does not fit, or a peer <c>Endpoint</c> address outside this tunnel's <c>AllowedIPs</c>, is an error
/// naming the file and line.
/// </summary>
public sealed class ViaTunnelConfig
{
    private ViaTunnelConfig(string path, string wireGuardText, int mtu, ViaTunnelConfig? via, WgConfig parsed)
    {
        Path = path;
        WireGuardText = wireGuardText;
        Mtu = mtu;
        Via = via;
        Parsed = parsed;
    }

    /// <summary>The file's path (as named, made relative to the naming file's folder).</summary>
    public string Path { get; }

    /// <summary>The file's text with its own <c>Via</c> line blanked (or replaced by the picked <c>MTU</c>), for the tunnel's parser.</summary>
    public string WireGuardText { get; }

    /// <summary>The tunnel's MTU (given or picked; 1420 by default).</summary>
    public int Mtu { get; }

    /// <summary>The tunnel that carries this one's UDP, or null.</summary>
    public ViaTunnelConfig? Via { get; }

    /// <summary>The file's WireGuard config as parsed while it was read (its addresses and peers' AllowedIPs).</summary>
    internal WgConfig Parsed { get; }

    /// <summary>The result of applying a Via to a WireGuard text: the text to start from, the MTU and whether it was picked.</summary>
    internal readonly record struct Applied(string WireGuardText, int Mtu, bool MtuPicked, int ViaLine, ViaTunnelConfig? Via, WgConfig Config);

    /// <summary>
    /// Takes <c>Via</c> out of <paramref name="text"/>'s <c>[Interface]</c> and, when there was one, loads that file (and
    /// its chain) and checks or picks this text's MTU to fit through it.
    /// </summary>
    /// <param name="text">A wg-quick text (for the gateway: without its <c>[Gateway]</c> section).</param>
    /// <param name="file">Its file name (errors; base of a relative Via path).</param>
    /// <param name="chain">Full paths of the files that led here (a Via naming one of them is a loop).</param>
    /// <exception cref="FormatException">The message is <c>FILE:LINE: what is wrong</c>.</exception>
    internal static Applied Apply(string text, string file, IReadOnlyList<string> chain)
    {
        var lines = text.Split('\n');
        var section = string.Empty;
        (string Value, int Index)? via = null;
        var mtuLine = 0;
        var endpoints = new List<(string Endpoint, int Line)>();
        for (var i = 0; i < lines.Length; i++)
        {
            var line = lines[i];
            var hash = line.IndexOf('#', StringComparison.Ordinal);
            var content = (hash < 0 ? line : line[..hash]).Trim();
            if (content.StartsWith('[') && content.EndsWith(']'))
            {
                section = content[1..^1].Trim().ToLowerInvariant();
                continue;
            }

            var eq = content.IndexOf('=', StringComparison.Ordinal);
            if (eq < 0)
            {
                continue;
            }

            var key = content[..eq].Trim().ToLowerInvariant();
            var value = content[(eq + 1)..].Trim();
            if (section == "interface" && key == "via")
            {
                if (via is not null)
                {
                    throw Error(file, i + 1, $"a second Via (the first is at line {via.Value.Index + 1})");
                }

                via = (value, i);
                lines[i] = string.Empty; // the tunnel's parser knows no Via; line numbers stay
            }
            else if (section == "interface" && key == "mtu")
            {
                mtuLine = i + 1;
            }
            else if (section == "peer" && key == "endpoint")
            {
                endpoints.Add((value, i + 1));
            }
        }

        var stripped = string.Join('\n', lines);
        if (!WgConfigParser.TryParse(stripped, file, out var config, out var errors))
        {
            throw new FormatException("Invalid WireGuard config: " + string.Join("; ", errors));
        }

        if (via is not { } v)
        {
            return new Applied(stripped, config!.Interface.Mtu ?? WgInterfaceConfig.DefaultMtu, MtuPicked: false, ViaLine: 0, Via: null, config);
        }

        var viaConfig = Load(file, v.Value, v.Index + 1, [.. chain, System.IO.Path.GetFullPath(file)]);
        var viaParsed = viaConfig.Parsed;
        int mtu;
        var picked = config!.Interface.Mtu is null;
        if (picked)
        {
            mtu = ViaRules.PickMtu(viaConfig.Mtu, v.Value, out var error) ?? throw Error(file, v.Index + 1, error!);
            lines[v.Index] = string.Create(CultureInfo.InvariantCulture, $"MTU = {mtu}"); // picked, in the Via line's place
            stripped = string.Join('\n', lines);
        }
        else
        {
            mtu = config.Interface.Mtu!.Value;
            var outerHasV6 = viaParsed.Interface.Addresses.Any(a => a.Address.ToIPAddress().AddressFamily == System.Net.Sockets.AddressFamily.InterNetworkV6);
            var overhead = ViaRules.Overhead(config.Peers.Where(p => p.Endpoint is not null).Select(p => p.Endpoint!.Value.Host), outerHasV6);
            if (ViaRules.MtuError(mtu, viaConfig.Mtu, overhead, v.Value) is { } error)
            {
                throw Error(file, mtuLine, error);
            }
        }

        var allowed = viaParsed.Peers.SelectMany(p => p.AllowedIps).Select(a => (a.Address.ToIPAddress(), a.Length)).ToList();
        foreach (var (endpoint, line) in endpoints)
        {
            if (WgEndpoint.TryParse(endpoint, out var parsed) && ViaRules.EndpointError(endpoint, parsed.Host, allowed, v.Value) is { } error)
            {
                throw Error(file, line, error);
            }
        }

        return new Applied(stripped, mtu, picked, v.Index + 1, viaConfig, config);
    }

    private static ViaTunnelConfig Load(string referrer, string value, int line, IReadOnlyList<string> chain)
    {
        if (value.Length == 0)
        {
            throw Error(referrer, line, "Via = needs a file name (a wg-quick config whose tunnel carries this one)");
        }

        var path = ViaRules.ResolvePath(referrer, value);
        if (ViaRules.LoopError(chain, System.IO.Path.GetFullPath(path), value) is { } loop)
        {
            throw Error(referrer, line, loop);
        }

        string text;
        try
        {
            text = File.ReadAllText(path);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException or NotSupportedException or ArgumentException)
        {
            var reason = e is FileNotFoundException or DirectoryNotFoundException ? "no such file" : e.Message;
            throw Error(referrer, line, $"cannot read Via file '{path}': {reason}");
        }

        var applied = Apply(text.Replace("\r\n", "\n", StringComparison.Ordinal), path, chain);
        return new ViaTunnelConfig(path, applied.WireGuardText, applied.Mtu, applied.Via, applied.Config);
    }

    private static FormatException Error(string file, int line, string message) => new($"{file}:{line}: {message}");
}
