using System.Collections.Concurrent;
using System.Diagnostics.CodeAnalysis;
using System.Security.Cryptography;
using Sharptun.Crypto;

namespace Sharptun.Protocol;

/// <summary>
/// The device-level half of the sans-I/O WireGuard core: our static key pair, the configured peers (by static public key),
/// the receiver-index table shared by all peers' handshakes and keypairs, and the cookie checker. It classifies every
/// incoming datagram and hands it to the right <see cref="Peer"/>.
/// </summary>
/// <remarks>
/// <para>Never reads the clock: every call takes <c>now</c>, a monotonic <see cref="TimeSpan"/> since any fixed epoch.
/// Wall-clock time (TAI64N) comes from the <see cref="IWallClock"/> given to the constructor.</para>
/// <para>Threading: all members are thread-safe. Peers lock themselves; the index table is a concurrent dictionary, so
/// <see cref="TryGetKeypair"/> is lock-free and allocation-free on the per-packet path.</para>
/// <para>Zero allocations per transport packet; handshakes allocate a little (index entries, keypairs).</para>
/// </remarks>
public sealed class ProtocolDevice
{
    private readonly Lock _lock = new();
    private readonly Dictionary<Key, Peer> _peers = [];
    private readonly ConcurrentDictionary<uint, IndexEntry> _indices = new();
    private readonly Random _random;
    private volatile StaticKeys _keys;

    /// <summary>Creates a device with our static private key.</summary>
    /// <param name="privateKey">Our static private key (copied).</param>
    /// <param name="wallClock">Wall clock for TAI64N timestamps; <see cref="SystemWallClock.Instance"/> when null.</param>
    /// <param name="random">Source of timer jitter only (keys, indices and nonces always come from the OS CSPRNG).
    /// Tests pass a seeded instance for deterministic timers. Used under the device lock to seed each peer's own generator.</param>
    public ProtocolDevice(Key privateKey, IWallClock? wallClock = null, Random? random = null)
    {
        WallClock = wallClock ?? SystemWallClock.Instance;
        _random = random ?? new Random();
        _keys = new StaticKeys(privateKey);
        Cookies.Init(_keys.Public);
    }

    /// <summary>Our static public key.</summary>
    public Key PublicKey => new(_keys.Public);

    /// <summary>Our static private key (for UAPI <c>get=1</c>; never log it).</summary>
    public Key PrivateKey => new(_keys.Private);

    /// <summary>The wall clock used for TAI64N timestamps.</summary>
    public IWallClock WallClock { get; }

    internal CookieChecker Cookies { get; } = new();

    internal StaticKeys Keys => _keys;

    /// <summary>Number of entries in the receiver-index table (handshakes in flight plus live keypairs).</summary>
    public int ActiveIndexCount => _indices.Count;

    /// <summary>
    /// Replaces our static private key. All sessions and handshakes with all peers are dropped (the precomputed
    /// static-static secrets change). Setting the key we already have changes nothing (as wireguard-go), so a UAPI
    /// <c>set</c> that repeats the private key does not break sessions.
    /// </summary>
    /// <remarks>The old private key is wiped once every peer has dropped the state derived from it. An all-zero key
    /// clears the private key (<see cref="ClearPrivateKey"/>).</remarks>
    public void SetPrivateKey(Key privateKey)
    {
        if (privateKey.AsSpan().Length == Key.Size && privateKey.IsZero)
        {
            ClearPrivateKey();
            return;
        }

        lock (_lock)
        {
            var old = _keys;
            if (old.HasPrivateKey && CryptographicOperations.FixedTimeEquals(privateKey.AsSpan(), old.Private))
            {
                return;
            }

            _keys = new StaticKeys(privateKey);
            Cookies.Init(_keys.Public);
            foreach (var peer in _peers.Values)
            {
                peer.OnLocalKeyChanged();
            }

            old.Wipe();
        }
    }

    /// <summary>
    /// Forgets our private key (UAPI <c>private_key=</c> with an empty or all-zero key): every session, handshake and
    /// static-static secret is dropped and the old key is wiped. Handshakes fail with <see cref="ProtocolError.NoPrivateKey"/>
    /// until <see cref="SetPrivateKey"/> gives a new one; <see cref="PrivateKey"/> and <see cref="PublicKey"/> read as zero.
    /// </summary>
    public void ClearPrivateKey()
    {
        lock (_lock)
        {
            var old = _keys;
            if (!old.HasPrivateKey)
            {
                return;
            }

            _keys = StaticKeys.None();
            foreach (var peer in _peers.Values)
            {
                peer.OnLocalKeyCleared();
            }

            old.Wipe();
        }
    }

