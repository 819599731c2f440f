using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using Sharptun.Device.Routing;
using Sharptun.Protocol;
using Sharptun.Transport;

namespace Sharptun.Device.Pipeline;

/// <summary>
/// A WireGuard device: moves packets between an <see cref="IPacketDevice"/> (TUN-like) and an
/// <see cref="IDatagramBind"/> (UDP) through the sans-I/O protocol core, configured through
/// <see cref="Uapi.IUapiDevice"/> (the UAPI <c>get=1</c>/<c>set=1</c> semantics of wireguard-go).
/// </summary>
/// <remarks>
/// <para>Threads (all background threads, started by the constructor): one TUN reader (<c>WireGuardDevice.Send.cs</c>),
/// one UDP receiver (<c>WireGuardDevice.Receive.cs</c>), one handshake worker (<c>WireGuardDevice.Handshake.cs</c>), one
/// timer service (<c>WireGuardDevice.Timers.cs</c>) and <see cref="WireGuardDeviceOptions.CryptoWorkers"/> crypto workers.
/// Every queue is bounded and every packet lives in one <see cref="PacketBufferPool"/> with a byte budget.</para>
/// <para>Lock order: <c>_configLock</c> (UAPI apply, peer add/remove) → a peer's <c>SendLock</c> → queue locks / pool lock.
/// The data path never takes <c>_configLock</c>; it reads the allowed-IPs table lock-free and finds peers through
/// keypairs (<see cref="ProtocolDevice.TryGetKeypair"/>).</para>
/// <para>Liveness: a pipeline thread that dies of an unexpected exception faults <see cref="Completion"/> (the daemon
/// then exits with an error); the packet device closing completes it. Drain flags are released in <c>finally</c>, so an
/// exception never leaves a peer's queue without a drainer; send/write errors of one batch are counted drops.</para>
/// <para>Dispose stops the threads and closes the bind; the packet device is owned by the caller and is not disposed
/// (dispose it first to unblock the reader promptly). All public members are thread-safe.</para>
/// </remarks>
public sealed partial class WireGuardDevice : Uapi.IUapiDevice, IDisposable
{
    private const int HeaderSize = TransportDataView.HeaderSize;
    private const int TailRoom = 15 + TransportDataView.TagSize;
    private const int KeepaliveDatagramSize = TransportDataView.MinSize; // header + tag, no payload (whitepaper §6.5)
    private const string TunReaderThreadName = "wg-tun-reader";

    /// <summary>A large buffer holds any packet: header room + 65535 + padding + tag (wireguard-go's MaxMessageSize is 65535 for the datagram).</summary>
    private const int LargeBufferSize = HeaderSize + ushort.MaxValue + TailRoom;

    private readonly IPacketDevice _tun;
    private readonly IDatagramBindFactory _bindFactory;
    private readonly WireGuardDeviceOptions _options;
    private readonly ILogger _log;
    private readonly DeviceClock _clock;
    private readonly Lock _configLock = new();
    private readonly Dictionary<Key, DevicePeer> _peers = [];
    private readonly AllowedIps<DevicePeer> _allowedIps = new();
    private readonly ProtocolDevice _protocol;
    private readonly PacketBufferPool _pool;
    private readonly Stack<PacketElement> _elementPool = new();
    private readonly Lock _elementPoolLock = new();
    private readonly WorkQueue _work;
    private readonly Lock _tunWriteLock = new();
    private readonly List<Thread> _threads = [];
    private readonly CancellationTokenSource _stop = new();
    private readonly TaskCompletionSource _completion = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private volatile DevicePeer[] _peerList = [];
    private volatile IDatagramBind? _bind;
    private volatile bool _hasPrivateKey;
    private uint _fwMark;
    private int _stagedTotal;
    private int _disposed;
    private long _threadAllocatedBytes;

