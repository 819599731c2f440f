using System.Buffers;
using System.Net;
using System.Net.Sockets;
using Microsoft.Extensions.Logging;
using Sharptun.Proxy.Config;

namespace Sharptun.Proxy.Forwards;

/// <summary>Settings of a <see cref="UdpProxyTunnel"/>.</summary>
public sealed class UdpProxyTunnelOptions
{
    /// <summary>The host address and port to receive datagrams on (port 0: an ephemeral port, see <see cref="UdpProxyTunnel.LocalEndPoint"/>).</summary>
    public required IPEndPoint BindAddress { get; init; }

    /// <summary>The target's name or IP address inside the tunnel (a name resolves through the tunnel's DNS).</summary>
    public required string TargetHost { get; init; }

    /// <summary>The target's UDP port.</summary>
    public required int TargetPort { get; init; }

    /// <summary>
    /// A session with no datagram either way for this long is closed (default 60 s); <see cref="TimeSpan.Zero"/>
    /// keeps sessions until the proxy stops, as wireproxy's <c>InactivityTimeout = 0</c> does (the session cap still applies).
    /// </summary>
    public TimeSpan InactivityTimeout { get; init; } = TimeSpan.FromSeconds(60);

    /// <summary>The most client sessions open at once (default 128); a datagram from a new client past it is dropped and counted in <see cref="ProxyServiceCounters.Refused"/>.</summary>
    public int MaxSessions { get; init; } = 128;
}

/// <summary>
/// <c>[UDPProxyTunnel]</c>: a local UDP port forwarded into the tunnel, both ways. Each client address that sends
/// to <see cref="UdpProxyTunnelOptions.BindAddress"/> gets a session: its own UDP socket on the tunnel
/// (<see cref="ITunnelNetwork.BindUdp"/>), from which its datagrams go to the target. Every datagram the target sends
/// to that socket goes back to that client, from the bound address: replies, and also datagrams the target sends
/// on its own while the session is open (onetun and wireproxy relay only replies, or mark this experimental).
/// Datagrams from any other tunnel address are dropped (<see cref="DroppedDatagrams"/>).
/// </summary>
/// <remarks>
/// <para>A session ends after <see cref="UdpProxyTunnelOptions.InactivityTimeout"/> with no datagram either way; the
/// next datagram from that client opens a new session (a new tunnel port). Sessions are capped by
/// <see cref="UdpProxyTunnelOptions.MaxSessions"/> and by the proxy's <see cref="ProxyContext.Gate"/> (one slot per
/// session); a datagram that would open a session past either is dropped and counted in
/// <see cref="ProxyServiceCounters.Refused"/>. Sessions count in <see cref="ProxyServiceCounters.Accepted"/> and
/// <see cref="ProxyServiceCounters.Open"/>.</para>
/// <para>Threading: one loop reads the bound socket; each session has a loop reading its tunnel socket; a sweeper
/// expires idle sessions. The session table is guarded by one lock. A session in the middle of forwarding a
/// client's datagram is never expired (it is marked busy under that lock), so a datagram that races the expiry is
/// either sent by the old session or opens a new one; never lost.</para>
/// <para>Memory: each session holds one 64 KiB receive buffer (a datagram of any size fits) while it is open.</para>
/// </remarks>
public sealed class UdpProxyTunnel : IProxyService
{
    /// <summary>The config section name.</summary>
    public const string SectionName = "UDPProxyTunnel";

    private const int DatagramBufferSize = 65536;
    private static readonly TimeSpan TargetCacheTime = TimeSpan.FromSeconds(60);
    private static readonly TimeSpan FailedLookupHoldTime = TimeSpan.FromSeconds(2);
    private static readonly TimeSpan LookupTimeout = TimeSpan.FromSeconds(5);