    /// <summary>True unless the private key was cleared.</summary>
    public bool HasPrivateKey => _keys.HasPrivateKey;

    /// <summary>
    /// Adds a peer (or returns the existing one with that key). A peer whose key gives an all-zero shared secret with
    /// ours is still added but can never complete a handshake (<see cref="ProtocolError.InvalidPeerKey"/>).
    /// </summary>
    public Peer AddPeer(Key publicKey, Key presharedKey = default, TimeSpan persistentKeepalive = default)
    {
        lock (_lock)
        {
            if (_peers.TryGetValue(publicKey, out var existing))
            {
                return existing;
            }

            var peer = new Peer(this, publicKey, presharedKey, persistentKeepalive, new Random(_random.Next()));
            _peers.Add(peer.PublicKey, peer);
            return peer;
        }
    }

    /// <summary>Removes a peer, wiping its keys and freeing its indices. False when it was not configured.</summary>
    /// <remarks>A thread that looked the peer up before the removal may still hold it; everything that would give it an
    /// index entry or a keypair runs under the peer's lock and checks its removed flag, so none survives the removal.
    /// Its preshared key and static-static secret are wiped too.</remarks>
    public bool RemovePeer(Key publicKey)
    {
        Peer? peer;
        lock (_lock)
        {
            if (!_peers.Remove(publicKey, out peer))
            {
                return false;
            }

            peer.Remove(); // lock order device → peer
        }

        return true;
    }

    /// <summary>Finds a configured peer by static public key.</summary>
    public bool TryGetPeer(Key publicKey, [NotNullWhen(true)] out Peer? peer)
    {
        lock (_lock)
        {
            return _peers.TryGetValue(publicKey, out peer);
        }
    }

    /// <summary>A snapshot of the configured peers.</summary>
    public Peer[] GetPeers()
    {
        lock (_lock)
        {
            return [.. _peers.Values];
        }
    }

    /// <summary>
    /// Looks up the live keypair a transport packet's receiver index names, across all peers. Lock-free, no allocation.
    /// The keypair may be expired or retired; <see cref="Keypair.IsExpired"/> tells.
    /// </summary>
    public bool TryGetKeypair(uint receiverIndex, [NotNullWhen(true)] out Keypair? keypair)
    {
        if (_indices.TryGetValue(receiverIndex, out var entry) && entry.Keypair is { } k)
        {
            keypair = k;
            return true;
        }

        keypair = null;
        return false;
    }

    /// <summary>
    /// Processes one handshake message (initiation, response or cookie reply) received from <paramref name="source"/>.
    /// Transport data is not handled here (it gives <see cref="ProtocolError.UnexpectedMessage"/>): it goes through
    /// <see cref="TryGetKeypair"/>, <see cref="Keypair.TryDecrypt"/> and <see cref="Peer.ReceiveTransport"/>, so a
    /// device can decrypt in parallel and complete in order.
    /// </summary>
    /// <param name="now">Monotonic time.</param>
    /// <param name="datagram">The UDP payload (untrusted; any length).</param>
    /// <param name="destination">Where output goes: a handshake response / cookie reply / keepalive at offset 0
    /// (<see cref="ProtocolAction.WriteToNetwork"/>, send it back to <paramref name="source"/>). May be the same memory
    /// as <paramref name="datagram"/>. Needs at least max(datagram length, 148) bytes.</param>
    /// <param name="source">The sender's address as bytes (IP address bytes then port, e.g. from
    /// <see cref="WriteSourceBytes"/>); only used to bind cookies to the sender (whitepaper §5.4.7).</param>
    /// <param name="underLoad">When true, handshake messages without a valid mac2 are answered with a cookie reply
    /// instead of being processed (whitepaper §5.3).</param>
    /// <returns>What to do; rejected input gives <see cref="ProtocolAction.Error"/> with a reason and never throws.
    /// <see cref="ProtocolResult.Peer"/> is set for every authenticated message (update the peer's endpoint to
    /// <paramref name="source"/> then — but not for cookie replies, whitepaper §5.4.7).</returns>
    public ProtocolResult Decapsulate(TimeSpan now, ReadOnlySpan<byte> datagram, Span<byte> destination, ReadOnlySpan<byte> source = default, bool underLoad = false)
    {
        var error = MessageHeader.TryGetType(datagram, out var type);
        if (error != ProtocolError.None)
        {
            return ProtocolResult.Fail(error);
        }

        return type switch
        {
            MessageType.TransportData => ProtocolResult.Fail(ProtocolError.UnexpectedMessage),
            MessageType.HandshakeInitiation => HandleInitiation(now, datagram, destination, source, underLoad),
            MessageType.HandshakeResponse => HandleResponse(now, datagram, destination, source, underLoad),
            MessageType.CookieReply => HandleCookieReply(now, datagram),
            _ => ProtocolResult.Fail(ProtocolError.UnknownMessageType),
        };
    }

