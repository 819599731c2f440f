using Sharptun.Transport;

namespace Sharptun.NetStack;

/// <summary>
/// Runs a <see cref="NetworkStack"/> on a real packet device (e.g. a Linux TUN): one thread copies packets the device
/// reads into the stack, another copies the stack's outbound packets to the device. This is how the stack is tested
/// against the Linux kernel, and how it serves as a tun2socks-style gateway.
/// </summary>
/// <remarks>
/// The bridge owns both: <see cref="Dispose"/> disposes the device and the stack (which unblocks both pump threads)
/// and joins the threads. Buffers are allocated once per bridge.
/// </remarks>
public sealed class NetworkStackTunBridge : IDisposable
{
    private readonly IPacketDevice _device;
    private readonly NetworkStack _stack;
    private readonly Thread _inbound;
    private readonly Thread _outbound;
    private volatile bool _stopping;
    private Exception? _failure;

    /// <summary>Starts pumping immediately; also starts the stack's driver when it is not running.</summary>
    public NetworkStackTunBridge(IPacketDevice device, NetworkStack stack, bool startStackDriver = true)
    {
        ArgumentNullException.ThrowIfNull(device);
        ArgumentNullException.ThrowIfNull(stack);
        _device = device;
        _stack = stack;
        if (startStackDriver)
        {
            stack.Start();
        }

        _inbound = new Thread(PumpInbound) { IsBackground = true, Name = "netstack-bridge-in" };
        _outbound = new Thread(PumpOutbound) { IsBackground = true, Name = "netstack-bridge-out" };
        _inbound.Start();
        _outbound.Start();
    }

    /// <summary>The first exception a pump thread hit, if any (the bridge stops pumping that direction).</summary>
    public Exception? Failure => Volatile.Read(ref _failure);

    /// <summary>Packets moved device → stack.</summary>
    public long InboundPackets => Interlocked.Read(ref _inboundPackets);

    /// <summary>Packets moved stack → device.</summary>
    public long OutboundPackets => Interlocked.Read(ref _outboundPackets);

    private long _inboundPackets;
    private long _outboundPackets;

    private void PumpInbound() => Pump(_device, _stack, ref _inboundPackets);

    private void PumpOutbound() => Pump(_stack, _device, ref _outboundPackets);

    private void Pump(IPacketDevice from, IPacketDevice to, ref long counter)
    {
        var batch = Math.Max(1, Math.Min(from.BatchSize, to.BatchSize));
        var size = Math.Max(from.Mtu, to.Mtu) + 64;
        var buffers = new byte[batch][];
        for (var i = 0; i < batch; i++)
        {
            buffers[i] = new byte[size];
        }

        var sizes = new int[batch];
        try
        {
            while (!_stopping)
            {
                var n = from.Read(buffers, sizes, 0);
                if (n == 0)
                {
                    return;
                }

                to.Write(buffers, sizes, 0, n);
                Interlocked.Add(ref counter, n);
            }
        }
        catch (ObjectDisposedException) when (_stopping)
        {
        }
        catch (Exception e) when (!_stopping)
        {
            Interlocked.CompareExchange(ref _failure, e, null);
        }
        catch (Exception)
        {
            // Errors while shutting down (device closed under a blocked call) are expected.
        }
    }

    /// <summary>Disposes the stack and the device and waits (up to 5 s each) for the two bridge threads to end. Idempotent.</summary>
    public void Dispose()
    {
        if (_stopping)
        {
            return;
        }

        _stopping = true;
        _stack.Dispose();
        _device.Dispose();
        _inbound.Join(TimeSpan.FromSeconds(5));
        _outbound.Join(TimeSpan.FromSeconds(5));
    }
}
