using System.Runtime.InteropServices;
using static Sharptun.Transport.Linux.LinuxNative;

namespace Sharptun.Transport.Linux;

/// <summary>The receive half with UDP GRO (udp(7) UDP_GRO, include/uapi/linux/udp.h; Linux 5.0+).</summary>
public sealed unsafe partial class LinuxUdpBind
{
    /// <summary>Non-null when the kernel accepted UDP_GRO at open: receives go through its scratch slots.</summary>
    private readonly GroReceiver? _gro;

    private long _groCoalesced;

    /// <summary>
    /// True when receives use UDP GRO (asked for at open and accepted by the kernel): the kernel may deliver several
    /// equal-size datagrams of one source as one buffer (from a sender using UDP GSO, or merged by the receiving NIC's
    /// GRO), and the bind splits it into one datagram per caller buffer. It receives such buffers into
    /// up to <see cref="GroSlots"/> scratch slots of 64 KiB (1 MiB of native memory per bind, allocated at open; a page is
    /// backed only once a datagram lands in it, and the bind asks for only as many slots as the caller's free buffers are
    /// likely to need, so long runs use the first few slots and short ones touch a page or two of each) and copies each
    /// datagram out; datagrams that do not fit the caller's buffers in one <see cref="Receive"/> are kept for the next one.
    /// False: datagrams land straight in the caller's buffers.
    /// </summary>
    public bool ReceiveOffload => _gro is not null;

    /// <summary>Buffers received with UDP GRO that held more than one datagram (each split into its datagrams).</summary>
    public long GroCoalescedReceives => Interlocked.Read(ref _groCoalesced);

    /// <summary>Scratch slots of 64 KiB a GRO bind receives into: at most this many buffers per recvmmsg.</summary>
    internal const int GroSlots = GroReceiver.Slots;

    /// <summary>
    /// Receives with UDP GRO: first the datagrams left over from the previous call, then recvmmsg into the scratch slots
    /// (at most as many buffers as the caller has buffers left) until the caller's buffers are full or the queue runs dry.
    /// Blocks (in poll) only while it has nothing at all to return. Called under the receive lock with references held.
    /// </summary>
    private int ReceiveCoalesced(GroReceiver gro, byte[][] buffers, Span<int> sizes, Span<UdpEndpoint> endpoints, int max)
    {
        var oversize = _oversizePool;
        var dropped = 0;
        try
        {
            var n = gro.Deliver(buffers, sizes, endpoints, 0, max, oversize, ref dropped);
            while (n < max)
            {
                if (Volatile.Read(ref _disposed) != 0)
                {
                    return 0;
                }

                var count = gro.SlotsFor(max - n);
                gro.Prepare(count);
                var r = ReceiveMessages(gro.Messages, count, out var errno);

                if (r > 0)
                {
                    Interlocked.Add(ref _groCoalesced, gro.Accept(r));
                    n = gro.Deliver(buffers, sizes, endpoints, n, max, oversize, ref dropped);
                    if (r < count && n > 0)
                    {
                        return n; // the queue ran dry: asking again now would only cost a syscall that finds nothing
                    }

                    continue;
                }

                if (n > 0)
                {
                    return n; // nothing more queued (or an error the next call sees again): hand over what we have
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
                        break; // a pending ICMP error reported on the socket: not ours to stop for
                    default:
                        if (Volatile.Read(ref _disposed) != 0)
                        {
                            return 0;
                        }

                        throw new IOException($"recvmmsg failed: errno {errno}");
                }
            }

            return n;
        }
        finally
        {
            if (dropped > 0)
            {
                Interlocked.Add(ref _receiveDropped, dropped);
            }
        }
    }

