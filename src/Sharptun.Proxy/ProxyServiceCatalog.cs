using System.Collections.Concurrent;
using Sharptun.Proxy.Config;

namespace Sharptun.Proxy;

/// <summary>
/// The front-end sections <c>sharptun proxy</c> knows: a section name (case-insensitive, as wireproxy's
/// <c>[Socks5]</c>, <c>[http]</c>, <c>[TCPClientTunnel]</c>...) maps to the factory that builds its
/// <see cref="IProxyService"/>. A section of a config file that is neither a WireGuard section nor registered here is
/// an error (<c>unknown section [X]</c> with file and line).
/// </summary>
/// <remarks>
/// A factory reads and validates its section (throwing <see cref="ProxyConfigException"/> through the section's
/// accessors, so errors name file and line) and must not bind, connect or start anything: <c>sharptun proxy -n</c>
/// builds every service over a network that refuses all use, to check a config without running it.
/// <see cref="IProxyService.Start"/> binds.
/// </remarks>
public static class ProxyServiceCatalog
{
    // The built-in front-ends: one line per section, added by each front-end (no reflection, so trimming keeps them).
    private static readonly ConcurrentDictionary<string, Func<ConfigSection, ProxyContext, IProxyService>> Factories = new(
        new Dictionary<string, Func<ConfigSection, ProxyContext, IProxyService>>(StringComparer.OrdinalIgnoreCase)
        {
            ["http"] = Http.HttpProxyServer.FromSection,
            [Forwards.TcpClientTunnel.SectionName] = Forwards.TcpClientTunnel.FromSection,
            [Forwards.TcpServerTunnel.SectionName] = Forwards.TcpServerTunnel.FromSection,
            [Forwards.UdpProxyTunnel.SectionName] = Forwards.UdpProxyTunnel.FromSection,
            [Forwards.StdioTunnel.SectionName] = Forwards.StdioTunnel.FromSection,
            [Forwards.SniProxy.SectionName] = Forwards.SniProxy.FromSection,
            ["Socks5"] = Socks5.Socks5Server.FromSection,
        },
        StringComparer.OrdinalIgnoreCase);

    /// <summary>The registered section names.</summary>
    public static IReadOnlyCollection<string> Names => [.. Factories.Keys.Order(StringComparer.OrdinalIgnoreCase)];

    /// <summary>Registers (or replaces) the factory for sections named <paramref name="name"/>; for tests and embedders.</summary>
    public static void Register(string name, Func<ConfigSection, ProxyContext, IProxyService> factory)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(name);
        ArgumentNullException.ThrowIfNull(factory);
        Factories[name] = factory;
    }

    /// <summary>True when sections named <paramref name="name"/> have a factory.</summary>
    public static bool IsRegistered(string name) => Factories.ContainsKey(name);

    /// <summary>Builds the service for <paramref name="section"/>.</summary>
    /// <exception cref="ProxyConfigException">No factory for the section (<c>unknown section [X]</c>), or the factory rejected it.</exception>
    public static IProxyService Create(ConfigSection section, ProxyContext context)
    {
        ArgumentNullException.ThrowIfNull(section);
        ArgumentNullException.ThrowIfNull(context);
        if (!Factories.TryGetValue(section.Name, out var factory))
        {
            throw UnknownSection(section);
        }

        return factory(section, context);
    }

    internal static ProxyConfigException UnknownSection(ConfigSection section)
    {
        var known = string.Join(", ", new[] { "Interface", "Peer", "Resolve" }.Concat(Names).Select(n => "[" + n + "]"));
        return section.Error(section.Line, $"unknown section [{section.Name}] (known: {known})");
    }
}
