using System.Runtime.Versioning;
using System.Text;
using static Sharptun.Transport.Linux.LinuxNative;

namespace Sharptun.Transport.Linux;

/// <summary>
/// A Linux TUN device (<c>/dev/net/tun</c>, <c>IFF_TUN | IFF_NO_PI</c>): whole IP packets, no link-layer header.
/// Created by name (or kernel-chosen name) with <see cref="Create"/>, or wrapping a descriptor someone else opened
/// (Android's VpnService, a parent process) with <see cref="FromFileDescriptor"/>.
/// </summary>
/// <remarks>
/// <para>The descriptor is non-blocking; <see cref="Read"/> waits in poll(2) on it together with an eventfd that
/// <see cref="Dispose"/> signals, so Dispose always releases a blocked Read, and the descriptor is closed only after
/// the last in-flight call has left (no fd-reuse race). A Read drains up to <see cref="BatchSize"/> queued packets
/// with successive read(2) calls.</para>
/// <para>When the interface is deleted underneath (e.g. <c>ip link del</c>, in whatever namespace it was moved to) the
/// kernel detaches the queue: read fails with EBADFD and poll reports POLLERR. The device then counts as closed and Read
/// returns 0, as after Dispose; <see cref="ProbeClosed"/> asks the descriptor without reading. The interface's name is
/// never consulted, so moving the interface to another network namespace is not a deletion.</para>
/// <para>With an <see cref="OversizePool"/>, a packet longer than the caller's buffer is not lost: read(2) becomes readv(2)
/// with a second vector into a 64 KiB scratch buffer, and a packet that spills into it is copied into a buffer rented
/// from the oversize pool, which replaces the caller's buffer in <c>buffers[i]</c> (the caller keeps its own). So the
/// caller's buffers need only fit the usual MTU while any MTU up to 65535, changed at run time, still works.</para>
/// <para>Offloads (the default of <see cref="Create"/>): the descriptor is opened with
/// IFF_VNET_HDR and TUNSETOFFLOAD (TUN_F_CSUM | TUN_F_TSO4 | TUN_F_TSO6, plus TUN_F_USO4 | TUN_F_USO6 where the kernel
/// has them), so the kernel's TCP hands over one super-segment of up to 64 KB per read(2). Read cuts it into MTU-sized
/// packets, one per caller buffer as without offloads (a super-segment that yields more packets than the batch has room
/// for is finished by the next Read), with lengths, IPv4 IDs, sequence numbers, flags and checksums as the kernel's
/// segmentation would set them. Write coalesces consecutive TCP segments of one flow in the batch into one super-packet
/// per write(2) (GRO). When the kernel refuses the ioctls the device falls back to a plain TUN; <see cref="OffloadMode"/>
/// says which mode is on and the counters (<see cref="SuperSegmentsRead"/>, <see cref="CoalescedWrites"/>) what it did.</para>
/// <para>Not implemented yet: multi-queue.</para>
/// </remarks>
[SupportedOSPlatform("linux")]
public sealed unsafe partial class LinuxTun : IPacketDevice
{
    /// <summary>Default packets per Read/Write.</summary>
    public const int DefaultBatchSize = 128;

    private readonly SafeFd _fd;
    private readonly Wakeup _wakeup;
    private readonly object _readLock = new();
    private readonly object _writeLock = new();
    private int _disposed;
    private int _closed;
    private long _writeDropped;
    private long _readDropped;
    private byte[]? _scratch;

    private LinuxTun(SafeFd fd, string name, int mtu, int batchSize, int vnetHeaderLength, bool coalesce, string offloadMode)
    {
        _fd = fd;
        Name = name;
        Mtu = mtu;
        BatchSize = batchSize;
        _vnetHeaderLength = vnetHeaderLength;
        _coalescer = coalesce ? new TunCoalescer(Math.Max(1, batchSize)) : null;
        OffloadMode = offloadMode;
        _wakeup = new Wakeup();
    }

