using Sharptun.Device.Routing;
using Sharptun.Protocol;
using System.Net;
using Sharptun.Device.Config;

namespace Sharptun.Device.Uapi;

/// <summary>
/// A validated UAPI <c>set=1</c> request (or a config file load), ready to be applied to a device as one unit.
/// Produced only whole by <see cref="UapiParser.TryParseSet"/> or <see cref="UapiConfigConverter"/>.
/// </summary>
/// <remarks>
/// How a device applies it (the order wireguard-go applies the lines in):
/// <list type="number">
/// <item><see cref="PrivateKey"/> when not null (an all-zero key removes the private key);
/// <see cref="ListenPort"/> (rebind; failure → <see cref="UapiErrno.PortInUse"/>); <see cref="FwMark"/> (0 = none).</item>
/// <item><see cref="ReplacePeers"/>: remove every existing peer first.</item>
/// <item>Then each <see cref="UapiPeerChange"/> in order (the same public key may appear more than once; apply each in turn).</item>
/// </list>
/// Keys are owned by the change set: <see cref="ClearSecrets"/> wipes the private and preshared keys once applied.
/// </remarks>
public sealed record UapiChangeSet
{
    /// <summary>New private key (clamped, as wireguard-go stores it), all-zero to remove it, null to leave it.</summary>
    public Key? PrivateKey { get; init; }

    /// <summary>New listen port (0 = random), null to leave it.</summary>
    public ushort? ListenPort { get; init; }

    /// <summary>New fwmark (0 = none), null to leave it.</summary>
    public uint? FwMark { get; init; }

    /// <summary>Remove all peers before applying <see cref="Peers"/>.</summary>
    public bool ReplacePeers { get; init; }

    /// <summary>Peer changes in request order.</summary>
    public EquatableArray<UapiPeerChange> Peers { get; init; }

    /// <summary>Zeroes the private and preshared keys held by this change set.</summary>
    public void ClearSecrets()
    {
        PrivateKey?.Clear();
        foreach (var peer in Peers)
        {
            peer.PresharedKey?.Clear();
        }
    }
}

/// <summary>Changes to one peer (one <c>public_key=</c> section of a set request).</summary>
/// <remarks>
/// Apply as wireguard-go does: if the peer does not exist, create it — unless <see cref="UpdateOnly"/> is set, in
/// which case the whole section is ignored. If <see cref="Remove"/> is set, remove the peer and ignore the rest of
/// the section. A section whose key equals the device's own public key is ignored. Otherwise set
/// <see cref="PresharedKey"/>, <see cref="Endpoint"/>, <see cref="PersistentKeepaliveInterval"/> when not null; if
/// <see cref="ReplaceAllowedIps"/> remove the peer's prefixes; then insert <see cref="AllowedIps"/> (moving any
/// prefix owned by another peer to this one). If persistent keepalive goes from 0 to non-zero on an up device, send
/// a keepalive at once.
/// </remarks>
public sealed record UapiPeerChange
{
    /// <summary>The peer's public key (selects or creates the peer).</summary>
    public required Key PublicKey { get; init; }

    /// <summary><c>remove=true</c>: delete the peer.</summary>
    public bool Remove { get; init; }

    /// <summary><c>update_only=true</c>: change the peer only if it already exists.</summary>
    public bool UpdateOnly { get; init; }

    /// <summary>New preshared key (all-zero = none), null to leave it.</summary>
    public Key? PresharedKey { get; init; }

    /// <summary>New endpoint (an IP literal; hostnames are resolved before this point), null to leave it.</summary>
    public IPEndPoint? Endpoint { get; init; }

    /// <summary>New persistent keepalive interval in seconds (0 = off), null to leave it.</summary>
    public ushort? PersistentKeepaliveInterval { get; init; }

    /// <summary><c>replace_allowed_ips=true</c>: drop the peer's current prefixes before adding <see cref="AllowedIps"/>.</summary>
    public bool ReplaceAllowedIps { get; init; }

    /// <summary>Prefixes to add, in request order, as sent (the table masks host bits).</summary>
    public EquatableArray<IpPrefix> AllowedIps { get; init; }
}
