using System.Net;
using System.Security.Cryptography;

namespace Sharptun.NetStack.Tests;

/// <summary>TCP through the whole stack (IP layer routing protocol 6 to the TCP layer), two stacks back to back.</summary>
public sealed class TwoStackTcpTests
{
    [Theory]
    [InlineData("10.0.0.2")]
    [InlineData("fd00::2")]
    public void Tcp_ConnectListenTransfer_ThroughIpLayer(string server)
    {
        using var pair = new StackPair();
        using var listener = pair.B.ListenTcp(new IPEndPoint(IPAddress.Any.AddressFamily == IPAddress.Parse(server).AddressFamily ? IPAddress.Any : IPAddress.IPv6Any, 8080));
        var accept = listener.AcceptAsync().AsTask();
        var connect = pair.A.ConnectTcpAsync(new IPEndPoint(IPAddress.Parse(server), 8080)).AsTask();
        using var client = pair.Run(connect);
        using var accepted = pair.Run(accept);
        Assert.Equal(client.LocalEndPoint, accepted.RemoteEndPoint);

        var data = new byte[200_000];
        new Random(9).NextBytes(data);
        var received = pair.SendAndClose(client, accepted, data);
        Assert.Equal(SHA256.HashData(data), SHA256.HashData(received));
    }

    [Fact]
    public void Tcp_PromiscuousWildcardListener_AcceptsConnectionToAnyAddress()
    {
        using var pair = new StackPair(o => o.Promiscuous = true);
        using var listener = pair.B.ListenTcp(new IPEndPoint(IPAddress.IPv6Any, 0));
        var accept = listener.AcceptAsync().AsTask();
        var far = new IPEndPoint(IPAddress.Parse("93.184.216.34"), 443);
        using var client = pair.Run(pair.A.ConnectTcpAsync(far).AsTask());
        using var accepted = pair.Run(accept);
        Assert.Equal(far, accepted.LocalEndPoint);   // the original destination, as a tun2socks gateway needs
        Assert.Equal(client.LocalEndPoint, accepted.RemoteEndPoint);
    }

    [Fact]
    public async Task Dispose_StackWithOpenConnection_FailsPendingRead()
    {
        var pair = new StackPair();
        using var listener = pair.B.ListenTcp(new IPEndPoint(IPAddress.Any, 8080));
        var accept = listener.AcceptAsync().AsTask();
        using var client = pair.Run(pair.A.ConnectTcpAsync(new IPEndPoint(IPAddress.Parse("10.0.0.2"), 8080)).AsTask());
        using var accepted = pair.Run(accept);
        var read = client.ReadAsync(new byte[10]).AsTask();
        pair.A.Dispose();
        await Assert.ThrowsAnyAsync<Exception>(() => read.WaitAsync(TimeSpan.FromSeconds(5)));
        pair.B.Dispose();
    }
}
