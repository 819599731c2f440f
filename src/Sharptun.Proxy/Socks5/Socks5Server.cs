using System.Buffers;
using System.Buffers.Binary;
using System.Globalization;
using System.Net;
using System.Net.Sockets;
using System.Security.Cryptography;
using System.Text;
using Microsoft.Extensions.Logging;
using Sharptun.Hosting;
using Sharptun.Proxy.Config;

namespace Sharptun.Proxy.Socks5;

/// <summary>
/// The SOCKS5 front-end (RFC 1928, RFC 1929): listens on a host address and serves CONNECT (IPv4, IPv6 and names,
/// names resolved through <see cref="ProxyContext.Network"/>, i.e. the tunnel's DNS), BIND (a listener on the tunnel
/// address that takes one incoming connection, see <c>Socks5Server.Bind.cs</c>) and UDP ASSOCIATE (a relay socket
/// bound to the address the client connected to, never every interface), with optional username/password
/// authentication. GSSAPI is not supported (method 0xFF).
/// </summary>
/// <remarks>
/// Each connection: greeting and method selection (§3), the username/password sub-negotiation (RFC 1929 §2) when
/// credentials are configured, the request (§4), then the reply (§6) and a <see cref="StreamRelay"/> (CONNECT) or a
/// datagram relay (UDP ASSOCIATE, §7). Every handshake read has a fixed size the server chose or a one-byte length the
/// client gave (at most 255), read into one buffer of <see cref="Socks5Protocol.MaxHandshakeMessage"/> bytes within
/// <see cref="ProxyContext.HandshakeTimeout"/>. Past the <see cref="ProxyContext.Gate"/>'s cap a connection is still
/// taken through its handshake (a bounded number at once, with a shorter timeout) and then refused with reply 0x01
/// "general SOCKS server failure", so the client sees a SOCKS error instead of a bare close.
/// </remarks>
public sealed partial class Socks5Server : IProxyService
{
    /// <summary>Over-cap connections taken through the handshake at once to be refused with a reply; more are closed at once.</summary>
    internal const int MaxConcurrentRefusals = 256;

    /// <summary>The longest time an over-cap connection may take over its handshake.</summary>
    internal static readonly TimeSpan RefusalHandshakeTimeout = TimeSpan.FromSeconds(5);

    private readonly Socks5Options _options;
    private readonly ProxyContext _context;
    private readonly ILogger _logger;
    private readonly byte[]? _usernameHash;
    private readonly byte[]? _passwordHash;
    private readonly ConnectionGate _refusals = new(MaxConcurrentRefusals);
    private long _datagramsDropped;
    private long _associations;
    private HostListener? _listener;
    private int _inFlight;

    /// <summary>A SOCKS5 server with <paramref name="options"/>, reaching targets through <paramref name="context"/>'s network.</summary>
    /// <exception cref="ArgumentException">The username or password is longer than 255 bytes.</exception>
    public Socks5Server(Socks5Options options, ProxyContext context)
    {
        ArgumentNullException.ThrowIfNull(options);
        ArgumentNullException.ThrowIfNull(context);
        options.Validate();
        _options = options;
        _context = context;
        _logger = context.LoggerFactory.CreateLogger("Sharptun.Proxy.Socks5");
        if (options.RequiresAuthentication)
        {
            _usernameHash = SHA256.HashData(Encoding.UTF8.GetBytes(options.Username ?? ""));
            _passwordHash = SHA256.HashData(Encoding.UTF8.GetBytes(options.Password ?? ""));
        }
    }

