using static Sharptun.Transport.Linux.LinuxNative;

namespace Sharptun.Transport.Linux;

/// <summary>
/// The offload half of <see cref="LinuxTun"/>: a descriptor opened with IFF_VNET_HDR carries a struct virtio_net_hdr
/// (include/uapi/linux/virtio_net.h) in front of every packet, both ways (include/uapi/linux/if_tun.h). With TUNSETOFFLOAD
/// the kernel hands out TCP (and, from Linux 6.2, UDP) super-segments of up to 64 KB that Read cuts into MTU-sized packets
/// (<see cref="TunSegmenter"/>), and takes coalesced TCP super-packets that Write builds (<see cref="TunCoalescer"/>).
/// </summary>
public sealed unsafe partial class LinuxTun
{
    /// <summary>Room for one packet the kernel hands over: a 64 KB super-segment plus slack.</summary>
    private const int ReceiveBufferBytes = ushort.MaxValue + 1 + 4096;

    private readonly int _vnetHeaderLength; // 0: plain TUN (no virtio_net_hdr)
    private byte[]? _receiveBuffer;         // pinned: [virtio_net_hdr][packet], one super-segment at a time
    private GsoState _pending;              // the super-segment in _receiveBuffer still being cut
    private byte[]? _sendBuffer;            // pinned: [virtio_net_hdr][coalesced packet]
    private TunCoalescer? _coalescer;
    private long _superSegmentsRead;
    private long _segmentsProduced;
    private long _coalescedWrites;
    private long _coalescedSegments;

    /// <summary>
    /// How this device moves packets, as the daemon logs it: <c>"tso4+tso6+csum, gro on"</c> (plus <c>uso4+uso6</c> where
    /// the kernel segments UDP too) when offloads are on, or <c>"off: "</c> and the reason.
    /// </summary>
    public string OffloadMode { get; }

    /// <summary>Whether the descriptor carries virtio_net_hdr headers (IFF_VNET_HDR), i.e. offloads were negotiated or inherited.</summary>
    public bool HasVirtioHeaders => _vnetHeaderLength != 0;

    /// <summary>Super-segments (TCP TSO or UDP USO, up to 64 KB) read from the kernel and cut into packets.</summary>
    public long SuperSegmentsRead => Interlocked.Read(ref _superSegmentsRead);

    /// <summary>Packets cut from <see cref="SuperSegmentsRead"/>; the ratio is the average segments per super-segment read.</summary>
    public long SegmentsProduced => Interlocked.Read(ref _segmentsProduced);

    /// <summary>Writes that carried several TCP segments of one flow as one super-packet (GRO).</summary>
    public long CoalescedWrites => Interlocked.Read(ref _coalescedWrites);

    /// <summary>Packets carried by <see cref="CoalescedWrites"/>.</summary>
    public long CoalescedSegments => Interlocked.Read(ref _coalescedSegments);

    /// <summary>
    /// TUNSETOFFLOAD with checksum and TCP segmentation offload (and UDP segmentation offload where the kernel accepts it).
    /// Returns the accepted TUN_F_* flags, or 0 with <paramref name="reason"/> set when even TSO is refused.
    /// </summary>
    private static uint NegotiateOffloads(int fd, out string reason)
    {
        reason = "";
        const uint tso = TUN_F_CSUM | TUN_F_TSO4 | TUN_F_TSO6;
        if (ioctl(fd, TUNSETOFFLOAD, (void*)(nuint)(tso | TUN_F_USO4 | TUN_F_USO6)) == 0)
        {
            return tso | TUN_F_USO4 | TUN_F_USO6;
        }

        if (ioctl(fd, TUNSETOFFLOAD, (void*)(nuint)tso) == 0)
        {
            return tso;
        }

        reason = $"TUNSETOFFLOAD refused (errno {LastErrno})";
        return 0;
    }

    private static string Describe(uint offloads) =>
        ((offloads & TUN_F_USO4) != 0 ? "tso4+tso6+uso4+uso6+csum" : "tso4+tso6+csum") + ", gro on";

