using Sharptun.Protocol;
using Sharptun.Transport;

namespace Sharptun.Device.Pipeline;

/// <summary>
/// The device's per-peer state beside the protocol core's <see cref="Protocol.Peer"/> (which holds keys and timers):
/// the endpoint, the staging queue for packets waiting for a session, the ordered outbound and inbound queues, and
/// the traffic counters. Reached from the core through <see cref="Protocol.Peer.Tag"/>.
/// </summary>
/// <remarks>
/// Locking: <see cref="SendLock"/> orders everything that reserves send counters for this peer (staged flush, the
/// TUN reader's enqueue) so counters follow packet order; the staging ring has its own tiny lock. The endpoint is an
/// immutable box swapped with a volatile write, so the data path reads it without a lock.
/// </remarks>
internal sealed class DevicePeer
{
    private readonly Lock _stagedLock = new();
    private readonly byte[]?[] _stagedBuffers;
    private readonly int[] _stagedLengths;
    private int _stagedHead;
    private int _stagedCount;
    private volatile EndpointBox? _endpoint;
    private long _rxBytes;
    private long _txBytes;
    private volatile bool _removed;

    public DevicePeer(Peer protocol, int stagedCapacity, int queueCapacity, TimeSpan delayTarget = default, TimeSpan delayInterval = default)
    {
        Protocol = protocol;
        protocol.Tag = this;
        _stagedBuffers = new byte[stagedCapacity][];
        _stagedLengths = new int[stagedCapacity];
        var limitDelay = delayTarget > TimeSpan.Zero && delayInterval > TimeSpan.Zero;
        Outbound = new OrderedQueue(queueCapacity, limitDelay ? new QueueDelayController(delayTarget, delayInterval) : null);
        Inbound = new OrderedQueue(queueCapacity, limitDelay ? new QueueDelayController(delayTarget, delayInterval) : null);
    }

    public Peer Protocol { get; }

    public Key PublicKey => Protocol.PublicKey;

    /// <summary>Held while reserving send counters and appending to <see cref="Outbound"/>, so counters follow packet order.</summary>
    public Lock SendLock { get; } = new();

    /// <summary>Encrypted datagrams in counter order; the head is sent once its encryption is finished.</summary>
    public OrderedQueue Outbound { get; }

    /// <summary>Received transport datagrams in arrival order; the head is delivered once decrypted.</summary>
    public OrderedQueue Inbound { get; }

    /// <summary>Persistent keepalive interval in seconds as configured (0 = off).</summary>
    public ushort PersistentKeepaliveSeconds { get; set; }

    public bool IsRemoved => _removed;

    public bool TryGetEndpoint(out UdpEndpoint endpoint)
    {
        var box = _endpoint;
        endpoint = box?.Value ?? default;
        return box is not null;
    }

    public void SetEndpoint(in UdpEndpoint endpoint)
    {
        _endpoint = new EndpointBox(endpoint);
    }

    /// <summary>Roaming (whitepaper §6.5 / wireguard-go SetEndpointFromPacket): allocation only when the address changed.</summary>
    public void UpdateEndpoint(in UdpEndpoint source)
    {
        var box = _endpoint;
        if (box is null || !box.Value.Equals(source))
        {
            _endpoint = new EndpointBox(source);
        }
    }

    public long RxBytes => Interlocked.Read(ref _rxBytes);

    public long TxBytes => Interlocked.Read(ref _txBytes);

    public void AddRx(int bytes) => Interlocked.Add(ref _rxBytes, bytes);

    public void AddTx(long bytes) => Interlocked.Add(ref _txBytes, bytes);

    public int StagedCount
    {
        get
        {
            lock (_stagedLock)
            {
                return _stagedCount;
            }
        }
    }

    public void MarkRemoved() => _removed = true;

    /// <summary>Stages a packet (buffer ownership passes to the peer). Returns the oldest packet's buffer when it was pushed out (the caller returns it to the pool), else null.</summary>
    public byte[]? Stage(byte[] buffer, int length)
    {
        lock (_stagedLock)
        {
            byte[]? evicted = null;
            if (_stagedCount == _stagedBuffers.Length)
            {
                evicted = _stagedBuffers[_stagedHead];
                _stagedBuffers[_stagedHead] = null;
                _stagedHead = (_stagedHead + 1) % _stagedBuffers.Length;
                _stagedCount--;
            }

            var tail = (_stagedHead + _stagedCount) % _stagedBuffers.Length;
            _stagedBuffers[tail] = buffer;
            _stagedLengths[tail] = length;
            _stagedCount++;
            return evicted;
        }
    }

    /// <summary>Takes the oldest staged packet.</summary>
    public bool TryUnstage(out byte[] buffer, out int length)
    {
        lock (_stagedLock)
        {
            if (_stagedCount == 0)
            {
                buffer = null!;
                length = 0;
                return false;
            }

            buffer = _stagedBuffers[_stagedHead]!;
            length = _stagedLengths[_stagedHead];
            _stagedBuffers[_stagedHead] = null;
            _stagedHead = (_stagedHead + 1) % _stagedBuffers.Length;
            _stagedCount--;
            return true;
        }
    }

    /// <summary>Puts a packet back at the head (the session went away between unstage and send).</summary>
    public byte[]? Restage(byte[] buffer, int length)
    {
        lock (_stagedLock)
        {
            if (_stagedCount == _stagedBuffers.Length)
            {
                return buffer; // full of newer packets: the old one is the one to drop
            }

            _stagedHead = (_stagedHead - 1 + _stagedBuffers.Length) % _stagedBuffers.Length;
            _stagedBuffers[_stagedHead] = buffer;
            _stagedLengths[_stagedHead] = length;
            _stagedCount++;
            return null;
        }
    }

    private sealed class EndpointBox(UdpEndpoint value)
    {
        public readonly UdpEndpoint Value = value;
    }
}
