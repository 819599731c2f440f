using Sharptun.Protocol;
using Sharptun.Transport;

namespace Sharptun.Device.Pipeline;

// Handshake pipeline (whitepaper §5.3, wireguard-go RoutineHandshake):
//
//   ReceiveLoop → EnqueueHandshake (receive thread, cheap checks only):
//     - initiation/response: mac1 must be valid (one keyed BLAKE2s, ProtocolDevice.HasValidMac1), else a counted drop.
//       Under load, mac2 is checked too: a valid mac2 proves the source address (its sender received a cookie there),
//       so only then is the address charged to the rate limiter (20/s, burst 5 per IPv4 address / IPv6 /64); over
//       budget → counted drop, else the message goes to the priority lane. No valid mac2 → the main lane, marked for
//       a cookie reply. Nothing is charged to an unauthenticated address, so spoofing a peer's address neither spends
//       its budget nor fills the limiter's table.
//     - cookie replies: the main lane.
//   The main lane is bounded and fair between source addresses (HandshakeQueue): one FIFO per hash bucket of the
//   address key, served round-robin; when full, the longest bucket loses its oldest message. A flood from a few
//   addresses therefore cannot crowd out a message from anyone else; a flood spoofing many addresses gets each address
//   no more than its share. The device is "under load" while the main lane holds at least 1/8 of its capacity
//   (remembered for 1 s, wireguard-go's UnderLoadAfterTime).
//   HandshakeLoop (one worker, so handshake work never takes more than one core): priority lane first. Under load, a
//   message without a valid mac2 gets a cookie reply (ProtocolDevice.WriteCookieReply) and nothing else; one that
//   arrived before the load began is checked for mac2 and charged to the rate limiter here, as wireguard-go does.
//   Everything else is processed (ProtocolDevice.Decapsulate). Authenticated messages (not cookie replies, §5.4.7)
//   update the peer's endpoint; a completed handshake flushes the peer's staged packets.
public sealed partial class WireGuardDevice
{
    private readonly HandshakeRateLimiter _rateLimiter = new();

    private readonly HandshakeQueue _handshakes;

    /// <summary>
    /// Cookie replies the worker makes per second at most (each costs a MAC, an XChaCha20-Poly1305 seal and a send), so
    /// a flood of valid-mac1 messages takes a bounded share of the CPU and leaves the rest to the receive thread. A
    /// legitimate sender needs one cookie per two minutes; the fair main lane decides whose message is answered next.
    /// </summary>
    internal const int CookieRepliesPerSecond = 4096;

    private const int CookieReplyBurst = 256;

    /// <summary>wireguard-go's UnderLoadAfterTime: load is remembered this long after the queue drains.</summary>
    private static readonly TimeSpan UnderLoadAfterTime = TimeSpan.FromSeconds(1);

    private long _lastUnderLoadTicks = long.MinValue;

    /// <summary>Tests only: the number of source addresses the handshake rate limiter tracks (only proven ones).</summary>
    internal int RateLimitedSources => _rateLimiter.Count;

    /// <summary>What the receive thread learned about a queued handshake message.</summary>
    internal enum Admission : byte
    {
        /// <summary>Not under load when it arrived: mac2 not checked yet.</summary>
        Unchecked,

        /// <summary>Under load and no valid mac2: earns a cookie reply while the load lasts.</summary>
        NoMac2,

        /// <summary>Valid mac2, and the rate limiter (now that the address is proven) let it through.</summary>
        Proven,
    }

    /// <summary>
    /// True while the handshake queue is at least 1/8 full, and for <c>UnderLoadAfterTime</c> (1 s) after that
    /// (wireguard-go's "under load"), so a flood is throttled steadily instead of refilling the queue whenever it drains.
    /// </summary>
    public bool IsUnderLoad
    {
        get
        {
            var now = _clock.Now.Ticks;
            if (_handshakes.Count >= _handshakes.Capacity / 8)
            {
                Volatile.Write(ref _lastUnderLoadTicks, now);
                return true;
            }

            var last = Volatile.Read(ref _lastUnderLoadTicks);
            return last != long.MinValue && now - last < UnderLoadAfterTime.Ticks;
        }
    }

    private bool EnqueueHandshake(TimeSpan now, MessageType type, byte[] buffer, int length, in UdpEndpoint source)
    {
        var admission = Admission.Unchecked;
        var priority = false;
        if (type != MessageType.CookieReply)
        {
            var message = buffer.AsSpan(0, length);

            // A message that cannot carry a cookie (mac2 is its last 16 bytes, all zero without one, §5.4.4) and that
            // the main lane would refuse anyway is dropped before any MAC: a flood from a few addresses costs the
            // receive thread little more than the receive itself.
            var mayHaveMac2 = length >= 16 && message[^16..].ContainsAnyExcept((byte)0);
            if (!mayHaveMac2 && !_handshakes.HasRoomFor(source))
            {
                Counters.Drop(DropReason.HandshakeQueueFull);
                return false;
            }

            if (!_protocol.HasValidMac1(message))
            {
                Counters.Drop(DropReason.HandshakeRejected); // whitepaper §5.4.4: not meant for us (or truncated)
                return false;
            }

            if (IsUnderLoad)
            {
                Span<byte> sourceBytes = stackalloc byte[18];
                var n = WriteSourceBytes(source, sourceBytes);
                if (!_protocol.HasValidMac2(now, message, sourceBytes[..n]))
                {
                    admission = Admission.NoMac2;
                }
                else if (!_rateLimiter.Allow(source, now, out var tracked))
                {
                    Counters.Drop(DropReason.HandshakeRateLimited);
                    return false;
                }
                else
                {
                    // A proven source the full limiter table could not track goes to the fair lane, not ahead of it.
                    admission = Admission.Proven;
                    priority = tracked;
                }
            }
        }

        var added = _handshakes.TryAdd(buffer, length, source, admission, priority, out var evicted);
        if (evicted is not null)
        {
            _pool.Return(evicted);
            Counters.Drop(DropReason.HandshakeQueueFull);
        }

        if (!added)
        {
            Counters.Drop(DropReason.HandshakeQueueFull);
        }

        return added;
    }