    /// <summary>
    /// True when <paramref name="datagram"/> is a handshake initiation or response with a valid mac1 for our public key
    /// (whitepaper §5.4.4): its sender knows who we are. One keyed BLAKE2s, so a device can check every handshake message
    /// on its receive thread and drop the rest before they cost a queue slot. Never throws; false for anything else.
    /// </summary>
    public bool HasValidMac1(ReadOnlySpan<byte> datagram)
    {
        if (MessageHeader.TryGetType(datagram, out var type) != ProtocolError.None)
        {
            return false;
        }

        if (type == MessageType.HandshakeInitiation && HandshakeInitiationView.TryCreate(datagram, out var initiation))
        {
            return Cookies.CheckMac1(initiation.Mac1Input, initiation.Mac1);
        }

        return type == MessageType.HandshakeResponse && HandshakeResponseView.TryCreate(datagram, out var response)
            && Cookies.CheckMac1(response.Mac1Input, response.Mac1);
    }

    /// <summary>
    /// True when <paramref name="datagram"/> is a handshake initiation or response whose mac2 is valid for
    /// <paramref name="source"/> (whitepaper §5.4.4): its sender received a cookie at that address within the last two
    /// minutes, so the address is its own. A device under load processes only such messages and rate-limits them per
    /// (now proven) address; the others get a cookie reply (<see cref="WriteCookieReply"/>, §5.3). Costs two MACs; mac1
    /// is not checked here (<see cref="HasValidMac1"/>). An all-zero mac2 is what a sender without a cookie sends
    /// (§5.4.4) and is refused without computing a MAC. Never throws; false for anything else.
    /// </summary>
    public bool HasValidMac2(TimeSpan now, ReadOnlySpan<byte> datagram, ReadOnlySpan<byte> source)
    {
        if (MessageHeader.TryGetType(datagram, out var type) != ProtocolError.None)
        {
            return false;
        }

        if (type == MessageType.HandshakeInitiation && HandshakeInitiationView.TryCreate(datagram, out var initiation))
        {
            return initiation.Mac2.ContainsAnyExcept((byte)0) && Cookies.CheckMac2(initiation.Mac2Input, initiation.Mac2, source, now);
        }

        return type == MessageType.HandshakeResponse && HandshakeResponseView.TryCreate(datagram, out var response)
            && response.Mac2.ContainsAnyExcept((byte)0) && Cookies.CheckMac2(response.Mac2Input, response.Mac2, source, now);
    }

    /// <summary>
    /// Writes the cookie reply (whitepaper §5.4.7, <see cref="CookieReplyView.Size"/> bytes at the start of
    /// <paramref name="destination"/>) that answers a handshake initiation or response from <paramref name="source"/>
    /// when we are under load and its mac2 does not prove that address (§5.3). Checks mac1 first: only a sender that knows
    /// our public key gets a cookie. Returns the length written, or 0 (nothing written) when the datagram is not an
    /// initiation or response with a valid mac1 or <paramref name="destination"/> is too small. Never throws.
    /// </summary>
    public int WriteCookieReply(TimeSpan now, ReadOnlySpan<byte> datagram, ReadOnlySpan<byte> source, Span<byte> destination)
    {
        if (destination.Length < CookieReplyView.Size || MessageHeader.TryGetType(datagram, out var type) != ProtocolError.None)
        {
            return 0;
        }

        uint sender;
        ReadOnlySpan<byte> mac1;
        if (type == MessageType.HandshakeInitiation && HandshakeInitiationView.TryCreate(datagram, out var initiation)
            && Cookies.CheckMac1(initiation.Mac1Input, initiation.Mac1))
        {
            sender = initiation.SenderIndex;
            mac1 = initiation.Mac1;
        }
        else if (type == MessageType.HandshakeResponse && HandshakeResponseView.TryCreate(datagram, out var response)
            && Cookies.CheckMac1(response.Mac1Input, response.Mac1))
        {
            sender = response.SenderIndex;
            mac1 = response.Mac1;
        }
        else
        {
            return 0;
        }

        Cookies.CreateReply(sender, mac1, source, now, destination);
        return CookieReplyView.Size;
    }