    /// <summary>
    /// Creates a TUN interface named <paramref name="name"/> (null or empty = the kernel picks <c>tunN</c>) in the
    /// calling thread's network namespace, sets its MTU and, when <paramref name="up"/>, brings it up.
    /// With <paramref name="offload"/> (the default) it asks for IFF_VNET_HDR and TUNSETOFFLOAD (TSO4/TSO6 and checksum,
    /// USO4/USO6 where accepted) and coalesces writes, falling back to a plain TUN when the kernel refuses
    /// (<see cref="OffloadMode"/> says why). Needs CAP_NET_ADMIN. Throws <see cref="IOException"/> on failure.
    /// </summary>
    /// <param name="name">The interface name, or null/empty for a kernel-chosen <c>tunN</c>.</param>
    /// <param name="mtu">The interface MTU.</param>
    /// <param name="up">Whether to bring the interface up.</param>
    /// <param name="batchSize">Packets per Read/Write.</param>
    /// <param name="offload">Whether to try segmentation offloads and write coalescing; false gives a plain TUN.</param>
    public static LinuxTun Create(string? name, int mtu = 1420, bool up = true, int batchSize = DefaultBatchSize, bool offload = true)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(mtu, 68);
        if (name is not null && Encoding.UTF8.GetByteCount(name) >= IFNAMSIZ)
        {
            throw new ArgumentException("interface names are at most 15 bytes", nameof(name));
        }

        var reason = "disabled";
        if (offload)
        {
            var tun = TryCreate(name, mtu, up, batchSize, withOffloads: true, ref reason);
            if (tun is not null)
            {
                return tun;
            }
        }

