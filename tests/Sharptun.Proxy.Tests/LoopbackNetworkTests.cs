using System.Net;
using System.Net.Sockets;

namespace Sharptun.Proxy.Tests;

/// <summary>The test network itself behaves as the seam promises (so front-end tests on it mean something).</summary>
public sealed class LoopbackNetworkTests
{
    [Fact]
    public async Task UnknownName_IsHostNotFound_RefusedPort_IsConnectionRefused()
    {
        var network = new LoopbackNetwork();
        var notFound = await Assert.ThrowsAsync<SocketException>(async () => await network.ConnectAsync("nowhere.test", 80, default));
        Assert.Equal(SocketError.HostNotFound, notFound.SocketErrorCode);

        using var probe = new TcpListener(IPAddress.Loopback, 0);
        probe.Start();
        var port = ((IPEndPoint)probe.LocalEndpoint).Port;
        probe.Stop();
        var refused = await Assert.ThrowsAsync<SocketException>(async () => await network.ConnectAsync("localhost.test", port, default));
        Assert.Equal(SocketError.ConnectionRefused, refused.SocketErrorCode);
    }
}