    /// <summary>Writes the bytes that identify a sender for cookies: the IP address bytes then the port (big-endian). Returns the length (6 or 18).</summary>
    public static int WriteSourceBytes(System.Net.IPEndPoint endPoint, Span<byte> destination)
    {
        if (!endPoint.Address.TryWriteBytes(destination, out var written))
        {
            throw new ArgumentException("Destination too small (needs 18 bytes).", nameof(destination));
        }

        System.Buffers.Binary.BinaryPrimitives.WriteUInt16BigEndian(destination[written..], (ushort)endPoint.Port);
        return written + 2;
    }

    private ProtocolResult HandleInitiation(TimeSpan now, ReadOnlySpan<byte> datagram, Span<byte> destination, ReadOnlySpan<byte> source, bool underLoad)
    {
        if (!HandshakeInitiationView.TryCreate(datagram, out var msg))
        {
            return ProtocolResult.Fail(ProtocolError.Truncated);
        }

        if (!_keys.HasPrivateKey)
        {
            return ProtocolResult.Fail(ProtocolError.NoPrivateKey);
        }

        if (!Cookies.CheckMac1(msg.Mac1Input, msg.Mac1))
        {
            return ProtocolResult.Fail(ProtocolError.InvalidMac1);
        }

        if (destination.Length < HandshakeInitiationView.Size)
        {
            return ProtocolResult.Fail(ProtocolError.BufferTooSmall);
        }

        // Whitepaper §5.3: under load, answer with a cookie reply unless mac2 proves the source address.
        if (underLoad && !Cookies.CheckMac2(msg.Mac2Input, msg.Mac2, source, now))
        {
            Cookies.CreateReply(msg.SenderIndex, msg.Mac1, source, now, destination);
            return new ProtocolResult(ProtocolAction.WriteToNetwork, 0, CookieReplyView.Size, ProtocolError.CookieRequired, null);
        }

        // Whitepaper §5.4.2, responder side, up to the point where the initiator's identity is known.
        var keys = _keys;
        Span<byte> hash = stackalloc byte[Noise.HashSize];
        Span<byte> chainKey = stackalloc byte[Noise.HashSize];
        Span<byte> key = stackalloc byte[Noise.HashSize];
        Span<byte> sharedSecret = stackalloc byte[Noise.HashSize];
        Span<byte> peerStatic = stackalloc byte[Key.Size];
        try
        {
            Noise.InitialHash.CopyTo(hash);
            Noise.InitialChainKey.CopyTo(chainKey);
            Noise.MixHash(hash, keys.Public);
            Noise.MixHash(hash, msg.Ephemeral);
            Noise.MixKey(chainKey, msg.Ephemeral);
            if (!X25519.TrySharedSecret(keys.Private, msg.Ephemeral, sharedSecret))
            {
                return ProtocolResult.Fail(ProtocolError.LowOrderPoint);
            }

            Noise.MixKeyAndGetKey(chainKey, sharedSecret, key);
            if (!Noise.Open(key, msg.EncryptedStatic, hash, peerStatic))
            {
                return ProtocolResult.Fail(ProtocolError.DecryptionFailed);
            }

            Noise.MixHash(hash, msg.EncryptedStatic);

            Peer? peer;
            lock (_lock)
            {
                _peers.TryGetValue(new Key(peerStatic), out peer);
            }

            if (peer is null)
            {
                return ProtocolResult.Fail(ProtocolError.UnknownPeer);
            }

            // The peer may be removed from here on; ConsumeInitiation checks that under the peer's lock.
            AfterInitiationLookupForTest?.Invoke(peer);
            return peer.ConsumeInitiation(now, msg, hash, chainKey, destination);
        }
        finally
        {
            CryptographicOperations.ZeroMemory(chainKey);
            CryptographicOperations.ZeroMemory(key);
            CryptographicOperations.ZeroMemory(sharedSecret);
        }
    }

