using Microsoft.Extensions.Logging;
using Sharptun.Device.Pipeline;
using System.Net.Sockets;
using System.Runtime.Versioning;
using Sharptun.Device;
using Sharptun.Device.Uapi;
using Sharptun.Transport.Linux;

namespace Sharptun.Cli.Daemon;

/// <summary>
/// The foreground half of the daemon (wireguard-go's main.go after the fork): creates the TUN and the UAPI
/// socket, hosts the device, and runs until SIGTERM/SIGINT, until the interface is deleted (seen on the TUN descriptor,
/// so an interface moved to another network namespace keeps the daemon running), until the UAPI socket file is removed,
/// or until a pipeline stage of the device dies (exit code 1); then removes its socket and closes the TUN.
/// </summary>
[SupportedOSPlatform("linux")]
internal sealed class DaemonHost : IDisposable
{
    /// <summary>MTU of a new TUN (wireguard-go's DefaultMTU); wg-quick sets the configured one afterwards.</summary>
    public const int DefaultMtu = Sharptun.Device.Config.WgInterfaceConfig.DefaultMtu;

    /// <summary>How often the host checks that its interface and socket file still exist.</summary>
    private static readonly TimeSpan WatchInterval = TimeSpan.FromMilliseconds(250);

    private readonly LinuxTun _tun;
    private readonly IUapiDevice _device;
    private readonly UapiServer _uapi;
    private readonly ILogger _log;

    private DaemonHost(LinuxTun tun, IUapiDevice device, UapiServer uapi, ILogger log)
    {
        _tun = tun;
        _device = device;
        _uapi = uapi;
        _log = log;
    }

    /// <summary>The interface name the kernel gave the TUN.</summary>
    public string InterfaceName => _tun.Name;

    /// <summary>The UAPI socket path.</summary>
    public string SocketPath => _uapi.SocketPath;

    /// <summary>Environment variable: the number of crypto worker threads (<see cref="WireGuardDeviceOptions.CryptoWorkers"/>; 0 = the TUN reader and UDP receiver do the crypto themselves).</summary>
    public const string CryptoWorkersVariable = "SHARPTUN_CRYPTO_WORKERS";

    /// <summary>Environment variable: the per-peer queue delay target in milliseconds (CoDel, <see cref="WireGuardDeviceOptions.QueueDelayTarget"/>); 0 turns it off.</summary>
    public const string QueueDelayVariable = "SHARPTUN_QUEUE_DELAY_MS";

    /// <summary>Applies <see cref="QueueDelayVariable"/> when set and valid (a warning and the default otherwise); logs the target in use once.</summary>
    internal static WireGuardDeviceOptions WithQueueDelayFromEnvironment(WireGuardDeviceOptions options, ILogger log)
    {
        if (Environment.GetEnvironmentVariable(QueueDelayVariable) is { Length: > 0 } text)
        {
            if (TryParseQueueDelay(text, out var target))
            {
                options = options with { QueueDelayTarget = target };
            }
            else
            {
                Log.QueueDelayInvalid(log, QueueDelayVariable, text);
            }
        }

        Log.QueueDelayChosen(log, options.QueueDelayTarget > TimeSpan.Zero
            ? $"{options.QueueDelayTarget.TotalMilliseconds} ms (interval {options.QueueDelayInterval.TotalMilliseconds} ms)"
            : "off");
        return options;
    }

    /// <summary>Parses <see cref="QueueDelayVariable"/>'s value: milliseconds from 0 (off) to 1000, decimals allowed.</summary>
    internal static bool TryParseQueueDelay(string text, out TimeSpan target)
    {
        target = default;
        if (!double.TryParse(text, System.Globalization.NumberStyles.Float, System.Globalization.CultureInfo.InvariantCulture, out var ms)
            || !double.IsFinite(ms) || ms is < 0 or > 1000)
        {
            return false;
        }

        target = TimeSpan.FromMilliseconds(ms);
        return true;
    }

    /// <summary>Parses <see cref="CryptoWorkersVariable"/>'s value: a plain decimal number of threads from 0 to 256.</summary>
    internal static bool TryParseCryptoWorkers(string text, out int count) =>
        int.TryParse(text, System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out count) && count <= 256;

