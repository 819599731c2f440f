using System.Buffers.Binary;
using Sharptun.Crypto;

namespace Sharptun.Protocol;

/// <summary>
/// One pair of transport keys derived from a completed handshake (whitepaper §5.4.5), with its send counter and
/// receive replay window.
/// </summary>
/// <remarks>
/// <para>Threading: <see cref="TryAllocateCounter"/> is lock-free (Interlocked) and may be called from any thread, but to keep
/// per-peer order a device reserves counters through <see cref="Peer.TryReserveSend"/> under the peer's lock.
/// <see cref="TryEncrypt"/> and <see cref="TryDecrypt"/> touch no mutable state except the caller's buffer and the user count
/// below, and may run concurrently on worker threads. <see cref="TryAcceptCounter"/> takes a small internal lock.</para>
/// <para>Retirement (the key-retirement rule, docs/architecture.md "Threading contract"): a retired keypair never
/// encrypts or authenticates again, and its keys are wiped exactly once, by whoever leaves last. One int holds a retired
/// bit and the number of threads inside <see cref="TryEncrypt"/> / <see cref="TryDecrypt"/>. A user enters with a
/// CompareExchange that fails once the bit is set (the call then returns <see cref="ProtocolError.KeypairRetired"/>
/// without touching the keys) and leaves with an Interlocked decrement; <see cref="Retire"/> sets the bit with
/// Interlocked.Or. The wipe runs on the transition to "retired, no users": in Retire when nobody is inside, otherwise in
/// the last user's decrement. Interlocked operations are full fences on every platform .NET supports (ARM64
/// included), so every key read of a user happens before its decrement and the wipe happens after it: no datagram is
/// ever sealed, and no tag ever verified, under a zero or half-wiped key. Packets that still wait in a device's queues
/// when the keypair retires are dropped (and counted) by the device.</para>
/// </remarks>
public sealed class Keypair
{
    private const int RetiredBit = 1 << 30;

    private readonly ChaChaPolyKey _sendKey;
    private readonly ChaChaPolyKey _receiveKey;
    private readonly ReplayWindow _replay = new();
    private readonly Lock _replayLock = new();
    private ulong _sendCounter;

    // RetiredBit | number of threads using the keys (see the remarks). Only changed with Interlocked operations.
    private int _state;

    internal Keypair(Peer peer, ReadOnlySpan<byte> sendKey, ReadOnlySpan<byte> receiveKey, bool isInitiator, uint localIndex, uint remoteIndex, TimeSpan created)
    {
        Peer = peer;
        _sendKey = new ChaChaPolyKey(sendKey);
        _receiveKey = new ChaChaPolyKey(receiveKey);
        IsInitiator = isInitiator;
        LocalIndex = localIndex;
        RemoteIndex = remoteIndex;
        Created = created;
    }

    /// <summary>The peer this keypair belongs to.</summary>
    public Peer Peer { get; }

    /// <summary>Our index: the receiver index of transport packets the peer sends us.</summary>
    public uint LocalIndex { get; }

    /// <summary>The peer's index: written as the receiver index of packets we send.</summary>
    public uint RemoteIndex { get; }

    /// <summary>True when we initiated the handshake that produced this keypair (only the initiator rekeys on time, whitepaper §6.2).</summary>
    public bool IsInitiator { get; }

    /// <summary>Monotonic time of the handshake that produced this keypair.</summary>
    public TimeSpan Created { get; }

    /// <summary>The counter the next send will use.</summary>
    public ulong NextSendCounter => Volatile.Read(ref _sendCounter);

    /// <summary>Highest counter received so far.</summary>
    public ulong LastReceivedCounter
    {
        get
        {
            lock (_replayLock)
            {
                return _replay.Last;
            }
        }
    }

    /// <summary>True once the keypair has been replaced or zeroed; it must not be used any more.</summary>
    public bool IsRetired => (Volatile.Read(ref _state) & RetiredBit) != 0;

