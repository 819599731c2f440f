using Sharptun.Protocol;
using Sharptun.Transport;

namespace Sharptun.Device.Pipeline;

// Inbound pipeline (UDP → TUN), DESIGN.md "Data path":
//
//   1. ReceiveLoop (one thread) receives a batch from the bind into pooled buffers (TryRent: when the budget is spent
//      the datagram is left in the socket / dropped by the kernel, counted as BufferBudget — the receiver never waits
//      on buffers that only its own progress would free).
//   2. By message type: handshake messages (initiation, response, cookie reply) go to the bounded handshake queue
//      (WireGuardDevice.Handshake.cs); transport data → keypair by receiver index (lock-free) → the peer's ordered
//      Inbound queue + the crypto workers; anything else is counted as malformed.
//   3. A crypto worker decrypts in place (Keypair.TryDecrypt), marks the element finished and drains the peer's
//      Inbound queue in arrival order: replay check + keypair confirmation + receive timers (Peer.ReceiveTransport),
//      inner source address must route back to the same peer through the allowed IPs (else dropped and counted),
//      endpoint update (roaming, only for authenticated packets), then one batched write to the packet device.
//      Keepalives update state but are not written.
//
// Locking: the drain flag makes one thread at a time deliver a peer's packets; _tunWriteLock serialises writes to the
// packet device (one writer at a time is its contract). No lock is held while decrypting.
public sealed partial class WireGuardDevice
{
    private void ReceiveLoop()
    {
        var batch = Math.Clamp(128, 1, Math.Max(1, _pool.MaxBuffers / 8));
        var buffers = new byte[batch][];
        var sizes = new int[batch];
        var endpoints = new UdpEndpoint[batch];
        var views = CreateViews(batch);

        var touched = new DevicePeer?[batch];
        var pending = new PendingDispatch(batch);
        var allocated = GC.GetAllocatedBytesForCurrentThread();
        while (!IsDisposed)
        {
            TrackThreadAllocations(ref allocated);
            var bind = _bind;
            if (bind is null)
            {
                break;
            }

            var want = Math.Min(batch, Math.Max(1, bind.BatchSize));
            var have = 0;
            for (var i = 0; i < want; i++)
            {
                if (buffers[i] is null && !_pool.TryRent(out buffers[i]))
                {
                    break;
                }

                have++;
            }

            if (have == 0)
            {
                Counters.Drop(DropReason.BufferBudget);
                Thread.Sleep(1);
                continue;
            }

            var view = views[have];
            Array.Copy(buffers, view, have);
            int n;
            try
            {
                n = bind.Receive(view, sizes, endpoints);
            }
            catch (ObjectDisposedException)
            {
                n = 0;
            }

            if (n == 0)
            {
                if (IsDisposed)
                {
                    break;
                }

                if (ReferenceEquals(bind, _bind))
                {
                    Thread.Sleep(1); // closed without a replacement yet; the UAPI apply swaps it in
                }

                continue; // rebind: the new bind is already in _bind
            }

            var now = _clock.Now;
            var touchedCount = 0;
            for (var i = 0; i < n; i++)
            {
                var taken = ReceiveDatagram(now, view[i], sizes[i], endpoints[i], pending, out var peer);
                TakeOrReturn(buffers, view, i, taken);
                if (taken)
                {
                    if (peer is not null)
                    {
                        Touch(touched, ref touchedCount, peer);
                    }
                }
            }

            FlushDispatch(pending);
            CheckDeadlines(touched, touchedCount);
        }

        ReturnBuffers(buffers);
    }

    /// <summary>Classifies one datagram. True when the buffer was taken; <paramref name="peer"/> is the peer whose deadlines may have moved.</summary>
    private bool ReceiveDatagram(TimeSpan now, byte[] buffer, int length, in UdpEndpoint source, PendingDispatch pending, out DevicePeer? peer)
    {
        peer = null;
        var datagram = buffer.AsSpan(0, length);
        if (MessageHeader.TryGetType(datagram, out var type) != ProtocolError.None)
        {
            Counters.Drop(DropReason.MalformedDatagram);
            return false;
        }

        if (!_hasPrivateKey)
        {
            return false; // wireguard-go drops everything without a private key
        }

        if (!TransportDataView.TryCreate(datagram, out var transport))
        {
            return EnqueueHandshake(now, type, buffer, length, source); // a valid header of another type: a handshake message
        }

        if (!_protocol.TryGetKeypair(transport.ReceiverIndex, out var keypair) || keypair.IsExpired(now) || keypair.Peer.Tag is not DevicePeer owner)
        {
            Counters.Drop(DropReason.UnknownReceiver);
            return false;
        }

        peer = owner;

        var element = RentElement();
        element.Buffer = buffer;
        element.Length = length;
        element.Peer = peer;
        element.Keypair = keypair;
        element.Source = source;
        element.IsInbound = true;
        element.EnqueuedAt = now;
        if (!peer.Inbound.TryEnqueue(element))
        {
            element.Buffer = null!;
            ReturnElement(element);
            Counters.Drop(DropReason.BufferBudget);
            return false;
        }

        QueueDispatch(pending, element);
        return true;
    }