    /// <summary>
    /// Creates the device and starts its threads. The bind is opened at once on
    /// <see cref="WireGuardDeviceOptions.InitialListenPort"/> (0 = random) and reopened on <c>listen_port</c> changes.
    /// </summary>
    /// <param name="tun">The packet device (not owned: the caller disposes it).</param>
    /// <param name="bindFactory">Opens UDP binds.</param>
    /// <param name="options">Limits; defaults when null.</param>
    /// <param name="logger">Where the device logs (category: this type's full name by convention); nothing when null.
    /// Key material is never logged.</param>
    public WireGuardDevice(IPacketDevice tun, IDatagramBindFactory bindFactory, WireGuardDeviceOptions? options = null, ILogger? logger = null)
    {
        ArgumentNullException.ThrowIfNull(tun);
        ArgumentNullException.ThrowIfNull(bindFactory);
        _tun = tun;
        _bindFactory = bindFactory;
        _options = options ?? new WireGuardDeviceOptions();
        _log = logger ?? NullLogger.Instance;
        _clock = _options.Clock ?? new DeviceClock();
        if (_options.BufferSize < HeaderSize + 1280 + TailRoom)
        {
            throw new ArgumentOutOfRangeException(nameof(options), "BufferSize must hold the header, a 1280-byte packet, padding and tag");
        }

        // Jumbo packets (any MTU up to 65535, changed at run time) spill from the usual buffers into the large companion
        // pool: the Linux transports read them through a second vector and swap in a large buffer (OversizePool).
        // (Buffers configured that big already hold any packet: then there is no companion.)
        var large = _options.BufferSize < LargeBufferSize
            ? new PacketBufferPool(Math.Max(_options.LargeBufferBudgetBytes, LargeBufferSize), LargeBufferSize)
            : null;
        _pool = new PacketBufferPool(_options.BufferBudgetBytes, _options.BufferSize, large);
        _work = new WorkQueue(_pool.MaxBuffers + (large?.MaxBuffers ?? 0) + 16);
        if (OperatingSystem.IsLinux() && tun is Sharptun.Transport.Linux.LinuxTun linuxTun)
        {
            linuxTun.OversizePool = large;
        }

        _handshakes = new HandshakeQueue(Math.Max(8, _options.HandshakeQueueCapacity));

        // The core needs a key from the start; until UAPI sets one, a throwaway key stands in and nothing is sent
        // or accepted (_hasPrivateKey), as wireguard-go does without a private key.
        Span<byte> placeholder = stackalloc byte[Key.Size];
        Sharptun.Crypto.X25519.GeneratePrivateKey(placeholder);
        _protocol = new ProtocolDevice(new Key(placeholder), _options.WallClock, _options.Random);
        System.Security.Cryptography.CryptographicOperations.ZeroMemory(placeholder);

        _bind = OpenBind(_options.InitialListenPort);

        StartThread(TunReaderLoop, TunReaderThreadName);
        StartThread(ReceiveLoop, "wg-udp-receiver");
        StartThread(HandshakeLoop, "wg-handshake");
        StartThread(TimerLoop, "wg-timers");
        for (var i = 0; i < _options.CryptoWorkers; i++)
        {
            StartThread(CryptoWorkerLoop, "wg-crypto-" + i);
        }
    }

    /// <summary>Drop counters by reason.</summary>
    public DeviceCounters Counters { get; } = new();

    /// <summary>The packet buffer pool (for tests and diagnostics: its <see cref="PacketBufferPool.PeakInUse"/> never passes the budget).</summary>
    public PacketBufferPool BufferPool => _pool;

    /// <summary>The port the bind listens on (0 when closed).</summary>
    public ushort ListenPort => _bind?.LocalPort ?? 0;

    /// <summary>Our public key, or null when no private key is set.</summary>
    public Key? PublicKey => _hasPrivateKey ? _protocol.PublicKey : null;

    /// <summary>The packet device.</summary>
    public IPacketDevice PacketDevice => _tun;

    /// <summary>True once disposed.</summary>
    public bool IsDisposed => Volatile.Read(ref _disposed) != 0;

    /// <summary>
    /// Completes when the device stops moving packets: successfully when its packet device closed (the TUN reader read
    /// end-of-file, e.g. the interface was deleted) or the device was disposed; faulted with <see cref="Fault"/> when a
    /// pipeline thread died of an unexpected exception (an unknown errno from the TUN or the bind, a bug). A stopped
    /// device is not restarted: its owner disposes it (the daemon exits, non-zero on a fault).
    /// </summary>
    public Task Completion => _completion.Task;

    /// <summary>The unexpected exception that stopped a pipeline thread (the first one), or null.</summary>
    public Exception? Fault => _completion.Task.Exception?.InnerException;

    /// <summary>Number of configured peers.</summary>
    public int PeerCount => _peerList.Length;

    /// <summary>
    /// Tests only: when true, each pipeline thread adds what it allocated per loop iteration to
    /// <see cref="PipelineAllocatedBytes"/> (GC.GetAllocatedBytesForCurrentThread, so other threads' noise is excluded).
    /// </summary>
    internal bool TrackAllocations { get; set; }

    /// <summary>Bytes allocated by the device's own threads while <see cref="TrackAllocations"/> was on.</summary>
    internal long PipelineAllocatedBytes => Interlocked.Read(ref _threadAllocatedBytes);

