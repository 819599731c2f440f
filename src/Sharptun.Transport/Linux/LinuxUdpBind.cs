using System.Buffers.Binary;
using System.Runtime.InteropServices;
using System.Runtime.Versioning;
using static Sharptun.Transport.Linux.LinuxNative;

namespace Sharptun.Transport.Linux;

/// <summary>
/// A Linux UDP bind: one dual-stack socket (AF_INET6 with IPV6_V6ONLY=0, so IPv4 peers appear IPv4-mapped and are
/// reported as IPv4 <see cref="UdpEndpoint"/>s), moving datagrams in batches with recvmmsg/sendmmsg. Falls back
/// to one recvmsg/sendmsg per datagram when the batching calls are unavailable, and to an IPv4-only socket when
/// the host has no IPv6.
/// </summary>
/// <remarks>
/// <para>The socket is non-blocking; a receive that finds nothing waits in poll(2) on the socket together with an
/// eventfd that <see cref="Dispose"/> signals, so Dispose always releases a blocked <see cref="Receive"/>, and the
/// descriptor is closed only after the last in-flight call has left (reference-counted handle, no fd-reuse race).</para>
/// <para>No allocation per datagram: message headers, iovecs and addresses live in native arrays allocated once;
/// caller buffers are pinned only for the duration of the call.</para>
/// <para>Sends use UDP GSO (UDP_SEGMENT) for runs of equal-sized datagrams when the kernel supports it. Receives use
/// UDP GRO (UDP_GRO, Linux 5.0+) unless turned off: the kernel may hand over several datagrams of one source coalesced
/// into one buffer, which the bind receives into a few 64 KiB scratch slots and splits into one datagram per caller buffer
/// (see <see cref="ReceiveOffload"/>). Not implemented yet: sticky source addresses (IP_PKTINFO).</para>
/// <para>With an <see cref="OversizePool"/>, a datagram longer than the caller's buffer is not lost: each message gets a
/// second receive vector into its own 64 KiB slot of a spill area (plain virtual memory: pages stay unbacked until a big
/// datagram lands there), and a datagram that spills over is copied into a buffer rented from the oversize pool,
/// which replaces the caller's buffer in <c>buffers[i]</c> (the caller keeps its own).</para>
/// </remarks>
[SupportedOSPlatform("linux")]
public sealed unsafe partial class LinuxUdpBind : IDatagramBind
{
    /// <summary>Default datagrams per batch (wireguard-go uses 128 too).</summary>
    public const int DefaultBatchSize = 128;

    private readonly SafeFd _fd;
    private readonly Wakeup _wakeup;
    private readonly bool _dualStack;
    private readonly object _receiveLock = new();
    private readonly object _sendLock = new();
    private readonly Batch _receive;
    private readonly Batch _send;
    private bool _mmsgReceive = true;
    private bool _mmsgSend = true;
    private bool _gsoSend;
    private int _gsoSizeLimit = ushort.MaxValue;
    private long _receiveDropped;
    private volatile PacketBufferPool? _oversizePool;
    private long _sendDropped;
    private int _disposed;

    private LinuxUdpBind(SafeFd fd, bool dualStack, ushort port, int batchSize, bool receiveOffload)
    {
        _fd = fd;
        _dualStack = dualStack;
        LocalPort = port;
        BatchSize = batchSize;
        _wakeup = new Wakeup();
        _receive = new Batch(batchSize);
        _send = new Batch(batchSize);

        // UDP GSO (Linux 4.18+): the option exists iff the kernel can segment. Refusals at send time turn it off again.
        int value = 0;
        uint length = sizeof(int);
        _gsoSend = getsockopt(fd.Fd, SOL_UDP, UDP_SEGMENT, &value, &length) == 0;

        // UDP GRO (Linux 5.0+, udp(7)): a kernel without it refuses the option (ENOPROTOOPT) and receives stay as they were.
        // Set once here and never cleared: a coalesced buffer still queued when the option is cleared would arrive without
        // its segment size (udp_recvmsg reports it only while the option is set). Datagrams queued before it was set are
        // plain ones (the kernel segments GSO buffers for a socket without it), received as single datagrams.
        var one = 1;
        if (receiveOffload && setsockopt(fd.Fd, SOL_UDP, UDP_GRO, &one, sizeof(int)) == 0)
        {
            _gro = new GroReceiver();
        }
    }