    /// <summary>The device behind the UAPI socket: the WireGuard device on the TUN and a Linux UDP bind (random port until listen_port is set).</summary>
    internal static IUapiDevice CreateDevice(LinuxTun tun, ILoggerFactory loggers, Sharptun.Transport.IDatagramBindFactory? binds = null)
    {
        var log = loggers.CreateLogger(Log.Category);
        var options = DeviceOptionsForTests ?? new WireGuardDeviceOptions();
        if (options.Clock is { } clock)
        {
            Log.SpedUpClock(log, clock.Scale);
        }

        options = WithQueueDelayFromEnvironment(options, log);
        if (Environment.GetEnvironmentVariable(CryptoWorkersVariable) is { Length: > 0 } workers)
        {
            if (TryParseCryptoWorkers(workers, out var count))
            {
                options = options with { CryptoWorkers = count };
            }
            else
            {
                Log.CryptoWorkersInvalid(log, CryptoWorkersVariable, workers);
            }
        }

        Log.CryptoWorkersChosen(log, options.CryptoWorkers == 0 ? "none (the readers encrypt and decrypt)" : options.CryptoWorkers.ToString(System.Globalization.CultureInfo.InvariantCulture));

        binds ??= Sharptun.Transport.DatagramBinds.Default;
        Log.UdpBindChosen(log, binds == Sharptun.Transport.SocketUdpBind.Factory
            ? "portable (System.Net.Sockets)"
            : binds == LinuxUdpBind.Factory || binds == LinuxUdpBind.GetFactory(receiveOffload: false) ? "Linux (recvmmsg/sendmmsg)" : binds.GetType().Name);
        return new WireGuardDevice(tun, new OffloadLoggingBindFactory(binds, log), options, loggers.CreateLogger<WireGuardDevice>());
    }

    /// <summary>
    /// Tests only: device options (e.g. a sped-up <see cref="DeviceClock"/>) for the devices this process creates. Only
    /// code inside the process can set it (tests/Sharptun.TestDaemon does); the shipped daemon takes no time control
    /// from its environment or command line, so nothing outside can stretch key lifetimes past Reject-After-Time.
    /// </summary>
    internal static WireGuardDeviceOptions? DeviceOptionsForTests { get; set; }

    /// <summary>Environment variable that turns the TUN's offloads (TSO/USO on read, GRO on write) off with <c>0</c>.</summary>
    internal const string TunOffloadVariable = "SHARPTUN_TUN_OFFLOAD";

    /// <summary>Offloads are on unless <see cref="TunOffloadVariable"/> says 0, false, off or no.</summary>
    internal static bool OffloadEnabled(string? value) =>
        value is null || !(value.Trim() is "0" || value.Trim().Equals("false", StringComparison.OrdinalIgnoreCase)
            || value.Trim().Equals("off", StringComparison.OrdinalIgnoreCase) || value.Trim().Equals("no", StringComparison.OrdinalIgnoreCase));

