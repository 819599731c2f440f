using Sharptun.Protocol;
using Sharptun.Transport;

namespace Sharptun.Device;

// Outbound pipeline (TUN → UDP), DESIGN.md "Data path":
//
//   1. TunReaderLoop (one thread) reads a batch from the packet device into pooled buffers at offset 16 (header room;
//      the pool's buffers leave tail room for padding + tag, so encryption is in place). Renting waits when the pool's
//      budget is spent: backpressure on the reader, never growth.
//   2. Route: destination address → peer through the allowed-IPs trie (lock-free).
//   3. Under the peer's SendLock: if packets are staged or no keypair is usable, stage this one (bounded, oldest
//      dropped) and ask the timer service for a handshake. Else reserve the next counter (Peer.TryReserveSend, in
//      packet order), append the element to the peer's ordered Outbound queue and hand it to the crypto workers.
//   4. A crypto worker encrypts in place (Keypair.Encrypt), marks the element finished and drains the peer's Outbound
//      queue: whoever wins the drain flag takes the finished elements at the head, in order, and sends them in one
//      batched IDatagramBind.Send to the peer's endpoint, then returns their buffers.
//
// Locking: SendLock serialises counter reservation and enqueue per peer (so counter order = queue order = packet
// order). The drain flag makes one thread at a time send a peer's datagrams. No lock is held while encrypting.
public sealed partial class WireGuardDevice
{
    private void TunReaderLoop()
    {
        // Hold at most an eighth of the pool while blocked in Read, so the receiver always finds buffers.
        var batch = Math.Clamp(_tun.BatchSize, 1, Math.Max(1, _pool.MaxBuffers / 8));
        var buffers = new byte[batch][];
        var sizes = new int[batch];
        var views = CreateViews(batch);

        var touched = new DevicePeer?[batch];
        var allocated = GC.GetAllocatedBytesForCurrentThread();
        while (!IsDisposed)
        {
            TrackThreadAllocations(ref allocated);
            // Fill the empty slots; wait for at least one buffer when the budget is spent (backpressure).
            var have = 0;
            for (var i = 0; i < batch; i++)
            {
                if (buffers[i] is null && !_pool.TryRent(out buffers[i]))
                {
                    break;
                }

                have++;
            }

            if (have == 0)
            {
                try
                {
                    buffers[0] = _pool.Rent(TimeSpan.FromMilliseconds(250));
                    have = 1;
                }
                catch (TimeoutException)
                {
                    continue;
                }
            }

            var view = views[have];
            Array.Copy(buffers, view, have);
            int n;
            try
            {
                n = _tun.Read(view, sizes, HeaderSize);
            }
            catch (ObjectDisposedException)
            {
                break;
            }

            if (n == 0)
            {
                break; // the packet device closed
            }

            var now = _clock.Now;
            var touchedCount = 0;
            for (var i = 0; i < n; i++)
            {
                var peer = SendPacket(now, view[i], sizes[i]);
                TakeOrReturn(buffers, view, i, taken: peer is not null);
                if (peer is not null)
                {
                    Touch(touched, ref touchedCount, peer);
                }
            }

            CheckDeadlines(touched, touchedCount);
        }

        ReturnBuffers(buffers);
    }

