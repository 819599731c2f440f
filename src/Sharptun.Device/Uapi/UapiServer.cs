using System.Buffers;
using System.Collections.Concurrent;
using System.Net.Sockets;
using System.Text;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;

namespace Sharptun.Device.Uapi;

/// <summary>Limits that keep a misbehaving UAPI client from exhausting the daemon.</summary>
public sealed record UapiServerOptions
{
    /// <summary>Longest accepted line, in bytes, without its '\n'. Longer → errno=-EMSGSIZE and the connection is closed.</summary>
    public int MaxLineLength { get; init; } = 4096;

    /// <summary>Largest <c>set=1</c> request, in bytes (about 50,000 lines). Larger → errno=-EMSGSIZE, connection closed.</summary>
    public int MaxRequestBytes { get; init; } = 4 << 20;

    /// <summary>
    /// Bytes of set requests buffered at once across all connections (so 16 connections cannot each hold
    /// <see cref="MaxRequestBytes"/>). A request that would go over gets errno=-EMSGSIZE and its connection is closed.
    /// </summary>
    public long MaxBufferedBytes { get; init; } = 8 << 20;

    /// <summary>Connections served at once; further clients wait in the listen backlog until one ends.</summary>
    public int MaxConnections { get; init; } = 16;

    /// <summary>
    /// Time a client has to send one whole request, counted from connecting or from the previous reply, and to
    /// take a reply. On expiry the connection is closed without a reply.
    /// </summary>
    public TimeSpan RequestTimeout { get; init; } = TimeSpan.FromSeconds(10);
}

/// <summary>The UAPI socket could not be created (in use by a live process, or a file-system error).</summary>
public sealed class UapiSocketException : IOException
{
    /// <summary>Creates the exception.</summary>
    public UapiSocketException(string message, Exception? inner = null)
        : base(message, inner)
    {
    }
}

/// <summary>
/// Serves the WireGuard cross-platform configuration protocol (wireguard.com/xplatform) on a unix socket,
/// <c>/var/run/wireguard/&lt;ifname&gt;.sock</c> by default, so the stock <c>wg</c> and <c>wg-quick</c> tools can manage
/// the device exactly as they manage wireguard-go.
/// </summary>
/// <remarks>
/// <para>Protocol (wireguard-go device/uapi.go): a connection carries any number of requests. <c>get=1\n\n</c> is
/// answered with <c>key=value</c> lines then <c>errno=0\n\n</c>; <c>set=1\n</c> is followed by <c>key=value</c> lines
/// and an empty line and answered with <c>errno=N\n\n</c> (N = 0 or a negated errno). An unknown operation line
/// closes the connection without a reply, as in wireguard-go.</para>
/// <para>Unlike wireguard-go, which applies a set request line by line (so a bad line leaves the earlier ones
/// applied), the whole request is read and validated first and then applied as one change set: an error means
/// nothing changed. A request cut short by end-of-stream is still applied, as wireguard-go does.</para>
/// <para>Requests are handled one at a time across all connections (wireguard-go's ipcMutex), but only once fully
/// received, so a slow client never holds the lock. Lines, requests, connections and time per request are bounded
/// by <see cref="UapiServerOptions"/>.</para>
/// <para>Thread-safety: all members may be called from any thread. <see cref="Dispose"/> stops accepting, closes
/// every connection and deletes the socket file.</para>
/// </remarks>
public sealed partial class UapiServer : IDisposable
{
    /// <summary>Where wireguard-go and wg look for UAPI sockets.</summary>
    public const string DefaultSocketDirectory = "/var/run/wireguard";

    /// <summary>-EMSGSIZE: a line or request over the limits (wireguard-go has no limit, so no errno of its own).</summary>
    internal const int ErrnoMessageTooLong = -90;

    private readonly Socket _listener;
    private readonly IUapiRequestHandler _handler;
    private readonly ILogger _log;
    private readonly UapiServerOptions _options;
    private readonly CancellationTokenSource _stopping = new();
    private readonly SemaphoreSlim _requestLock = new(1, 1);
    private readonly ConcurrentDictionary<Socket, byte> _connections = new();
    private readonly bool _ownsSocketFile;
    private readonly SemaphoreSlim _connectionSlots;
    private int _disposed;
    private long _bufferedBytes;