    /// <summary>True when the keypair is older than RejectAfterTime (whitepaper §6.1) or retired.</summary>
    public bool IsExpired(TimeSpan now) => IsRetired || now - Created >= ProtocolConstants.RejectAfterTime;

    /// <summary>
    /// Takes the next send counter. False once the counter would reach RejectAfterMessages (whitepaper §6.1) or after
    /// the keypair was retired.
    /// </summary>
    public bool TryAllocateCounter(out ulong counter)
    {
        if (IsRetired)
        {
            counter = 0;
            return false;
        }

        counter = Interlocked.Increment(ref _sendCounter) - 1;
        if (counter >= ProtocolConstants.RejectAfterMessages)
        {
            // Keep the counter pinned at the limit so it never wraps.
            Volatile.Write(ref _sendCounter, ProtocolConstants.RejectAfterMessages);
            return false;
        }

        return true;
    }

    /// <summary>Bytes of padding added to a packet of <paramref name="packetLength"/> bytes (whitepaper §5.4.6: to a multiple of 16, capped at the MTU when one is given).</summary>
    public static int PaddingLength(int packetLength, int mtu = 0)
    {
        var padded = (packetLength + 15) & ~15;
        if (mtu > 0 && packetLength <= mtu && padded > mtu)
        {
            padded = mtu;
        }

        return padded - packetLength;
    }

    /// <summary>Datagram length for a packet of <paramref name="packetLength"/> bytes: header + padded packet + tag.</summary>
    public static int DatagramLength(int packetLength, int mtu = 0) =>
        TransportDataView.HeaderSize + packetLength + PaddingLength(packetLength, mtu) + TransportDataView.TagSize;

    /// <summary>
    /// Encrypts in place. The IP packet is at <c>buffer[16 .. 16 + packetLength]</c> (headroom for the header); the buffer
    /// must have tailroom for padding and the 16-byte tag (<see cref="DatagramLength"/>). Writes the transport header to
    /// <c>buffer[0..16]</c> and sets <paramref name="datagramLength"/>. Returns <see cref="ProtocolError.BufferTooSmall"/>
    /// when the buffer is too small and <see cref="ProtocolError.KeypairRetired"/> when the keypair has been retired (no
    /// datagram is produced: drop the packet). Zero allocations.
    /// </summary>
    public ProtocolError TryEncrypt(ulong counter, Span<byte> buffer, int packetLength, out int datagramLength, int mtu = 0)
    {
        datagramLength = 0;
        var padding = PaddingLength(packetLength, mtu);
        var total = TransportDataView.HeaderSize + packetLength + padding + TransportDataView.TagSize;
        if (packetLength < 0 || buffer.Length < total)
        {
            return ProtocolError.BufferTooSmall;
        }

        if (!TryEnter())
        {
            return ProtocolError.KeypairRetired;
        }

        try
        {
            var body = buffer.Slice(TransportDataView.HeaderSize, packetLength + padding);
            body[packetLength..].Clear();
            BinaryPrimitives.WriteUInt32LittleEndian(buffer, (uint)MessageType.TransportData);
            BinaryPrimitives.WriteUInt32LittleEndian(buffer[TransportDataView.ReceiverOffset..], RemoteIndex);
            BinaryPrimitives.WriteUInt64LittleEndian(buffer[TransportDataView.CounterOffset..], counter);
            _sendKey.Encrypt(counter, body, body, buffer.Slice(TransportDataView.HeaderSize + body.Length, TransportDataView.TagSize));
        }
        finally
        {
            Leave();
        }

        datagramLength = total;
        return ProtocolError.None;
    }