    private ProtocolResult HandleResponse(TimeSpan now, ReadOnlySpan<byte> datagram, Span<byte> destination, ReadOnlySpan<byte> source, bool underLoad)
    {
        if (!HandshakeResponseView.TryCreate(datagram, out var msg))
        {
            return ProtocolResult.Fail(ProtocolError.Truncated);
        }

        if (!_keys.HasPrivateKey)
        {
            return ProtocolResult.Fail(ProtocolError.NoPrivateKey);
        }

        if (!Cookies.CheckMac1(msg.Mac1Input, msg.Mac1))
        {
            return ProtocolResult.Fail(ProtocolError.InvalidMac1);
        }

        if (destination.Length < HandshakeResponseView.Size)
        {
            return ProtocolResult.Fail(ProtocolError.BufferTooSmall);
        }

        if (underLoad && !Cookies.CheckMac2(msg.Mac2Input, msg.Mac2, source, now))
        {
            Cookies.CreateReply(msg.SenderIndex, msg.Mac1, source, now, destination);
            return new ProtocolResult(ProtocolAction.WriteToNetwork, 0, CookieReplyView.Size, ProtocolError.CookieRequired, null);
        }

        if (!_indices.TryGetValue(msg.ReceiverIndex, out var entry) || entry.Keypair is not null)
        {
            return ProtocolResult.Fail(ProtocolError.UnknownReceiverIndex);
        }

        return entry.Peer.ConsumeResponse(now, msg, destination);
    }

    private ProtocolResult HandleCookieReply(TimeSpan now, ReadOnlySpan<byte> datagram)
    {
        if (!CookieReplyView.TryCreate(datagram, out var msg))
        {
            return ProtocolResult.Fail(ProtocolError.Truncated);
        }

        if (!_indices.TryGetValue(msg.ReceiverIndex, out var entry))
        {
            return ProtocolResult.Fail(ProtocolError.UnknownReceiverIndex);
        }

        return entry.Peer.ConsumeCookieReply(now, msg);
    }

    /// <summary>Takes a fresh random index, unique among our live indices (whitepaper §5.4.2: "randomly generated").</summary>
    internal uint AllocateIndex(IndexEntry entry)
    {
        Span<byte> bytes = stackalloc byte[4];
        while (true)
        {
            RandomNumberGenerator.Fill(bytes);
            var index = System.Buffers.Binary.BinaryPrimitives.ReadUInt32LittleEndian(bytes);
            if (_indices.TryAdd(index, entry))
            {
                return index;
            }
        }
    }

    internal void FreeIndex(uint index, IndexEntry entry)
    {
        _indices.TryRemove(new KeyValuePair<uint, IndexEntry>(index, entry));
    }

    /// <summary>Test hook: runs on the handshake thread between an initiation's peer lookup and its use (to stage removals there).</summary>
    internal Action<Peer>? AfterInitiationLookupForTest { get; set; }

    /// <summary>Test hook: index-table entries (handshakes or keypairs) that belong to <paramref name="peer"/>.</summary>
    internal int IndexEntriesOf(Peer peer)
    {
        var n = 0;
        foreach (var pair in _indices)
        {
            n += ReferenceEquals(pair.Value.Peer, peer) ? 1 : 0;
        }

        return n;
    }

    /// <summary>One entry of the receiver-index table: a handshake in flight (Keypair null) or a keypair.</summary>
    internal sealed class IndexEntry(Peer peer)
    {
        public Peer Peer { get; } = peer;

        public volatile Keypair? Keypair;
    }

    /// <summary>Our static key pair, swapped as a whole when the private key changes (the old one is then wiped).</summary>
    /// <remarks>Handshake code reads <see cref="Keys"/> once without a lock; if the pair is wiped under it, the
    /// Diffie-Hellman results are wrong and the handshake fails authentication — nothing derived from a wiped key is sent.</remarks>
    internal sealed class StaticKeys
    {
        public StaticKeys(Key privateKey)
        {
            if (privateKey.AsSpan().Length != Key.Size)
            {
                throw new ArgumentException("A private key is 32 bytes.", nameof(privateKey));
            }

            privateKey.AsSpan().CopyTo(Private);
            X25519.PublicKey(Private, Public);
            HasPrivateKey = true;
        }

        private StaticKeys()
        {
        }

        public byte[] Private { get; } = new byte[32];

        public byte[] Public { get; } = new byte[32];

        /// <summary>False for the all-zero stand-in after <see cref="ClearPrivateKey"/>.</summary>
        public bool HasPrivateKey { get; }

        /// <summary>The stand-in when no private key is set: all zero.</summary>
        public static StaticKeys None() => new();

        /// <summary>Wipes the private key (after the pair was replaced).</summary>
        public void Wipe() => CryptographicOperations.ZeroMemory(Private);
    }
}
