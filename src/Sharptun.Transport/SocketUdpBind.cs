using System.Buffers.Binary;
using System.Net;
using System.Net.Sockets;

namespace Sharptun.Transport;

/// <summary>
/// A portable UDP bind on <see cref="Socket"/>: works wherever .NET runs (no platform calls of its own). One
/// dual-stack socket (IPv6 with <see cref="Socket.DualMode"/>, so IPv4 peers arrive IPv4-mapped and are reported as
/// IPv4 <see cref="UdpEndpoint"/>s), or an IPv4-only socket when the host has no IPv6. A batch is one blocking receive
/// followed by the datagrams already queued; a send batch is one <c>sendto</c> per datagram.
/// </summary>
/// <remarks>
/// <para>Slower than the Linux bind (one system call per datagram, no GSO), but needs nothing but the BCL; on Linux
/// select it with <see cref="UdpBindKind.Portable"/> (the daemon: <c>SHARPTUN_UDP_BIND=portable</c>).</para>
/// <para>Each datagram is received into a 64 KiB buffer of the bind and copied into the caller's (the runtime does not
/// report truncation on every platform; this way a datagram too large for the caller's buffer is dropped and counted,
/// never truncated).</para>
/// <para>No allocation per datagram: source and destination addresses live in <see cref="SocketAddress"/>es made
/// once, read and written in place (the sockaddr_in/sockaddr_in6 port and address offsets are the same on every
/// platform; the family field, which differs, is left as the runtime wrote it).</para>
/// <para>Dispose closes the socket, which releases a blocked <see cref="Receive"/> (the runtime aborts blocking calls
/// on close); the handle is reference-counted by the runtime, so no call ever uses a reused descriptor.</para>
/// </remarks>
public sealed class SocketUdpBind : IDatagramBind
{
    /// <summary>Default datagrams per batch (as the Linux bind).</summary>
    public const int DefaultBatchSize = 128;

    // Offsets shared by every platform's sockaddr_in / sockaddr_in6 (BSD's sin_len + 1-byte family fill the same 2 bytes).
    private const int PortOffset = 2;
    private const int IPv4AddressOffset = 4;
    private const int IPv6AddressOffset = 8;
    private const int IPv6ScopeOffset = 24;

    // Windows reports an ICMP port unreachable as WSAECONNRESET on the next receive unless told not to (SIO_UDP_CONNRESET).
    private const int SioUdpConnReset = -1744830452;

    // The largest UDP payload (IPv6 jumbograms aside): 65535 - 8 bytes of UDP header, plus one to tell "too big".
    private const int MaxDatagram = 65536;

    private const int LinuxSolSocket = 1;
    private const int LinuxSoMark = 36;

    private readonly Socket _socket;
    private readonly object _receiveLock = new();
    private readonly object _sendLock = new();
    private readonly SocketAddress _source;
    private readonly byte[] _scratch = new byte[MaxDatagram];
    private readonly SocketAddress _destination;
    private long _receiveDropped;
    private long _sendDropped;
    private int _disposed;

    private SocketUdpBind(Socket socket, ushort port, int batchSize)
    {
        _socket = socket;
        LocalPort = port;
        BatchSize = batchSize;
        _source = new SocketAddress(socket.AddressFamily);
        _destination = (socket.AddressFamily == AddressFamily.InterNetworkV6
            ? new IPEndPoint(IPAddress.IPv6Any, 0)
            : new IPEndPoint(IPAddress.Any, 0)).Serialize();
    }

    /// <summary>
    /// Opens a bind on <paramref name="port"/> (0 = a random free port) on all addresses.
    /// Throws <see cref="IOException"/> when the port is taken or the socket cannot be created.
    /// </summary>
    public static SocketUdpBind Open(ushort port) => Open(default(UdpEndpoint).WithPort(port));

    /// <summary>
    /// Opens a bind on one local address and port (<c>[::]:port</c> = all addresses, both families; an IPv4 address
    /// = that address only, IPv4 traffic only; port 0 = a random free port). Throws <see cref="IOException"/> when the
    /// address is not local or the port is taken.
    /// </summary>
    public static SocketUdpBind Open(UdpEndpoint local, int batchSize = DefaultBatchSize)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(batchSize, 1);
        ArgumentOutOfRangeException.ThrowIfGreaterThan(batchSize, 1024);
        var any = local.AddressEquals(default);
        var ipv4Only = local.IsIPv4 || (any && !Socket.OSSupportsIPv6);
        if (!ipv4Only && !Socket.OSSupportsIPv6)
        {
            throw new IOException($"cannot bind {local}: this host has no IPv6");
        }