    private readonly UdpProxyTunnelOptions _options;
    private readonly ProxyContext _context;
    private readonly ILogger _logger;
    private readonly string _target;
    private readonly Lock _lock = new();
    private readonly Dictionary<IPEndPoint, Session> _sessions = [];
    private Socket? _socket;
    private IPEndPoint? _local;
    private IPEndPoint? _targetEndPoint;
    private long _targetResolvedAt;
    private SocketException? _lookupFailure;
    private long _lookupFailedAt;
    private Exception? _loggedFailure;
    private long _dropped;
    private bool _refusing;

    /// <summary>A forward from <see cref="UdpProxyTunnelOptions.BindAddress"/> to the target; <see cref="Start"/> binds it.</summary>
    /// <exception cref="ArgumentException">The target host is empty, a port, the timeout or the session cap out of range.</exception>
    public UdpProxyTunnel(UdpProxyTunnelOptions options, ProxyContext context)
    {
        ArgumentNullException.ThrowIfNull(options);
        ArgumentNullException.ThrowIfNull(context);
        ArgumentNullException.ThrowIfNull(options.BindAddress);
        ArgumentException.ThrowIfNullOrWhiteSpace(options.TargetHost);
        ArgumentOutOfRangeException.ThrowIfLessThan(options.TargetPort, 1);
        ArgumentOutOfRangeException.ThrowIfGreaterThan(options.TargetPort, 65535);
        ArgumentOutOfRangeException.ThrowIfLessThan(options.InactivityTimeout, TimeSpan.Zero);
        ArgumentOutOfRangeException.ThrowIfLessThan(options.MaxSessions, 1);
        _options = options;
        _context = context;
        _logger = context.LoggerFactory.CreateLogger<UdpProxyTunnel>();
        _target = ForwardAddress.Format(options.TargetHost, options.TargetPort);
    }

    /// <inheritdoc/>
    public string Kind => "udp";

    /// <inheritdoc/>
    public string Endpoint => (_local ?? _options.BindAddress).ToString();

    /// <summary>The bound address and port once <see cref="Start"/> has run, else <see langword="null"/>.</summary>
    public IPEndPoint? LocalEndPoint => _local;

    /// <inheritdoc/>
    public ProxyServiceCounters Counters { get; } = new();

    /// <summary>Client sessions open now.</summary>
    public int SessionCount
    {
        get
        {
            lock (_lock)
            {
                return _sessions.Count;
            }
        }
    }

    /// <summary>Datagrams dropped: from a tunnel address other than the target, or a send that failed.</summary>
    public long DroppedDatagrams => Interlocked.Read(ref _dropped);

    /// <summary>
    /// Reads a <c>[UDPProxyTunnel]</c> section: <c>BindAddress = ip:port</c> (required), <c>Target = host:port</c>
    /// (required), <c>InactivityTimeout</c> in seconds (optional; default 60, 0 = never).
    /// </summary>
    /// <exception cref="ProxyConfigException">A key is missing, malformed or unknown (the message names the line).</exception>
    public static UdpProxyTunnel FromSection(ConfigSection section, ProxyContext context)
    {
        ArgumentNullException.ThrowIfNull(section);
        section.RejectUnknownKeys("BindAddress", "Target", "InactivityTimeout");
        var bind = ForwardAddress.RequireBind(section);
        var (host, port) = ForwardAddress.RequireTarget(section);
        var timeout = section.GetSeconds("InactivityTimeout", TimeSpan.FromSeconds(60));
        return new UdpProxyTunnel(
            new UdpProxyTunnelOptions { BindAddress = bind, TargetHost = host, TargetPort = port, InactivityTimeout = timeout },
            context);
    }

    /// <inheritdoc/>
    public void Start()
    {
        if (_socket is not null)
        {
            throw new InvalidOperationException("The forward is already started.");
        }

        var bind = _options.BindAddress;
        var socket = new Socket(bind.AddressFamily, SocketType.Dgram, ProtocolType.Udp);
        try
        {
            if (bind.Address.Equals(IPAddress.IPv6Any))
            {
                socket.DualMode = true;
            }

            socket.Bind(bind);
        }
        catch
        {
            socket.Dispose();
            throw;
        }

        _socket = socket;
        _local = (IPEndPoint)socket.LocalEndPoint!;
    }

