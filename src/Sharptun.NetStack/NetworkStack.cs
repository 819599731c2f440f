using System.Net;
using System.Net.Sockets;
using Sharptun.NetStack.Ip;
using Sharptun.NetStack.Udp;
using Sharptun.Transport;

namespace Sharptun.NetStack;

/// <summary>
/// A userspace TCP/IP stack that is itself an <see cref="IPacketDevice"/>: the WireGuard device (or a
/// <see cref="NetworkStackTunBridge"/> on a real TUN) writes inbound IP packets into it with <see cref="Write"/> and reads
/// the stack's outbound packets with <see cref="Read"/>, exactly as it would with a kernel TUN.
/// </summary>
/// <remarks>
/// <para>Layers (smoltcp style): wire formats (Wire/) → IP layer (this class: addresses, reassembly, ICMP) → sockets
/// (UDP, ICMP echo, TCP via the TCP layer).</para>
/// <para>Threading: one lock, <see cref="Gate"/>, guards all stack state; inbound processing (<see cref="Write"/>),
/// timers (<see cref="Poll"/>) and every socket call take it. Socket completions run asynchronously, never under the
/// lock. One reader thread may block in <see cref="Read"/> and one writer may call <see cref="Write"/> concurrently.</para>
/// <para>Time: this class is the deterministic core and never reads a clock. Tests call <see cref="Poll"/> with a
/// virtual time and honour <see cref="NextDeadline"/>; real use calls <see cref="Start"/>, which attaches a
/// <see cref="NetworkStackDriver"/>: a thread that owns the Stopwatch, polls the core on it and supplies the current
/// time.</para>
/// <para>Backpressure: outbound packets wait in a bounded queue of MTU-sized slots. When it is full, sockets keep their
/// data and retry when <see cref="Read"/> frees space; only ICMP replies are dropped (and counted).</para>
/// <para>After <see cref="Dispose"/>, a blocked <see cref="Read"/> returns 0, <see cref="Write"/> throws
/// <see cref="ObjectDisposedException"/> and the driver thread stops.</para>
/// </remarks>
public sealed partial class NetworkStack : IPacketDevice, IStackContext
{
    private const ushort EphemeralFirst = 49152;   // RFC 6335 §6 dynamic ports
    private const ushort EphemeralLast = 65535;

    private readonly NetworkStackOptions _options;
    private readonly Lock _gate = new();
    private readonly OutboundQueue _outbound;
    private readonly ByteBudget _budget;
    private readonly FragmentReassembler _reassemblerV4;
    private readonly FragmentReassembler _reassemblerV6;
    private readonly TokenBucket _icmpErrorLimiter;
    private readonly ManualResetEventSlim _outboundReady = new(false);
    private readonly Dictionary<ushort, List<UdpSocket>> _udp = [];
    private readonly Dictionary<ushort, IcmpEchoSocket> _echoSockets = [];
    private readonly List<TaskCompletionSource> _spaceWaiters = [];
    private readonly Random _random = new();
    private readonly ReassemblyTimedOut _onReassemblyTimeout;
    private IpAddr[] _addresses;
    private UdpSocket? _udpCatchAll;
    private TimeSpan _now;
    private NetworkStackDriver? _driver;
    private ushort _ipv4Identification;
    private uint _ipv6Identification;
    private bool _sendBlocked;
    private volatile bool _disposed;

    /// <summary>Creates a stack; it does nothing until packets are written or <see cref="Poll"/>/<see cref="Start"/> is called.</summary>
    public NetworkStack(NetworkStackOptions options)
    {
        ArgumentNullException.ThrowIfNull(options);
        ArgumentOutOfRangeException.ThrowIfLessThan(options.Mtu, 1280);
        ArgumentOutOfRangeException.ThrowIfGreaterThan(options.Mtu, 65535);
        ArgumentOutOfRangeException.ThrowIfLessThan(options.OutboundQueueCapacity, 1);
        ArgumentOutOfRangeException.ThrowIfLessThan(options.BatchSize, 1);
        _options = options;
        _addresses = [.. options.Addresses.Select(IpAddr.FromIPAddress)];
        _outbound = new OutboundQueue(options.OutboundQueueCapacity, options.Mtu);
        _budget = new ByteBudget(options.BufferBudgetBytes);
        _reassemblerV4 = new FragmentReassembler(_budget, options.MaxReassemblies, options.MaxReassemblyBytes, options.Ipv4ReassemblyTimeout);
        _reassemblerV6 = new FragmentReassembler(_budget, options.MaxReassemblies, options.MaxReassemblyBytes, options.Ipv6ReassemblyTimeout);
        _icmpErrorLimiter = new TokenBucket(options.IcmpErrorRatePerSecond, options.IcmpErrorBurst);
        Statistics = new NetworkStackStatistics { V4 = _reassemblerV4, V6 = _reassemblerV6 };
        _onReassemblyTimeout = OnReassemblyTimeout;
        _ipv4Identification = (ushort)_random.Next();
        _ipv6Identification = (uint)_random.Next();
        InitializeTcp();
    }

