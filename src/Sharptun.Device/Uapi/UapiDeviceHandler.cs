using System.Buffers;
using System.Text;
using Microsoft.Extensions.Logging;

namespace Sharptun.Device.Uapi;

/// <summary>
/// Connects the socket framing to an <see cref="IUapiDevice"/>: a get prints the device's snapshot with
/// <see cref="UapiFormatter"/>; a set is parsed whole by <see cref="UapiParser"/> and applied only if every line
/// is valid. Errors are logged the way wireguard-go logs them (<c>IPC error -22: ...</c>).
/// </summary>
internal sealed class UapiDeviceHandler : IUapiRequestHandler
{
    private readonly IUapiDevice _device;
    private readonly ILogger _log;

    public UapiDeviceHandler(IUapiDevice device, ILogger log)
    {
        _device = device;
        _log = log;
    }

    public int Get(IBufferWriter<byte> output)
    {
        DeviceSnapshot snapshot;
        try
        {
            snapshot = _device.GetSnapshot();
        }
        catch (Exception e) when (e is not OutOfMemoryException)
        {
            Log.GetFailed(_log, UapiErrno.Unknown, e.Message);
            return UapiErrno.Unknown;
        }

        try
        {
            // The text holds the private key; it cannot be wiped (a string), only dropped quickly.
            var text = UapiFormatter.FormatGet(snapshot);
            var span = output.GetSpan(Encoding.UTF8.GetMaxByteCount(text.Length));
            output.Advance(Encoding.UTF8.GetBytes(text, span));
            return UapiErrno.None;
        }
        finally
        {
            snapshot.PrivateKey?.Clear();
            foreach (var peer in snapshot.Peers)
            {
                peer.PresharedKey?.Clear();
            }
        }
    }

    public int Set(IReadOnlyList<string> lines)
    {
        var body = string.Join('\n', lines);
        if (!UapiParser.TryParseSet(body, out var changes, out var parseError))
        {
            Log.SetRejected(_log, parseError!.ToString());
            return parseError.Errno;
        }

        try
        {
            var error = _device.Apply(changes!);
            if (error is not null)
            {
                Log.SetRejected(_log, error.ToString());
                return error.Errno;
            }

            Log.SetApplied(_log, changes!.Peers.Count);

            return UapiErrno.None;
        }
        catch (Exception e) when (e is not OutOfMemoryException)
        {
            Log.SetFailed(_log, UapiErrno.Unknown, e.Message);
            return UapiErrno.Unknown;
        }
        finally
        {
            changes!.ClearSecrets();
        }
    }
}
