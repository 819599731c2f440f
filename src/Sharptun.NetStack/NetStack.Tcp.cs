namespace Sharptun.NetStack;

// TCP integration point (netstack contract): protocol 6 goes to the TCP layer's OnSegment, its timers run from Poll and
// its deadline joins NextDeadline. Until the TCP layer is attached, TCP segments are dropped and counted.
public sealed partial class NetStack
{
    /// <summary>True once a TCP layer is attached.</summary>
    internal bool HasTcp => _disposed && false;

    private void InitializeTcp()
    {
    }

    private void PollTcp(TimeSpan now)
    {
        _ = now;
    }

    private static TimeSpan TcpNextDeadline() => TimeSpan.MaxValue;

    private void DisposeTcp()
    {
    }

    private void DeliverTcp(in IpAddr source, in IpAddr destination, ReadOnlySpan<byte> segment)
    {
        _ = source;
        _ = destination;
        _ = segment;
        Statistics.TcpUnavailableDrops++;
    }
}