    /// <inheritdoc/>
    public string Name => "netstack";

    /// <inheritdoc/>
    public int Mtu => _options.Mtu;

    /// <inheritdoc/>
    public int BatchSize => _options.BatchSize;

    /// <summary>True in promiscuous (gateway) mode.</summary>
    public bool Promiscuous => _options.Promiscuous;

    /// <summary>Counters, including drops by reason.</summary>
    public NetworkStackStatistics Statistics { get; }

    /// <summary>The lock guarding all stack state (internal: shared with the TCP layer).</summary>
    internal Lock Gate => _gate;

    /// <summary>Bytes of the buffer budget in use (reassembly and UDP receive queues).</summary>
    public long BufferBytesInUse
    {
        get
        {
            lock (_gate)
            {
                return _budget.Used;
            }
        }
    }

    /// <summary>Packets waiting in the outbound queue.</summary>
    public int OutboundQueued
    {
        get
        {
            lock (_gate)
            {
                return _outbound.Count;
            }
        }
    }

    /// <summary>The stack clock: the driver's time after <see cref="Start"/>, otherwise the time last passed to <see cref="Poll"/>.</summary>
    internal TimeSpan CurrentTime => _driver is not null ? _driver.Now : _now;

    /// <summary>True once <see cref="Dispose"/> ran (ends the driver's loop).</summary>
    internal bool IsDisposed => _disposed;

    /// <summary>The configured addresses (a snapshot).</summary>
    public IReadOnlyList<IPAddress> Addresses
    {
        get
        {
            var snapshot = _addresses;
            var list = new IPAddress[snapshot.Length];
            for (var i = 0; i < snapshot.Length; i++)
            {
                list[i] = snapshot[i].ToIPAddress();
            }

            return list;
        }
    }

    /// <summary>Adds a local address (no-op when present).</summary>
    public void AddAddress(IPAddress address)
    {
        var a = IpAddr.FromIPAddress(address);
        lock (_gate)
        {
            if (Array.IndexOf(_addresses, a) < 0)
            {
                _addresses = [.. _addresses, a];
            }
        }
    }

    /// <summary>Removes a local address; returns false when it was not configured.</summary>
    public bool RemoveAddress(IPAddress address)
    {
        var a = IpAddr.FromIPAddress(address);
        lock (_gate)
        {
            var i = Array.IndexOf(_addresses, a);
            if (i < 0)
            {
                return false;
            }

            _addresses = [.. _addresses.Where(x => x != a)];
            return true;
        }
    }

    // ---- IStackContext ----

    Lock IStackContext.Gate => _gate;

    TimeSpan IStackContext.Now => CurrentTime;

    bool IStackContext.IsLocalAddress(in IpAddr address) => IsLocalAddress(address);

    bool IStackContext.OutboundFull => _outbound.IsFull;

    bool IStackContext.TrySendIp(in IpAddr source, in IpAddr destination, byte protocol, ReadOnlySpan<byte> transportSegment) =>
        TrySendIp(source, destination, protocol, transportSegment);

    /// <summary>Asks the driver to poll soon. Safe from any thread; a no-op without a driver.</summary>
    public void Wake() => _driver?.Wake();

    /// <summary>True for a configured address, or any unicast address in promiscuous mode.</summary>
    internal bool IsLocalAddress(in IpAddr address) =>
        IsConfigured(address) || _options.Promiscuous && !address.IsMulticastOrBroadcast && !address.IsUnspecified;

    internal bool IsConfigured(in IpAddr address)
    {
        foreach (var a in _addresses)
        {
            if (a == address)
            {
                return true;
            }
        }

        return false;
    }