    /// <summary>Routes and enqueues one packet at buffer[16..]. Returns the peer when the buffer now belongs to the pipeline, null when dropped (the caller keeps the buffer).</summary>
    private DevicePeer? SendPacket(TimeSpan now, byte[] buffer, int length)
    {
        var packet = buffer.AsSpan(HeaderSize, length);
        ReadOnlySpan<byte> destination;
        if (length >= 20 && packet[0] >> 4 == 4)
        {
            destination = packet.Slice(16, 4);
        }
        else if (length >= 40 && packet[0] >> 4 == 6)
        {
            destination = packet.Slice(24, 16);
        }
        else
        {
            Counters.Drop(DropReason.InvalidOutboundPacket);
            return null;
        }

        if (HeaderSize + length + TailRoom > buffer.Length)
        {
            Counters.Drop(DropReason.InvalidOutboundPacket);
            return null;
        }

        var peer = _allowedIps.Lookup(destination);
        if (peer is null || peer.IsRemoved)
        {
            Counters.Drop(DropReason.NoRoute);
            return null;
        }

        if (!_hasPrivateKey)
        {
            Counters.Drop(DropReason.NoPrivateKey);
            return null;
        }

        lock (peer.SendLock)
        {
            if (peer.StagedCount == 0 && TryEnqueueOutbound(now, peer, buffer, length))
            {
                return peer;
            }

            StagePacket(peer, buffer, length);
        }

        // Staged: make sure a handshake goes out (whitepaper §6.2), then try to flush in case a session appeared meanwhile.
        peer.Protocol.RequestHandshake();
        WakeTimers();
        FlushStaged(now, peer);
        return peer;
    }

    private void StagePacket(DevicePeer peer, byte[] buffer, int length)
    {
        // Staged packets hold pool buffers: cap them at a quarter of the pool across all peers so staging for
        // unreachable peers can never starve the readers.
        if (Interlocked.Increment(ref _stagedTotal) > _pool.MaxBuffers / 4)
        {
            Interlocked.Decrement(ref _stagedTotal);
            if (peer.TryUnstage(out var oldest, out _))
            {
                _pool.Return(oldest);
                Counters.Drop(DropReason.StagedOverflow);
                Interlocked.Increment(ref _stagedTotal);
            }
            else
            {
                _pool.Return(buffer);
                Counters.Drop(DropReason.StagedOverflow);
                return;
            }
        }

        if (peer.Stage(buffer, length) is { } evicted)
        {
            Interlocked.Decrement(ref _stagedTotal);
            _pool.Return(evicted);
            Counters.Drop(DropReason.StagedOverflow);
        }
    }

    /// <summary>Reserves a counter and queues the packet for encryption. Call under peer.SendLock. False (nothing taken) when no keypair is usable.</summary>
    private bool TryEnqueueOutbound(TimeSpan now, DevicePeer peer, byte[] buffer, int length)
    {
        if (peer.Protocol.TryReserveSend(now, isKeepalive: false, out var keypair, out var counter) != ProtocolError.None)
        {
            return false;
        }

        var element = RentElement();
        element.Buffer = buffer;
        element.Length = length;
        element.Peer = peer;
        element.Keypair = keypair!;
        element.Counter = counter;
        element.IsInbound = false;
        // Backpressure: wait (briefly) for the peer's sender to make room rather than drop.
        if (!peer.Outbound.TryEnqueue(element, waitMs: 1000))
        {
            // The counter is spent (a gap the receiver's window tolerates); the packet is dropped.
            element.Buffer = null!;
            ReturnElement(element);
            _pool.Return(buffer);
            Counters.Drop(DropReason.BufferBudget);
            return true;
        }

        Dispatch(element);
        return true;
    }

    /// <summary>Moves staged packets into the pipeline in order while a keypair is usable (after a handshake completes).</summary>
    private void FlushStaged(TimeSpan now, DevicePeer peer)
    {
        if (peer.StagedCount == 0)
        {
            return;
        }

        lock (peer.SendLock)
        {
            while (peer.TryUnstage(out var buffer, out var length))
            {
                Interlocked.Decrement(ref _stagedTotal);
                if (peer.IsRemoved || !_hasPrivateKey)
                {
                    _pool.Return(buffer);
                    Counters.Drop(DropReason.StagedExpired);
                    continue;
                }

                if (!TryEnqueueOutbound(now, peer, buffer, length))
                {
                    Interlocked.Increment(ref _stagedTotal);
                    if (peer.Restage(buffer, length) is { } dropped)
                    {
                        Interlocked.Decrement(ref _stagedTotal);
                        _pool.Return(dropped);
                        Counters.Drop(DropReason.StagedOverflow);
                    }

                    break;
                }
            }
        }
    }