    /// <summary>
    /// Opens a bind on <paramref name="port"/> (0 = a random free port) on all addresses.
    /// Throws <see cref="IOException"/> when the port is taken or the socket cannot be created.
    /// </summary>
    public static LinuxUdpBind Open(ushort port, int batchSize = DefaultBatchSize) => Open(default(UdpEndpoint).WithPort(port), batchSize);

    /// <summary>
    /// Opens a bind on one local address and port (<c>[::]:port</c> = all addresses, both families; an IPv4 address
    /// = that address only, IPv4 traffic only; port 0 = a random free port), e.g. <c>127.0.0.1:0</c> for a
    /// loopback-only relay. Throws <see cref="IOException"/> when the address is not local or the port is taken.
    /// </summary>
    public static LinuxUdpBind Open(UdpEndpoint local, int batchSize = DefaultBatchSize) => Open(local, batchSize, receiveOffload: true);

    /// <summary>
    /// Opens a bind as <see cref="Open(UdpEndpoint, int)"/> does, choosing whether to ask for UDP GRO
    /// (<paramref name="receiveOffload"/>; see <see cref="ReceiveOffload"/>). Public callers choose with
    /// <see cref="GetFactory(bool)"/>; the daemon turns it off with <c>SHARPTUN_UDP_GRO=0</c>.
    /// </summary>
    internal static LinuxUdpBind Open(UdpEndpoint local, int batchSize, bool receiveOffload)
    {
        var port = local.Port;
        ArgumentOutOfRangeException.ThrowIfLessThan(batchSize, 1);
        ArgumentOutOfRangeException.ThrowIfGreaterThan(batchSize, 1024); // UIO_MAXIOV
        var dualStack = true;
        var fd = socket(AF_INET6, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
        if (fd < 0 && LastErrno == EAFNOSUPPORT)
        {
            dualStack = false;
            fd = socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
        }

        if (fd < 0)
        {
            throw new IOException($"socket failed: errno {LastErrno}");
        }

        var handle = new SafeFd(fd);
        try
        {
            SockAddrIn6 address = default;
            uint length;
            if (dualStack)
            {
                var off = 0;
                if (setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &off, sizeof(int)) != 0)
                {
                    throw new IOException($"setsockopt(IPV6_V6ONLY) failed: errno {LastErrno}");
                }

                address.Family = AF_INET6;
                length = (uint)sizeof(SockAddrIn6);
            }
            else
            {
                address.Family = AF_INET;
                length = 16;
            }

            address.PortBigEndian = BinaryPrimitives.ReverseEndianness(port);
            if (dualStack)
            {
                local.WriteAddress16(new Span<byte>(address.Address, 16)); // IPv4 as ::ffff:a.b.c.d
            }
            else if (local.IsIPv4)
            {
                BinaryPrimitives.WriteUInt32BigEndian(new Span<byte>(&address.FlowInfo, 4), local.IPv4Value); // sockaddr_in.sin_addr
            }
            else if (!local.AddressEquals(default))
            {
                throw new IOException($"cannot bind {local}: this host has no IPv6");
            }

            if (bind(fd, &address, length) != 0)
            {
                throw new IOException($"bind to UDP {local} failed: errno {LastErrno}");
            }

            length = (uint)sizeof(SockAddrIn6);
            if (getsockname(fd, &address, &length) != 0)
            {
                throw new IOException($"getsockname failed: errno {LastErrno}");
            }

            return new LinuxUdpBind(handle, dualStack, BinaryPrimitives.ReverseEndianness(address.PortBigEndian), batchSize, receiveOffload);
        }
        catch
        {
            handle.Dispose();
            throw;
        }
    }