    /// <summary>Adds this thread's allocations since <paramref name="last"/> (call once per loop iteration).</summary>
    private void TrackThreadAllocations(ref long last)
    {
        var current = GC.GetAllocatedBytesForCurrentThread();
        if (TrackAllocations)
        {
            Interlocked.Add(ref _threadAllocatedBytes, current - last);
        }

        last = current;
    }

    /// <summary>Stops all threads, drops queued packets and closes the bind. The packet device stays open (the caller owns it).</summary>
    public void Dispose()
    {
        if (Interlocked.Exchange(ref _disposed, 1) != 0)
        {
            return;
        }

        _stop.Cancel();
        _completion.TrySetResult();
        _work.Close();
        _handshakes.Close();
        WakeTimers();
        var bind = _bind;
        _bind = null;
        bind?.Dispose();
        foreach (var t in _threads)
        {
            // The TUN reader leaves when the packet device closes (the caller owns it); do not wait for it.
            if (t != Thread.CurrentThread && t.Name != TunReaderThreadName && !t.Join(TimeSpan.FromSeconds(2)))
            {
                Log.ThreadDidNotStop(_log, t.Name);
            }
        }

        lock (_configLock)
        {
            foreach (var peer in _peerList)
            {
                peer.MarkRemoved();
                _protocol.RemovePeer(peer.PublicKey);
                DropStaged(peer);
            }

            _peers.Clear();
            _peerList = [];
            _allowedIps.Clear();
        }
    }

    /// <summary>
    /// Starts a pipeline thread. A thread that dies of an exception (other than while the device is disposed) takes the
    /// device down: <see cref="Completion"/> faults, so the owner stops instead of running on without a stage.
    /// </summary>
    private void StartThread(ThreadStart body, string name)
    {
        var thread = new Thread(() =>
        {
            try
            {
                body();
            }
            catch (Exception e) when (IsDisposed)
            {
                Log.StageStoppedWhileDisposing(_log, name, e.Message);
            }
            catch (Exception e)
            {
                Log.StageFailed(_log, name, e);
                _completion.TrySetException(e);
            }
        })
        {
            IsBackground = true,
            Name = name,
        };
        _threads.Add(thread);
        thread.Start();
    }

    private PacketElement RentElement()
    {
        lock (_elementPoolLock)
        {
            if (_elementPool.TryPop(out var e))
            {
                return e;
            }
        }

        return new PacketElement();
    }

    private void ReturnElement(PacketElement element)
    {
        if (element.Buffer is { } buffer)
        {
            _pool.Return(buffer);
        }

        element.Clear();
        lock (_elementPoolLock)
        {
            _elementPool.Push(element);
        }
    }

    /// <summary>wireguard-go's socketBufferSize: kernel UDP buffers big enough to absorb bursts between receive batches.</summary>
    private const int SocketBufferBytes = 7 << 20;

    /// <summary>Opens a bind through the factory; a Linux or portable UDP bind gets 7 MiB socket buffers (best effort), as wireguard-go sets.</summary>
    private IDatagramBind OpenBind(ushort port)
    {
        var bind = _bindFactory.Open(port);
        if (OperatingSystem.IsLinux() && bind is Sharptun.Transport.Linux.LinuxUdpBind linux)
        {
            linux.OversizePool = _pool.Large;
            try
            {
                linux.SetBufferSizes(SocketBufferBytes);
            }
            catch (IOException e)
            {
                Log.SocketBuffersNotEnlarged(_log, e.Message);
            }
        }
        else if (bind is SocketUdpBind portable)
        {
            try
            {
                portable.SetBufferSizes(SocketBufferBytes);
            }
            catch (IOException e)
            {
                Log.SocketBuffersNotEnlarged(_log, e.Message);
            }
        }

        return bind;
    }

    /// <summary>
    /// views[n] is an n-element array, made once per thread: the batch APIs take exact-length arrays, so a partial batch
    /// is copied into the view of its length instead of allocating one per call.
    /// </summary>
    /// <summary>Rents a pool buffer into each empty slot of the first <paramref name="want"/>, without waiting; returns how many leading slots hold a buffer.</summary>
    private int FillBuffers(byte[]?[] buffers, int want)
    {
        var have = 0;
        for (var i = 0; i < want; i++)
        {
            if (buffers[i] is null && !_pool.TryRent(out buffers[i]))
            {
                break;
            }

            have++;
        }

        return have;
    }

    /// <summary>The exact-length view (from <see cref="CreateViews"/>) of the first <paramref name="count"/> buffers, filled in.</summary>
    private static byte[][] ViewOf(byte[][][] views, byte[]?[] buffers, int count)
    {
        var view = views[count];
        Array.Copy(buffers, view, count);
        return view;
    }

