using System.Buffers;
using System.Net.Sockets;
using Microsoft.Extensions.Logging;
using Sharptun.Hosting;
using Sharptun.Proxy.Config;

namespace Sharptun.Proxy.Forwards;

/// <summary>Settings of a <see cref="StdioTunnel"/>.</summary>
public sealed class StdioTunnelOptions
{
    /// <summary>The target's name or IP address inside the tunnel (a name resolves through the tunnel's DNS).</summary>
    public required string TargetHost { get; init; }

    /// <summary>The target's TCP port.</summary>
    public required int TargetPort { get; init; }

    /// <summary>What is sent to the target (default: the process's standard input).</summary>
    public Stream? Input { get; init; }

    /// <summary>Where the target's bytes go (default: the process's standard output).</summary>
    public Stream? Output { get; init; }
}

/// <summary>
/// <c>[STDIOTunnel]</c>: the process's standard input and output relayed to one TCP connection through the tunnel,
/// for <c>ssh -o ProxyCommand='sharptun proxy -c FILE'</c>. End of input half-closes the connection (the target may
/// still answer); when the target closes its side (or the connection fails), output is flushed and
/// <see cref="RunAsync"/> returns, and the proxy should then exit, as ssh expects of a ProxyCommand. No idle
/// timeout applies: an idle ssh session is legitimate.
/// </summary>
/// <remarks>
/// With a STDIO tunnel, standard output carries the target's bytes only: the proxy must log to standard error and
/// print nothing else on standard output.
/// </remarks>
public sealed class StdioTunnel : IProxyService
{
    /// <summary>The config section name.</summary>
    public const string SectionName = "STDIOTunnel";

    private readonly StdioTunnelOptions _options;
    private readonly ProxyContext _context;
    private readonly ILogger _logger;
    private readonly string _target;
    private int _started;

    /// <summary>A relay of <see cref="StdioTunnelOptions.Input"/>/<see cref="StdioTunnelOptions.Output"/> (default stdin/stdout) to the target.</summary>
    /// <exception cref="ArgumentException">The target host is empty or the port out of range.</exception>
    public StdioTunnel(StdioTunnelOptions options, ProxyContext context)
    {
        ArgumentNullException.ThrowIfNull(options);
        ArgumentNullException.ThrowIfNull(context);
        ArgumentException.ThrowIfNullOrWhiteSpace(options.TargetHost);
        ArgumentOutOfRangeException.ThrowIfLessThan(options.TargetPort, 1);
        ArgumentOutOfRangeException.ThrowIfGreaterThan(options.TargetPort, 65535);
        _options = options;
        _context = context;
        _logger = context.LoggerFactory.CreateLogger<StdioTunnel>();
        _target = ForwardAddress.Format(options.TargetHost, options.TargetPort);
    }

    /// <inheritdoc/>
    public string Kind => "stdio";

    /// <inheritdoc/>
    public string Endpoint => "stdin";

    /// <inheritdoc/>
    public ProxyServiceCounters Counters { get; } = new();

    /// <summary>Reads a <c>[STDIOTunnel]</c> section: <c>Target = host:port</c> (required).</summary>
    /// <exception cref="ProxyConfigException">The key is missing, malformed or unknown (the message names the line).</exception>
    public static StdioTunnel FromSection(ConfigSection section, ProxyContext context)
    {
        ArgumentNullException.ThrowIfNull(section);
        section.RejectUnknownKeys("Target");
        var (host, port) = ForwardAddress.RequireTarget(section);
        return new StdioTunnel(new StdioTunnelOptions { TargetHost = host, TargetPort = port }, context);
    }

    /// <summary>Nothing to bind; checks that it is started once.</summary>
    public void Start()
    {
        if (Interlocked.Exchange(ref _started, 1) != 0)
        {
            throw new InvalidOperationException("The forward is already started.");
        }
    }

    /// <summary>
    /// Connects to the target and relays until the target closes its side, the connection fails or
    /// <paramref name="cancellationToken"/> is cancelled. An unreachable target counts in
    /// <see cref="ProxyServiceCounters.Failed"/> and returns at once.
    /// </summary>
    public async Task RunAsync(CancellationToken cancellationToken)
    {
        if (Volatile.Read(ref _started) == 0)
        {
            throw new InvalidOperationException("Call Start before RunAsync.");
        }

        if (cancellationToken.IsCancellationRequested)
        {
            return;
        }

        var input = _options.Input ?? Console.OpenStandardInput();
        var output = _options.Output ?? Console.OpenStandardOutput();
        ForwardLog.Serving(_logger, Kind, Endpoint, _target);
        Counters.OnAccepted();
        Stream? server = null;
        try
        {
            try
            {
                server = await _context.Network.ConnectAsync(_options.TargetHost, _options.TargetPort, cancellationToken).ConfigureAwait(false);
            }
            catch (Exception e) when (e is SocketException or IOException or InvalidOperationException or ObjectDisposedException)
            {
                Counters.OnFailed();
                ForwardLog.TargetFailed(_logger, Kind, Endpoint, _target, ForwardLog.Describe(e));
                return;
            }

            using var stop = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
            var bufferSize = _context.Relay.BufferSize;
            var up = CopyAsync(input, server, bufferSize, halfClose: true, stop.Token);
            var down = CopyAsync(server, output, bufferSize, halfClose: false, stop.Token);

            // The target's side decides the end: its FIN (or a reset) means the session is over, whatever stdin does.
            // Standard input cannot be interrupted on every platform, so the stdin copy is abandoned, not awaited.
            var downBytes = await down.ConfigureAwait(false);
            await stop.CancelAsync().ConfigureAwait(false);
            var upBytes = up.IsCompletedSuccessfully ? up.Result : 0;
            Counters.AddBytes(upBytes, downBytes);
            ForwardLog.RelayEnded(_logger, Kind, Endpoint, "stdin", _target, RelayEnd.Closed, upBytes, downBytes);
            cancellationToken.ThrowIfCancellationRequested();
        }
        catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
        {
        }
        finally
        {
            if (server is not null)
            {
                await server.DisposeAsync().ConfigureAwait(false);
            }

            Counters.OnClosed();
        }
    }

    /// <summary>Copies until end of stream or an error; returns the bytes copied. At end of input half-closes <paramref name="to"/> when asked.</summary>
    private static async Task<long> CopyAsync(Stream from, Stream to, int bufferSize, bool halfClose, CancellationToken cancellationToken)
    {
        var buffer = ArrayPool<byte>.Shared.Rent(bufferSize);
        long bytes = 0;
        try
        {
            while (true)
            {
                var n = await from.ReadAsync(buffer.AsMemory(0, bufferSize), cancellationToken).ConfigureAwait(false);
                if (n == 0)
                {
                    if (halfClose)
                    {
                        StreamRelay.ShutdownWrite(to);
                    }

                    return bytes;
                }

                await to.WriteAsync(buffer.AsMemory(0, n), cancellationToken).ConfigureAwait(false);
                await to.FlushAsync(cancellationToken).ConfigureAwait(false);
                bytes += n;
            }
        }
        catch (Exception e) when (e is IOException or SocketException or ObjectDisposedException or OperationCanceledException or InvalidOperationException)
        {
            return bytes;
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(buffer);
        }
    }
}
