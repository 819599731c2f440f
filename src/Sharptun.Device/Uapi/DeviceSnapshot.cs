using Sharptun.Device.Routing;
using Sharptun.Protocol;
using System.Net;
using Sharptun.Device.Config;

namespace Sharptun.Device.Uapi;

/// <summary>A device's state for a <c>get=1</c> reply and <c>wg showconf</c>. Built by the device under its locks.</summary>
public sealed record DeviceSnapshot
{
    /// <summary>The private key, or null/all-zero when none is set (then it is not printed).</summary>
    public Key? PrivateKey { get; init; }

    /// <summary>The bound port (0 = not bound / not set; then it is not printed).</summary>
    public ushort ListenPort { get; init; }

    /// <summary>The fwmark (0 = none; then it is not printed).</summary>
    public uint FwMark { get; init; }

    /// <summary>The peers, in the order to print them.</summary>
    public EquatableArray<PeerSnapshot> Peers { get; init; }

    /// <summary>Packets/datagrams the device dropped, by reason (nonzero ones only; empty for a config-only store). Not part of the UAPI text (wg has no field for it).</summary>
    public EquatableArray<DropCount> Drops { get; init; }

    /// <summary>Zeroes the private and preshared keys held by this snapshot (it must hold copies, see <see cref="Key.Copy"/>).</summary>
    public void ClearSecrets()
    {
        PrivateKey?.Clear();
        foreach (var peer in Peers)
        {
            peer.PresharedKey?.Clear();
        }
    }
}

/// <summary>A device drop counter: why (a <c>DropReason</c> name) and how many.</summary>
public readonly record struct DropCount(string Reason, long Count);

/// <summary>One peer's state in a <see cref="DeviceSnapshot"/>.</summary>
public sealed record PeerSnapshot
{
    /// <summary>The peer's public key.</summary>
    public required Key PublicKey { get; init; }

    /// <summary>The preshared key, or null when none (printed as 64 zeros, as wireguard-go does).</summary>
    public Key? PresharedKey { get; init; }

    /// <summary>The current endpoint, or null when unknown.</summary>
    public IPEndPoint? Endpoint { get; init; }

    /// <summary>Wall-clock time of the last completed handshake as nanoseconds since the Unix epoch; 0 = never.</summary>
    public long LastHandshakeUnixNanoseconds { get; init; }

    /// <summary>Bytes sent to this peer (including headers), as wg reports them.</summary>
    public ulong TxBytes { get; init; }

    /// <summary>Bytes received from this peer.</summary>
    public ulong RxBytes { get; init; }

    /// <summary>Persistent keepalive interval in seconds (0 = off).</summary>
    public ushort PersistentKeepaliveInterval { get; init; }

    /// <summary>The peer's allowed IPs (as the table holds them: masked), in insertion order.</summary>
    public EquatableArray<IpPrefix> AllowedIps { get; init; }
}