    private static byte[][][] CreateViews(int maxCount)
    {
        var views = new byte[maxCount + 1][][];
        for (var i = 0; i <= maxCount; i++)
        {
            views[i] = new byte[i][];
        }

        return views;
    }

    /// <summary>Records that a batch stage touched <paramref name="peer"/> (once per batch; its deadlines may have moved).</summary>
    private static void Touch(DevicePeer?[] touched, ref int count, DevicePeer peer)
    {
        if (Array.IndexOf(touched, peer, 0, count) < 0)
        {
            touched[count++] = peer;
        }
    }

    /// <summary>Re-checks the deadlines of the peers a batch touched and clears the list for the next batch.</summary>
    private void CheckDeadlines(DevicePeer?[] touched, int count)
    {
        for (var i = 0; i < count; i++)
        {
            CheckDeadline(touched[i]!);
            touched[i] = null;
        }
    }

    /// <summary>
    /// After a reader handled packet <paramref name="i"/> of a batch: when the pipeline <paramref name="taken"/> it, the
    /// reader no longer owns that buffer. The transport may have swapped in a large buffer for a jumbo packet
    /// (<c>OversizePool</c>): then the reader's own buffer stays free for the next read and the large one, if the
    /// pipeline did not take it, goes back to the pool.
    /// </summary>
    private void TakeOrReturn(byte[]?[] buffers, byte[][] view, int i, bool taken)
    {
        if (!ReferenceEquals(view[i], buffers[i]))
        {
            if (!taken)
            {
                _pool.Return(view[i]);
            }

            view[i] = buffers[i]!;
        }
        else if (taken)
        {
            buffers[i] = null;
        }
    }

    /// <summary>Returns the buffers a reader thread still owns when it stops (those not handed to the pipeline).</summary>
    private void ReturnBuffers(byte[]?[] buffers)
    {
        foreach (var b in buffers)
        {
            if (b is not null)
            {
                _pool.Return(b);
            }
        }
    }

    /// <summary>Sends one datagram (handshake message, keepalive, cookie reply) to <paramref name="destination"/>; single-datagram sends allocate nothing.</summary>
    private void SendOne(byte[][] holder, int[] sizeHolder, int length, in UdpEndpoint destination, DevicePeer? peer)
    {
        var bind = _bind;
        if (bind is null)
        {
            return;
        }

        sizeHolder[0] = length;
        try
        {
            if (bind.Send(holder, sizeHolder, 0, 1, destination) == 1)
            {
                peer?.AddTx(length);
            }
            else
            {
                Counters.Drop(DropReason.SendFailed);
            }
        }
        catch (ObjectDisposedException)
        {
            Counters.Drop(DropReason.SendFailed); // rebind in progress
        }
        catch (Exception e) when (e is IOException or System.Net.Sockets.SocketException)
        {
            // One datagram lost, not a dead stage (the timer and handshake threads send through here).
            Log.HandshakeSendFailed(_log, e.Message);
            Counters.Drop(DropReason.SendFailed);
        }
    }

    /// <summary>Elements a crypto worker takes from the work queue at once (about 50 µs of ChaCha20-Poly1305 at MTU size).</summary>
    private const int WorkerBatch = 32;

    private void CryptoWorkerLoop()
    {
        var allocated = GC.GetAllocatedBytesForCurrentThread();
        var batch = new PacketElement[WorkerBatch];
        var scratch = new CryptoScratch(WorkerBatch);
        var workers = Math.Max(1, _options.CryptoWorkers);
        int n;
        while ((n = _work.TakeBatch(batch, workers)) > 0)
        {
            ProcessBatch(batch.AsSpan(0, n), scratch);
            TrackThreadAllocations(ref allocated);
        }
    }

    /// <summary>Per-thread scratch of <see cref="ProcessBatch"/>: each element's peer and direction, read before it is finished.</summary>
    private sealed class CryptoScratch(int capacity)
    {
        public readonly DevicePeer[] Peers = new DevicePeer[capacity];
        public readonly bool[] Inbound = new bool[capacity];
    }

