using System.Collections.Immutable;
using System.Net;
using System.Net.Sockets;
using Microsoft.Extensions.Logging;
using Sharptun.Device.Config;
using Sharptun.Device.Pipeline;
using Sharptun.Device.Uapi;
using Sharptun.Protocol;

namespace Sharptun;

/// <summary>
/// Re-resolves peer endpoints that were given as host names (issue 10 item 5, wireproxy #109), with the rule of
/// wireguard-tools' contrib/reresolve-dns/reresolve-dns.sh: a peer whose latest handshake is older than
/// <see cref="DefaultStaleAfter"/> (135 s = REKEY_AFTER_TIME 120 s + 3 × REKEY_TIMEOUT 5 s, the script's constant;
/// since the tunnel started when it never had one) has its name resolved again through the host's resolver, every
/// <see cref="WireGuardTunnelOptions.EndpointReresolveInterval"/> (the script runs from a 30 s timer). The endpoint is
/// replaced only when the answer differs from the current one; a failed lookup keeps the endpoint.
/// </summary>
/// <remarks>
/// The names come from the config the tunnel started with; peers added later (UAPI, <c>wg set</c>) have IP endpoints
/// (wg resolves names before it talks to the device). A peer that is removed is skipped. The host's resolver is
/// right here even when the config names DNS servers: the endpoint is how the tunnel is reached, outside it. The
/// exception is multihop: a tunnel whose UDP goes through another tunnel (<see cref="WireGuardTunnel.CreateDatagramBindFactory"/>)
/// resolves through that tunnel's DNS servers when it has some (<see cref="TunnelDatagramBindFactory.EndpointResolver"/>).
/// </remarks>
internal sealed class EndpointReresolver : IAsyncDisposable
{
    /// <summary>reresolve-dns.sh's threshold: REKEY_AFTER_TIME + 3 × REKEY_TIMEOUT.</summary>
    public static readonly TimeSpan DefaultStaleAfter = ProtocolConstants.RekeyAfterTime + (3 * ProtocolConstants.RekeyTimeout);

    private readonly WireGuardDevice _device;
    private readonly ImmutableArray<(Key PublicKey, WgEndpoint Endpoint)> _names;
    private readonly Func<string, CancellationToken, Task<IPAddress[]>> _resolve;
    private readonly TimeSpan _staleAfter;
    private readonly DateTimeOffset _started;
    private readonly ILogger? _log;
    private readonly CancellationTokenSource _stop = new();
    private readonly Task _loop;
    private long _lookups;
    private long _changes;

    public EndpointReresolver(
        WireGuardDevice device,
        ImmutableArray<(Key PublicKey, WgEndpoint Endpoint)> names,
        Func<string, CancellationToken, Task<IPAddress[]>> resolve,
        TimeSpan interval,
        TimeSpan staleAfter,
        ILogger? log)
    {
        _device = device;
        _names = names;
        _resolve = resolve;
        _staleAfter = staleAfter;
        _log = log;
        _started = DateTimeOffset.UtcNow;
        _loop = interval > TimeSpan.Zero && interval != Timeout.InfiniteTimeSpan && !names.IsEmpty
            ? RunAsync(interval)
            : Task.CompletedTask;
    }

    /// <summary>Host-name lookups made so far.</summary>
    public long Lookups => Interlocked.Read(ref _lookups);

    /// <summary>Endpoints replaced so far.</summary>
    public long Changes => Interlocked.Read(ref _changes);

    /// <summary>The default resolver: the host's (getaddrinfo through <see cref="Dns"/>).</summary>
    public static Task<IPAddress[]> ResolveWithHost(string host, CancellationToken cancellationToken) =>
        Dns.GetHostAddressesAsync(host, cancellationToken);

    /// <summary>wg's pick among the answers (and the device's at start): the first IPv4 address, else the first.</summary>
    public static IPAddress? Pick(IPAddress[] addresses)
    {
        foreach (var a in addresses)
        {
            if (a.AddressFamily == AddressFamily.InterNetwork)
            {
                return a;
            }
        }

        return addresses.Length > 0 ? addresses[0] : null;
    }

    /// <summary>The host-name endpoints of <paramref name="config"/>'s peers.</summary>
    public static ImmutableArray<(Key PublicKey, WgEndpoint Endpoint)> NamesOf(WgConfig config) =>
        [.. config.Peers.Where(p => p.Endpoint is { Address: null }).Select(p => (p.PublicKey.Copy(), p.Endpoint!.Value))];

    /// <summary>One pass of the rule at <paramref name="now"/> (the loop calls it; tests call it with a virtual clock).</summary>
    public async Task CheckAsync(DateTimeOffset now, CancellationToken cancellationToken)
    {
        var snapshot = _device.GetSnapshot();
        snapshot.ClearSecrets();
        foreach (var (key, name) in _names)
        {
            var peer = snapshot.Peers.FirstOrDefault(p => p.PublicKey == key);
            if (peer is null)
            {
                continue; // removed at run time
            }

            var last = peer.LastHandshakeUnixNanoseconds == 0
                ? _started
                : DateTimeOffset.FromUnixTimeMilliseconds(peer.LastHandshakeUnixNanoseconds / 1_000_000);
            if (now - last <= _staleAfter)
            {
                continue;
            }

            IPAddress? address;
            try
            {
                Interlocked.Increment(ref _lookups);
                address = Pick(await _resolve(name.Host, cancellationToken).ConfigureAwait(false));
            }
            catch (Exception e) when (e is SocketException or ArgumentException)
            {
                if (_log is not null)
                {
                    TunnelLog.ReresolveFailed(_log, name.ToString(), e.Message);
                }

                continue;
            }

            if (address is null)
            {
                continue;
            }

            var fresh = new IPEndPoint(address, name.Port);
            if (peer.Endpoint is { } current && current.Equals(fresh))
            {
                continue;
            }

            var error = _device.Apply(new UapiChangeSet
            {
                Peers = [new UapiPeerChange { PublicKey = key.Copy(), UpdateOnly = true, Endpoint = fresh }],
            });
            if (error is null)
            {
                Interlocked.Increment(ref _changes);
                if (_log is not null)
                {
                    TunnelLog.EndpointReresolved(_log, name.ToString(), peer.Endpoint?.ToString() ?? "(none)", fresh.ToString());
                }
            }
        }
    }

    public async ValueTask DisposeAsync()
    {
        await _stop.CancelAsync().ConfigureAwait(false);
        await _loop.ConfigureAwait(ConfigureAwaitOptions.SuppressThrowing);
        _stop.Dispose();
    }

    private async Task RunAsync(TimeSpan interval)
    {
        using var timer = new PeriodicTimer(interval);
        try
        {
            while (await timer.WaitForNextTickAsync(_stop.Token).ConfigureAwait(false))
            {
                try
                {
                    await CheckAsync(DateTimeOffset.UtcNow, _stop.Token).ConfigureAwait(false);
                }
                catch (ObjectDisposedException)
                {
                    return; // the device closed under us
                }
            }
        }
        catch (OperationCanceledException)
        {
            // disposed
        }
    }
}