    /// <summary>
    /// Authenticates and decrypts a transport datagram addressed to this keypair. The plaintext (padded) goes to
    /// <c>destination[16 .. 16 + plaintextLength]</c>; <paramref name="destination"/> may be the datagram's own buffer
    /// (in place). Does not touch the replay window: call <see cref="TryAcceptCounter"/> (or
    /// <see cref="Peer.ReceiveTransport"/>) afterwards, in order. Returns <see cref="ProtocolError.KeypairRetired"/> once the
    /// keypair has been retired (nothing is authenticated then). Never throws for bad input. Zero allocations.
    /// </summary>
    public ProtocolError TryDecrypt(ReadOnlySpan<byte> datagram, Span<byte> destination, out ulong counter, out int plaintextLength)
    {
        counter = 0;
        plaintextLength = 0;
        if (!TransportDataView.TryCreate(datagram, out var view))
        {
            return MessageHeader.TryGetType(datagram, out _) is var e && e != ProtocolError.None ? e : ProtocolError.UnexpectedMessage;
        }

        if (view.ReceiverIndex != LocalIndex)
        {
            return ProtocolError.UnknownReceiverIndex;
        }

        counter = view.Counter;
        if (counter >= ProtocolConstants.RejectAfterMessages)
        {
            return ProtocolError.CounterLimitReached;
        }

        var ciphertext = view.EncryptedPacket;
        if (destination.Length < TransportDataView.HeaderSize + ciphertext.Length)
        {
            return ProtocolError.BufferTooSmall;
        }

        var plaintext = destination.Slice(TransportDataView.HeaderSize, ciphertext.Length);
        if (!TryEnter())
        {
            return ProtocolError.KeypairRetired;
        }

        bool authentic;
        try
        {
            authentic = _receiveKey.Decrypt(counter, ciphertext, view.Tag, plaintext);
        }
        finally
        {
            Leave();
        }

        if (!authentic)
        {
            return ProtocolError.DecryptionFailed;
        }

        plaintextLength = ciphertext.Length;
        return ProtocolError.None;
    }

    /// <summary>Replay check and update for an authenticated counter (whitepaper §5.4.6). Thread-safe.</summary>
    public bool TryAcceptCounter(ulong counter)
    {
        lock (_replayLock)
        {
            return !IsRetired && _replay.TryAccept(counter);
        }
    }

    internal ProtocolDevice.IndexEntry? IndexEntry { get; set; }

    /// <summary>Test hook: moves the send counter (to exercise RejectAfterMessages / RekeyAfterMessages).</summary>
    internal void SetSendCounterForTest(ulong value) => Volatile.Write(ref _sendCounter, value);

    /// <summary>
    /// Retires the keypair: from now on <see cref="TryEncrypt"/> and <see cref="TryDecrypt"/> refuse it, and the keys (and
    /// their OpenSSL contexts) are wiped as soon as no thread is inside either (at once when none is). Idempotent.
    /// </summary>
    internal void Retire()
    {
        if (Interlocked.Or(ref _state, RetiredBit) == 0)
        {
            Wipe(); // was live with no users: nobody else will see the transition to "retired, no users"
        }
    }

    /// <summary>Test hook: enters as a user (as TryEncrypt/TryDecrypt do); false once retired.</summary>
    internal bool TryEnterForTest() => TryEnter();

    /// <summary>Test hook: leaves (the last user after retirement wipes).</summary>
    internal void LeaveForTest() => Leave();

    /// <summary>Test hook: true when both keys have been wiped (bytes zeroed, OpenSSL contexts freed).</summary>
    internal bool KeysAreZero => _sendKey.IsDisposed && _receiveKey.IsDisposed;

    /// <summary>Test hook: the send key (tests inspect its bytes and OpenSSL contexts).</summary>
    internal ChaChaPolyKey SendKeyForTest => _sendKey;

    /// <summary>Test hook: the receive key.</summary>
    internal ChaChaPolyKey ReceiveKeyForTest => _receiveKey;

    private bool TryEnter()
    {
        var state = Volatile.Read(ref _state);
        while ((state & RetiredBit) == 0)
        {
            var seen = Interlocked.CompareExchange(ref _state, state + 1, state);
            if (seen == state)
            {
                return true;
            }

            state = seen;
        }

        return false;
    }

    private void Leave()
    {
        if (Interlocked.Decrement(ref _state) == RetiredBit)
        {
            Wipe(); // the last user after retirement; the count cannot rise again once the bit is set
        }
    }

    private void Wipe()
    {
        _sendKey.Dispose();
        _receiveKey.Dispose();
    }
}
