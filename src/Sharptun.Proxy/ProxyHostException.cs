namespace Sharptun.Proxy;

/// <summary>
/// <see cref="ProxyHost"/> could not start (the tunnel did not come up, a front-end could not bind) or a front-end
/// failed while running. Nothing is left running; the message names the section and the cause.
/// </summary>
public sealed class ProxyHostException : Exception
{
    /// <summary>A host failure with <paramref name="message"/>, caused by <paramref name="innerException"/>.</summary>
    public ProxyHostException(string message, Exception? innerException)
        : base(message, innerException)
    {
    }
}