    private UapiServer(Socket listener, string socketPath, bool ownsSocketFile, IUapiRequestHandler handler, ILogger log, UapiServerOptions options)
    {
        _listener = listener;
        SocketPath = socketPath;
        _ownsSocketFile = ownsSocketFile;
        _handler = handler;
        _log = log;
        _options = options;
        _connectionSlots = new SemaphoreSlim(options.MaxConnections, options.MaxConnections);
        Completion = Task.Run(AcceptLoopAsync);
    }

    /// <summary>The socket file's path.</summary>
    public string SocketPath { get; }

    /// <summary>Completes when the server stops accepting (after <see cref="Dispose"/>, or if the listener fails).</summary>
    public Task Completion { get; }

    /// <summary>
    /// False once the socket file has been deleted by someone else; wireguard-go shuts the device down then
    /// (its inotify watch), and so does the sharptun daemon.
    /// </summary>
    public bool SocketFileExists => File.Exists(SocketPath);

    /// <summary>The socket path for an interface: <c>{directory}/{interfaceName}.sock</c>.</summary>
    public static string GetSocketPath(string interfaceName, string? directory = null) =>
        Path.Combine(directory ?? DefaultSocketDirectory, interfaceName + ".sock");

    /// <summary>
    /// Creates the socket for <paramref name="interfaceName"/> and starts serving <paramref name="device"/>.
    /// The directory is created with mode 0700 when missing and forced to 0700 when it exists; the socket is bound
    /// under umask 0177, so it is mode 0600 from the moment it exists (no window in which others may connect). A socket file left by a
    /// dead process (connecting to it fails) is replaced; one a live process answers on is not.
    /// </summary>
    /// <exception cref="UapiSocketException">The socket is in use, or cannot be created.</exception>
    public static UapiServer Start(string interfaceName, IUapiDevice device, ILogger? logger = null, UapiServerOptions? options = null, string? socketDirectory = null)
    {
        ArgumentNullException.ThrowIfNull(device);
        logger ??= NullLogger.Instance;
        return Start(GetSocketPath(interfaceName, socketDirectory), new UapiDeviceHandler(device, logger), logger, options);
    }

    /// <summary>
    /// Serves <paramref name="device"/> on an already-listening unix socket inherited from a parent process
    /// (wireguard-go's <c>WG_UAPI_FD</c>). <paramref name="socketPath"/> is the file it is bound to; it is deleted on dispose.
    /// </summary>
    public static UapiServer FromListeningSocket(Socket listener, string socketPath, IUapiDevice device, ILogger? logger = null, UapiServerOptions? options = null)
    {
        ArgumentNullException.ThrowIfNull(listener);
        ArgumentNullException.ThrowIfNull(device);
        logger ??= NullLogger.Instance;
        return new UapiServer(listener, socketPath, ownsSocketFile: true, new UapiDeviceHandler(device, logger), logger, options ?? new UapiServerOptions());
    }

    /// <summary>Creates and binds the socket at <paramref name="socketPath"/>; see <see cref="Start(string, IUapiDevice, ILogger?, UapiServerOptions?, string?)"/>.</summary>
    internal static UapiServer Start(string socketPath, IUapiRequestHandler handler, ILogger? log, UapiServerOptions? options)
    {
        var listener = CreateListener(socketPath);
        return new UapiServer(listener, socketPath, ownsSocketFile: true, handler, log ?? NullLogger.Instance, options ?? new UapiServerOptions());
    }

    /// <summary>
    /// Binds and listens on a unix socket at <paramref name="socketPath"/> with wireguard-go's stale-socket rule:
    /// if the path exists and a connect to it succeeds, a live daemon owns it (error); otherwise it is removed.
    /// </summary>
    /// <exception cref="UapiSocketException">In use, or a file-system/socket error.</exception>
    public static Socket CreateListener(string socketPath)
    {
        var directory = Path.GetDirectoryName(socketPath);
        try
        {
            if (!string.IsNullOrEmpty(directory) && !OperatingSystem.IsWindows())
            {
                // Only root (the owner) may reach the sockets: created 0700, and forced back to 0700 when someone
                // made it wider (wireguard-go leaves an existing directory as it is).
                const UnixFileMode Private = UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute;
                if (!Directory.Exists(directory))
                {
                    Directory.CreateDirectory(directory, Private);
                }

                if (File.GetUnixFileMode(directory) != Private)
                {
                    File.SetUnixFileMode(directory, Private);
                }
            }
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new UapiSocketException($"cannot create the UAPI socket directory {directory}: {e.Message}", e);
        }

        if (File.Exists(socketPath))
        {
            if (IsAlive(socketPath))
            {
                throw new UapiSocketException($"UAPI socket {socketPath} is in use by a running process (is another daemon already managing this interface?)");
            }

            try
            {
                File.Delete(socketPath); // stale: left by a daemon that was killed
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException)
            {
                throw new UapiSocketException($"cannot remove the stale UAPI socket {socketPath}: {e.Message}", e);
            }
        }

        var listener = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
        try
        {
            if (OperatingSystem.IsWindows())
            {
                listener.Bind(new UnixDomainSocketEndPoint(socketPath));
            }
            else
            {
                BindPrivately(listener, socketPath);
                File.SetUnixFileMode(socketPath, UnixFileMode.UserRead | UnixFileMode.UserWrite); // already so; a no-op unless the umask was tampered with
            }

            listener.Listen(64);
            return listener;
        }
        catch (Exception e) when (e is SocketException or IOException or UnauthorizedAccessException or ArgumentException)
        {
            listener.Dispose();
            throw new UapiSocketException($"cannot listen on the UAPI socket {socketPath}: {e.Message}", e);
        }
    }

