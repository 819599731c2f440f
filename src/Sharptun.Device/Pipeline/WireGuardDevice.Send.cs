using Sharptun.Protocol;
using Sharptun.Transport;

namespace Sharptun.Device.Pipeline;

// Outbound pipeline (TUN → UDP), DESIGN.md "Data path":
//
//   1. TunReaderLoop (one thread) reads a batch from the packet device into pooled buffers at offset 16 (header room;
//      the pool's buffers leave tail room for padding + tag, so encryption is in place). Renting waits when the pool's
//      budget is spent: backpressure on the reader, never growth.
//   2. Route: destination address → peer through the allowed-IPs trie (lock-free).
//   3. Under the peer's SendLock (non-blocking steps only): move staged packets on first; if a keypair is usable and
//      the Outbound queue has room, reserve the next counter (Peer.TryReserveSend, in packet order) and append the
//      element to the peer's ordered Outbound queue; with no usable keypair, stage the packet (bounded, oldest dropped)
//      and ask the timer service for a handshake. After releasing the lock, hand the elements to the crypto workers;
//      when the queue was full, wait for room (still without the lock) and try again.
//   4. A crypto worker encrypts in place (Keypair.TryEncrypt), marks the element finished and drains the peer's Outbound
//      queue: whoever wins the drain flag takes the finished elements at the head, in order, and sends them in one
//      batched IDatagramBind.Send to the peer's endpoint, then returns their buffers.
//
// Locking: SendLock serialises counter reservation and enqueue per peer (so counter order = queue order = packet
// order); nothing waits while holding it. The drain flag makes one thread at a time send a peer's datagrams and is
// released in a finally. No lock is held while encrypting.
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
        var pending = new PendingDispatch(batch);
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
                _completion.TrySetResult(); // the packet device was disposed under the reader
                break;
            }

            if (n == 0)
            {
                if (!IsDisposed)
                {
                    Log.PacketDeviceClosed(_log);
                    _completion.TrySetResult();
                }

                break; // the packet device closed
            }

            var now = _clock.Now;
            var touchedCount = 0;
            for (var i = 0; i < n; i++)
            {
                MakeTailRoom(buffers, view, i, sizes[i]);
                var peer = SendPacket(now, view[i], sizes[i], pending);
                TakeOrReturn(buffers, view, i, taken: peer is not null);
                if (peer is not null)
                {
                    Touch(touched, ref touchedCount, peer);
                }
            }

            FlushDispatch(pending);
            CheckDeadlines(touched, touchedCount);
        }

        ReturnBuffers(buffers);
    }

    /// <summary>
    /// A packet that filled its buffer so nearly that padding and tag no longer fit (it did not spill into the oversize
    /// vector, which only catches packets longer than the buffer) moves into a large buffer. Without this, a packet
    /// whose length falls in those last <see cref="TailRoom"/> bytes was dropped every time it was sent, and TCP,
    /// retransmitting the same segment, stalled in RTO backoff (seen when an MTU change makes such segments).
    /// </summary>
    private void MakeTailRoom(byte[]?[] buffers, byte[][] view, int i, int length)
    {
        var buffer = view[i];
        if (HeaderSize + length + TailRoom <= buffer.Length || _pool.Large is not { } large
            || HeaderSize + length + TailRoom > large.BufferSize || !large.TryRent(out var bigger))
        {
            return; // fits, or cannot be helped: SendPacket counts the drop
        }

        buffer.AsSpan(0, HeaderSize + length).CopyTo(bigger);
        if (!ReferenceEquals(buffer, buffers[i]))
        {
            _pool.Return(buffer); // an oversize buffer the read swapped in: the reader owned it
        }

        view[i] = bigger;
    }

    /// <summary>Routes and enqueues one packet at buffer[16..]. Returns the peer when the buffer now belongs to the pipeline, null when dropped (the caller keeps the buffer).</summary>
    private DevicePeer? SendPacket(TimeSpan now, byte[] buffer, int length, PendingDispatch pending)
    {
        if (!InnerPacket.TryGetDestinationAddress(buffer.AsSpan(HeaderSize, length), out var destination))
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

        // Never wait with SendLock held (a crypto worker flushing this peer, the handshake worker and UAPI all take it):
        // under the lock only non-blocking steps run - move staged packets, reserve a counter, append to Outbound, or
        // stage - and the elements are dispatched after it is released. When Outbound is full the reader waits for room
        // outside the lock (backpressure, at most OutboundWaitMs for this packet), then tries again.
        var scratch = t_flushScratch ??= new PacketElement[FlushBatch];
        var outerFlush = t_flushing;
        t_flushing = true;
        try
        {
            var deadline = 0L;
            while (true)
            {
                var moved = 0;
                PacketElement? element = null;
                EnqueueResult result;
                lock (peer.SendLock)
                {
                    if (peer.IsRemoved || !_hasPrivateKey)
                    {
                        // Checked under the lock: removal drops the staged packets under the same lock, so nothing is
                        // staged on a removed peer (it would hold its buffers and the staged count for good).
                        result = EnqueueResult.Removed;
                    }
                    else
                    {
                        result = MoveStagedLocked(now, peer, scratch, ref moved);
                        if (result == EnqueueResult.Enqueued)
                        {
                            result = TryEnqueueOutbound(now, peer, buffer, length, out element);
                        }

                        if (result == EnqueueResult.NoSession)
                        {
                            StagePacket(peer, buffer, length);
                        }
                    }
                }

                DispatchMoved(scratch, moved);
                switch (result)
                {
                    case EnqueueResult.Enqueued:
                        QueueDispatch(pending, element!);
                        return peer;
                    case EnqueueResult.NoSession:
                        // Staged: make sure a handshake goes out (whitepaper §6.2), then try to flush in case a session
                        // appeared meanwhile.
                        peer.Protocol.RequestHandshake();
                        WakeTimers();
                        t_flushing = outerFlush;
                        FlushStaged(now, peer);
                        return peer;
                    case EnqueueResult.Removed:
                        Counters.Drop(peer.IsRemoved ? DropReason.NoRoute : DropReason.NoPrivateKey);
                        return null;
                    case EnqueueResult.BatchFull:
                        continue;
                    default:
                        // Outbound is full: wait for its drainer to make room, without any lock held - and without
                        // holding back elements of this read that may be the very ones filling it.
                        FlushDispatch(pending);
                        if (deadline == 0)
                        {
                            deadline = Environment.TickCount64 + OutboundWaitMs;
                        }

                        var left = deadline - Environment.TickCount64;
                        if (left <= 0 || !peer.Outbound.WaitForRoom((int)left))
                        {
                            Counters.Drop(DropReason.BufferBudget);
                            return null;
                        }

                        continue;
                }
            }
        }
        finally
        {
            t_flushing = outerFlush;
        }
    }

    /// <summary>How long the TUN reader waits (outside any lock) for room in a peer's full Outbound queue before dropping the packet.</summary>
    private const int OutboundWaitMs = 1000;

    /// <summary>Staged packets moved into the pipeline per SendLock hold (then the lock is released and they are dispatched).</summary>
    private const int FlushBatch = 64;

    /// <summary>Per-thread elements moved under SendLock and dispatched after it is released.</summary>
    [ThreadStatic]
    private static PacketElement[]? t_flushScratch;

    /// <summary>
    /// True while this thread moves or dispatches staged packets: with inline crypto (<see cref="Dispatch"/> without
    /// workers) a dispatch can drain and call <see cref="FlushStaged"/> again on this thread, which then leaves the work
    /// to the outer flush (it loops while it makes progress) instead of reusing its scratch array.
    /// </summary>
    [ThreadStatic]
    private static bool t_flushing;

    private enum EnqueueResult
    {
        /// <summary>Appended to Outbound (for MoveStagedLocked: no staged packet left).</summary>
        Enqueued,

        /// <summary>No usable keypair: the packet stays (or goes) in staging.</summary>
        NoSession,

        /// <summary>Outbound is full: nothing was taken and no counter was spent.</summary>
        Full,

        /// <summary>The scratch batch is full: dispatch it and come back.</summary>
        BatchFull,

        /// <summary>The peer was removed or the private key cleared.</summary>
        Removed,
    }

    /// <summary>
    /// Stages a packet while the peer has no usable keypair. Call under peer.SendLock. Staged packets hold pool buffers:
    /// together they are capped at a quarter of the pool, so staging for unreachable peers can never starve the readers.
    /// <c>_stagedTotal</c> counts the packets in every peer's staging ring: each Stage adds one, each TryUnstage and each
    /// eviction takes one away.
    /// </summary>
    private void StagePacket(DevicePeer peer, byte[] buffer, int length)
    {
        if (Interlocked.Increment(ref _stagedTotal) > _pool.MaxBuffers / 4)
        {
            // Over the cap: this peer's oldest staged packet makes room for the new one (its count passes to the new
            // packet), or, when this peer has none, the new packet is dropped.
            if (peer.TryUnstage(out var oldest, out _))
            {
                Interlocked.Decrement(ref _stagedTotal);
                _pool.Return(oldest);
                Counters.Drop(DropReason.StagedOverflow);
            }
            else
            {
                Interlocked.Decrement(ref _stagedTotal);
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

    /// <summary>Packets staged across all peers (tests: returns to 0 once nothing is staged).</summary>
    internal int StagedTotal => Volatile.Read(ref _stagedTotal);

    /// <summary>The device's state of a configured peer, or null (tests).</summary>
    internal DevicePeer? FindPeer(Key publicKey)
    {
        foreach (var peer in _peerList)
        {
            if (peer.PublicKey == publicKey)
            {
                return peer;
            }
        }

        return null;
    }

    /// <summary>
    /// Reserves a counter and appends the packet to the peer's Outbound queue; the caller dispatches the element after
    /// releasing the lock. Call under peer.SendLock (the only producer of Outbound, so room checked here stays). Never
    /// waits. Nothing is taken (and no counter spent) unless <see cref="EnqueueResult.Enqueued"/>.
    /// </summary>
    private EnqueueResult TryEnqueueOutbound(TimeSpan now, DevicePeer peer, byte[] buffer, int length, out PacketElement? element)
    {
        element = null;
        if (!peer.Outbound.HasRoom)
        {
            return EnqueueResult.Full;
        }

        if (peer.Protocol.TryReserveSend(now, isKeepalive: false, out var keypair, out var counter) != ProtocolError.None)
        {
            return EnqueueResult.NoSession;
        }

        var e = RentElement();
        e.Buffer = buffer;
        e.Length = length;
        e.Peer = peer;
        e.Keypair = keypair!;
        e.Counter = counter;
        e.IsInbound = false;
        e.EnqueuedAt = now;
        if (!peer.Outbound.TryEnqueue(e))
        {
            // Unreachable while SendLock is the only way in; the counter is spent (a gap the receiver's window tolerates).
            e.Buffer = null!;
            ReturnElement(e);
            return EnqueueResult.Full;
        }

        element = e;
        return EnqueueResult.Enqueued;
    }

    /// <summary>
    /// Moves staged packets, oldest first, into the peer's Outbound queue while a keypair is usable and there is room,
    /// collecting the elements in <paramref name="batch"/> (from index <paramref name="count"/>) for dispatch after the
    /// lock is released. Call under peer.SendLock. Returns <see cref="EnqueueResult.Enqueued"/> when nothing is left staged.
    /// </summary>
    private EnqueueResult MoveStagedLocked(TimeSpan now, DevicePeer peer, PacketElement[] batch, ref int count)
    {
        while (true)
        {
            if (peer.StagedCount == 0)
            {
                return EnqueueResult.Enqueued; // the common case: nothing staged, one lock round trip
            }

            if (count == batch.Length)
            {
                return EnqueueResult.BatchFull;
            }

            if (!peer.Outbound.HasRoom)
            {
                return EnqueueResult.Full;
            }

            if (!peer.TryUnstage(out var buffer, out var length))
            {
                return EnqueueResult.Enqueued;
            }

            Interlocked.Decrement(ref _stagedTotal);
            if (peer.IsRemoved || !_hasPrivateKey)
            {
                _pool.Return(buffer);
                Counters.Drop(DropReason.StagedExpired);
                continue;
            }

            var result = TryEnqueueOutbound(now, peer, buffer, length, out var element);
            if (result == EnqueueResult.Enqueued)
            {
                batch[count++] = element!;
                continue;
            }

            Interlocked.Increment(ref _stagedTotal);
            if (peer.Restage(buffer, length) is { } dropped)
            {
                Interlocked.Decrement(ref _stagedTotal);
                _pool.Return(dropped);
                Counters.Drop(DropReason.StagedOverflow);
            }

            return result;
        }
    }

    /// <summary>Hands the elements MoveStagedLocked collected to the crypto workers (after SendLock was released).</summary>
    private void DispatchMoved(PacketElement[] batch, int count)
    {
        for (var i = 0; i < count; i++)
        {
            var e = batch[i];
            batch[i] = null!;
            Dispatch(e);
        }
    }

    /// <summary>
    /// Moves staged packets into the pipeline in order while a keypair is usable (after a handshake completes, after a
    /// drain made room). Never waits: what does not fit stays staged, and the drainer that next makes room calls this again.
    /// </summary>
    private void FlushStaged(TimeSpan now, DevicePeer peer)
    {
        if (peer.StagedCount == 0 || t_flushing)
        {
            return;
        }

        var scratch = t_flushScratch ??= new PacketElement[FlushBatch];
        t_flushing = true;
        try
        {
            while (true)
            {
                var moved = 0;
                EnqueueResult result;
                lock (peer.SendLock)
                {
                    result = MoveStagedLocked(now, peer, scratch, ref moved);
                }

                DispatchMoved(scratch, moved);

                // Go on while there is more to move: a batch filled up, or room may have appeared while dispatching
                // (inline crypto drains on this thread and its own FlushStaged call was left to this loop).
                if (result != EnqueueResult.BatchFull && (result != EnqueueResult.Full || moved == 0))
                {
                    return;
                }
            }
        }
        finally
        {
            t_flushing = false;
        }
    }

    private void DropStaged(DevicePeer peer)
    {
        // Under SendLock, the lock the TUN reader stages under after checking IsRemoved: nothing is staged after this.
        lock (peer.SendLock)
        {
            while (peer.TryUnstage(out var buffer, out _))
            {
                Interlocked.Decrement(ref _stagedTotal);
                _pool.Return(buffer);
                Counters.Drop(DropReason.StagedExpired);
            }
        }
    }

    private void EncryptElement(PacketElement element)
    {
        var error = element.Keypair.TryEncrypt(element.Counter, element.Buffer, element.Length, out var length, element.Peer.Protocol.Mtu);
        if (error != ProtocolError.None)
        {
            // A keypair retired while the packet waited never produces a datagram (issue 7): drop it.
            element.State = error == ProtocolError.KeypairRetired ? PacketElement.Retired : PacketElement.Failed;
            return;
        }

        element.Length = length;
        element.State = PacketElement.Ready;
    }

    /// <summary>
    /// Sends the finished datagrams at the head of the peer's Outbound queue, in order, batched
    /// (<see cref="OrderedQueue.Drain{TSink}"/>). A drain that made room moves the peer's staged packets on
    /// (FlushStaged never waits for room).
    /// </summary>
    private void DrainOutbound(DevicePeer peer)
    {
        var sink = new OutboundSink(this, peer, t_sendBatch ??= new ElementBatch());
        if (peer.Outbound.Drain(sink.Batch.Elements, ref sink) && peer.StagedCount > 0)
        {
            FlushStaged(_clock.Now, peer);
        }
    }

    private void SendElements(DevicePeer peer, ElementBatch batch, int n)
    {
        var count = 0;
        long bytes = 0;
        var delay = peer.Outbound.Delay;
        var now = delay is null ? default : _clock.Now;
        var behind = delay is null ? 0 : peer.Outbound.Count;
        for (var i = 0; i < n; i++)
        {
            var e = batch.Elements[i];
            if (e.State == PacketElement.Ready && delay is not null && e.Length > KeepaliveDatagramSize
                && delay.ShouldDrop(now, now - e.EnqueuedAt, behind + n - i - 1))
            {
                Counters.Drop(DropReason.QueueDelay); // encrypted but not sent: the receiver sees a counter gap, as after any loss
            }
            else if (e.State == PacketElement.Ready)
            {
                batch.Buffers[count] = e.Buffer;
                batch.Sizes[count] = e.Length;
                bytes += e.Length;
                count++;
            }
            else
            {
                Counters.Drop(e.State == PacketElement.Retired ? DropReason.KeypairRetired : DropReason.InvalidOutboundPacket);
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
                    for (var offset = 0; batch.TryNextChunk(count, bind.BatchSize, ref offset, out var buffers, out var sizes);)
                    {
                        sent += bind.Send(buffers, sizes, 0, buffers.Length, endpoint);
                    }
                }
                catch (ObjectDisposedException)
                {
                    // rebind in progress
                }
                catch (Exception e) when (e is IOException or System.Net.Sockets.SocketException)
                {
                    // A send error is this batch's loss, not the pipeline's (wireguard-go logs and goes on).
                    Log.DataSendFailed(_log, e.Message);
                }

                if (sent < count)
                {
                    Counters.Drop(DropReason.SendFailed, count - sent);
                }

                peer.AddTx(sent == count ? bytes : bytes * sent / count);
            }
        }
    }

    [ThreadStatic]
    private static ElementBatch? t_sendBatch;

    private readonly struct OutboundSink(WireGuardDevice device, DevicePeer peer, ElementBatch batch) : OrderedQueue.IDrainSink
    {
        public ElementBatch Batch => batch;

        public void Deliver(int n) => device.SendElements(peer, batch, n);

        public void Release(int n) => device.ReturnBatch(batch, n);
    }
}
