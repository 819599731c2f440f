using System.Net;
using Sharptun.Testing;
using Sharptun.Testing.Dns;

namespace Sharptun.NetStack.Tests.Dns;

/// <summary>
/// The setting <see cref="DnsResolverTests"/> and <see cref="DnsResolverEdnsTests"/> share: two stacks joined by
/// <see cref="LinkedStacks"/> on real time, the resolver on <see cref="LinkedStacks.A"/>, <see cref="DnsTestServer"/>s
/// on <see cref="LinkedStacks.B"/> at <see cref="ServerV4"/> or <see cref="ServerV6"/>; each test gets its own
/// (xUnit makes a class instance per test) and everything is disposed after it.
/// </summary>
public abstract class DnsResolverTestBed : IDisposable
{
    /// <summary>Stack B's IPv4 address.</summary>
    protected static readonly IPAddress ServerV4 = IPAddress.Parse("10.0.0.2");

    /// <summary>Stack B's IPv6 address.</summary>
    protected static readonly IPAddress ServerV6 = IPAddress.Parse("fd00::2");

    private readonly List<IDisposable> _servers = [];

    /// <summary>The two stacks: the resolver's (A) and the servers' (B).</summary>
    protected LinkedStacks Stacks { get; } = new();

    public void Dispose()
    {
        foreach (var server in _servers)
        {
            server.Dispose();
        }

        Stacks.Dispose();
        GC.SuppressFinalize(this);
    }

    /// <summary>A DNS server on stack B at <paramref name="address"/>, disposed with the test.</summary>
    protected DnsTestServer Server(IPAddress address)
    {
        var server = new DnsTestServer(Stacks.B, address);
        _servers.Add(server);
        return server;
    }
}