        Socket? socket = null;
        try
        {
            IPEndPoint bindTo;
            if (ipv4Only)
            {
                socket = new Socket(AddressFamily.InterNetwork, SocketType.Dgram, ProtocolType.Udp);
                bindTo = new IPEndPoint(any ? IPAddress.Any : local.Address, local.Port);
            }
            else
            {
                socket = new Socket(AddressFamily.InterNetworkV6, SocketType.Dgram, ProtocolType.Udp) { DualMode = true };
                bindTo = new IPEndPoint(any ? IPAddress.IPv6Any : local.Address, local.Port);
            }

            if (OperatingSystem.IsWindows())
            {
                socket.IOControl(SioUdpConnReset, [0, 0, 0, 0], null);
            }

            socket.Bind(bindTo);
            var port = (ushort)((IPEndPoint)socket.LocalEndPoint!).Port;
            return new SocketUdpBind(socket, port, batchSize);
        }
        catch (SocketException e)
        {
            socket?.Dispose();
            throw new IOException($"bind to UDP {local} failed: {e.Message}", e);
        }
        catch
        {
            socket?.Dispose();
            throw;
        }
    }

    /// <summary>A factory opening <see cref="SocketUdpBind"/>s (for a device that rebinds when its listen port changes).</summary>
    public static IDatagramBindFactory Factory { get; } = new SocketUdpBindFactory();

    /// <inheritdoc/>
    public ushort LocalPort { get; }

    /// <inheritdoc/>
    public int BatchSize { get; }

    /// <summary>True for a dual-stack (IPv6 + IPv4-mapped) socket, false for an IPv4-only one.</summary>
    public bool IsDualStack => _socket.AddressFamily == AddressFamily.InterNetworkV6;

    /// <summary>Datagrams larger than the caller's buffer, dropped.</summary>
    public long ReceiveDropped => Interlocked.Read(ref _receiveDropped);

    /// <summary>Datagrams the network refused to send (unreachable, too large, filtered, wrong family), dropped.</summary>
    public long SendDropped => Interlocked.Read(ref _sendDropped);

    /// <summary>Sets the kernel's receive and send buffer sizes (capped by the system's limits).</summary>
    public void SetBufferSizes(int bytes)
    {
        try
        {
            _socket.ReceiveBufferSize = bytes;
            _socket.SendBufferSize = bytes;
        }
        catch (SocketException e)
        {
            throw new IOException($"setting socket buffer sizes failed: {e.Message}", e);
        }
    }

    /// <summary>
    /// Sets the firewall mark (SO_MARK, Linux only; needs CAP_NET_ADMIN). On other platforms 0 is accepted and any
    /// other mark throws <see cref="IOException"/>.
    /// </summary>
    public void SetMark(uint fwmark)
    {
        ObjectDisposedException.ThrowIf(Volatile.Read(ref _disposed) != 0, this);
        if (!OperatingSystem.IsLinux())
        {
            if (fwmark != 0)
            {
                throw new IOException("firewall marks (SO_MARK) exist only on Linux");
            }

            return;
        }

        Span<byte> value = stackalloc byte[4];
        BitConverter.TryWriteBytes(value, fwmark); // an int in host order, as setsockopt takes it

        try
        {
            _socket.SetRawSocketOption(LinuxSolSocket, LinuxSoMark, value);
        }
        catch (SocketException e)
        {
            throw new IOException($"setsockopt(SO_MARK) failed: {e.Message}", e);
        }
    }

    /// <inheritdoc/>
    public int Receive(byte[][] buffers, Span<int> sizes, Span<UdpEndpoint> endpoints)
    {
        var max = Math.Min(Math.Min(buffers.Length, sizes.Length), Math.Min(endpoints.Length, BatchSize));
        if (max == 0)
        {
            return 0;
        }

        lock (_receiveLock)
        {
            var n = 0;
            while (n < max)
            {
                if (Volatile.Read(ref _disposed) != 0)
                {
                    return n;
                }

                // The first datagram blocks; the rest of the batch is what is already queued.
                if (n > 0 && !HasQueued())
                {
                    return n;
                }

                int length;
                var buffer = buffers[n];

                // The runtime does not report truncation on every platform, so a datagram lands in a buffer that holds
                // any datagram and is copied out: one that does not fit the caller's buffer is dropped, never truncated.
                var direct = buffer.Length >= MaxDatagram;
                try
                {
                    _source.Size = _source.Buffer.Length;
                    length = _socket.ReceiveFrom(direct ? buffer : _scratch, SocketFlags.None, _source);
                }
                catch (SocketException e) when (e.SocketErrorCode == SocketError.MessageSize)
                {
                    // Larger than the buffer: the rest is already discarded. Dropped whole, never truncated.
                    Interlocked.Increment(ref _receiveDropped);
                    continue;
                }
                catch (SocketException e) when (e.SocketErrorCode is SocketError.ConnectionReset or SocketError.ConnectionRefused
                    or SocketError.HostUnreachable or SocketError.NetworkUnreachable or SocketError.Interrupted)
                {
                    // A pending ICMP error for an earlier send, or a signal: not ours to stop for.
                    if (Volatile.Read(ref _disposed) != 0)
                    {
                        return n;
                    }

                    continue;
                }
                catch (Exception e) when (e is SocketException or ObjectDisposedException && Volatile.Read(ref _disposed) != 0)
                {
                    return n; // closed under us
                }

                if (Volatile.Read(ref _disposed) != 0 && length == 0)
                {
                    return n; // the close woke the receive
                }

                if (!direct)
                {
                    if (length > buffer.Length)
                    {
                        Interlocked.Increment(ref _receiveDropped);
                        continue;
                    }

                    _scratch.AsSpan(0, length).CopyTo(buffer);
                }

                sizes[n] = length;
                endpoints[n] = ReadSource();
                n++;
            }

            return n;
        }
    }

    /// <inheritdoc/>
    public int Send(byte[][] buffers, ReadOnlySpan<int> sizes, int offset, int count, in UdpEndpoint destination)
    {
        ObjectDisposedException.ThrowIf(Volatile.Read(ref _disposed) != 0, this);
        for (var i = 0; i < count; i++)
        {
            if ((uint)offset > (uint)buffers[i].Length || (uint)sizes[i] > (uint)(buffers[i].Length - offset))
            {
                throw new ArgumentOutOfRangeException(nameof(sizes), "datagram extends past its buffer");
            }
        }

        if (count == 0)
        {
            return 0;
        }

        lock (_sendLock)
        {
            if (!WriteDestination(destination))
            {
                Interlocked.Add(ref _sendDropped, count); // an IPv6 destination on an IPv4-only socket
                return 0;
            }

            var sent = 0;
            for (var i = 0; i < count; i++)
            {
                try
                {
                    _socket.SendTo(buffers[i].AsSpan(offset, sizes[i]), SocketFlags.None, _destination);
                    sent++;
                }
                catch (Exception e) when (e is SocketException or ObjectDisposedException)
                {
                    if (Volatile.Read(ref _disposed) != 0)
                    {
                        Interlocked.Add(ref _sendDropped, count - i);
                        return sent;
                    }

                    // Refused (too large, unreachable, filtered ...): drop this one and carry on with the rest.
                    Interlocked.Increment(ref _sendDropped);
                }
            }

            return sent;
        }
    }

    /// <summary>Closes the socket: a blocked <see cref="Receive"/> returns, later sends throw. Idempotent.</summary>
    public void Dispose()
    {
        if (Interlocked.Exchange(ref _disposed, 1) != 0)
        {
            return;
        }

        _socket.Dispose();
    }

    private bool HasQueued()
    {
        try
        {
            return _socket.Available > 0;
        }
        catch (Exception e) when (e is SocketException or ObjectDisposedException)
        {
            return false;
        }
    }

    private UdpEndpoint ReadSource()
    {
        var bytes = _source.Buffer.Span;
        var port = BinaryPrimitives.ReadUInt16BigEndian(bytes[PortOffset..]);
        return _source.Family == AddressFamily.InterNetworkV6
            ? UdpEndpoint.FromIPv6(bytes.Slice(IPv6AddressOffset, 16), port) // IPv4-mapped becomes IPv4
            : UdpEndpoint.FromIPv4(bytes.Slice(IPv4AddressOffset, 4), port);
    }

    private bool WriteDestination(in UdpEndpoint destination)
    {
        var bytes = _destination.Buffer.Span;
        BinaryPrimitives.WriteUInt16BigEndian(bytes[PortOffset..], destination.Port);
        if (_socket.AddressFamily == AddressFamily.InterNetworkV6)
        {
            destination.WriteAddress16(bytes.Slice(IPv6AddressOffset, 16)); // IPv4 as ::ffff:a.b.c.d (dual mode)
            bytes.Slice(IPv6ScopeOffset, 4).Clear();
            return true;
        }

        if (!destination.IsIPv4)
        {
            return false;
        }

        BinaryPrimitives.WriteUInt32BigEndian(bytes[IPv4AddressOffset..], destination.IPv4Value);
        return true;
    }

    private sealed class SocketUdpBindFactory : IDatagramBindFactory
    {
        public IDatagramBind Open(ushort port) => SocketUdpBind.Open(port);
    }
}
