using Sharptun.Proxy.Config;

namespace Sharptun.Proxy.Tests;

/// <summary>
/// A front-end for host and config tests: records what the host does with it. Its section's keys decide its
/// behaviour: <c>FailStart = yes</c> makes <see cref="Start"/> throw a bind error, <c>FailRun = yes</c> makes
/// <see cref="RunAsync"/> fail after a moment.
/// </summary>
internal sealed class FakeProxyService(ConfigSection section, ProxyContext context) : IProxyService, IDisposable
{
    private int _disposals;

    private int _starts;
    private int _runs;

    public ConfigSection Section { get; } = section;

    public ProxyContext Context { get; } = context;

    public string Kind => "fake";

    public string Endpoint => "fake " + (Section.Get("Name") ?? "?");

    public ProxyServiceCounters Counters { get; } = new();

    public int Starts => Volatile.Read(ref _starts);

    public int Runs => Volatile.Read(ref _runs);

    /// <summary>True once RunAsync returned after its token was cancelled (its "listener" closed).</summary>
    public bool Stopped { get; private set; }

    public int Disposals => Volatile.Read(ref _disposals);

    public void Dispose() => Interlocked.Increment(ref _disposals);

    public void Start()
    {
        Interlocked.Increment(ref _starts);
        if (Section.Get("FailStart") == "yes")
        {
            throw new System.Net.Sockets.SocketException((int)System.Net.Sockets.SocketError.AddressAlreadyInUse);
        }
    }

    public async Task RunAsync(CancellationToken cancellationToken)
    {
        Interlocked.Increment(ref _runs);
        if (Section.Get("FailRun") == "yes")
        {
            await Task.Delay(50, CancellationToken.None);
            throw new IOException("the fake front-end broke");
        }

        try
        {
            await Task.Delay(Timeout.Infinite, cancellationToken);
        }
        catch (OperationCanceledException)
        {
            Stopped = true;
        }
    }

    /// <summary>Every fake built, in order (tests filter by their own section names).</summary>
    public static List<FakeProxyService> Built { get; } = [];

    /// <summary>Registers the fake under <paramref name="names"/>; a name a real front-end already has keeps the real one.</summary>
    public static void EnsureRegistered(params string[] names)
    {
        foreach (var name in names)
        {
            if (!ProxyServiceCatalog.IsRegistered(name))
            {
                ProxyServiceCatalog.Register(name, Create);
            }
        }
    }

    public static IProxyService Create(ConfigSection section, ProxyContext context)
    {
        var service = new FakeProxyService(section, context);
        lock (Built)
        {
            Built.Add(service);
        }

        return service;
    }
}
