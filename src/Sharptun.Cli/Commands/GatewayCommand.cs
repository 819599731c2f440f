using System.Globalization;
using Sharptun.Gateway;

namespace Sharptun.Cli.Commands;

/// <summary>
/// <c>sharptun gateway -c FILE</c>: a WireGuard server that needs no root and no TUN (<see cref="GatewayHost"/>):
/// the peers' TCP and UDP flows end in the process's netstack and are relayed to host sockets under the
/// <c>[Gateway]</c> policy of the config (<see cref="GatewayConfig"/>). Runs until SIGINT/SIGTERM, then prints the
/// counters per peer. <c>SHARPTUN_UDP_BIND=portable</c> picks the portable UDP bind, as for the daemon.
/// </summary>
internal sealed class GatewayCommand : ICliCommand
{
    public string Name => "gateway";

    public string Summary => "Runs a WireGuard exit server with no root and no TUN: relays peers' TCP/UDP to host sockets (-c FILE)";

    public async Task<int> RunAsync(IReadOnlyList<string> args, CliContext context)
    {
        string? file = null;
        string? info = null;
        string? uapiSocket = null;
        for (var i = 0; i < args.Count; i++)
        {
            if (args[i] is "-c" or "--config" && i + 1 < args.Count && file is null)
            {
                file = args[++i];
            }
            else if (args[i].StartsWith("--config=", StringComparison.Ordinal) && file is null)
            {
                file = args[i]["--config=".Length..];
            }
            else if (args[i] is "-i" or "--info" && i + 1 < args.Count && info is null)
            {
                info = args[++i];
            }
            else if (args[i] is "--uapi-socket" && i + 1 < args.Count && uapiSocket is null)
            {
                uapiSocket = args[++i];
            }
            else
            {
                return Usage(context, args[i] is "-h" or "--help" ? null : $"unexpected argument '{args[i]}'");
            }
        }

        if (file is null)
        {
            return Usage(context, "missing -c FILE");
        }

        GatewayConfig config;
        try
        {
            config = GatewayConfig.Parse(await File.ReadAllTextAsync(file, context.Cancellation), file);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException or FormatException)
        {
            context.Error.Write($"{CliContext.ProgramName}: gateway: {e.Message}\n");
            return 1;
        }
        catch (OperationCanceledException)
        {
            return 1;
        }

        if (info is not null && !Sharptun.Hosting.Metrics.MetricsServer.TryParseEndpoint(info, out _, out var infoError))
        {
            return Usage(context, $"-i {info}: {infoError}");
        }

        var options = new WireGuardTunnelOptions { UapiSocketPath = uapiSocket };
        if (string.Equals(Environment.GetEnvironmentVariable("SHARPTUN_UDP_BIND"), "portable", StringComparison.OrdinalIgnoreCase))
        {
            options.UdpBind = Sharptun.Transport.UdpBindKind.Portable;
        }

        GatewayHost host;
        try
        {
            host = await GatewayHost.StartAsync(config, options, context.Cancellation);
        }
        catch (Exception e) when (e is FormatException or IOException or System.Net.Sockets.SocketException or ArgumentException or PlatformNotSupportedException)
        {
            context.Error.Write($"{CliContext.ProgramName}: gateway: {file}: {e.Message}\n");
            return 1;
        }
        catch (OperationCanceledException)
        {
            return 1;
        }

        await using (host)
        {
            Sharptun.Hosting.Metrics.OperationsEndpoint operations;
            try
            {
                operations = Sharptun.Hosting.Metrics.OperationsEndpoint.Start(info, host.Tunnel, [], TimeSpan.FromSeconds(5), [new GatewayMetricsSource(host.Counters)]);
            }
            catch (Exception e) when (e is ArgumentException or System.Net.Sockets.SocketException)
            {
                context.Error.Write($"{CliContext.ProgramName}: gateway: -i {info}: {e.Message}\n");
                return 1;
            }

            await using var _ = operations;
            if (config.Via is { } via)
            {
                context.Out.Write(string.Create(CultureInfo.InvariantCulture,
                    $"gateway: WireGuard UDP goes through the tunnel of Via {via.Path} (MTU {via.Mtu}); gateway MTU {host.Tunnel.Mtu}\n"));
            }

            context.Out.Write(string.Create(CultureInfo.InvariantCulture,
                $"gateway ready: public key {host.Tunnel.PublicKey}, UDP port {host.Tunnel.ListenPort}, tunnel address {string.Join(", ", host.Tunnel.Addresses)}, {host.Tunnel.Peers.Count} peers\n"));
            try
            {
                await Task.Delay(Timeout.Infinite, context.Cancellation);
            }
            catch (OperationCanceledException)
            {
                // SIGINT/SIGTERM
            }
        }

        context.Out.Write(FormatCounters(host.Counters));
        return 0;
    }

    /// <summary>The counters, one line per peer and one for the total.</summary>
    internal static string FormatCounters(GatewayCounters counters)
    {
        var lines = new System.Text.StringBuilder();
        foreach (var (key, c) in counters.Peers.OrderBy(p => p.Key, StringComparer.Ordinal).Append(new("total", counters.Total)))
        {
            lines.Append(string.Create(CultureInfo.InvariantCulture,
                $"{key}: tcp {c.TcpRelayed} relayed, {c.OpenTcp} open, {c.TcpDenied} denied, {c.TcpRefusedByCap} capped, {c.TcpHostFailures} host failures; " +
                $"udp {c.UdpFlows} flows, {c.OpenUdpFlows} open, {c.UdpDenied} denied, {c.UdpRefusedByCap} capped, {c.UdpDropped} dropped; " +
                $"dns {c.DnsQueries}; bytes {c.BytesToDestinations} out, {c.BytesFromDestinations} in\n"));
        }

        lines.Append(string.Create(CultureInfo.InvariantCulture,
            $"dns upstream: {counters.DnsForwarded} answered by a nameserver, {counters.DnsUpstreamFailures} not (host resolver or SERVFAIL)\n"));

        return lines.ToString();
    }

    private static int Usage(CliContext context, string? problem)
    {
        var writer = problem is null ? context.Out : context.Error;
        if (problem is not null)
        {
            writer.Write($"{CliContext.ProgramName}: gateway: {problem}\n");
        }

        writer.Write($"Usage: {CliContext.ProgramName} gateway -c FILE [-i ADDR] [--uapi-socket PATH]\n" +
                     "  -i ADDR: serve /metrics (Prometheus) and /readyz on ADDR (e.g. 127.0.0.1:9080)\n" +
                     "  --uapi-socket PATH: serve the wireguard-go UAPI there, for wg show/set (link it into /var/run/wireguard)\n" +
                     "  FILE: a wg-quick config ([Interface] PrivateKey, ListenPort, Address; [Peer] per client) with an optional\n" +
                     "  [Gateway] section: Allow/Deny = PREFIX[:PORT[-PORT]], ...; Default = allow|deny; MaxConnections;\n" +
                     "  MaxConnectionsPerPeer; IdleTimeout; UdpIdleTimeout; ConnectTimeout (seconds); DNS = on|off\n");
        return problem is null ? 0 : 1;
    }
}