    /// <summary>
    /// A server from wireproxy's <c>[Socks5]</c> section: <c>BindAddress = host:port</c> (an IPv4 address,
    /// <c>[IPv6]</c>, <c>localhost</c>, or empty for every interface), optional <c>Username</c> and <c>Password</c>.
    /// </summary>
    /// <exception cref="ProxyConfigException">An unknown key or a bad value, naming its line.</exception>
    public static Socks5Server FromSection(ConfigSection section, ProxyContext context)
    {
        ArgumentNullException.ThrowIfNull(section);
        ArgumentNullException.ThrowIfNull(context);
        section.RejectUnknownKeys("BindAddress", "Username", "Password");
        var bind = section.Require("BindAddress");
        var bindLine = section.Find("BindAddress")!.Value.Line;
        if (!TryParseBindAddress(bind, out var endPoint, out var error))
        {
            throw section.Error(bindLine, $"[{section.Name}] BindAddress '{bind}': {error}");
        }

        foreach (var key in (string[])["Username", "Password"])
        {
            if (section.Find(key) is { } entry && Encoding.UTF8.GetByteCount(entry.Value) > 255)
            {
                throw section.Error(entry.Line, $"[{section.Name}] {key} is longer than 255 bytes, the most SOCKS5 can carry (RFC 1929)");
            }
        }

        var options = new Socks5Options(endPoint)
        {
            Username = section.Get("Username"),
            Password = section.Get("Password"),
        };
        return new Socks5Server(options, context);
    }

    /// <inheritdoc/>
    public string Kind => "socks5";

    /// <inheritdoc/>
    public string Endpoint => (LocalEndPoint ?? _options.BindAddress).ToString();

    /// <inheritdoc/>
    public ProxyServiceCounters Counters { get; } = new();

    /// <summary>The address and port listened on once <see cref="Start"/> has run (the real port when the configured one is 0).</summary>
    public IPEndPoint? LocalEndPoint => _listener?.LocalEndPoint;

    /// <summary>
    /// UDP datagrams of associations not relayed: from a source other than the client, fragmented, malformed, to a
    /// name that does not resolve, or failed to send.
    /// </summary>
    public long DatagramsDropped => Interlocked.Read(ref _datagramsDropped);

    /// <summary>UDP associations open now.</summary>
    public long OpenAssociations => Interlocked.Read(ref _associations);

    internal ILogger Logger => _logger;

    internal ProxyContext Context => _context;

    /// <summary>Connection handlers running now (admitted or being refused).</summary>
    internal int ConnectionsInFlight => Volatile.Read(ref _inFlight);

    /// <inheritdoc/>
    public void Start()
    {
        if (_listener is not null)
        {
            throw new InvalidOperationException("The SOCKS5 server has already started.");
        }

        _listener = HostListener.Bind(_options.BindAddress, backlog: 1024);
        Log.Listening(_logger, _listener.LocalEndPoint, _options.RequiresAuthentication ? "username/password" : "no authentication");
    }

    /// <inheritdoc/>
    public async Task RunAsync(CancellationToken cancellationToken)
    {
        var listener = _listener ?? throw new InvalidOperationException("Call Start before RunAsync.");
        await AcceptLoop.ServeAsync(listener, ServeAsync, _context.Gate, Counters, _logger, Kind, Endpoint, cancellationToken).ConfigureAwait(false);
    }

    internal void CountDrop(EndPoint? client, string reason)
    {
        Interlocked.Increment(ref _datagramsDropped);
        Log.DatagramDropped(_logger, client, reason);
    }

    internal static bool TryParseBindAddress(string text, out IPEndPoint endPoint, out string error)
    {
        endPoint = new IPEndPoint(IPAddress.Loopback, 0);
        var colon = text.LastIndexOf(':');
        if (colon < 0)
        {
            error = "expected host:port, e.g. 127.0.0.1:1080 or [::1]:1080";
            return false;
        }

        var host = text[..colon];
        if (!int.TryParse(text.AsSpan(colon + 1), NumberStyles.None, CultureInfo.InvariantCulture, out var port) || port is < 1 or > 65535)
        {
            error = "the port must be a number from 1 to 65535";
            return false;
        }

        IPAddress? address;
        if (host.Length == 0)
        {
            address = IPAddress.IPv6Any; // Go's ":port": every interface, IPv4 and IPv6.
        }
        else if (string.Equals(host, "localhost", StringComparison.OrdinalIgnoreCase))
        {
            address = IPAddress.Loopback;
        }
        else if (host.StartsWith('[') && host.EndsWith(']'))
        {
            if (!IPAddress.TryParse(host.AsSpan(1, host.Length - 2), out address) || address.AddressFamily != AddressFamily.InterNetworkV6)
            {
                error = "the part in brackets must be an IPv6 address";
                return false;
            }
        }
        else if (!IPAddress.TryParse(host, out address) || address.AddressFamily != AddressFamily.InterNetwork)
        {
            error = "the host must be an IPv4 address, [an IPv6 address], localhost or empty (every interface)";
            return false;
        }

        endPoint = new IPEndPoint(address, port);
        error = "";
        return true;
    }