    /// <summary>
    /// Encrypts or decrypts every element of <paramref name="batch"/> (clearing the span), then drains each (peer,
    /// direction) it touched once, so the drainer finds longer finished runs and sends or writes them as one batch.
    /// Run by the crypto workers, and by the readers themselves when there are none.
    /// </summary>
    private void ProcessBatch(Span<PacketElement> batch, CryptoScratch scratch)
    {
        var n = batch.Length;
        var peers = scratch.Peers;
        var inbound = scratch.Inbound;

        // Peer and direction are read first: once an element is finished, another thread's drain may send it and
        // recycle the element for a different packet.
        for (var i = 0; i < n; i++)
        {
            peers[i] = batch[i].Peer;
            inbound[i] = batch[i].IsInbound;
        }

        for (var i = 0; i < n; i++)
        {
            var element = batch[i];
            batch[i] = null!;
            if (inbound[i])
            {
                DecryptElement(element);
            }
            else
            {
                EncryptElement(element);
            }
        }

        for (var i = 0; i < n; i++)
        {
            if (!DrainedEarlier(peers, inbound, i))
            {
                if (inbound[i])
                {
                    DrainInbound(peers[i]);
                }
                else
                {
                    DrainOutbound(peers[i]);
                }
            }
        }

        Array.Clear(peers, 0, n);
    }

    private static bool DrainedEarlier(DevicePeer[] peers, bool[] inbound, int i)
    {
        for (var j = i - 1; j >= 0; j--)
        {
            if (ReferenceEquals(peers[j], peers[i]) && inbound[j] == inbound[i])
            {
                return true;
            }
        }

        return false;
    }

    /// <summary>Encrypts or decrypts one element, then drains its peer's ordered queue as far as it is finished.</summary>
    private void ProcessElement(PacketElement element)
    {
        var peer = element.Peer;
        if (element.IsInbound)
        {
            DecryptElement(element);
            DrainInbound(peer);
        }
        else
        {
            EncryptElement(element);
            DrainOutbound(peer);
        }
    }

    private void Dispatch(PacketElement element)
    {
        if (_options.CryptoWorkers == 0 || !_work.TryAdd(element))
        {
            ProcessElement(element);
        }
    }

    /// <summary>
    /// Collects a reader's elements (the TUN reader's or the UDP receiver's) and hands them to the crypto workers in one
    /// <see cref="WorkQueue.TryAddRange"/> when the read batch is done, or earlier when the reader is about to wait.
    /// An element must never stay here while its reader waits: the queue it sits in could be full of exactly these.
    /// </summary>
    private sealed class PendingDispatch(int capacity)
    {
        public readonly PacketElement[] Items = new PacketElement[capacity];
        public readonly PacketElement[] Small = new PacketElement[capacity];
        public readonly CryptoScratch Scratch = new(capacity);
        public int Count;
    }

    /// <summary>
    /// Packets of at most this many bytes (a datagram received, a packet read) are encrypted or decrypted by the reader
    /// that read them instead of a crypto worker. For a pure TCP ACK (52–80 bytes inside) ChaCha20-Poly1305 costs well
    /// under a microsecond; handing it to a sleeping worker costs a futex wake and a context switch, and the ACK waits
    /// for the worker to be scheduled. A download's ACKs went through three such hand-offs (receiver → worker → TUN
    /// reader → worker); now through one. Large packets still go to the workers, in parallel.
    /// </summary>
    internal const int InlineCryptoMaxLength = 256;

    private void QueueDispatch(PendingDispatch pending, PacketElement element)
    {
        if (pending.Count == pending.Items.Length)
        {
            FlushDispatch(pending);
        }

        pending.Items[pending.Count++] = element;
    }

    private void FlushDispatch(PendingDispatch pending)
    {
        if (pending.Count == 0)
        {
            return;
        }

        // Small packets stay with the reader (InlineCryptoMaxLength); the rest go to the workers in read order. Either
        // way each peer's ordered queue keeps the packets in order: whoever finishes the head drains it.
        var items = pending.Items;
        var large = pending.Count;
        var small = 0;
        if (_options.CryptoWorkers > 0)
        {
            large = 0;
            for (var i = 0; i < pending.Count; i++)
            {
                var e = items[i];
                if (e.Length <= InlineCryptoMaxLength)
                {
                    pending.Small[small++] = e;
                }
                else
                {
                    items[large++] = e;
                }
            }
        }

        // No workers (inline crypto): the reader encrypts or decrypts its own read, a batch at a time, and drains.
        var added = _options.CryptoWorkers == 0 || large == 0 ? 0 : _work.TryAddRange(items.AsSpan(0, large));
        if (added < large)
        {
            ProcessBatch(items.AsSpan(added, large - added), pending.Scratch); // also when closed (disposing)
        }

        if (small > 0)
        {
            ProcessBatch(pending.Small.AsSpan(0, small), pending.Scratch);
        }

        Array.Clear(items, 0, pending.Count);
        pending.Count = 0;
    }
}