    /// <summary>Umask 0177 (octal) for the bind: no group or other bits (077), and no execute bit, so the socket is exactly 0600.</summary>
    private const uint PrivateUmask = 0x7F;

    private static readonly Lock s_umaskLock = new();

    /// <summary>Tests only: called right after bind(2) created the socket file (before anything else touches it), with its path.</summary>
    internal static Action<string>? BindObserver { get; set; }

    /// <summary>
    /// bind(2) creates the socket file with mode 0777 &amp; ~umask, so it is bound under umask 0177: the file is 0600 from
    /// its first instant (a chmod after the bind would leave a window in which any local user could connect and
    /// configure keys). The umask is process-wide: the daemon runs under 077 anyway (DaemonHost), and here it is set
    /// around the bind and restored, serialised so concurrent binds in one process do not restore each other's.
    /// </summary>
    private static void BindPrivately(Socket listener, string socketPath)
    {
        lock (s_umaskLock)
        {
            var previous = umask(PrivateUmask);
            try
            {
                listener.Bind(new UnixDomainSocketEndPoint(socketPath));
                BindObserver?.Invoke(socketPath);
            }
            finally
            {
                umask(previous);
            }
        }
    }

    [System.Runtime.InteropServices.LibraryImport("libc", EntryPoint = "umask")]
    private static partial uint umask(uint mask);

    /// <summary>True when something accepts connections on the unix socket at <paramref name="socketPath"/>.</summary>
    public static bool IsAlive(string socketPath)
    {
        using var probe = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
        try
        {
            // A live daemon whose backlog is full makes connect wait; treat a timeout as alive (never steal its socket).
            var connect = probe.ConnectAsync(new UnixDomainSocketEndPoint(socketPath));
            return !connect.Wait(TimeSpan.FromSeconds(2)) || connect.IsCompletedSuccessfully;
        }
        catch (AggregateException)
        {
            return false;
        }
        catch (SocketException)
        {
            return false;
        }
    }

    /// <summary>Stops accepting, closes all connections and deletes the socket file. Idempotent.</summary>
    public void Dispose()
    {
        if (Interlocked.Exchange(ref _disposed, 1) != 0)
        {
            return;
        }

        _stopping.Cancel();
        _listener.Dispose();
        foreach (var connection in _connections.Keys)
        {
            connection.Dispose();
        }

        if (_ownsSocketFile)
        {
            try
            {
                File.Delete(SocketPath);
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException)
            {
                Log.SocketFileNotRemoved(_log, SocketPath, e.Message);
            }
        }
    }

    private async Task AcceptLoopAsync()
    {
        while (!_stopping.IsCancellationRequested)
        {
            Socket connection;
            try
            {
                // At the limit, stop accepting: further clients wait in the kernel's backlog (bounded) until a
                // slot frees up, which the per-request timeout guarantees.
                await _connectionSlots.WaitAsync(_stopping.Token).ConfigureAwait(false);
                try
                {
                    connection = await _listener.AcceptAsync(_stopping.Token).ConfigureAwait(false);
                }
                catch
                {
                    _connectionSlots.Release();
                    throw;
                }
            }
            catch (Exception e) when (e is OperationCanceledException or ObjectDisposedException)
            {
                return;
            }
            catch (SocketException e)
            {
                if (_stopping.IsCancellationRequested)
                {
                    return;
                }

                Log.AcceptFailed(_log, e.Message);
                await Task.Delay(100).ConfigureAwait(false); // e.g. EMFILE: do not spin
                continue;
            }

            _connections.TryAdd(connection, 0);
            _ = Task.Run(() => ServeAsync(connection));
        }
    }