    /// <summary>
    /// Creates the TUN (or adopts <c>WG_TUN_FD</c>) and the UAPI socket (or adopts <c>WG_UAPI_FD</c>).
    /// Throws <see cref="DaemonStartException"/> with wireguard-go's wording when either cannot be created.
    /// </summary>
    /// <param name="interfaceName">The interface to create.</param>
    /// <param name="loggers">The daemon's logging: categories <see cref="Log.Category"/>, <see cref="WireGuardDevice"/>'s
    /// and <see cref="UapiServer"/>'s full type names.</param>
    /// <param name="socketDirectory">Where the UAPI socket goes (default /var/run/wireguard).</param>
    /// <param name="binds">Opens the device's UDP binds (default: <see cref="Sharptun.Transport.DatagramBinds.Default"/>).</param>
    /// <param name="tunFd">
    /// <c>--tun-fd</c>: an open TUN descriptor of <paramref name="interfaceName"/> to adopt (checked with ioctl TUNGETIFF: a
    /// descriptor that is not open, not a TUN or of another interface fails with a clear message). Wins over <c>WG_TUN_FD</c>,
    /// which, as in wireguard-go, takes whatever interface its descriptor belongs to.
    /// </param>
    public static DaemonHost Start(string interfaceName, ILoggerFactory loggers, string? socketDirectory = null, Sharptun.Transport.IDatagramBindFactory? binds = null, int? tunFd = null)
    {
        LinuxTun tun;
        var offload = OffloadEnabled(Environment.GetEnvironmentVariable(TunOffloadVariable));
        try
        {
            var inherited = Environment.GetEnvironmentVariable("WG_TUN_FD");
            if (tunFd is { } flagFd)
            {
                tun = LinuxTun.FromFileDescriptor(flagFd, interfaceName, DefaultMtu, offload: offload);
            }
            else if (inherited is not null && int.TryParse(inherited, out var fd))
            {
                tun = LinuxTun.FromFileDescriptor(fd, "", DefaultMtu, offload: offload);
            }
            else
            {
                tun = LinuxTun.Create(interfaceName, DefaultMtu, up: false, offload: offload);
            }
        }
        catch (Exception e) when (e is IOException or ArgumentException or UnauthorizedAccessException)
        {
            throw new DaemonStartException($"Failed to create TUN device: {e.Message}", e);
        }

        var log = loggers.CreateLogger(Log.Category);
        Log.TunOffload(log, offload || tun.HasVirtioHeaders ? tun.OffloadMode : $"off: {TunOffloadVariable}=0");
        var uapiLog = loggers.CreateLogger<UapiServer>();
        IUapiDevice? device = null;
        try
        {
            device = CreateDevice(tun, loggers, binds);
            UapiServer uapi;
            var uapiFd = Environment.GetEnvironmentVariable("WG_UAPI_FD");
            var path = UapiServer.GetSocketPath(tun.Name, socketDirectory);
            if (uapiFd is not null && int.TryParse(uapiFd, out var fd))
            {
                var listener = new Socket(new SafeSocketHandle(fd, ownsHandle: true));
                uapi = UapiServer.FromListeningSocket(listener, path, device, uapiLog);
            }
            else
            {
                uapi = UapiServer.Start(tun.Name, device, uapiLog, socketDirectory: socketDirectory);
            }

            Log.UapiListenerStarted(log);
            return new DaemonHost(tun, device, uapi, log);
        }
        catch (Exception e) when (e is IOException or SocketException or ArgumentException or UnauthorizedAccessException)
        {
            (device as IDisposable)?.Dispose();
            tun.Dispose();
            throw new DaemonStartException($"Failed to listen on uapi socket: {e.Message}", e);
        }
    }

    /// <summary>
    /// Runs until <paramref name="stop"/> fires, the interface is deleted, the socket file is deleted, or the device
    /// stops on its own. Returns the process exit code: 0 for those clean stops, 1 (with an error logged) when a
    /// pipeline stage of the device died - a daemon that no longer moves packets must not look alive.
    /// </summary>
    public async Task<int> RunAsync(CancellationToken stop)
    {
        Log.DeviceStarted(_log);
        var completion = (_device as WireGuardDevice)?.Completion ?? Task.Delay(Timeout.Infinite, CancellationToken.None);
        try
        {
            while (!stop.IsCancellationRequested)
            {
                if (completion.IsFaulted)
                {
                    Log.DeviceFailed(_log, completion.Exception?.InnerException?.Message);
                    return 1;
                }

                // The TUN descriptor tells when the interface is deleted, wherever it lives: an interface moved into
                // another network namespace (the wireguard.com/netns container pattern) is not missing.
                if (completion.IsCompleted || _tun.ProbeClosed())
                {
                    Log.InterfaceClosed(_log);
                    return 0;
                }

                if (!_uapi.SocketFileExists)
                {
                    Log.SocketFileRemoved(_log);
                    return 0;
                }

                if (_uapi.Completion.IsCompleted)
                {
                    Log.UapiListenerStopped(_log);
                    return 0;
                }

                await Task.WhenAny(Task.Delay(WatchInterval, stop), completion).ConfigureAwait(false);
            }
        }
        finally
        {
            Log.ShuttingDown(_log);
        }

        return 0; // SIGTERM / SIGINT
    }

    /// <summary>Removes the UAPI socket, closes the device and the TUN.</summary>
    public void Dispose()
    {
        _uapi.Dispose();
        (_device as IDisposable)?.Dispose();
        _tun.Dispose();
    }
}

/// <summary>The daemon could not create its TUN or UAPI socket; the message is for the operator.</summary>
internal sealed class DaemonStartException(string message, Exception? inner = null) : Exception(message, inner);