    /// <inheritdoc/>
    public async Task RunAsync(CancellationToken cancellationToken)
    {
        var socket = _socket ?? throw new InvalidOperationException("Call Start before RunAsync.");
        ForwardLog.Serving(_logger, Kind, Endpoint, _target);
        using var stopSweeper = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        var sweeper = _options.InactivityTimeout > TimeSpan.Zero ? SweepAsync(stopSweeper.Token) : Task.CompletedTask;
        var buffer = new byte[DatagramBufferSize];
        EndPoint any = socket.AddressFamily == AddressFamily.InterNetworkV6 ? new IPEndPoint(IPAddress.IPv6Any, 0) : new IPEndPoint(IPAddress.Any, 0);
        try
        {
            while (!cancellationToken.IsCancellationRequested)
            {
                SocketReceiveFromResult received;
                try
                {
                    received = await socket.ReceiveFromAsync(buffer, SocketFlags.None, any, cancellationToken).ConfigureAwait(false);
                }
                catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
                {
                    break;
                }
                catch (SocketException)
                {
                    // An ICMP error for an earlier send surfaces here on some systems; the socket is still usable.
                    continue;
                }

                await ForwardToTargetAsync(buffer.AsMemory(0, received.ReceivedBytes), (IPEndPoint)received.RemoteEndPoint, cancellationToken).ConfigureAwait(false);
            }
        }
        catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
        {
        }
        finally
        {
            List<Session> all;
            lock (_lock)
            {
                all = [.. _sessions.Values];
                _sessions.Clear();
            }

            foreach (var session in all)
            {
                Close(session, "proxy stopping");
            }

            await stopSweeper.CancelAsync().ConfigureAwait(false);
            await sweeper.ConfigureAwait(ConfigureAwaitOptions.SuppressThrowing);
            await Task.WhenAll(all.Select(s => s.Receiving)).ConfigureAwait(ConfigureAwaitOptions.SuppressThrowing);
            socket.Dispose();
        }
    }

    private async ValueTask ForwardToTargetAsync(ReadOnlyMemory<byte> datagram, IPEndPoint client, CancellationToken cancellationToken)
    {
        Session? session;
        lock (_lock)
        {
            if (_sessions.TryGetValue(client, out session))
            {
                session.EnterSend();
            }
        }

        if (session is null)
        {
            session = await OpenSessionAsync(client, cancellationToken).ConfigureAwait(false);
            if (session is null)
            {
                return;
            }
        }

        try
        {
            await session.Channel.SendToAsync(datagram, session.Target, cancellationToken).ConfigureAwait(false);
            Counters.AddBytes(datagram.Length, 0);
        }
        catch (Exception e) when (e is SocketException or ObjectDisposedException or InvalidOperationException)
        {
            Interlocked.Increment(ref _dropped);
        }
        finally
        {
            session.ExitSend();
        }
    }