    /// <summary>
    /// The scratch slots of a GRO bind (native memory, allocated once), the message headers pointing at them, and the
    /// state of the buffers received but not yet handed out: message <see cref="_next"/> of <see cref="_count"/>, from
    /// byte <see cref="_offset"/>. Used only under the bind's receive lock.
    /// </summary>
    private sealed class GroReceiver : IDisposable
    {
        /// <summary>
        /// Scratch slots: at most this many buffers per recvmmsg (16 x 64 KiB = 1 MiB of address space, all of which may
        /// end up backed). Measured between two daemons: a sender's GSO runs arrived 2 to 3 datagrams per buffer, and 8
        /// slots capped more than half of the calls; 32 still capped a sixth of them but could keep 2 MiB resident.
        /// </summary>
        public const int Slots = 16;

        /// <summary>Fewest slots asked for while buffers arrive well filled: enough that one call still fills a batch.</summary>
        private const int MinSlots = 8;

        /// <summary>
        /// One slot holds any buffer the kernel coalesces: at most 64 KiB (skb_gro_receive stops at GRO_MAX_SIZE, and a
        /// sender's UDP_SEGMENT buffer is one IP datagram). A larger one (a raised gro_max_size) is truncated, dropped and counted.
        /// </summary>
        public const int SlotSize = 1 << 16;

        /// <summary>
        /// Control bytes per message: CMSG_SPACE(sizeof(int)) for UDP_GRO (24 on LP64) with room to spare for
        /// CMSG_SPACE(sizeof(struct in6_pktinfo)) (40), so receiving IP_PKTINFO (sticky sources) needs no resizing.
        /// </summary>
        public const int ControlSize = 64;

        private readonly int[] _segment = new int[Slots];
        private byte* _data;
        private byte* _control;
        private IoVec* _iovecs;
        private SockAddrIn6* _addresses;
        private int _count;
        private int _next;
        private int _offset;
        private int _perBuffer16 = 16; // datagrams per received buffer, moving average, times 16

        public GroReceiver()
        {
            _data = (byte*)NativeMemory.Alloc(Slots, SlotSize); // not touched here: the kernel backs pages as datagrams land
            _control = (byte*)NativeMemory.AllocZeroed(Slots, ControlSize);
            _iovecs = (IoVec*)NativeMemory.AllocZeroed(Slots, (nuint)sizeof(IoVec));
            _addresses = (SockAddrIn6*)NativeMemory.AllocZeroed(Slots, (nuint)sizeof(SockAddrIn6));
            Messages = (MMsgHdr*)NativeMemory.AllocZeroed(Slots, (nuint)sizeof(MMsgHdr));
        }

        public MMsgHdr* Messages { get; private set; }

        /// <summary>
        /// Slots to ask for when the caller has <paramref name="free"/> buffers left: as many buffers as are likely to fill
        /// them (from the datagrams per buffer seen lately), at least <see cref="MinSlots"/>, at most <see cref="Slots"/>.
        /// Long runs thus keep to the first slots (their pages stay the only ones deeply backed) and short ones get many.
        /// </summary>
        public int SlotsFor(int free)
        {
            var likely = ((free * 16) + _perBuffer16 - 1) / _perBuffer16;
            return Math.Min(free, Math.Clamp(likely, MinSlots, Slots));
        }

        /// <summary>Points the first <paramref name="count"/> messages at their slots (nothing may be pending).</summary>
        public void Prepare(int count)
        {
            for (var i = 0; i < count; i++)
            {
                _iovecs[i].Base = _data + ((nint)i * SlotSize);
                _iovecs[i].Length = SlotSize;
                ref var m = ref Messages[i];
                m.Header.Name = &_addresses[i];
                m.Header.NameLength = (uint)sizeof(SockAddrIn6);
                m.Header.Iov = &_iovecs[i];
                m.Header.IovLength = 1;
                m.Header.Control = _control + (i * ControlSize);
                m.Header.ControlLength = ControlSize;
                m.Header.Flags = 0;
                m.Length = 0;
            }
        }

