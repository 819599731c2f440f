using System.Collections.Immutable;
using System.Net;
using Sharptun.Device.Config;

namespace Sharptun.Device.Uapi;

/// <summary>
/// Converts between the wg config file model and the UAPI model, so a config file is loaded through the same
/// change-set path as a <c>set=1</c> request, and a device is printed as <c>wg showconf</c> does.
/// </summary>
internal static class UapiConfigConverter
{
    /// <summary>
    /// The change set for <c>wg setconf</c> semantics (<paramref name="replace"/> = true: replace_peers, and
    /// replace_allowed_ips for each peer) or <c>wg addconf</c> (<paramref name="replace"/> = false). wg-quick
    /// settings are ignored. Settings the file leaves out are left unchanged. The private key is clamped.
    /// </summary>
    /// <param name="config">The parsed file.</param>
    /// <param name="resolveHostname">Resolves an endpoint whose host is a name (the caller does the DNS lookup);
    /// returns null when it cannot. When null, a hostname endpoint is an error.</param>
    /// <param name="replace">setconf (true) or addconf (false).</param>
    /// <param name="changes">The change set on success.</param>
    /// <param name="errors">Why it failed (e.g. an unresolvable endpoint), empty on success.</param>
    public static bool TryToChangeSet(WgConfig config, Func<WgEndpoint, IPEndPoint?>? resolveHostname, bool replace, out UapiChangeSet? changes, out IReadOnlyList<string> errors)
    {
        ArgumentNullException.ThrowIfNull(config);
        var problems = new List<string>();
        var peers = ImmutableArray.CreateBuilder<UapiPeerChange>(config.Peers.Count);
        foreach (var peer in config.Peers)
        {
            IPEndPoint? endpoint = null;
            if (peer.Endpoint is { } e)
            {
                if (!e.TryGetIPEndPoint(out endpoint!))
                {
                    endpoint = resolveHostname?.Invoke(e);
                    if (endpoint is null)
                    {
                        problems.Add($"{peer.PublicKey}: cannot resolve endpoint {e}");
                    }
                }
            }

            peers.Add(new UapiPeerChange
            {
                PublicKey = peer.PublicKey,
                PresharedKey = peer.PresharedKey,
                Endpoint = endpoint,
                PersistentKeepaliveInterval = peer.PersistentKeepalive,
                ReplaceAllowedIps = replace,
                AllowedIps = peer.AllowedIps,
            });
        }

        errors = problems;
        if (problems.Count > 0)
        {
            changes = null;
            return false;
        }

        changes = new UapiChangeSet
        {
            PrivateKey = config.Interface.PrivateKey is { } pk ? pk.Clamped() : null,
            ListenPort = config.Interface.ListenPort,
            FwMark = config.Interface.FwMark,
            ReplacePeers = replace,
            Peers = peers.ToImmutable(),
        };
        return true;
    }

    /// <summary>
    /// The config <c>wg showconf</c> would print for <paramref name="snapshot"/>: zero listen port, fwmark, keepalive
    /// and all-zero keys are left out, endpoints become IP literals.
    /// </summary>
    public static WgConfig ToConfig(DeviceSnapshot snapshot)
    {
        ArgumentNullException.ThrowIfNull(snapshot);
        var peers = ImmutableArray.CreateBuilder<WgPeerConfig>(snapshot.Peers.Count);
        foreach (var peer in snapshot.Peers)
        {
            peers.Add(new WgPeerConfig
            {
                PublicKey = peer.PublicKey,
                PresharedKey = peer.PresharedKey is { IsZero: false } psk ? psk : null,
                AllowedIps = peer.AllowedIps,
                Endpoint = peer.Endpoint is { } e ? WgEndpoint.FromIPEndPoint(e) : null,
                PersistentKeepalive = peer.PersistentKeepaliveInterval == 0 ? null : peer.PersistentKeepaliveInterval,
            });
        }

        return new WgConfig(
            new WgInterfaceConfig
            {
                PrivateKey = snapshot.PrivateKey is { IsZero: false } pk ? pk : null,
                ListenPort = snapshot.ListenPort == 0 ? null : snapshot.ListenPort,
                FwMark = snapshot.FwMark == 0 ? null : snapshot.FwMark,
            },
            peers.ToImmutable());
    }

    /// <summary>The <c>wg showconf</c> text for <paramref name="snapshot"/> (contains the private key).</summary>
    public static string PrintShowConf(DeviceSnapshot snapshot) => WgConfigPrinter.PrintWg(ToConfig(snapshot));
}
