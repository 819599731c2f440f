namespace Sharptun.Device.Uapi;

/// <summary>
/// The errno values a UAPI reply carries (<c>errno=N</c>), exactly as wireguard-go writes them on Linux:
/// the negated errno (ipc/uapi_unix.go). <c>wg</c> treats any non-zero value as failure.
/// </summary>
public static class UapiErrno
{
    /// <summary>Success.</summary>
    public const int None = 0;

    /// <summary>-EIO: reading the request or writing the reply failed.</summary>
    public const int IO = -5;

    /// <summary>-EINVAL: a bad key or value.</summary>
    public const int Invalid = -22;

    /// <summary>-EPROTO: a line without '=' (or an unknown operation).</summary>
    public const int Protocol = -71;

    /// <summary>-EADDRINUSE: the device could not bind listen_port or set fwmark (raised by the device, not the parser).</summary>
    public const int PortInUse = -98;

    /// <summary>-55 (ENOANO in wireguard-go): any other failure.</summary>
    public const int Unknown = -55;
}