    private async Task ServeAsync(Socket connection)
    {
        try
        {
            using var timeout = CancellationTokenSource.CreateLinkedTokenSource(_stopping.Token);
            var reader = new UapiLineReader(connection, _options.MaxLineLength);
            while (true)
            {
                timeout.CancelAfter(_options.RequestTimeout);
                var op = await reader.ReadLineAsync(timeout.Token).ConfigureAwait(false);
                if (op is null)
                {
                    return; // clean end of stream between requests
                }

                bool keepOpen;
                if (op == "get=1")
                {
                    keepOpen = await ServeGetAsync(connection, reader, timeout.Token).ConfigureAwait(false);
                }
                else if (op == "set=1")
                {
                    keepOpen = await ServeSetAsync(connection, reader, timeout.Token).ConfigureAwait(false);
                }
                else
                {
                    Log.InvalidOperation(_log, Printable(op));
                    return;
                }

                if (!keepOpen)
                {
                    return;
                }

                // The next request gets a fresh time budget.
                if (!timeout.TryReset())
                {
                    return;
                }
            }
        }
        catch (UapiLineTooLongException)
        {
            Log.LineTooLong(_log, _options.MaxLineLength);
            await TrySendStatusAsync(connection, ErrnoMessageTooLong).ConfigureAwait(false);
        }
        catch (OperationCanceledException)
        {
            if (!_stopping.IsCancellationRequested)
            {
                Log.ClientTimedOut(_log);
            }
        }
        catch (Exception e) when (e is SocketException or ObjectDisposedException or IOException)
        {
            // The client went away.
        }
        finally
        {
            _connections.TryRemove(connection, out _);
            connection.Dispose();
            _connectionSlots.Release();
        }
    }

    // Returns whether to keep the connection open.
    private async Task<bool> ServeGetAsync(Socket connection, UapiLineReader reader, CancellationToken cancel)
    {
        var terminator = await reader.ReadLineAsync(cancel).ConfigureAwait(false);
        if (terminator is null)
        {
            return false;
        }

        if (terminator.Length != 0)
        {
            // wireguard-go: "trailing character in UAPI get"
            Log.TrailingCharactersInGet(_log, UapiErrno.Invalid, Printable(terminator));
            await SendStatusAsync(connection, UapiErrno.Invalid, cancel).ConfigureAwait(false);
            return false;
        }

        var output = new ArrayBufferWriter<byte>(1024);
        try
        {
            int errno;
            await _requestLock.WaitAsync(cancel).ConfigureAwait(false);
            try
            {
                errno = _handler.Get(output);
            }
            finally
            {
                _requestLock.Release();
            }

            if (errno != UapiErrno.None)
            {
                output.Clear();
            }

            AppendStatus(output, errno);
            await connection.SendAsync(output.WrittenMemory, SocketFlags.None, cancel).ConfigureAwait(false);
            return true;
        }
        finally
        {
            output.Clear(); // zeroes the private key hex
        }
    }

    private async Task<bool> ServeSetAsync(Socket connection, UapiLineReader reader, CancellationToken cancel)
    {
        var lines = new List<string>();
        long bytes = 0;
        try
        {
            var endOfStream = false;
            while (true)
            {
                var line = await reader.ReadLineAsync(cancel).ConfigureAwait(false);
                if (line is null)
                {
                    endOfStream = true;
                    break;
                }

                if (line.Length == 0)
                {
                    break;
                }

                // Wire bytes, counted against this request and against everything buffered by all connections.
                var cost = line.Length + 1L;
                bytes += cost;
                var total = Interlocked.Add(ref _bufferedBytes, cost);
                if (bytes > _options.MaxRequestBytes || total > _options.MaxBufferedBytes)
                {
                    Log.SetTooLarge(_log, _options.MaxRequestBytes, _options.MaxBufferedBytes);
                    await SendStatusAsync(connection, ErrnoMessageTooLong, cancel).ConfigureAwait(false);
                    return false;
                }

                lines.Add(line);
            }

            int errno;
            await _requestLock.WaitAsync(cancel).ConfigureAwait(false);
            try
            {
                errno = _handler.Set(lines);
            }
            finally
            {
                _requestLock.Release();
            }

            try
            {
                await SendStatusAsync(connection, errno, cancel).ConfigureAwait(false);
            }
            catch (SocketException) when (endOfStream)
            {
                // The client shut down both directions after its request; it still got applied (wireguard-go does too).
            }

            return !endOfStream;
        }
        finally
        {
            Interlocked.Add(ref _bufferedBytes, -bytes);
        }
    }