    /// <summary>A factory opening <see cref="LinuxUdpBind"/>s (for a device that rebinds when its listen port changes).</summary>
    public static IDatagramBindFactory Factory { get; } = new LinuxUdpBindFactory(receiveOffload: true);

    private static readonly IDatagramBindFactory FactoryWithoutGro = new LinuxUdpBindFactory(receiveOffload: false);

    /// <summary>The factory opening binds with UDP GRO asked for (<see cref="Factory"/>) or not (<paramref name="receiveOffload"/> false).</summary>
    public static IDatagramBindFactory GetFactory(bool receiveOffload) => receiveOffload ? Factory : FactoryWithoutGro;

    /// <inheritdoc/>
    public ushort LocalPort { get; }

    /// <inheritdoc/>
    public int BatchSize { get; }

    /// <summary>True for a dual-stack (IPv6 + IPv4-mapped) socket, false for an IPv4-only fallback.</summary>
    public bool IsDualStack => _dualStack;

    /// <summary>False once recvmmsg proved unavailable and receives fell back to recvmsg.</summary>
    public bool BatchedReceive => _mmsgReceive;

    /// <summary>False once sendmmsg proved unavailable and sends fell back to sendmsg.</summary>
    public bool BatchedSend => _mmsgSend;

    /// <summary>True while sends cut runs of equal-sized datagrams with UDP GSO (UDP_SEGMENT): one kernel traversal per run.</summary>
    public bool SegmentationOffload => _gsoSend;

    /// <summary>Forces the one-datagram-per-syscall fallback (recvmsg/sendmsg, no GSO), as when the batching calls are unavailable. For tests.</summary>
    internal void DisableBatching()
    {
        _mmsgReceive = false;
        _mmsgSend = false;
        _gsoSend = false;
    }

    /// <summary>Datagrams larger than this are not sent with GSO (lowered when the kernel refuses a segment size).</summary>
    internal int GsoSizeLimit => _gsoSizeLimit;

    /// <summary>Turns UDP GSO off (sendmmsg stays). For tests and benchmarks.</summary>
    internal void DisableSegmentationOffload() => _gsoSend = false;

    /// <summary>Datagrams received truncated (larger than the caller's buffer) and dropped.</summary>
    public long ReceiveDropped => Interlocked.Read(ref _receiveDropped);

    /// <summary>Datagrams the kernel refused to send (unreachable, too large, filtered, wrong family) and dropped.</summary>
    public long SendDropped => Interlocked.Read(ref _sendDropped);

    /// <inheritdoc/>
    public void SetMark(uint fwmark) => SetOption(SOL_SOCKET, SO_MARK, (int)fwmark, "SO_MARK");

    /// <summary>Reads back the socket's SO_MARK.</summary>
    public uint GetMark() => (uint)GetOption(SOL_SOCKET, SO_MARK, "SO_MARK");

    /// <summary>
    /// Sets the kernel's receive and send buffer sizes (SO_RCVBUFFORCE/SO_SNDBUFFORCE when permitted, else capped
    /// by net.core.rmem_max/wmem_max). Larger buffers absorb bursts at a latency cost.
    /// </summary>
    public void SetBufferSizes(int bytes)
    {
        if (!TrySetOption(SOL_SOCKET, SO_RCVBUFFORCE, bytes))
        {
            SetOption(SOL_SOCKET, SO_RCVBUF, bytes, "SO_RCVBUF");
        }

        if (!TrySetOption(SOL_SOCKET, SO_SNDBUFFORCE, bytes))
        {
            SetOption(SOL_SOCKET, SO_SNDBUF, bytes, "SO_SNDBUF");
        }
    }

    /// <summary>
    /// Where datagrams longer than the caller's buffer go (see the remarks): when set, such a datagram is copied into a
    /// buffer rented from this pool (without waiting: when its budget is spent the datagram is dropped and counted in
    /// <see cref="ReceiveDropped"/>) and <see cref="Receive"/> puts that buffer in the caller's array in place of the
    /// caller's one; the caller owns it and returns it to this pool. The pool's buffers should hold 65535 bytes.
    /// </summary>
    public PacketBufferPool? OversizePool
    {
        get => _oversizePool;
        set => _oversizePool = value;
    }