    /// <summary>Opens a session for <paramref name="client"/>, marked busy; null when refused or the target cannot be reached.</summary>
    private async ValueTask<Session?> OpenSessionAsync(IPEndPoint client, CancellationToken cancellationToken)
    {
        IPEndPoint target;
        try
        {
            target = await ResolveTargetAsync(cancellationToken).ConfigureAwait(false);
        }
        catch (Exception e) when (e is SocketException or InvalidOperationException || (e is OperationCanceledException && !cancellationToken.IsCancellationRequested))
        {
            Counters.OnFailed();
            if (!ReferenceEquals(e, _loggedFailure))
            {
                // Logged once per failed lookup, not once per datagram that meets the remembered failure.
                _loggedFailure = e;
                ForwardLog.TargetFailed(_logger, Kind, Endpoint, _target, ForwardLog.Describe(e));
            }

            return null;
        }

        IDisposable? lease = null;
        IDatagramChannel? channel = null;
        Session session;
        lock (_lock)
        {
            // Only this loop opens sessions, so none for this client appeared while the target resolved.
            if (_sessions.Count >= _options.MaxSessions || (lease = _context.Gate.TryEnter()) is null)
            {
                Counters.OnRefused();
                if (!_refusing)
                {
                    _refusing = true;
                    var reason = _sessions.Count >= _options.MaxSessions ? $"{_options.MaxSessions} sessions open (the cap)" : $"over the connection cap ({_context.Gate.Capacity})";
                    ForwardLog.Refused(_logger, Kind, Endpoint, client.ToString(), reason);
                }

                return null;
            }

            _refusing = false;
            try
            {
                channel = _context.Network.BindUdp();
            }
            catch (Exception e) when (e is SocketException or InvalidOperationException or ObjectDisposedException)
            {
                lease.Dispose();
                Counters.OnFailed();
                ForwardLog.TargetFailed(_logger, Kind, Endpoint, _target, ForwardLog.Describe(e));
                return null;
            }

            session = new Session(client, target, channel, lease);
            session.EnterSend();
            _sessions.Add(client, session);
            Counters.OnAccepted();
        }

        ForwardLog.UdpSessionOpened(_logger, Endpoint, client.ToString(), channel.LocalEndPoint.Port);
        session.Receiving = ReceiveFromTargetAsync(session, cancellationToken);
        return session;
    }

    /// <summary>
    /// The target's address: an IP literal as is; a name through the tunnel's DNS, cached for a minute. A failed lookup
    /// is remembered for <see cref="FailedLookupHoldTime"/> so a client that keeps sending does not cost a DNS query per
    /// datagram, and a lookup is bounded by <see cref="LookupTimeout"/> because the receive loop waits for it.
    /// </summary>
    private async ValueTask<IPEndPoint> ResolveTargetAsync(CancellationToken cancellationToken)
    {
        var now = Environment.TickCount64;
        var cached = _targetEndPoint;
        if (cached is not null && (IPAddress.TryParse(_options.TargetHost, out _) || now - _targetResolvedAt < (long)TargetCacheTime.TotalMilliseconds))
        {
            return cached;
        }

        if (_lookupFailure is { } failure && now - _lookupFailedAt < (long)FailedLookupHoldTime.TotalMilliseconds)
        {
            throw failure;
        }

        using var timeout = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        timeout.CancelAfter(LookupTimeout);
        try
        {
            var address = await _context.Network.ResolveAsync(_options.TargetHost, timeout.Token).ConfigureAwait(false);
            _targetEndPoint = new IPEndPoint(address, _options.TargetPort);
            _targetResolvedAt = Environment.TickCount64;
            _lookupFailure = null;
            return _targetEndPoint;
        }
        catch (Exception e) when (e is SocketException || (e is OperationCanceledException && !cancellationToken.IsCancellationRequested))
        {
            _lookupFailure = e as SocketException ?? new SocketException((int)SocketError.TimedOut, $"Resolving {_options.TargetHost} took longer than {LookupTimeout.TotalSeconds:0} s.");
            _lookupFailedAt = Environment.TickCount64;
            throw _lookupFailure;
        }
    }