    /// <summary>
    /// One client connection. Past the cap (<paramref name="admitted"/> false, counted by the loop) it is taken through
    /// its handshake to be refused with a reply while fewer than <see cref="MaxConcurrentRefusals"/> are, else reset.
    /// </summary>
    private async Task ServeAsync(AcceptedConnection accepted, bool admitted, CancellationToken cancellationToken)
    {
        var socket = accepted.Socket!;
        var stream = (NetworkStream)accepted.Stream;
        var client = socket.RemoteEndPoint;
        var refusal = admitted ? null : _refusals.TryEnter();
        Interlocked.Increment(ref _inFlight);
        if (admitted)
        {
            Counters.OnAccepted();
        }

        try
        {
            if (!admitted)
            {
                Log.OverCap(_logger, client, _context.Gate.Open);
                if (refusal is null)
                {
                    StreamRelay.Abort(stream);
                    return;
                }
            }

            await HandleAsync(socket, stream, client, admitted, cancellationToken).ConfigureAwait(false);
        }
        catch (Exception e) when (e is IOException or SocketException or ObjectDisposedException)
        {
            // The client went away: nothing to tell anyone.
        }
        finally
        {
            await stream.DisposeAsync().ConfigureAwait(false);
            refusal?.Dispose();
            if (admitted)
            {
                Counters.OnClosed();
            }

            Interlocked.Decrement(ref _inFlight);
        }
    }

    private async Task HandleAsync(Socket socket, NetworkStream stream, EndPoint? client, bool admitted, CancellationToken cancellationToken)
    {
        Socks5Request? request;
        var buffer = ArrayPool<byte>.Shared.Rent(Socks5Protocol.MaxHandshakeMessage);
        var timeout = admitted || _context.HandshakeTimeout < RefusalHandshakeTimeout ? _context.HandshakeTimeout : RefusalHandshakeTimeout;
        try
        {
            using var handshake = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
            handshake.CancelAfter(timeout);
            try
            {
                request = await ReadHandshakeAsync(stream, buffer, client, admitted, handshake.Token).ConfigureAwait(false);
            }
            catch (OperationCanceledException) when (!cancellationToken.IsCancellationRequested)
            {
                Log.HandshakeTimedOut(_logger, client, timeout.TotalSeconds);
                if (admitted)
                {
                    Counters.OnRefused();
                }

                return;
            }
            catch (EndOfStreamException)
            {
                Refuse(client, admitted, "closed during the handshake");
                return;
            }
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(buffer);
        }

        if (request is not { } r)
        {
            return;
        }

        if (r.Command == Socks5Protocol.CommandConnect)
        {
            await ConnectAsync(stream, client, r, cancellationToken).ConfigureAwait(false);
        }
        else if (r.Command == Socks5Protocol.CommandBind)
        {
            await BindAsync(socket, stream, client, r, cancellationToken).ConfigureAwait(false);
        }
        else
        {
            await AssociateAsync(socket, stream, client, r, cancellationToken).ConfigureAwait(false);
        }
    }