    /// <summary>The kernel's receive buffer size (SO_RCVBUF as reported, i.e. doubled).</summary>
    public int ReceiveBufferSize => GetOption(SOL_SOCKET, SO_RCVBUF, "SO_RCVBUF");

    /// <inheritdoc/>
    public int Receive(byte[][] buffers, Span<int> sizes, Span<UdpEndpoint> endpoints)
    {
        var max = Math.Min(Math.Min(buffers.Length, sizes.Length), Math.Min(endpoints.Length, BatchSize));
        if (max == 0)
        {
            return 0;
        }

        lock (_receiveLock)
        {
            if (Volatile.Read(ref _disposed) != 0 || !_fd.TryAddRef())
            {
                return 0;
            }

            if (!_wakeup.Handle.TryAddRef())
            {
                _fd.DangerousRelease();
                return 0;
            }

            if (_gro is { } gro)
            {
                try
                {
                    return ReceiveCoalesced(gro, buffers, sizes, endpoints, max);
                }
                finally
                {
                    _wakeup.Handle.DangerousRelease();
                    _fd.DangerousRelease();
                }
            }

            var batch = _receive;
            try
            {
                batch.Pin(buffers, 0, max, 0, receive: true);
                while (true)
                {
                    if (Volatile.Read(ref _disposed) != 0)
                    {
                        return 0;
                    }

                    var oversize = _oversizePool;
                    batch.PrepareReceive(max, spill: oversize is not null);
                    var r = ReceiveMessages(batch.Messages, max, out var errno);

                    if (r > 0)
                    {
                        var n = Collect(batch, r, buffers, sizes, endpoints, oversize);
                        if (n > 0)
                        {
                            return n;
                        }

                        continue;
                    }

                    switch (errno)
                    {
                        case EAGAIN:
                            if (!WaitReady(_fd.Fd, POLLIN, _wakeup.Handle.Fd))
                            {
                                return 0;
                            }

                            break;
                        case EINTR or ENOMEM or ENOBUFS:
                            break;
                        case ECONNREFUSED or EHOSTUNREACH or ENETUNREACH or EHOSTDOWN:
                            // A pending ICMP error reported on the socket (with IP_RECVERR or on some kernels): not ours to stop for.
                            break;
                        default:
                            if (Volatile.Read(ref _disposed) != 0)
                            {
                                return 0;
                            }

                            throw new IOException($"recvmmsg failed: errno {errno}");
                    }
                }
            }
            finally
            {
                batch.Unpin(max);
                _wakeup.Handle.DangerousRelease();
                _fd.DangerousRelease();
            }
        }
    }