    private static void DecryptElement(PacketElement element)
    {
        var span = element.Buffer.AsSpan();
        var error = element.Keypair.TryDecrypt(span[..element.Length], span, out var counter, out var plaintext);
        if (error != ProtocolError.None)
        {
            element.State = error == ProtocolError.KeypairRetired ? PacketElement.Retired : PacketElement.Failed;
            return;
        }

        element.Counter = counter;
        element.Length = plaintext;
        element.State = PacketElement.Ready;
    }

    /// <summary>
    /// Delivers the finished packets at the head of the peer's Inbound queue, in order, batched
    /// (<see cref="OrderedQueue.Drain{TSink}"/>).
    /// </summary>
    private void DrainInbound(DevicePeer peer)
    {
        var sink = new InboundSink(this, peer, t_receiveBatch ??= new ElementBatch());
        peer.Inbound.Drain(sink.Batch.Elements, ref sink);
        if (sink.Delivered)
        {
            // A responder's keypair is confirmed by the first transport packet: staged packets can go now.
            var now = _clock.Now;
            FlushStaged(now, peer);
            CheckDeadline(peer);
        }
    }

    /// <summary>Completes and writes one drained batch; true when any packet in it was authenticated.</summary>
    private bool DeliverElements(DevicePeer peer, ElementBatch batch, int n)
    {
        var now = _clock.Now;
        var count = 0;
        var any = false;
        var delay = peer.Inbound.Delay;
        var behind = delay is null ? 0 : peer.Inbound.Count;
        for (var i = 0; i < n; i++)
        {
            var e = batch.Elements[i];
            if (e.State != PacketElement.Ready)
            {
                Counters.Drop(e.State == PacketElement.Retired ? DropReason.KeypairRetired : DropReason.DecryptionFailed);
                continue;
            }

            var error = peer.Protocol.ReceiveTransport(now, e.Keypair, e.Counter, e.Length);
            if (error != ProtocolError.None)
            {
                Counters.Drop(error == ProtocolError.ReplayedCounter ? DropReason.Replayed : DropReason.UnknownReceiver);
                continue;
            }

            any = true;
            peer.UpdateEndpoint(e.Source); // roaming: authenticated transport data
            peer.AddRx(e.Length + TransportDataView.MinSize);
            if (e.Length == 0)
            {
                continue; // keepalive (whitepaper §6.5): not written to the device
            }

            // After the replay window and timers took the packet (it arrived, authenticated), before the TUN write.
            if (delay is not null && delay.ShouldDrop(now, now - e.EnqueuedAt, behind + n - i - 1))
            {
                Counters.Drop(DropReason.QueueDelay);
                continue;
            }

            var packet = e.Buffer.AsSpan(HeaderSize, e.Length);
            if (!InnerPacket.TryGetLength(packet, out var ipLength))
            {
                Counters.Drop(DropReason.InvalidInnerPacket);
                continue;
            }

            // Whitepaper §2 (cryptokey routing): the inner source must be one of the sending peer's allowed IPs.
            if (!ReferenceEquals(_allowedIps.Lookup(InnerPacket.SourceAddress(packet)), peer))
            {
                Counters.Drop(DropReason.SourceNotAllowed);
                continue;
            }

            batch.Buffers[count] = e.Buffer;
            batch.Sizes[count] = ipLength;
            count++;
        }

        if (count > 0)
        {
            var written = 0;
            lock (_tunWriteLock)
            {
                try
                {
                    for (var offset = 0; batch.TryNextChunk(count, _tun.BatchSize, ref offset, out var buffers, out var sizes);)
                    {
                        written += _tun.Write(buffers, sizes, HeaderSize, buffers.Length);
                    }
                }
                catch (ObjectDisposedException)
                {
                }
                catch (IOException e)
                {
                    // A write error is this batch's loss, not the pipeline's (wireguard-go logs and goes on).
                    Log.TunWriteFailed(_log, e.Message);
                }
            }

            if (written < count)
            {
                Counters.Drop(DropReason.TunWriteFailed, count - written);
            }
        }

        return any;
    }

    /// <summary>Returns a drained batch's elements to the pool and clears the batch (either direction).</summary>
    private void ReturnBatch(ElementBatch batch, int n)
    {
        for (var i = 0; i < n; i++)
        {
            if (batch.Elements[i] is { } e)
            {
                batch.Elements[i] = null!;
                ReturnElement(e);
            }
        }

        Array.Clear(batch.Buffers, 0, n);
    }

    [ThreadStatic]
    private static ElementBatch? t_receiveBatch;

    private struct InboundSink(WireGuardDevice device, DevicePeer peer, ElementBatch batch) : OrderedQueue.IDrainSink
    {
        /// <summary>True once a drained packet was authenticated (keepalives too).</summary>
        public bool Delivered;

        public readonly ElementBatch Batch => batch;

        public void Deliver(int n) => Delivered |= device.DeliverElements(peer, batch, n);

        public readonly void Release(int n) => device.ReturnBatch(batch, n);
    }
}