    /// <summary>
    /// Reads the greeting, authenticates and reads the request; replies and returns <see langword="null"/> (counted as
    /// refused) for anything it will not serve. Over the cap (<paramref name="admitted"/> false) a well-formed request
    /// is answered 0x01.
    /// </summary>
    // Internal and on any Stream for fuzz/Sharptun.Fuzz (the socks5 target), which feeds it from memory.
    internal async Task<Socks5Request?> ReadHandshakeAsync(Stream stream, byte[] buffer, EndPoint? client, bool admitted, CancellationToken cancellationToken)
    {
        // RFC 1928 §3: +----+----------+----------+
        //              |VER | NMETHODS | METHODS  |
        //              | 1  |    1     | 1 to 255 |
        await stream.ReadExactlyAsync(buffer.AsMemory(0, 2), cancellationToken).ConfigureAwait(false);
        if (buffer[0] != Socks5Protocol.Version)
        {
            return Refuse(client, admitted, $"not SOCKS5 (version byte 0x{buffer[0]:x2})");
        }

        int methodCount = buffer[1];
        await stream.ReadExactlyAsync(buffer.AsMemory(0, methodCount), cancellationToken).ConfigureAwait(false);
        var wanted = _usernameHash is null ? Socks5Protocol.MethodNoAuth : Socks5Protocol.MethodUserPass;
        var method = buffer.AsSpan(0, methodCount).Contains(wanted) ? wanted : Socks5Protocol.MethodNoAcceptable;
        buffer[0] = Socks5Protocol.Version;
        buffer[1] = method;
        await stream.WriteAsync(buffer.AsMemory(0, 2), cancellationToken).ConfigureAwait(false);
        if (method == Socks5Protocol.MethodNoAcceptable)
        {
            return Refuse(client, admitted, methodCount == 0 ? "offered no method" : _usernameHash is null ? "offered no 'no authentication' method" : "offered no username/password method");
        }

        if (method == Socks5Protocol.MethodUserPass && !await AuthenticateAsync(stream, buffer, client, admitted, cancellationToken).ConfigureAwait(false))
        {
            return null;
        }

        // RFC 1928 §4: +----+-----+-------+------+----------+----------+
        //              |VER | CMD |  RSV  | ATYP | DST.ADDR | DST.PORT |
        await stream.ReadExactlyAsync(buffer.AsMemory(0, 4), cancellationToken).ConfigureAwait(false);
        if (buffer[0] != Socks5Protocol.Version)
        {
            return Refuse(client, admitted, $"request version byte 0x{buffer[0]:x2}");
        }

        var command = buffer[1];
        var addressType = buffer[3];
        if (command is not (Socks5Protocol.CommandConnect or Socks5Protocol.CommandBind or Socks5Protocol.CommandUdpAssociate))
        {
            await ReplyAsync(stream, Socks5Protocol.ReplyCommandNotSupported, null, cancellationToken).ConfigureAwait(false);
            return Refuse(client, admitted, $"unknown command 0x{command:x2}");
        }

        IPAddress? address = null;
        string? host = null;
        switch (addressType)
        {
            case Socks5Protocol.AddressIPv4:
            case Socks5Protocol.AddressIPv6:
                var length = addressType == Socks5Protocol.AddressIPv4 ? 4 : 16;
                await stream.ReadExactlyAsync(buffer.AsMemory(0, length + 2), cancellationToken).ConfigureAwait(false);
                address = Socks5Protocol.Unmap(new IPAddress(buffer.AsSpan(0, length)));
                buffer.AsSpan(length, 2).CopyTo(buffer);
                break;
            case Socks5Protocol.AddressDomain:
                await stream.ReadExactlyAsync(buffer.AsMemory(0, 1), cancellationToken).ConfigureAwait(false);
                int nameLength = buffer[0];
                await stream.ReadExactlyAsync(buffer.AsMemory(0, nameLength + 2), cancellationToken).ConfigureAwait(false);
                if (!Socks5Protocol.TryDecodeName(buffer.AsSpan(0, nameLength), out host))
                {
                    await ReplyAsync(stream, Socks5Protocol.ReplyGeneralFailure, null, cancellationToken).ConfigureAwait(false);
                    return Refuse(client, admitted, "an empty or unprintable host name");
                }

                buffer.AsSpan(nameLength, 2).CopyTo(buffer);
                break;
            default:
                await ReplyAsync(stream, Socks5Protocol.ReplyAddressTypeNotSupported, null, cancellationToken).ConfigureAwait(false);
                return Refuse(client, admitted, $"unknown address type 0x{addressType:x2}");
        }

        var port = BinaryPrimitives.ReadUInt16BigEndian(buffer); // DST.PORT, moved to the front of the buffer above
        if (!admitted)
        {
            // Past the cap: a clear "general SOCKS server failure" (already counted as refused).
            await ReplyAsync(stream, Socks5Protocol.ReplyGeneralFailure, null, cancellationToken).ConfigureAwait(false);
            return null;
        }

        return new Socks5Request(command, address, host, port);
    }