    private void HandshakeLoop()
    {
        var output = new byte[256];
        var holder = new[] { output };
        var sizeHolder = new int[1];
        Span<byte> sourceBytes = stackalloc byte[18];
        var cookieTokens = (double)CookieReplyBurst;
        var cookieRefilled = System.Diagnostics.Stopwatch.GetTimestamp();
        while (_handshakes.Take(out var buffer, out var length, out var source, out var admission))
        {
            try
            {
                var now = _clock.Now;
                var message = buffer.AsSpan(0, length);
                if (MessageHeader.TryGetType(message, out var type) != ProtocolError.None)
                {
                    continue; // not reached: EnqueueHandshake queues only messages whose header checked out
                }

                var n = WriteSourceBytes(source, sourceBytes);
                var sourceKey = sourceBytes[..n];

                // Whitepaper §5.3: under load, only a message whose mac2 proves its source address is processed.
                if (type != MessageType.CookieReply && admission != Admission.Proven && IsUnderLoad)
                {
                    if (admission == Admission.NoMac2 || !_protocol.HasValidMac2(now, message, sourceKey))
                    {
                        WaitForCookieBudget(ref cookieTokens, ref cookieRefilled);
                        var reply = _protocol.WriteCookieReply(now, message, sourceKey, output);
                        if (reply == 0)
                        {
                            Counters.Drop(DropReason.HandshakeRejected);
                            continue;
                        }

                        holder[0] = output;
                        SendOne(holder, sizeHolder, reply, source, null);
                        continue;
                    }

                    if (!_rateLimiter.Allow(source, now, out _))
                    {
                        Counters.Drop(DropReason.HandshakeRateLimited);
                        continue;
                    }
                }

                var result = _protocol.Decapsulate(now, message, output, sourceKey, underLoad: false);
                var peer = result.Peer?.Tag as DevicePeer;
                if (result.Action == ProtocolAction.Error)
                {
                    Counters.Drop(DropReason.HandshakeRejected);
                    if (peer is not null)
                    {
                        CheckDeadline(peer);
                    }

                    continue;
                }

                if (peer is not null && type != MessageType.CookieReply)
                {
                    peer.UpdateEndpoint(source); // whitepaper §5.4.7: never from a cookie reply
                    peer.AddRx(length);
                }

                if (result.Action == ProtocolAction.WriteToNetwork)
                {
                    holder[0] = output;
                    if (result.Offset != 0)
                    {
                        output.AsSpan(result.Offset, result.Length).CopyTo(output);
                    }

                    SendOne(holder, sizeHolder, result.Length, source, peer);
                }

                if (peer is not null)
                {
                    if (type == MessageType.HandshakeResponse)
                    {
                        FlushStaged(now, peer);
                    }

                    CheckDeadline(peer);
                }
            }
            finally
            {
                _pool.Return(buffer);
            }
        }
    }

    /// <summary>
    /// Waits (on the handshake worker) until the cookie-reply budget (<see cref="CookieRepliesPerSecond"/>, burst
    /// <see cref="CookieReplyBurst"/>, real time) has a token, and takes it. Waiting rather than dropping keeps the
    /// main lane's fairness: while the worker waits, the lane fills and evicts from the flood's buckets, not from the
    /// message it is about to answer.
    /// </summary>
    private void WaitForCookieBudget(ref double tokens, ref long refilled)
    {
        while (true)
        {
            var now = System.Diagnostics.Stopwatch.GetTimestamp();
            tokens = Math.Min(CookieReplyBurst, tokens + ((now - refilled) * (double)CookieRepliesPerSecond / System.Diagnostics.Stopwatch.Frequency));
            refilled = now;
            if (tokens >= 1 || IsDisposed)
            {
                tokens--;
                return;
            }

            Thread.Sleep(1);
        }
    }

    /// <summary>The bytes cookies are bound to (whitepaper §5.4.7): the address, then the port big-endian. Returns 6 or 18.</summary>
    private static int WriteSourceBytes(in UdpEndpoint source, Span<byte> destination)
    {
        var n = source.WriteAddress(destination);
        System.Buffers.Binary.BinaryPrimitives.WriteUInt16BigEndian(destination[n..], source.Port);
        return n + 2;
    }
}