    /// <inheritdoc/>
    public int Send(byte[][] buffers, ReadOnlySpan<int> sizes, int offset, int count, in UdpEndpoint destination)
    {
        ObjectDisposedException.ThrowIf(Volatile.Read(ref _disposed) != 0, this);
        if (count == 0)
        {
            return 0;
        }

        lock (_sendLock)
        {
            if (!_fd.TryAddRef())
            {
                throw new ObjectDisposedException(nameof(LinuxUdpBind));
            }

            if (!_wakeup.Handle.TryAddRef())
            {
                _fd.DangerousRelease();
                throw new ObjectDisposedException(nameof(LinuxUdpBind));
            }

            try
            {
                var batch = _send;
                uint nameLength;
                if (_dualStack)
                {
                    var a = batch.Destination;
                    *a = default;
                    a->Family = AF_INET6;
                    a->PortBigEndian = BinaryPrimitives.ReverseEndianness(destination.Port);
                    destination.WriteAddress16(new Span<byte>(a->Address, 16));
                    nameLength = (uint)sizeof(SockAddrIn6);
                }
                else if (destination.IsIPv4)
                {
                    // struct sockaddr_in: family, port, 4 address bytes, 8 zero bytes.
                    var a = (byte*)batch.Destination;
                    new Span<byte>(a, 16).Clear();
                    *(ushort*)a = AF_INET;
                    *(ushort*)(a + 2) = BinaryPrimitives.ReverseEndianness(destination.Port);
                    BinaryPrimitives.WriteUInt32BigEndian(new Span<byte>(a + 4, 4), destination.IPv4Value);
                    nameLength = 16;
                }
                else
                {
                    Interlocked.Add(ref _sendDropped, count);
                    return 0;
                }

                var sent = 0;
                var i = 0;
                var gso = _gsoSend; // cleared for the rest of this call when a train is refused
                while (i < count)
                {
                    if (Volatile.Read(ref _disposed) != 0)
                    {
                        break;
                    }

                    var n = Math.Min(count - i, BatchSize);
                    int r;
                    int errno;
                    int messages;
                    batch.Pin(buffers, i, n, offset, receive: false, sizes.Slice(i, n));
                    try
                    {
                        messages = batch.PrepareSend(n, nameLength, sizes.Slice(i, n), gso ? _gsoSizeLimit : 0);
                        if (_mmsgSend)
                        {
                            r = sendmmsg(_fd.Fd, batch.Messages, (uint)messages, 0);
                            errno = r < 0 ? LastErrno : 0;
                            if (r < 0 && errno is ENOSYS or EOPNOTSUPP)
                            {
                                _mmsgSend = false;
                                continue;
                            }
                        }
                        else
                        {
                            r = sendmsg(_fd.Fd, &batch.Messages[0].Header, 0) < 0 ? -1 : 1;
                            errno = r < 0 ? LastErrno : 0;
                        }
                    }
                    finally
                    {
                        batch.Unpin(n);
                    }

                    if (r > 0)
                    {
                        var packets = batch.PacketsIn(r);
                        sent += packets;
                        i += packets;
                        continue;
                    }

                    switch (errno)
                    {
                        case EAGAIN:
                            // Socket buffer full: wait for room (backpressure), unless closing.
                            if (!WaitReady(_fd.Fd, POLLOUT, _wakeup.Handle.Fd))
                            {
                                Interlocked.Add(ref _sendDropped, count - i);
                                return sent;
                            }

                            break;
                        case EINTR:
                            break;
                        default:
                            if (batch.TrainLengths[0] > 1)
                            {
                                // A GSO train was refused: EIO means no checksum offload on the route (give up on GSO),
                                // EINVAL/EMSGSIZE a segment too large for it (no GSO at this size or above). Either
                                // way, resend this batch one datagram per message so each gets its own verdict.
                                if (errno == EIO)
                                {
                                    _gsoSend = false;
                                }
                                else if (errno is EINVAL or EMSGSIZE)
                                {
                                    _gsoSizeLimit = Math.Min(_gsoSizeLimit, sizes[i] - 1);
                                }

                                gso = false;
                                break;
                            }

                            // The first datagram of the batch was refused (EMSGSIZE, ENETUNREACH, EPERM by a firewall,
                            // ENOBUFS ...): drop it and carry on with the rest.
                            Interlocked.Increment(ref _sendDropped);
                            i++;
                            break;
                    }
                }

                return sent;
            }
            finally
            {
                _wakeup.Handle.DangerousRelease();
                _fd.DangerousRelease();
            }
        }
    }

    /// <summary>Closes the socket: a blocked <see cref="Receive"/> returns 0, later sends throw. The port is free once in-flight calls leave.</summary>
    public void Dispose()
    {
        if (Interlocked.Exchange(ref _disposed, 1) != 0)
        {
            return;
        }

        _wakeup.Signal();
        _fd.Dispose();     // closes when the last in-flight call releases it
        _wakeup.Dispose();

        // The native arrays are freed only once no call can be using them.
        lock (_receiveLock)
        {
            _receive.Dispose();
            _gro?.Dispose();
        }

        lock (_sendLock)
        {
            _send.Dispose();
        }
    }