    /// <summary>Read for a descriptor with virtio_net_hdr: cuts super-segments, completes partial checksums. Called under the read lock with the descriptors referenced.</summary>
    private int ReadWithHeaders(byte[][] buffers, Span<int> sizes, int offset, int max)
    {
        var receive = _receiveBuffer ??= GC.AllocateUninitializedArray<byte>(ReceiveBufferBytes, pinned: true);
        var n = 0;
        long dropped = 0;
        try
        {
            if (_pending.Pending)
            {
                var produced = TunSegmenter.Segment(receive.AsSpan(_vnetHeaderLength, _pending.Length), ref _pending, buffers, sizes, 0, max, offset, OversizePool, ref dropped);
                n += produced;
                Interlocked.Add(ref _segmentsProduced, produced);
            }

            while (n < max)
            {
                if (Volatile.Read(ref _disposed) != 0)
                {
                    return 0;
                }

                nint r;
                fixed (byte* p = receive)
                {
                    r = read(_fd.Fd, p, (nuint)receive.Length);
                }

                if (r > 0)
                {
                    if (r < _vnetHeaderLength + 20)
                    {
                        dropped++;
                        continue;
                    }

                    var header = VirtioNetHeader.Read(receive);
                    var packet = receive.AsSpan(_vnetHeaderLength, (int)r - _vnetHeaderLength);
                    switch (TunSegmenter.Parse(header, packet, out var state))
                    {
                        case TunReadKind.Plain:
                            var buffer = buffers[n];
                            if (buffer.Length - offset < packet.Length)
                            {
                                if (!TryRentOversize(packet.Length + offset, out buffer))
                                {
                                    dropped++;
                                    continue;
                                }

                                buffers[n] = buffer;
                            }

                            packet.CopyTo(buffer.AsSpan(offset));
                            sizes[n++] = packet.Length;
                            break;
                        case TunReadKind.Gso:
                            _pending = state;
                            Interlocked.Increment(ref _superSegmentsRead);
                            var produced = TunSegmenter.Segment(packet, ref _pending, buffers, sizes, n, max, offset, OversizePool, ref dropped);
                            n += produced;
                            Interlocked.Add(ref _segmentsProduced, produced);
                            break;
                        default:
                            dropped++;
                            break;
                    }

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
            if (dropped != 0)
            {
                Interlocked.Add(ref _readDropped, dropped);
            }
        }
    }

    private bool TryRentOversize(int needed, out byte[] buffer)
    {
        buffer = null!;
        var oversize = OversizePool;
        if (oversize is null || oversize.BufferSize < needed)
        {
            return false;
        }

        try
        {
            buffer = oversize.Rent(TimeSpan.FromMilliseconds(250));
            return true;
        }
        catch (TimeoutException)
        {
            return false;
        }
    }

    /// <summary>
    /// Write for a descriptor with virtio_net_hdr: runs of one TCP flow go as one super-packet (when offloads are on),
    /// everything else with an all-zero header in its own iovec (the caller's headroom is left alone).
    /// Called under the write lock with the descriptors referenced.
    /// </summary>
    private int WriteWithHeaders(byte[][] buffers, ReadOnlySpan<int> sizes, int offset, int count)
    {
        var coalescer = _coalescer;
        var groups = 0;
        if (coalescer is not null && count > 1)
        {
            if (count > coalescer.Capacity)
            {
                coalescer = _coalescer = new TunCoalescer(count); // callers beyond BatchSize only
            }

            groups = coalescer.Plan(buffers, sizes, offset, count);
        }

        var zero = stackalloc byte[_vnetHeaderLength];
        new Span<byte>(zero, _vnetHeaderLength).Clear();
        var accepted = 0;
        var refused = 0;
        for (var i = 0; i < count; i++)
        {
            if (groups > 0 && coalescer!.IsMember(i))
            {
                continue;
            }

            WriteOutcome outcome;
            if (groups > 0 && coalescer!.IsHead(i))
            {
                var send = _sendBuffer ??= GC.AllocateUninitializedArray<byte>(_vnetHeaderLength + ushort.MaxValue + 1, pinned: true);
                var skip = _vnetHeaderLength - VirtioNetHeader.Size;
                var length = coalescer.Build(i, buffers, sizes, offset, send.AsSpan(skip));
                if (skip > 0)
                {
                    // A longer header (TUNSETVNETHDRSZ on an inherited descriptor): virtio_net_hdr first, zeros up to the packet.
                    send.AsSpan(skip, VirtioNetHeader.Size).CopyTo(send);
                    send.AsSpan(VirtioNetHeader.Size, skip).Clear();
                }

                fixed (byte* p = send)
                {
                    IoVec vector = new() { Base = p, Length = (nuint)(skip + length) };
                    outcome = WriteVectors(&vector, 1);
                }

                if (outcome == WriteOutcome.Written)
                {
                    var segments = coalescer.GroupCount(i);
                    accepted += segments;
                    Interlocked.Increment(ref _coalescedWrites);
                    Interlocked.Add(ref _coalescedSegments, segments);
                    continue;
                }

                if (outcome == WriteOutcome.Refused)
                {
                    // The kernel refused the super-packet: send its segments one by one instead.
                    for (var m = i; m >= 0 && outcome != WriteOutcome.Closed; m = coalescer.Next(m))
                    {
                        outcome = WriteSingle(zero, buffers[m], offset, sizes[m]);
                        if (outcome == WriteOutcome.Written)
                        {
                            accepted++;
                        }
                        else if (outcome == WriteOutcome.Refused)
                        {
                            refused++;
                            Interlocked.Increment(ref _writeDropped);
                        }
                    }
                }
            }
            else
            {
                outcome = WriteSingle(zero, buffers[i], offset, sizes[i]);
                if (outcome == WriteOutcome.Written)
                {
                    accepted++;
                }
                else if (outcome == WriteOutcome.Refused)
                {
                    refused++;
                    Interlocked.Increment(ref _writeDropped);
                }
            }

            if (outcome == WriteOutcome.Closed)
            {
                Interlocked.Add(ref _writeDropped, count - accepted - refused);
                return accepted;
            }
        }

        return accepted;
    }

    private WriteOutcome WriteSingle(byte* header, byte[] buffer, int offset, int size)
    {
        fixed (byte* p = buffer)
        {
            var vectors = stackalloc IoVec[2];
            vectors[0].Base = header;
            vectors[0].Length = (nuint)_vnetHeaderLength;
            vectors[1].Base = p + offset;
            vectors[1].Length = (nuint)size;
            return WriteVectors(vectors, 2);
        }
    }

    private enum WriteOutcome
    {
        Written,
        Refused,
        Closed,
    }

    /// <summary>writev(2) with the retries of <see cref="Write"/>: EINTR again, EAGAIN waits, a gone interface closes the device.</summary>
    private WriteOutcome WriteVectors(IoVec* vectors, int count)
    {
        while (true)
        {
            if (Volatile.Read(ref _closed) != 0 || Volatile.Read(ref _disposed) != 0)
            {
                return WriteOutcome.Closed;
            }

            if (writev(_fd.Fd, vectors, count) >= 0)
            {
                return WriteOutcome.Written;
            }

            var errno = LastErrno;
            if (errno == EINTR)
            {
                continue;
            }

            if (errno == EAGAIN)
            {
                _ = WaitReady(_fd.Fd, POLLOUT, _wakeup.Handle.Fd); // woken by Dispose: the loop head sees it
                continue;
            }

            if (errno is EBADFD or ENXIO or ENODEV or EBADF or EPIPE)
            {
                Volatile.Write(ref _closed, 1);
                return WriteOutcome.Closed;
            }

            return WriteOutcome.Refused; // EINVAL (not an IP packet, a header the kernel rejects), EIO (interface down) ...
        }
    }
}