        /// <summary>Takes <paramref name="received"/> filled messages as pending; returns how many of them are coalesced.</summary>
        public int Accept(int received)
        {
            var coalesced = 0;
            var datagrams = 0;
            for (var i = 0; i < received; i++)
            {
                ref var m = ref Messages[i];
                _segment[i] = SegmentSize(m.Header.Control, (int)m.Header.ControlLength);
                if (_segment[i] > 0 && m.Length > (uint)_segment[i])
                {
                    coalesced++;
                    datagrams += (int)((m.Length + (uint)_segment[i] - 1) / (uint)_segment[i]);
                }
                else
                {
                    datagrams++;
                }
            }

            _perBuffer16 = Math.Max(16, ((3 * _perBuffer16) + (datagrams * 16 / received)) / 4);

            _count = received;
            _next = 0;
            _offset = 0;
            return coalesced;
        }

        /// <summary>
        /// Hands out pending datagrams into <c>buffers[n..max)</c> in arrival order (a coalesced buffer cut every segment
        /// size, the last piece possibly shorter, all with the buffer's source); returns the new n. Stops when the caller's
        /// buffers are full, keeping the rest. A truncated buffer, or a datagram that fits neither the caller's buffer nor
        /// one from <paramref name="oversize"/>, is counted in <paramref name="dropped"/>.
        /// </summary>
        public int Deliver(byte[][] buffers, Span<int> sizes, Span<UdpEndpoint> endpoints, int n, int max, PacketBufferPool? oversize, ref int dropped)
        {
            while (_next < _count && n < max)
            {
                ref var m = ref Messages[_next];
                if ((m.Header.Flags & (MSG_TRUNC | MSG_CTRUNC)) != 0)
                {
                    // Larger than a slot, or its segment size lost with the control data: cannot be cut safely.
                    dropped++;
                    _next++;
                    continue;
                }

                var length = (int)m.Length;
                var segment = _segment[_next] > 0 ? _segment[_next] : length;
                var data = _data + ((nint)_next * SlotSize);
                var source = ToEndpoint(&_addresses[_next]);
                do
                {
                    var piece = Math.Min(segment, length - _offset);
                    var span = new ReadOnlySpan<byte>(data + _offset, piece);
                    _offset += piece;
                    if (piece <= buffers[n].Length)
                    {
                        span.CopyTo(buffers[n]);
                    }
                    else if (oversize is not null && oversize.TryRent(out var big) && big.Length >= piece)
                    {
                        span.CopyTo(big);
                        buffers[n] = big; // the caller keeps its own buffer and now owns this one (see OversizePool)
                    }
                    else
                    {
                        dropped++;
                        continue;
                    }

                    sizes[n] = piece;
                    endpoints[n] = source;
                    n++;
                }
                while (_offset < length && n < max);

                if (_offset >= length)
                {
                    _next++;
                    _offset = 0;
                }
            }

            return n;
        }

        /// <summary>The UDP_GRO segment size in a message's control data (cmsg walk as CMSG_FIRSTHDR/CMSG_NXTHDR), or 0.</summary>
        private static int SegmentSize(void* control, int length)
        {
            var p = (byte*)control;
            var header = sizeof(CMsgHdr); // CMSG_ALIGN(sizeof(struct cmsghdr)): where CMSG_DATA starts
            while (length >= header)
            {
                var c = (CMsgHdr*)p;
                var cmsgLength = (int)c->Length;
                if (cmsgLength < header || cmsgLength > length)
                {
                    return 0;
                }

                if (c->Level == SOL_UDP && c->Type == UDP_GRO && cmsgLength >= header + sizeof(int))
                {
                    return *(int*)(p + header);
                }

                var step = (cmsgLength + sizeof(nuint) - 1) & ~(sizeof(nuint) - 1); // CMSG_ALIGN
                p += step;
                length -= step;
            }

            return 0;
        }

        public void Dispose()
        {
            if (Messages == null)
            {
                return;
            }

            NativeMemory.Free(_data);
            NativeMemory.Free(_control);
            NativeMemory.Free(_iovecs);
            NativeMemory.Free(_addresses);
            NativeMemory.Free(Messages);
            _data = null;
            _control = null;
            _iovecs = null;
            _addresses = null;
            Messages = null;
            _count = 0;
        }
    }
}