    /// <summary>
    /// Fills up to <paramref name="count"/> prepared messages without waiting: recvmmsg(2), or one recvmsg(2) per message
    /// once the kernel has refused recvmmsg (ENOSYS/EOPNOTSUPP, remembered for good). Returns the messages filled, or −1
    /// with <paramref name="errno"/>.
    /// </summary>
    private int ReceiveMessages(MMsgHdr* messages, int count, out int errno)
    {
        if (_mmsgReceive)
        {
            var r = recvmmsg(_fd.Fd, messages, (uint)count, MSG_DONTWAIT, null);
            errno = r < 0 ? LastErrno : 0;
            if (r >= 0 || errno is not (ENOSYS or EOPNOTSUPP))
            {
                return r;
            }

            _mmsgReceive = false;
        }

        return ReceiveOneByOne(messages, count, out errno);
    }

    private int ReceiveOneByOne(MMsgHdr* messages, int max, out int errno)
    {
        errno = 0;
        var n = 0;
        while (n < max)
        {
            var r = recvmsg(_fd.Fd, &messages[n].Header, MSG_DONTWAIT);
            if (r < 0)
            {
                errno = LastErrno;
                break;
            }

            messages[n].Length = (uint)r;
            n++;
        }

        return n > 0 ? n : -1;
    }

    private int Collect(Batch batch, int received, byte[][] buffers, Span<int> sizes, Span<UdpEndpoint> endpoints, PacketBufferPool? oversize)
    {
        var n = 0;
        for (var i = 0; i < received; i++)
        {
            ref var message = ref batch.Messages[i];
            if ((message.Header.Flags & MSG_TRUNC) != 0)
            {
                Interlocked.Increment(ref _receiveDropped);
                continue;
            }

            var length = (int)message.Length;
            var head = buffers[i].Length;
            if (length > head)
            {
                // Spilled into this message's slot of the spill area: move it whole into an oversize buffer.
                if (oversize is null || !oversize.TryRent(out var big) || big.Length < length)
                {
                    Interlocked.Increment(ref _receiveDropped);
                    continue;
                }

                buffers[i].CopyTo(big, 0);
                new ReadOnlySpan<byte>(batch.SpillSlot(i), length - head).CopyTo(big.AsSpan(head));
                buffers[n] = big;
                sizes[n] = length;
                endpoints[n] = ToEndpoint(&batch.Addresses[i]);
                n++;
                continue;
            }

            if (n != i)
            {
                // A truncated datagram earlier in the batch: move this one down (rare).
                buffers[i].AsSpan(0, length).CopyTo(buffers[n]);
            }

            sizes[n] = length;
            endpoints[n] = ToEndpoint(&batch.Addresses[i]);
            n++;
        }

        return n;
    }

    private static UdpEndpoint ToEndpoint(SockAddrIn6* address)
    {
        var port = BinaryPrimitives.ReverseEndianness(address->PortBigEndian);
        if (address->Family == AF_INET6)
        {
            return UdpEndpoint.FromIPv6(new ReadOnlySpan<byte>(address->Address, 16), port);
        }

        // struct sockaddr_in: the IPv4 address sits where sockaddr_in6 has its flow info.
        return UdpEndpoint.FromIPv4(BinaryPrimitives.ReverseEndianness(address->FlowInfo), port);
    }

    private bool TrySetOption(int level, int name, int value)
    {
        ObjectDisposedException.ThrowIf(!_fd.TryAddRef(), this);
        try
        {
            return setsockopt(_fd.Fd, level, name, &value, sizeof(int)) == 0;
        }
        finally
        {
            _fd.DangerousRelease();
        }
    }

    private void SetOption(int level, int name, int value, string what)
    {
        if (!TrySetOption(level, name, value))
        {
            throw new IOException($"setsockopt({what}) failed: errno {LastErrno}");
        }
    }

    private int GetOption(int level, int name, string what)
    {
        ObjectDisposedException.ThrowIf(!_fd.TryAddRef(), this);
        try
        {
            int value = 0;
            uint length = sizeof(int);
            if (getsockopt(_fd.Fd, level, name, &value, &length) != 0)
            {
                throw new IOException($"getsockopt({what}) failed: errno {LastErrno}");
            }

            return value;
        }
        finally
        {
            _fd.DangerousRelease();
        }
    }

