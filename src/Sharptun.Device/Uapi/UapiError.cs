namespace Sharptun.Device.Uapi;

/// <summary>A failed UAPI operation: the errno to send and a message for the log.</summary>
/// <param name="Errno">One of <see cref="UapiErrno"/>.</param>
/// <param name="Message">Human-readable reason (wireguard-go's wording where it has one).</param>
public sealed record UapiError(int Errno, string Message)
{
    /// <inheritdoc/>
    public override string ToString() => $"IPC error {Errno}: {Message}";
}
