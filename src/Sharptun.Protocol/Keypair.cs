using System.Buffers.Binary;
using System.Security.Cryptography;
using Sharptun.Crypto;

namespace Sharptun.Protocol;

/// <summary>
/// One pair of transport keys derived from a completed handshake (whitepaper §5.4.5), with its send counter and
/// receive replay window.
/// </summary>
/// <remarks>
/// Threading: <see cref="TryAllocateCounter"/> is lock-free (Interlocked) and may be called from any thread, but to keep
/// per-peer order a device reserves counters through <see cref="Peer.TryReserveSend"/> under the peer's lock.
/// <see cref="Encrypt"/> and <see cref="TryDecrypt"/> touch no mutable state except the caller's buffer and may run
/// concurrently on worker threads. <see cref="TryAcceptCounter"/> takes a small internal lock.
/// When the keypair is retired its keys are wiped; a worker still holding it then produces packets the peer drops
/// (decryption fails) — harmless, and never a plaintext leak.
/// </remarks>
public sealed class Keypair
{
    private readonly byte[] _sendKey = new byte[ChaChaPoly.KeySize];
    private readonly byte[] _receiveKey = new byte[ChaChaPoly.KeySize];
    private readonly ReplayWindow _replay = new();
    private readonly Lock _replayLock = new();
    private ulong _sendCounter;
    private volatile bool _retired;

    internal Keypair(Peer peer, ReadOnlySpan<byte> sendKey, ReadOnlySpan<byte> receiveKey, bool isInitiator, uint localIndex, uint remoteIndex, TimeSpan created)
    {
        Peer = peer;
        sendKey.CopyTo(_sendKey);
        receiveKey.CopyTo(_receiveKey);
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
    public bool IsRetired => _retired;

    /// <summary>True when the keypair is older than RejectAfterTime (whitepaper §6.1) or retired.</summary>
    public bool IsExpired(TimeSpan now) => _retired || now - Created >= ProtocolConstants.RejectAfterTime;

    /// <summary>
    /// Takes the next send counter. False once the counter would reach RejectAfterMessages (whitepaper §6.1) or after
    /// the keypair was retired.
    /// </summary>
    public bool TryAllocateCounter(out ulong counter)
    {
        if (_retired)
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
    /// <c>buffer[0..16]</c> and returns the datagram length, or -1 when the buffer is too small. Zero allocations.
    /// </summary>
    public int Encrypt(ulong counter, Span<byte> buffer, int packetLength, int mtu = 0)
    {
        var padding = PaddingLength(packetLength, mtu);
        var total = TransportDataView.HeaderSize + packetLength + padding + TransportDataView.TagSize;
        if (packetLength < 0 || buffer.Length < total)
        {
            return -1;
        }

        var body = buffer.Slice(TransportDataView.HeaderSize, packetLength + padding);
        body[packetLength..].Clear();
        BinaryPrimitives.WriteUInt32LittleEndian(buffer, (uint)MessageType.TransportData);
        BinaryPrimitives.WriteUInt32LittleEndian(buffer[TransportDataView.ReceiverOffset..], RemoteIndex);
        BinaryPrimitives.WriteUInt64LittleEndian(buffer[TransportDataView.CounterOffset..], counter);
        ChaChaPoly.Encrypt(_sendKey, counter, body, body, buffer.Slice(TransportDataView.HeaderSize + body.Length, TransportDataView.TagSize));
        return total;
    }

    /// <summary>
    /// Authenticates and decrypts a transport datagram addressed to this keypair. The plaintext (padded) goes to
    /// <c>destination[16 .. 16 + plaintextLength]</c>; <paramref name="destination"/> may be the datagram's own buffer
    /// (in place). Does not touch the replay window: call <see cref="TryAcceptCounter"/> (or
    /// <see cref="Peer.ReceiveTransport"/>) afterwards, in order. Never throws for bad input. Zero allocations.
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
        if (!ChaChaPoly.Decrypt(_receiveKey, counter, ciphertext, view.Tag, plaintext))
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
            return !_retired && _replay.TryAccept(counter);
        }
    }

    internal ProtocolDevice.IndexEntry? IndexEntry { get; set; }

    /// <summary>Test hook: moves the send counter (to exercise RejectAfterMessages / RekeyAfterMessages).</summary>
    internal void SetSendCounterForTest(ulong value) => Volatile.Write(ref _sendCounter, value);

    /// <summary>Wipes the keys; the keypair can no longer send or receive.</summary>
    internal void Retire()
    {
        _retired = true;
        CryptographicOperations.ZeroMemory(_sendKey);
        CryptographicOperations.ZeroMemory(_receiveKey);
    }

    /// <summary>Test hook: true when both keys are all zero.</summary>
    internal bool KeysAreZero => _sendKey.AsSpan().IndexOfAnyExcept((byte)0) < 0 && _receiveKey.AsSpan().IndexOfAnyExcept((byte)0) < 0;
}