    /// <summary>The session's tunnel socket → its client: replies and datagrams the target sends on its own.</summary>
    private async Task ReceiveFromTargetAsync(Session session, CancellationToken cancellationToken)
    {
        await Task.Yield();
        var socket = _socket!;
        var buffer = ArrayPool<byte>.Shared.Rent(DatagramBufferSize);
        var reason = "closed";
        try
        {
            while (true)
            {
                var received = await session.Channel.ReceiveFromAsync(buffer, session.Closing).ConfigureAwait(false);
                if (!session.Target.Equals(received.RemoteEndPoint))
                {
                    Interlocked.Increment(ref _dropped);
                    continue;
                }

                session.Touch();

                // The run's token, not the session's: a datagram that arrived just as the session expired is still delivered.
                await socket.SendToAsync(buffer.AsMemory(0, received.ReceivedBytes), SocketFlags.None, session.Client, cancellationToken).ConfigureAwait(false);
                Counters.AddBytes(0, received.ReceivedBytes);
            }
        }
        catch (OperationCanceledException)
        {
        }
        catch (Exception e) when (e is SocketException or ObjectDisposedException or InvalidOperationException)
        {
            reason = $"tunnel socket failed: {ForwardLog.Describe(e)}";
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(buffer);
        }

        if (!session.IsClosed)
        {
            lock (_lock)
            {
                if (_sessions.TryGetValue(session.Client, out var current) && current == session)
                {
                    _sessions.Remove(session.Client);
                }
            }

            Close(session, reason);
        }
    }

    private async Task SweepAsync(CancellationToken cancellationToken)
    {
        var timeout = _options.InactivityTimeout;
        var period = TimeSpan.FromTicks(Math.Clamp(timeout.Ticks / 4, TimeSpan.FromMilliseconds(20).Ticks, TimeSpan.FromSeconds(1).Ticks));
        using var timer = new PeriodicTimer(period);
        var timeoutMs = (long)timeout.TotalMilliseconds;
        List<Session>? expired = null;
        while (true)
        {
            try
            {
                await timer.WaitForNextTickAsync(cancellationToken).ConfigureAwait(false);
            }
            catch (OperationCanceledException)
            {
                return;
            }

            var now = Environment.TickCount64;
            lock (_lock)
            {
                foreach (var session in _sessions.Values)
                {
                    if (session.IsIdle(now, timeoutMs))
                    {
                        (expired ??= []).Add(session);
                    }
                }

                if (expired is not null)
                {
                    foreach (var session in expired)
                    {
                        _sessions.Remove(session.Client);
                    }
                }
            }

            if (expired is not null)
            {
                foreach (var session in expired)
                {
                    Close(session, "inactive");
                }

                expired.Clear();
            }
        }
    }

    /// <summary>Closes a session already removed from the table (once).</summary>
    private void Close(Session session, string reason)
    {
        if (session.TryClose())
        {
            Counters.OnClosed();
            ForwardLog.UdpSessionClosed(_logger, Endpoint, session.Client.ToString(), reason);
        }
    }

    private sealed class Session(IPEndPoint client, IPEndPoint target, IDatagramChannel channel, IDisposable lease)
    {
        private readonly CancellationTokenSource _closing = new();
        private long _lastActive = Environment.TickCount64;
        private int _sending;
        private int _closed;

        public IPEndPoint Client { get; } = client;

        public IPEndPoint Target { get; } = target;

        public IDatagramChannel Channel { get; } = channel;

        public Task Receiving { get; set; } = Task.CompletedTask;

        public CancellationToken Closing => _closing.Token;

        public bool IsClosed => Volatile.Read(ref _closed) != 0;

        public void Touch() => Volatile.Write(ref _lastActive, Environment.TickCount64);

        /// <summary>Marks a client datagram in flight (called under the table lock, so the sweeper sees it).</summary>
        public void EnterSend()
        {
            Interlocked.Increment(ref _sending);
            Touch();
        }

        public void ExitSend()
        {
            Touch();
            Interlocked.Decrement(ref _sending);
        }

        /// <summary>Idle: nothing in flight and no datagram either way for the timeout (called under the table lock).</summary>
        public bool IsIdle(long now, long timeoutMs) => Volatile.Read(ref _sending) == 0 && now - Volatile.Read(ref _lastActive) >= timeoutMs;

        public bool TryClose()
        {
            if (Interlocked.Exchange(ref _closed, 1) != 0)
            {
                return false;
            }

            _closing.Cancel();
            Channel.Dispose();
            lease.Dispose();
            return true;
        }
    }
}