        return TryCreate(name, mtu, up, batchSize, withOffloads: false, ref reason)!;
    }

    /// <summary>Opens and attaches the TUN; with <paramref name="withOffloads"/> returns null (reason set) when the kernel refuses IFF_VNET_HDR or TUNSETOFFLOAD.</summary>
    private static LinuxTun? TryCreate(string? name, int mtu, bool up, int batchSize, bool withOffloads, ref string reason)
    {
        var fd = open("/dev/net/tun", O_RDWR | O_NONBLOCK | O_CLOEXEC);
        if (fd < 0)
        {
            throw new IOException($"open(/dev/net/tun) failed: errno {LastErrno}");
        }

        var handle = new SafeFd(fd);
        try
        {
            IfReq request = default;
            WriteName(ref request, name ?? "");
            request.Value = IFF_TUN | IFF_NO_PI | (withOffloads ? IFF_VNET_HDR : 0);
            if (ioctl(fd, TUNSETIFF, &request) != 0)
            {
                var errno = LastErrno;
                if (withOffloads && errno == EINVAL)
                {
                    reason = $"IFF_VNET_HDR refused (errno {errno})";
                    handle.Dispose();
                    return null;
                }

                throw new IOException($"ioctl(TUNSETIFF, {name}) failed: errno {errno}");
            }

            var offloads = 0u;
            if (withOffloads)
            {
                offloads = NegotiateOffloads(fd, out reason);
                if (offloads == 0)
                {
                    // Closing the descriptor deletes the interface; the plain attempt creates it again.
                    handle.Dispose();
                    return null;
                }
            }

            var actual = ReadName(ref request);
            SetMtu(actual, mtu);
            if (up)
            {
                SetUp(actual);
            }

            return withOffloads
                ? new LinuxTun(handle, actual, mtu, batchSize, VirtioNetHeader.Size, coalesce: true, Describe(offloads))
                : new LinuxTun(handle, actual, mtu, batchSize, 0, coalesce: false, "off: " + reason);
        }
        catch
        {
            handle.Dispose();
            throw;
        }
    }

    /// <summary>
    /// Wraps a TUN descriptor opened elsewhere (Android VpnService, an inherited fd). The device sets it non-blocking.
    /// With <paramref name="ownsDescriptor"/>, Dispose closes it. Whether
    /// packets carry a virtio_net_hdr was decided by whoever attached it: only when IFF_VNET_HDR is set on it (TUNGETIFF)
    /// does the device read and write the headers (of the size TUNGETVNETHDRSZ reports), and then, with
    /// <paramref name="offload"/>, it also turns segmentation offloads on (TUNSETOFFLOAD) and coalesces writes; without
    /// <paramref name="offload"/> it clears the offloads. A descriptor without IFF_VNET_HDR gets no offloads.
    /// </summary>
    /// <param name="fd">An open descriptor of <c>/dev/net/tun</c> attached (TUNSETIFF) to a TUN interface with IFF_NO_PI.</param>
    /// <param name="name">The interface the descriptor is expected to belong to, or empty to take the name the kernel reports.</param>
    /// <param name="mtu">The MTU the device assumes.</param>
    /// <param name="ownsDescriptor">Whether Dispose closes the descriptor.</param>
    /// <param name="batchSize">Packets per Read/Write.</param>
    /// <param name="offload">Whether to turn offloads on when the descriptor has IFF_VNET_HDR.</param>
    /// <exception cref="IOException">The descriptor is not open, not a TUN device (ioctl TUNGETIFF fails), not attached to an
    /// interface, a TAP device, carries packet-information headers (no IFF_NO_PI), or belongs to another interface than
    /// <paramref name="name"/>; the message says which.</exception>
    public static LinuxTun FromFileDescriptor(int fd, string name, int mtu, bool ownsDescriptor = true, int batchSize = DefaultBatchSize, bool offload = true)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(fd);
        ArgumentNullException.ThrowIfNull(name);
        IfReq request = default;
        if (ioctl(fd, TUNGETIFF, &request) != 0)
        {
            var errno = LastErrno;
            throw new IOException(errno switch
            {
                EBADF => $"descriptor {fd} is not open",
                ENOTTY or EINVAL => $"descriptor {fd} is not a TUN device (ioctl TUNGETIFF: errno {errno})",
                EBADFD => $"descriptor {fd} is a TUN device not attached to an interface (no TUNSETIFF yet)",
                _ => $"ioctl(TUNGETIFF) on descriptor {fd} failed: errno {errno}",
            });
        }

        var kernelFlags = (short)request.Value;
        var actual = ReadName(ref request);
        if ((kernelFlags & IFF_TAP) != 0 || (kernelFlags & IFF_TUN) == 0)
        {
            throw new IOException($"descriptor {fd} is a TAP device ({actual}), not a TUN device");
        }

        if ((kernelFlags & IFF_NO_PI) == 0)
        {
            throw new IOException($"descriptor {fd} ({actual}) was attached without IFF_NO_PI: packets would carry headers this device does not read");
        }

        if (name.Length > 0 && name != actual)
        {
            throw new IOException($"descriptor {fd} is the TUN device of interface {actual}, not {name}");
        }

        var flags = fcntl(fd, F_GETFL, 0);
        if (flags < 0 || fcntl(fd, F_SETFL, flags | O_NONBLOCK) < 0)
        {
            throw new IOException($"fcntl(O_NONBLOCK) on fd {fd} failed: errno {LastErrno}");
        }

        if ((kernelFlags & IFF_VNET_HDR) == 0)
        {
            return new LinuxTun(new SafeFd(fd, ownsDescriptor), actual, mtu, batchSize, 0, coalesce: false, "off: inherited descriptor without IFF_VNET_HDR");
        }

        var headerLength = VirtioNetHeader.Size;
        if (ioctl(fd, TUNGETVNETHDRSZ, &headerLength) != 0 || headerLength < VirtioNetHeader.Size)
        {
            headerLength = VirtioNetHeader.Size;
        }

        if (!offload)
        {
            _ = ioctl(fd, TUNSETOFFLOAD, null); // no super-segments; the headers stay (all zero)
            return new LinuxTun(new SafeFd(fd, ownsDescriptor), actual, mtu, batchSize, headerLength, coalesce: false, "off: disabled (inherited descriptor with IFF_VNET_HDR: headers kept)");
        }

        var offloads = NegotiateOffloads(fd, out var reason);
        return offloads == 0
            ? new LinuxTun(new SafeFd(fd, ownsDescriptor), actual, mtu, batchSize, headerLength, coalesce: false, $"off: {reason} (inherited descriptor with IFF_VNET_HDR: headers kept)")
            : new LinuxTun(new SafeFd(fd, ownsDescriptor), actual, mtu, batchSize, headerLength, coalesce: true, Describe(offloads));
    }

    /// <inheritdoc/>
    public string Name { get; }

    /// <inheritdoc/>
    public int Mtu { get; }

    /// <inheritdoc/>
    public int BatchSize { get; }

    /// <summary>The underlying descriptor (valid until Dispose).</summary>
    public int FileDescriptor => _fd.Fd;

    /// <summary>True once the interface was deleted underneath the device (or it was disposed).</summary>
    public bool IsClosed => Volatile.Read(ref _closed) != 0 || Volatile.Read(ref _disposed) != 0;

    /// <summary>
    /// Asks the descriptor, without reading, whether the interface still exists: once the interface is deleted (in
    /// whatever network namespace it lives now) the kernel detaches the queue and poll(2) reports POLLERR (tun_chr_poll),
    /// and then the device counts as closed (<see cref="IsClosed"/>). Does not depend on the interface's name, so an
    /// interface moved to another namespace (<c>ip link set IF netns X</c>) stays attached. Thread-safe, non-blocking.
    /// </summary>
    /// <returns>True when the interface is gone or the device was disposed.</returns>
    public bool ProbeClosed()
    {
        if (IsClosed)
        {
            return true;
        }

        if (!_fd.TryAddRef())
        {
            return true;
        }

        try
        {
            PollFd pfd = new() { Fd = _fd.Fd, Events = POLLIN };
            int r;
            do
            {
                r = poll(&pfd, 1, 0);
            }
            while (r < 0 && LastErrno == EINTR);

            if (r > 0 && (pfd.ReturnedEvents & (POLLERR | POLLHUP | POLLNVAL)) != 0)
            {
                Volatile.Write(ref _closed, 1);
            }
        }
        finally
        {
            _fd.DangerousRelease();
        }

        return IsClosed;
    }

    /// <summary>
    /// Where packets longer than the caller's buffer go (see the remarks): when set, such a packet is copied into a
    /// buffer rented from this pool (waiting up to 250 ms when its budget is spent) and <see cref="Read"/> puts that
    /// buffer in the caller's array in place of the caller's one; the caller owns it and returns it to this pool.
    /// The pool's buffers should hold offset + 65535 bytes.
    /// </summary>
    public PacketBufferPool? OversizePool { get; set; }

    /// <summary>Packets read that did not fit the caller's buffer (give Read buffers of at least offset + <see cref="Mtu"/> bytes, or set <see cref="OversizePool"/>) and were dropped.</summary>
    public long ReadDropped => Interlocked.Read(ref _readDropped);

    /// <summary>Packets the kernel refused on write (malformed, wrong version, interface down) and dropped.</summary>
    public long WriteDropped => Interlocked.Read(ref _writeDropped);

    /// <summary>Sets the MTU of interface <paramref name="name"/> in the calling thread's namespace (SIOCSIFMTU).</summary>
    public static void SetMtu(string name, int mtu) =>
        InterfaceIoctl(name, SIOCSIFMTU, mtu, "SIOCSIFMTU");

    /// <summary>Brings interface <paramref name="name"/> up (SIOCGIFFLAGS + SIOCSIFFLAGS with IFF_UP).</summary>
    public static void SetUp(string name)
    {
        var flags = InterfaceIoctl(name, SIOCGIFFLAGS, 0, "SIOCGIFFLAGS");
        InterfaceIoctl(name, SIOCSIFFLAGS, (flags & 0xFFFF) | IFF_UP, "SIOCSIFFLAGS");
    }

    /// <summary>The kernel's index of interface <paramref name="name"/> (SIOCGIFINDEX), or -1 when it does not exist.</summary>
    public static int GetInterfaceIndex(string name)
    {
        try
        {
            return InterfaceIoctl(name, SIOCGIFINDEX, 0, "SIOCGIFINDEX");
        }
        catch (IOException)
        {
            return -1;
        }
    }

    /// <inheritdoc/>
    public int Read(byte[][] buffers, Span<int> sizes, int offset)
    {
        var max = Math.Min(Math.Min(buffers.Length, sizes.Length), BatchSize);
        if (max == 0)
        {
            return 0;
        }

        lock (_readLock)
        {
            if (IsClosed || !_fd.TryAddRef())
            {
                return 0;
            }

            if (!_wakeup.Handle.TryAddRef())
            {
                _fd.DangerousRelease();
                return 0;
            }

            try
            {
                if (_vnetHeaderLength != 0)
                {
                    return ReadWithHeaders(buffers, sizes, offset, max);
                }

                var n = 0;
                while (n < max)
                {
                    if (Volatile.Read(ref _disposed) != 0)
                    {
                        return 0;
                    }

                    var span = buffers[n].AsSpan(offset);
                    var oversize = OversizePool;
                    nint r;
                    if (oversize is null)
                    {
                        fixed (byte* p = span)
                        {
                            r = read(_fd.Fd, p, (nuint)span.Length);
                        }
                    }
                    else
                    {
                        r = ReadSpilling(span, oversize, buffers, n, offset);
                        if (r == SpilledAndDropped)
                        {
                            continue;
                        }
                    }

                    if (oversize is null && r >= span.Length && IsTruncated(span[..(int)Math.Min(r, span.Length)]))
                    {
                        // tun copies what fits and returns the copied length: only the IP header's length tells.
                        Interlocked.Increment(ref _readDropped);
                        continue;
                    }

                    if (r > 0)
                    {
                        sizes[n++] = (int)r;
                        continue;
                    }

                    if (ReadFailed(r, n, out var result))
                    {
                        return result;
                    }
                }

                return n;
            }
            finally
            {
                _wakeup.Handle.DangerousRelease();
                _fd.DangerousRelease();
            }
        }
    }

    /// <summary>
    /// After a read(2) that returned <paramref name="r"/> ≤ 0 with <paramref name="n"/> packets already in the batch:
    /// true with the count Read returns (nothing queued and some read, the wait released by Dispose, or the interface
    /// gone: tun detached, the device counts as closed), false to read again (EINTR; a packet longer than the buffer,
    /// which tun dropped; queued data after the wait). Call right after the read, before any other system call.
    /// </summary>
    private bool ReadFailed(long r, int n, out int result)
    {
        result = n;
        var errno = r < 0 ? LastErrno : EBADFD;
        switch (errno)
        {
            case EAGAIN:
                if (n > 0)
                {
                    return true;
                }

                if (!WaitReady(_fd.Fd, POLLIN, _wakeup.Handle.Fd))
                {
                    result = 0;
                    return true;
                }

                return false;
            case EINTR:
                return false;
            case EBADFD or EIO or ENXIO or ENODEV or EBADF or EPIPE:
                Volatile.Write(ref _closed, 1);
                return true;
            case EINVAL or EFAULT or EMSGSIZE:
                return false;
            default:
                throw new IOException($"read from {Name} failed: errno {errno}");
        }
    }

    /// <inheritdoc/>
    public int Write(byte[][] buffers, ReadOnlySpan<int> sizes, int offset, int count)
    {
        ObjectDisposedException.ThrowIf(Volatile.Read(ref _disposed) != 0, this);
        lock (_writeLock)
        {
            if (!_fd.TryAddRef())
            {
                throw new ObjectDisposedException(nameof(LinuxTun));
            }

            if (!_wakeup.Handle.TryAddRef())
            {
                _fd.DangerousRelease();
                throw new ObjectDisposedException(nameof(LinuxTun));
            }

            try
            {
                if (_vnetHeaderLength != 0)
                {
                    return WriteWithHeaders(buffers, sizes, offset, count);
                }

                var accepted = 0;
                for (var i = 0; i < count; i++)
                {
                    var packet = buffers[i].AsSpan(offset, sizes[i]);
                    while (true)
                    {
                        if (Volatile.Read(ref _closed) != 0 || Volatile.Read(ref _disposed) != 0)
                        {
                            Interlocked.Add(ref _writeDropped, count - i);
                            return accepted;
                        }

                        nint r;
                        fixed (byte* p = packet)
                        {
                            r = write(_fd.Fd, p, (nuint)packet.Length);
                        }

                        if (r >= 0)
                        {
                            accepted++;
                            break;
                        }

                        var errno = LastErrno;
                        if (errno == EINTR)
                        {
                            continue;
                        }

                        if (errno == EAGAIN)
                        {
                            if (!WaitReady(_fd.Fd, POLLOUT, _wakeup.Handle.Fd))
                            {
                                continue; // disposed: the loop head drops the rest
                            }

                            continue;
                        }

                        if (errno is EBADFD or ENXIO or ENODEV or EBADF or EPIPE)
                        {
                            Volatile.Write(ref _closed, 1);
                            continue;
                        }

                        // EINVAL (not an IP packet), EIO (interface down) ...: drop this one.
                        Interlocked.Increment(ref _writeDropped);
                        break;
                    }
                }

                return accepted;
            }
            finally
            {
                _wakeup.Handle.DangerousRelease();
                _fd.DangerousRelease();
            }
        }
    }

    /// <summary>Closes the device: a blocked <see cref="Read"/> returns 0, later writes throw. A created interface disappears with the descriptor.</summary>
    public void Dispose()
    {
        if (Interlocked.Exchange(ref _disposed, 1) != 0)
        {
            return;
        }

        _wakeup.Signal();
        _fd.Dispose();
        _wakeup.Dispose();
    }

    /// <summary>Returned by <see cref="ReadSpilling"/> for a packet that spilled over but found no oversize buffer (counted as dropped).</summary>
    private const nint SpilledAndDropped = -2; // read(2) returns -1 at worst

    /// <summary>
    /// readv(2) into <paramref name="span"/> and the scratch buffer; a packet that spills over is copied into an oversize
    /// buffer that replaces <c>buffers[n]</c>. Returns the packet length, -1 with errno set, or <see cref="SpilledAndDropped"/>.
    /// </summary>
    private nint ReadSpilling(Span<byte> span, PacketBufferPool oversize, byte[][] buffers, int n, int offset)
    {
        var scratch = _scratch ??= GC.AllocateUninitializedArray<byte>(ushort.MaxValue + 1, pinned: true);
        nint r;
        fixed (byte* p = span)
        fixed (byte* q = scratch)
        {
            var vectors = stackalloc IoVec[2];
            vectors[0].Base = p;
            vectors[0].Length = (nuint)span.Length;
            vectors[1].Base = q;
            vectors[1].Length = (nuint)scratch.Length;
            r = readv(_fd.Fd, vectors, 2);
        }

        if (r <= span.Length)
        {
            return r;
        }

        // The packet spilled into the scratch buffer: move it whole into a big enough buffer.
        byte[] big;
        try
        {
            big = oversize.Rent(TimeSpan.FromMilliseconds(250));
        }
        catch (TimeoutException)
        {
            Interlocked.Increment(ref _readDropped);
            return SpilledAndDropped;
        }

        if (big.Length - offset < r)
        {
            oversize.Return(big);
            Interlocked.Increment(ref _readDropped);
            return SpilledAndDropped;
        }

        span.CopyTo(big.AsSpan(offset));
        scratch.AsSpan(0, (int)r - span.Length).CopyTo(big.AsSpan(offset + span.Length));
        buffers[n] = big;
        return r;
    }

    /// <summary>True when the IP header announces more bytes than <paramref name="packet"/> holds (RFC 791 Total Length, RFC 8200 Payload Length).</summary>
    private static bool IsTruncated(ReadOnlySpan<byte> packet)
    {
        if (packet.Length >= 4 && packet[0] >> 4 == 4)
        {
            return System.Buffers.Binary.BinaryPrimitives.ReadUInt16BigEndian(packet[2..]) > packet.Length;
        }

        if (packet.Length >= 6 && packet[0] >> 4 == 6)
        {
            return 40 + System.Buffers.Binary.BinaryPrimitives.ReadUInt16BigEndian(packet[4..]) > packet.Length;
        }

        return false;
    }

    private static int InterfaceIoctl(string name, nuint request, int value, string what)
    {
        var fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
        if (fd < 0)
        {
            fd = socket(AF_INET6, SOCK_DGRAM | SOCK_CLOEXEC, 0);
        }

        if (fd < 0)
        {
            throw new IOException($"socket for {what} failed: errno {LastErrno}");
        }

        try
        {
            IfReq ifr = default;
            WriteName(ref ifr, name);
            ifr.Value = value;
            if (ioctl(fd, request, &ifr) != 0)
            {
                throw new IOException($"ioctl({what}, {name}) failed: errno {LastErrno}");
            }

            return ifr.Value;
        }
        finally
        {
            close(fd);
        }
    }

    private static void WriteName(ref IfReq request, string name)
    {
        fixed (byte* p = request.Name)
        {
            var span = new Span<byte>(p, IFNAMSIZ);
            span.Clear();
            Encoding.UTF8.GetBytes(name, span[..(IFNAMSIZ - 1)]);
        }
    }

    private static string ReadName(ref IfReq request)
    {
        fixed (byte* p = request.Name)
        {
            var span = new ReadOnlySpan<byte>(p, IFNAMSIZ);
            var end = span.IndexOf((byte)0);
            return Encoding.UTF8.GetString(end < 0 ? span : span[..end]);
        }
    }
}
