namespace Sharptun.Device.Uapi;

/// <summary>
/// What the UAPI socket server needs from a WireGuard device: a consistent snapshot for <c>get=1</c>, and an
/// atomic apply for <c>set=1</c>. The text protocol (parsing, printing, errno lines) stays in the server, so a
/// device only deals in <see cref="DeviceSnapshot"/> and <see cref="UapiChangeSet"/>.
/// </summary>
/// <remarks>
/// The server never calls these concurrently (it serializes requests, like wireguard-go's ipcMutex), but other
/// threads of the device run meanwhile, so implementations take their own locks. Both methods are called on
/// thread-pool threads and should not block for long.
/// </remarks>
public interface IUapiDevice
{
    /// <summary>Returns the device's current state; the caller owns the snapshot (and clears its keys).</summary>
    DeviceSnapshot GetSnapshot();

    /// <summary>
    /// Applies <paramref name="changes"/> all-or-nothing, in the order documented on <see cref="UapiChangeSet"/>.
    /// Returns null on success, or the error to report (nothing changed then). The caller clears the change set's
    /// secrets afterwards; the device copies any key it keeps.
    /// </summary>
    UapiError? Apply(UapiChangeSet changes);
}
