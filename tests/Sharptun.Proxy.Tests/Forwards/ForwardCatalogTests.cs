using Sharptun.Proxy.Config;
using Sharptun.Proxy.Forwards;

namespace Sharptun.Proxy.Tests.Forwards;

public sealed class ForwardCatalogTests
{
    [Fact]
    public void WireproxyForwardSections_BuildTheirServices_NamesCaseInsensitive()
    {
        var file = ConfigFile.Parse(
            """
            [tcpclienttunnel]
            BindAddress = 127.0.0.1:25565
            Target = play.cubecraft.net:25565

            [TCPServerTunnel]
            ListenPort = 3422
            Target = localhost:25545

            [UDPProxyTunnel]
            BindAddress = 127.0.0.1:5353
            Target = 10.0.0.1:53
            InactivityTimeout = 30

            [STDIOTunnel]
            Target = ssh.myserver.net:22

            [sni]
            BindAddress = 127.0.0.1:443
            """,
            "forwards.conf",
            _ => null);
        var context = new ProxyContext(new LoopbackNetwork());
        var services = file.Sections.Where(s => s.Name.Length > 0).Select(s => ProxyServiceCatalog.Create(s, context)).ToList();

        Assert.Collection(
            services,
            s => Assert.IsType<TcpClientTunnel>(s),
            s => Assert.IsType<TcpServerTunnel>(s),
            s => Assert.IsType<UdpProxyTunnel>(s),
            s => Assert.IsType<StdioTunnel>(s),
            s => Assert.IsType<SniProxy>(s));
        Assert.Equal(["tcp-client", "tcp-server", "udp", "stdio", "sni"], services.Select(s => s.Kind));
    }
}