    /// <summary>Picks a configured source address of the destination's family (RFC 6724 reduced to "same family").</summary>
    internal bool TrySelectSource(in IpAddr destination, out IpAddr source)
    {
        foreach (var a in _addresses)
        {
            if (a.IsV4 == destination.IsV4)
            {
                source = a;
                return true;
            }
        }

        source = default;
        return false;
    }

    // ---- Poll / deadlines ----

    /// <summary>
    /// Runs timers due at <paramref name="now"/> (reassembly timeouts, ping timeouts, TCP timers) and lets sockets
    /// retry sends that met a full queue. <paramref name="now"/> must not go backwards.
    /// </summary>
    public void Poll(TimeSpan now)
    {
        lock (_gate)
        {
            if (now > _now)
            {
                _now = now;
            }

            _reassemblerV4.Expire(now, _onReassemblyTimeout);
            _reassemblerV6.Expire(now, _onReassemblyTimeout);
            foreach (var s in _echoSockets.Values)
            {
                s.Expire(now);
            }

            PollTcp(now);
        }
    }

    /// <summary>The earliest time <see cref="Poll"/> has work to do, or <see cref="TimeSpan.MaxValue"/>.</summary>
    public TimeSpan NextDeadline
    {
        get
        {
            lock (_gate)
            {
                var min = Min(_reassemblerV4.NextDeadline, _reassemblerV6.NextDeadline);
                foreach (var s in _echoSockets.Values)
                {
                    min = Min(min, s.NextDeadline);
                }

                return Min(min, TcpNextDeadline());
            }
        }
    }

    private static TimeSpan Min(TimeSpan a, TimeSpan b) => a < b ? a : b;

    /// <summary>
    /// Starts the driver thread (<see cref="NetworkStackDriver"/>), which calls <see cref="Poll"/> with Stopwatch time
    /// whenever a deadline passes or <see cref="Wake"/> is called. Call at most once; stopped by <see cref="Dispose"/>.
    /// </summary>
    public void Start()
    {
        lock (_gate)
        {
            ObjectDisposedException.ThrowIf(_disposed, this);
            if (_driver is not null)
            {
                throw new InvalidOperationException("The driver is already running.");
            }

            _driver = new NetworkStackDriver(this, _now);
            _driver.Start();
        }
    }

    // ---- IPacketDevice ----

    /// <inheritdoc/>
    /// <exception cref="ArgumentException">A buffer cannot hold the next packet at <paramref name="offset"/>.</exception>
    public int Read(byte[][] buffers, Span<int> sizes, int offset)
    {
        ArgumentNullException.ThrowIfNull(buffers);
        var max = Math.Min(Math.Min(buffers.Length, sizes.Length), _options.BatchSize);
        if (max == 0)
        {
            return 0;
        }

        while (true)
        {
            List<TaskCompletionSource>? waiters = null;
            var n = 0;
            lock (_gate)
            {
                if (_disposed)
                {
                    return 0;
                }

                while (n < max && _outbound.Count > 0)
                {
                    var packet = _outbound.Peek();
                    if (buffers[n].Length - offset < packet.Length)
                    {
                        if (n == 0)
                        {
                            throw new ArgumentException($"Buffer {n} cannot hold a {packet.Length}-byte packet at offset {offset}.", nameof(buffers));
                        }

                        break;
                    }

                    packet.CopyTo(buffers[n].AsSpan(offset));
                    sizes[n] = packet.Length;
                    _outbound.Dequeue();
                    n++;
                }

                if (n == 0)
                {
                    _outboundReady.Reset();
                }
                else
                {
                    if (_spaceWaiters.Count > 0)
                    {
                        waiters = [.. _spaceWaiters];
                        _spaceWaiters.Clear();
                    }

                    if (_sendBlocked)
                    {
                        // what the full queue held back goes out now, on this thread, into the room just made: the
                        // next Read finds it without a driver wake-up and a 1 ms retry timer in between
                        _sendBlocked = false;
                        RetryBlockedSenders();
                    }
                }
            }

            if (n > 0)
            {
                if (waiters is not null)
                {
                    foreach (var w in waiters)
                    {
                        w.TrySetResult();
                    }
                }

                return n;
            }

            _outboundReady.Wait();
        }
    }

