using Sharptun.Transport;

namespace Sharptun.NetStack;

/// <summary>
/// What the stack offers a transport layer (the TCP layer): one lock, the clock, the MTU, and an IP send path.
/// Implemented by the NetworkStack class. Every member except <see cref="Gate"/> and <see cref="Wake"/> is called
/// with <see cref="Gate"/> held.
/// </summary>
internal interface IStackContext
{
    /// <summary>ONE lock guards all stack state; the TCP layer and socket API calls run under it.</summary>
    Lock Gate { get; }

    /// <summary>The stack's clock (real monotonic time, or the virtual clock in tests).</summary>
    TimeSpan Now { get; }

    /// <summary>IP MTU of the attached device.</summary>
    int Mtu { get; }

    /// <summary>Asks the driver to call Poll soon (a deadline moved earlier). Safe from any thread.</summary>
    void Wake();

    /// <summary>
    /// Sends one IP packet carrying an already-checksummed transport segment. Returns false when the outbound
    /// queue / buffer budget is full: the caller keeps the data and retries on the next Poll (backpressure, no drop).
    /// Never throws: a packet that cannot be sent (over the MTU) is dropped, counted, and reported as taken (true).
    /// </summary>
    bool TrySendIp(in IpAddr source, in IpAddr destination, byte protocol, ReadOnlySpan<byte> transportSegment);

    /// <summary>True while <see cref="TrySendIp"/> would refuse for lack of queue space.</summary>
    bool OutboundFull => false;

    /// <summary>True for configured addresses (or any address in promiscuous mode).</summary>
    bool IsLocalAddress(in IpAddr address);
}
