namespace Sharptun.Device.Pipeline;

/// <summary>
/// The crypto workers' shared bounded queue (wireguard-go's encryption/decryption queues, one for both directions).
/// Producers never block: capacity is at least the number of elements that can exist, so a full queue means a bug
/// and the caller processes the element itself.
/// </summary>
internal sealed class WorkQueue(int capacity)
{
    private readonly object _lock = new();
    private readonly PacketElement?[] _ring = new PacketElement[capacity];
    private int _head;
    private int _count;
    private bool _closed;

    public bool TryAdd(PacketElement element)
    {
        lock (_lock)
        {
            if (_count == _ring.Length || _closed)
            {
                return false;
            }

            _ring[(_head + _count) % _ring.Length] = element;
            _count++;
            Monitor.Pulse(_lock);
            return true;
        }
    }

    /// <summary>Blocks for the next element; null once closed and empty.</summary>
    public PacketElement? Take()
    {
        lock (_lock)
        {
            while (_count == 0)
            {
                if (_closed)
                {
                    return null;
                }

                Monitor.Wait(_lock);
            }

            var e = _ring[_head]!;
            _ring[_head] = null;
            _head = (_head + 1) % _ring.Length;
            _count--;
            return e;
        }
    }

    public void Close()
    {
        lock (_lock)
        {
            _closed = true;
            Monitor.PulseAll(_lock);
        }
    }
}