    /// <summary>RFC 1929 §2: VER 0x01, ULEN, UNAME, PLEN, PASSWD; the reply is VER and STATUS (0x00 success).</summary>
    private async Task<bool> AuthenticateAsync(Stream stream, byte[] buffer, EndPoint? client, bool admitted, CancellationToken cancellationToken)
    {
        await stream.ReadExactlyAsync(buffer.AsMemory(0, 2), cancellationToken).ConfigureAwait(false);
        if (buffer[0] != Socks5Protocol.UserPassVersion)
        {
            var version = buffer[0];
            buffer[0] = Socks5Protocol.UserPassVersion;
            buffer[1] = 0xFF;
            await stream.WriteAsync(buffer.AsMemory(0, 2), cancellationToken).ConfigureAwait(false);
            Refuse(client, admitted, $"username/password version byte 0x{version:x2}");
            return false;
        }

        int userLength = buffer[1];
        await stream.ReadExactlyAsync(buffer.AsMemory(0, userLength + 1), cancellationToken).ConfigureAwait(false);
        int passwordLength = buffer[userLength];
        await stream.ReadExactlyAsync(buffer.AsMemory(userLength + 1, passwordLength), cancellationToken).ConfigureAwait(false);
        var userHash = SHA256.HashData(buffer.AsSpan(0, userLength));
        var passwordHash = SHA256.HashData(buffer.AsSpan(userLength + 1, passwordLength));
        var ok = CryptographicOperations.FixedTimeEquals(userHash, _usernameHash) & CryptographicOperations.FixedTimeEquals(passwordHash, _passwordHash);
        var user = Socks5Protocol.TryDecodeName(buffer.AsSpan(0, userLength), out var printable) ? printable : $"({userLength} bytes)";
        buffer[0] = Socks5Protocol.UserPassVersion;
        buffer[1] = ok ? (byte)0x00 : (byte)0x01;
        await stream.WriteAsync(buffer.AsMemory(0, 2), cancellationToken).ConfigureAwait(false);
        if (!ok)
        {
            // RFC 1929 §2: on failure the server MUST close the connection.
            Log.AuthenticationFailed(_logger, client, user);
            if (admitted)
            {
                Counters.OnRefused();
            }
        }

        return ok;
    }