    /// <inheritdoc/>
    /// <remarks>Every packet is processed (accepted or dropped and counted); returns <paramref name="count"/>.</remarks>
    public int Write(byte[][] buffers, ReadOnlySpan<int> sizes, int offset, int count)
    {
        ArgumentNullException.ThrowIfNull(buffers);
        ObjectDisposedException.ThrowIf(_disposed, this);
        lock (_gate)
        {
            CatchUpClock();
            // one batch: TCP answers each connection once, after the last of its segments (TcpLayer.BeginBatch)
            BeginTcpBatch();
            try
            {
                for (var i = 0; i < count; i++)
                {
                    ProcessPacket(buffers[i].AsSpan(offset, sizes[i]));
                }
            }
            finally
            {
                EndTcpBatch(_now);
            }
        }

        return count;
    }

    /// <summary>Processes one inbound IP packet (convenience for tests and bridges).</summary>
    public void WritePacket(ReadOnlySpan<byte> packet)
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        lock (_gate)
        {
            ProcessPacket(packet);
        }
    }

    /// <summary>Dequeues one outbound packet without blocking (for tests and in-process links); false when none.</summary>
    public bool TryReadPacket(Span<byte> destination, out int length)
    {
        lock (_gate)
        {
            if (_outbound.Count == 0)
            {
                length = 0;
                return false;
            }

            var packet = _outbound.Peek();
            if (packet.Length > destination.Length)
            {
                throw new ArgumentException("Destination too small.", nameof(destination));
            }

            packet.CopyTo(destination);
            length = packet.Length;
            _outbound.Dequeue();
            if (_spaceWaiters.Count > 0)
            {
                foreach (var w in _spaceWaiters)
                {
                    w.TrySetResult();
                }

                _spaceWaiters.Clear();
            }

            if (_sendBlocked)
            {
                _sendBlocked = false;
                RetryBlockedSenders();
            }

            return true;
        }
    }

    /// <summary>The outbound queue has room again (under Gate): TCP connections it held back send now.</summary>
    private void RetryBlockedSenders()
    {
        CatchUpClock();
        RetryBlockedTcp(_now);
    }

    /// <summary>Under Gate: moves the core's time to the driver's clock (never backwards); no-op without a driver.</summary>
    private void CatchUpClock()
    {
        if (_driver is not null)
        {
            var now = _driver.Now;
            if (now > _now)
            {
                _now = now;
            }
        }
    }

    /// <summary>Stops the driver, wakes a blocked reader (which returns 0) and fails pending socket operations.</summary>
    public void Dispose()
    {
        List<UdpSocket> udp;
        List<IcmpEchoSocket> echo;
        List<TaskCompletionSource> waiters;
        lock (_gate)
        {
            if (_disposed)
            {
                return;
            }

            _disposed = true;
            udp = [.. _udp.Values.SelectMany(l => l)];
            if (_udpCatchAll is not null)
            {
                udp.Add(_udpCatchAll);
            }

            echo = [.. _echoSockets.Values];
            waiters = [.. _spaceWaiters];
            _spaceWaiters.Clear();
        }

        _outboundReady.Set();
        Wake();
        foreach (var s in udp)
        {
            s.Dispose();
        }

        foreach (var s in echo)
        {
            s.Dispose();
        }

        foreach (var w in waiters)
        {
            w.TrySetException(new ObjectDisposedException(nameof(NetworkStack)));
        }

        DisposeTcp();
        _driver?.Join();
    }

    /// <summary>Under Gate: a task completed when the outbound queue has space again.</summary>
    internal Task WaitForOutboundSpace()
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        var tcs = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        _spaceWaiters.Add(tcs);
        return tcs.Task;
    }

    // ---- sockets ----

    /// <summary>
    /// Binds a UDP socket. Port 0 picks an ephemeral port (49152–65535). Address <see cref="IPAddress.Any"/> receives on
    /// every local IPv4 address; <see cref="IPAddress.IPv6Any"/> on every local address of both families. A specific
    /// address must be configured (or the stack promiscuous).
    /// </summary>
    /// <exception cref="SocketException">AddressAlreadyInUse or AddressNotAvailable.</exception>
    public UdpSocket BindUdp(IPEndPoint local, int receiveQueueLength = 0)
    {
        ArgumentNullException.ThrowIfNull(local);
        var address = IpAddr.FromIPAddress(local.Address);
        var dual = local.Address.Equals(IPAddress.IPv6Any);
        lock (_gate)
        {
            ObjectDisposedException.ThrowIf(_disposed, this);
            if (!address.IsUnspecified && !IsLocalAddress(address))
            {
                throw new SocketException((int)SocketError.AddressNotAvailable);
            }

            var port = (ushort)local.Port;
            if (port == 0)
            {
                port = PickEphemeralUdpPort();
            }
            else if (_udp.TryGetValue(port, out var existing))
            {
                foreach (var s in existing)
                {
                    var overlap = s.LocalAddress.IsUnspecified || address.IsUnspecified
                        ? s.LocalAddress.IsV4 == address.IsV4 || s.DualStack || dual
                        : s.LocalAddress == address;
                    if (overlap)
                    {
                        throw new SocketException((int)SocketError.AddressAlreadyInUse);
                    }
                }
            }

            var socket = new UdpSocket(this, address, port, dual, false, QueueLength(receiveQueueLength));
            if (!_udp.TryGetValue(port, out var list))
            {
                _udp[port] = list = [];
            }

            list.Add(socket);
            return socket;
        }
    }

    /// <summary>
    /// Promiscuous mode: a catch-all socket that receives every UDP datagram no bound socket takes, whatever its
    /// destination address and port (see <c>UdpReceiveResult.LocalAddress</c> and <c>LocalPort</c>).
    /// Reply with <see cref="UdpSocket.SendFromAsync"/>. At most one per stack.
    /// </summary>
    public UdpSocket BindUdpAnyDestination(int receiveQueueLength = 0)
    {
        lock (_gate)
        {
            ObjectDisposedException.ThrowIf(_disposed, this);
            if (!_options.Promiscuous)
            {
                throw new InvalidOperationException("A catch-all UDP socket needs a promiscuous stack.");
            }

            if (_udpCatchAll is not null)
            {
                throw new SocketException((int)SocketError.AddressAlreadyInUse);
            }

            return _udpCatchAll = new UdpSocket(this, IpAddr.AnyV6, 0, true, true, QueueLength(receiveQueueLength));
        }
    }

    /// <summary>Creates an ICMP echo socket with a fresh identifier.</summary>
    public IcmpEchoSocket CreateEchoSocket()
    {
        lock (_gate)
        {
            ObjectDisposedException.ThrowIf(_disposed, this);
            for (var attempt = 0; attempt < 65536; attempt++)
            {
                var id = (ushort)_random.Next(1, 65536);
                if (!_echoSockets.ContainsKey(id))
                {
                    var s = new IcmpEchoSocket(this, id);
                    _echoSockets.Add(id, s);
                    return s;
                }
            }

            throw new SocketException((int)SocketError.TooManyOpenSockets);
        }
    }

    /// <summary>Sends one echo request and awaits the reply (convenience over <see cref="CreateEchoSocket"/>).</summary>
    public async ValueTask<EchoReply> PingAsync(IPAddress destination, int dataLength, TimeSpan timeout, CancellationToken cancellationToken = default)
    {
        using var socket = CreateEchoSocket();
        var data = new byte[dataLength];
        for (var i = 0; i < data.Length; i++)
        {
            data[i] = (byte)i;
        }

        return await socket.PingAsync(destination, data, timeout, cancellationToken).ConfigureAwait(false);
    }

    internal void Unbind(UdpSocket socket)
    {
        if (socket == _udpCatchAll)
        {
            _udpCatchAll = null;
        }
        else if (_udp.TryGetValue(socket.LocalPort, out var list) && list.Remove(socket) && list.Count == 0)
        {
            _udp.Remove(socket.LocalPort);
        }
    }

    internal void Unbind(IcmpEchoSocket socket) => _echoSockets.Remove(socket.Identifier);

    private int QueueLength(int requested) => requested > 0 ? requested : _options.UdpReceiveQueueLength;

    private ushort PickEphemeralUdpPort()
    {
        const int range = EphemeralLast - EphemeralFirst + 1;
        var start = _random.Next(range);
        for (var i = 0; i < range; i++)
        {
            var port = (ushort)(EphemeralFirst + (start + i) % range);
            if (!_udp.ContainsKey(port))
            {
                return port;
            }
        }

        throw new SocketException((int)SocketError.AddressAlreadyInUse);
    }
}