    private static void AppendStatus(ArrayBufferWriter<byte> output, int errno)
    {
        var text = "errno=" + errno.ToString(System.Globalization.CultureInfo.InvariantCulture) + "\n\n";
        var span = output.GetSpan(text.Length);
        var written = Encoding.ASCII.GetBytes(text, span);
        output.Advance(written);
    }

    private static async Task SendStatusAsync(Socket connection, int errno, CancellationToken cancel)
    {
        var output = new ArrayBufferWriter<byte>(16);
        AppendStatus(output, errno);
        await connection.SendAsync(output.WrittenMemory, SocketFlags.None, cancel).ConfigureAwait(false);
    }

    private async Task TrySendStatusAsync(Socket connection, int errno)
    {
        try
        {
            using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(1));
            await SendStatusAsync(connection, errno, cts.Token).ConfigureAwait(false);
        }
        catch (Exception e) when (e is SocketException or ObjectDisposedException or OperationCanceledException)
        {
            Log.ErrorStatusNotSent(_log);
        }
    }

    // For logs: never echo a long or binary line back.
    /// <summary>A request line for the log: never one that may hold a key (issue 7 item 11), cut at 64 characters, control characters as '?'.</summary>
    private static string Printable(string line)
    {
        var redacted = Redaction.Text(line);
        if (!ReferenceEquals(redacted, line))
        {
            return redacted;
        }

        var shown = line.Length > 64 ? line[..64] + "..." : line;
        var sb = new StringBuilder(shown.Length + 2).Append('"');
        foreach (var c in shown)
        {
            sb.Append(c is >= ' ' and < (char)0x7F ? c : '?');
        }

        return sb.Append('"').ToString();
    }
}

/// <summary>Text-level handling of one request, below the framing (tests plug fakes in here).</summary>
internal interface IUapiRequestHandler
{
    /// <summary>Writes the <c>key=value\n</c> lines of a get reply (no errno line) and returns the errno.</summary>
    int Get(IBufferWriter<byte> output);

    /// <summary>Validates and applies the lines of a set request (no terminator) as one unit; returns the errno.</summary>
    int Set(IReadOnlyList<string> lines);
}

/// <summary>Thrown by <see cref="UapiLineReader"/> for a line over the limit.</summary>
internal sealed class UapiLineTooLongException : Exception
{
    public UapiLineTooLongException()
        : base("UAPI line too long")
    {
    }
}

/// <summary>
/// Reads '\n'-terminated lines from a socket into one fixed buffer of MaxLineLength + 1 bytes, so a client can
/// never make it allocate more than that per connection (besides the returned strings).
/// </summary>
internal sealed class UapiLineReader
{
    private readonly Socket _socket;
    private readonly byte[] _buffer;
    private int _start;
    private int _end;
    private bool _eof;

    public UapiLineReader(Socket socket, int maxLineLength)
    {
        _socket = socket;
        _buffer = new byte[maxLineLength + 1];
    }

    /// <summary>
    /// Returns the next line without its '\n'; at end of stream returns a final unterminated line if there is one
    /// (like Go's bufio.Scanner), else null.
    /// </summary>
    public async ValueTask<string?> ReadLineAsync(CancellationToken cancel)
    {
        var scanned = _start;
        while (true)
        {
            var newline = Array.IndexOf(_buffer, (byte)'\n', scanned, _end - scanned);
            if (newline >= 0)
            {
                var line = Encoding.UTF8.GetString(_buffer, _start, newline - _start);
                _start = newline + 1;
                return line;
            }

            scanned = _end;
            if (_eof)
            {
                if (_end == _start)
                {
                    return null;
                }

                var last = Encoding.UTF8.GetString(_buffer, _start, _end - _start);
                _start = _end;
                return last;
            }

            if (_end == _buffer.Length)
            {
                if (_start == 0)
                {
                    throw new UapiLineTooLongException();
                }

                // Move the partial line to the front.
                Buffer.BlockCopy(_buffer, _start, _buffer, 0, _end - _start);
                _end -= _start;
                scanned -= _start;
                _start = 0;
            }

            var read = await _socket.ReceiveAsync(_buffer.AsMemory(_end), SocketFlags.None, cancel).ConfigureAwait(false);
            if (read == 0)
            {
                _eof = true;
            }

            _end += read;
        }
    }
}