    /// <summary>Native mmsghdr/iovec/sockaddr arrays for one direction, and the pins of the current call's buffers.</summary>
    private sealed class Batch : IDisposable
    {
        private readonly GCHandle[] _pins;

        public Batch(int capacity)
        {
            _pins = new GCHandle[capacity];
            Messages = (MMsgHdr*)NativeMemory.AllocZeroed((nuint)capacity, (nuint)sizeof(MMsgHdr));
            Iovecs = (IoVec*)NativeMemory.AllocZeroed((nuint)capacity, (nuint)sizeof(IoVec));
            Addresses = (SockAddrIn6*)NativeMemory.AllocZeroed((nuint)capacity, (nuint)sizeof(SockAddrIn6));
            Destination = (SockAddrIn6*)NativeMemory.AllocZeroed(1, (nuint)sizeof(SockAddrIn6));
            Control = (byte*)NativeMemory.AllocZeroed((nuint)capacity, (nuint)ControlStride);
            TrainLengths = new int[capacity];
            _capacity = capacity;
        }

        /// <summary>Bytes of one message's spill slot: any datagram (at most 65535 bytes) fits the buffer and its slot.</summary>
        public const int SpillSize = 1 << 16;

        private readonly int _capacity;
        private IoVec* _spillIovecs;
        private byte* _spill;

        /// <summary>Message <paramref name="i"/>'s slot of the spill area (valid after a PrepareReceive with spill).</summary>
        public byte* SpillSlot(int i) => _spill + ((nint)i * SpillSize);

        /// <summary>CMSG_SPACE(sizeof(uint16_t)): a cmsghdr plus the segment size, padded to the header's alignment.</summary>
        public static int ControlStride => (sizeof(CMsgHdr) + sizeof(ushort) + sizeof(nuint) - 1) & ~(sizeof(nuint) - 1);

        public byte* Control { get; private set; }

        public int[] TrainLengths { get; }

        public MMsgHdr* Messages { get; private set; }

        public IoVec* Iovecs { get; private set; }

        public SockAddrIn6* Addresses { get; private set; }

        public SockAddrIn6* Destination { get; private set; }

        public void Pin(byte[][] buffers, int start, int count, int offset, bool receive, ReadOnlySpan<int> sizes = default)
        {
            for (var i = 0; i < count; i++)
            {
                var buffer = buffers[start + i];
                int length;
                if (receive)
                {
                    length = buffer.Length;
                }
                else
                {
                    length = sizes[i];
                    if ((uint)offset > (uint)buffer.Length || (uint)length > (uint)(buffer.Length - offset))
                    {
                        Unpin(i);
                        throw new ArgumentOutOfRangeException(nameof(sizes), "datagram extends past its buffer");
                    }
                }

                _pins[i] = GCHandle.Alloc(buffer, GCHandleType.Pinned);
                Iovecs[i].Base = (byte*)_pins[i].AddrOfPinnedObject() + offset;
                Iovecs[i].Length = (nuint)length;
            }
        }

        public void Unpin(int count)
        {
            for (var i = 0; i < count; i++)
            {
                if (_pins[i].IsAllocated)
                {
                    _pins[i].Free();
                }
            }
        }