    private void DropStaged(DevicePeer peer)
    {
        while (peer.TryUnstage(out var buffer, out _))
        {
            Interlocked.Decrement(ref _stagedTotal);
            _pool.Return(buffer);
            Counters.Drop(DropReason.StagedExpired);
        }
    }

    private void EncryptElement(PacketElement element)
    {
        var length = element.Keypair.Encrypt(element.Counter, element.Buffer, element.Length, element.Peer.Protocol.Mtu);
        if (length < 0)
        {
            element.State = PacketElement.Failed;
            return;
        }

        element.Length = length;
        element.State = PacketElement.Ready;
    }

    /// <summary>Sends the finished datagrams at the head of the peer's Outbound queue, in order, batched. One drainer at a time.</summary>
    private void DrainOutbound(DevicePeer peer)
    {
        var queue = peer.Outbound;
        var scratch = t_sendScratch ??= new SendScratch();
        while (queue.TryBeginDrain())
        {
            while (true)
            {
                var n = queue.TakeFinished(scratch.Elements);
                if (n == 0)
                {
                    break;
                }

                SendElements(peer, scratch, n);
            }

            queue.EndDrain();
            if (!queue.HeadFinished)
            {
                break;
            }
        }
    }

    private void SendElements(DevicePeer peer, SendScratch scratch, int n)
    {
        var count = 0;
        long bytes = 0;
        for (var i = 0; i < n; i++)
        {
            var e = scratch.Elements[i];
            if (e.State == PacketElement.Ready)
            {
                scratch.Buffers[count] = e.Buffer;
                scratch.Sizes[count] = e.Length;
                bytes += e.Length;
                count++;
            }
            else
            {
                Counters.Drop(DropReason.InvalidOutboundPacket);
            }
        }

        if (count > 0)
        {
            var bind = _bind;
            if (!peer.TryGetEndpoint(out var endpoint) || bind is null)
            {
                Counters.Drop(DropReason.NoEndpoint, count);
            }
            else
            {
                var sent = 0;
                try
                {
                    var offset = 0;
                    while (offset < count)
                    {
                        var chunk = Math.Min(count - offset, bind.BatchSize);
                        var view = scratch.View(chunk, offset);
                        sent += bind.Send(view, scratch.Sizes.AsSpan(offset, chunk), 0, chunk, endpoint);
                        offset += chunk;
                    }
                }
                catch (ObjectDisposedException)
                {
                }

                if (sent < count)
                {
                    Counters.Drop(DropReason.SendFailed, count - sent);
                }

                peer.AddTx(sent == count ? bytes : bytes * sent / count);
            }
        }

        for (var i = 0; i < n; i++)
        {
            ReturnElement(scratch.Elements[i]);
            scratch.Elements[i] = null!;
        }

        Array.Clear(scratch.Buffers, 0, count);
    }

    [ThreadStatic]
    private static SendScratch? t_sendScratch;

    /// <summary>Per-thread arrays for batched sends (allocated once per thread).</summary>
    private sealed class SendScratch
    {
        public const int Capacity = 128;
        public readonly PacketElement[] Elements = new PacketElement[Capacity];
        public readonly byte[][] Buffers = new byte[Capacity][];
        public readonly int[] Sizes = new int[Capacity];
        private readonly byte[][][] _views = CreateViews(Capacity);

        /// <summary>An exact-length array holding Buffers[offset .. offset + count] (the bind API takes arrays).</summary>
        public byte[][] View(int count, int offset)
        {
            if (offset == 0 && count == Capacity)
            {
                return Buffers;
            }

            var view = _views[count];
            Array.Copy(Buffers, offset, view, 0, count);
            return view;
        }
    }
}