    private async Task ConnectAsync(NetworkStream stream, EndPoint? client, Socks5Request request, CancellationToken cancellationToken)
    {
        var target = request.Host ?? request.Address!.ToString();
        Stream server;
        try
        {
            server = request.Address is { } address
                ? await _context.Network.ConnectAsync(new IPEndPoint(address, request.Port), cancellationToken).ConfigureAwait(false)
                : await _context.Network.ConnectAsync(request.Host!, request.Port, cancellationToken).ConfigureAwait(false);
        }
        catch (Exception e) when (!cancellationToken.IsCancellationRequested && e is not OutOfMemoryException)
        {
            var error = e is SocketException s ? s.SocketErrorCode : SocketError.SocketError;
            var reply = Socks5Protocol.ReplyFor(error);
            Counters.OnFailed();
            Log.ConnectFailed(_logger, client, target, request.Port, error, Socks5Protocol.ReplyName(reply));
            await ReplyAsync(stream, reply, null, cancellationToken).ConfigureAwait(false);
            return;
        }

        await using (server.ConfigureAwait(false))
        {
            var bound = server switch
            {
                TunnelStream tunnel => tunnel.LocalEndPoint,
                NetworkStream network => network.Socket.LocalEndPoint as IPEndPoint,
                _ => null,
            };
            await ReplyAsync(stream, Socks5Protocol.ReplySucceeded, bound, cancellationToken).ConfigureAwait(false);
            var result = await StreamRelay.RunAsync(stream, server, _context.Relay, cancellationToken).ConfigureAwait(false);
            Counters.AddBytes(result.ClientToServerBytes, result.ServerToClientBytes);
            Log.ConnectEnded(_logger, client, target, request.Port, result.End.ToString(), result.ClientToServerBytes, result.ServerToClientBytes);
        }
    }

    private async Task AssociateAsync(Socket socket, NetworkStream stream, EndPoint? client, Socks5Request request, CancellationToken cancellationToken)
    {
        // RFC 1928 §7: the relay listens on the address the client reached us at (wireproxy #199: never every
        // interface), on an ephemeral port; DST.ADDR/DST.PORT name where the client will send from (zeros: not known).
        var local = Socks5Protocol.Unmap(((IPEndPoint)socket.LocalEndPoint!).Address);
        var remote = Socks5Protocol.Unmap(((IPEndPoint)socket.RemoteEndPoint!).Address);
        Socket relay;
        IDatagramChannel channel;
        try
        {
            relay = new Socket(local.AddressFamily, SocketType.Dgram, ProtocolType.Udp);
            try
            {
                relay.Bind(new IPEndPoint(local, 0));
                channel = _context.Network.BindUdp();
            }
            catch
            {
                relay.Dispose();
                throw;
            }
        }
        catch (Exception e) when (e is SocketException or InvalidOperationException or ObjectDisposedException)
        {
            Counters.OnFailed();
            Log.ConnectFailed(_logger, client, "UDP ASSOCIATE", request.Port, e is SocketException s ? s.SocketErrorCode : SocketError.SocketError, "general failure");
            await ReplyAsync(stream, Socks5Protocol.ReplyGeneralFailure, null, cancellationToken).ConfigureAwait(false);
            return;
        }

        Interlocked.Increment(ref _associations);
        try
        {
            using var association = new Socks5UdpAssociation(this, relay, channel, remote, request.Port, _options.UdpIdleTimeout);
            await ReplyAsync(stream, Socks5Protocol.ReplySucceeded, (IPEndPoint)relay.LocalEndPoint!, cancellationToken).ConfigureAwait(false);
            Log.AssociationStarted(_logger, client, relay.LocalEndPoint!);
            var reason = await association.RunAsync(stream, cancellationToken).ConfigureAwait(false);
            Log.AssociationEnded(_logger, client, reason, association.BytesUp, association.BytesDown);
        }
        finally
        {
            Interlocked.Decrement(ref _associations);
        }
    }

    private static async Task ReplyAsync(Stream stream, byte reply, IPEndPoint? bound, CancellationToken cancellationToken)
    {
        var bytes = new byte[Socks5Protocol.MaxReply];
        var length = Socks5Protocol.WriteReply(bytes, reply, bound);
        await stream.WriteAsync(bytes.AsMemory(0, length), cancellationToken).ConfigureAwait(false);
    }

    private Socks5Request? Refuse(EndPoint? client, bool admitted, string reason)
    {
        Log.Refused(_logger, client, reason);
        if (admitted)
        {
            // Over-cap connections were counted when they arrived.
            Counters.OnRefused();
        }

        return null;
    }

    internal readonly record struct Socks5Request(byte Command, IPAddress? Address, string? Host, int Port);
}