        public void PrepareReceive(int count, bool spill = false)
        {
            if (spill && _spill == null)
            {
                // Allocated on first use and never touched here: the kernel backs a page only when a datagram spills into it.
                _spill = (byte*)NativeMemory.Alloc((nuint)_capacity, SpillSize);
                _spillIovecs = (IoVec*)NativeMemory.AllocZeroed((nuint)_capacity * 2, (nuint)sizeof(IoVec));
            }

            for (var i = 0; i < count; i++)
            {
                TrainLengths[i] = 1;
                ref var m = ref Messages[i];
                m.Header.Name = &Addresses[i];
                m.Header.NameLength = (uint)sizeof(SockAddrIn6);
                if (spill)
                {
                    _spillIovecs[2 * i] = Iovecs[i];
                    _spillIovecs[(2 * i) + 1].Base = SpillSlot(i);
                    _spillIovecs[(2 * i) + 1].Length = SpillSize;
                    m.Header.Iov = &_spillIovecs[2 * i];
                    m.Header.IovLength = 2;
                }
                else
                {
                    m.Header.Iov = &Iovecs[i];
                    m.Header.IovLength = 1;
                }

                m.Header.Control = null;
                m.Header.ControlLength = 0;
                m.Header.Flags = 0;
                m.Length = 0;
            }
        }

        /// <summary>
        /// Fills one message per datagram, or, with <paramref name="gsoSizeLimit"/> &gt; 0, one message per GSO train:
        /// consecutive datagrams of one size (the last may be shorter), sent as one buffer that the kernel (or NIC)
        /// cuts into datagrams of that size (UDP_SEGMENT, Linux 4.18+). Returns the number of messages.
        /// </summary>
        public int PrepareSend(int count, uint nameLength, ReadOnlySpan<int> sizes, int gsoSizeLimit)
        {
            var m = 0;
            var i = 0;
            while (i < count)
            {
                var segment = sizes[i];
                var k = 1;
                if (gsoSizeLimit > 0 && segment > 0 && segment <= gsoSizeLimit)
                {
                    var total = segment;
                    while (i + k < count && k < UdpMaxSegments && sizes[i + k] <= segment && sizes[i + k] > 0
                           && total + sizes[i + k] <= MaxGsoBytes)
                    {
                        total += sizes[i + k];
                        k++;
                        if (sizes[i + k - 1] < segment)
                        {
                            break; // a shorter datagram can only end a train
                        }
                    }
                }

                ref var msg = ref Messages[m];
                msg.Header.Name = Destination;
                msg.Header.NameLength = nameLength;
                msg.Header.Iov = &Iovecs[i];
                msg.Header.IovLength = (nuint)k;
                msg.Header.Flags = 0;
                msg.Length = 0;
                if (k > 1)
                {
                    var cmsg = Control + (m * ControlStride);
                    ((CMsgHdr*)cmsg)->Length = (nuint)(sizeof(CMsgHdr) + sizeof(ushort));
                    ((CMsgHdr*)cmsg)->Level = SOL_UDP;
                    ((CMsgHdr*)cmsg)->Type = UDP_SEGMENT;
                    *(ushort*)(cmsg + sizeof(CMsgHdr)) = (ushort)segment;
                    msg.Header.Control = cmsg;
                    msg.Header.ControlLength = (nuint)ControlStride;
                }
                else
                {
                    msg.Header.Control = null;
                    msg.Header.ControlLength = 0;
                }

                TrainLengths[m] = k;
                m++;
                i += k;
            }

            return m;
        }

        /// <summary>Datagrams carried by the first <paramref name="messages"/> messages of the last <see cref="PrepareSend"/>.</summary>
        public int PacketsIn(int messages)
        {
            var n = 0;
            for (var j = 0; j < messages; j++)
            {
                n += TrainLengths[j];
            }

            return n;
        }

        public void Dispose()
        {
            if (Messages == null)
            {
                return;
            }

            NativeMemory.Free(Messages);
            NativeMemory.Free(Iovecs);
            NativeMemory.Free(Addresses);
            NativeMemory.Free(Destination);
            NativeMemory.Free(Control);
            NativeMemory.Free(_spill);
            NativeMemory.Free(_spillIovecs);
            _spill = null;
            _spillIovecs = null;
            Control = null;
            Messages = null;
            Iovecs = null;
            Addresses = null;
            Destination = null;
        }
    }

    private sealed class LinuxUdpBindFactory(bool receiveOffload) : IDatagramBindFactory
    {
        public IDatagramBind Open(ushort port) => LinuxUdpBind.Open(default(UdpEndpoint).WithPort(port), DefaultBatchSize, receiveOffload);
    }
}
