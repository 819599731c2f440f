using System.Buffers.Binary;
using System.Net;
using System.Net.Sockets;
using Sharptun.Gateway;
using Sharptun.Protocol;

namespace Sharptun.Gateway.Tests;

/// <summary>
/// DNS through a gateway, in process: a client tunnel whose config says <c>DNS = </c>the gateway's address resolves
/// through the gateway's responder (EDNS(0) answers over UDP, TC then TCP for the biggest), and raw DNS over TCP to
/// the gateway (several queries per connection, idle timeout). The gateway's host resolver is a stub.
/// </summary>
public sealed class GatewayDnsTests
{
    private static readonly IPAddress GatewayAddress = GatewayLab.GatewayAddress;
    private static readonly TimeSpan Limit = TimeSpan.FromSeconds(30);

    [Fact]
    public async Task ClientResolver_ThroughGateway_LargeAnswerOverUdpWithEdns_LargerOneTruncatedThenTcp_ThenConnects()
    {
        using var host = new TcpListener(IPAddress.Loopback, 0);
        host.Start();
        await using var lab = await StartAsync();
        using var cts = new CancellationTokenSource(Limit);

        // 64 A records (the responder's cap): about 1 KB, over UDP thanks to EDNS; one DNS query
        var v4 = await lab.Client.ResolveAsync("many.test", AddressFamily.InterNetwork, cts.Token);
        Assert.Equal(DnsResponderEdnsTests.ManyV4[..DnsResponder.MaxAnswers], v4);
        Assert.Equal(1, lab.Gateway.Counters.Total.DnsQueries);

        // 60 AAAA records do not fit 1232 octets: TC over UDP, then the whole answer over TCP: two queries
        var v6 = await lab.Client.ResolveAsync("many.test", AddressFamily.InterNetworkV6, cts.Token);
        Assert.Equal(DnsResponderEdnsTests.ManyV6, v6);
        Assert.Equal(3, lab.Gateway.Counters.Total.DnsQueries);

        // a name through the gateway's DNS, then a connection to it through the gateway (11.0.0.1 is mapped to loopback)
        var accept = host.AcceptSocketAsync(cts.Token).AsTask();
        await using var stream = await lab.Client.ConnectAsync("one.test", ((IPEndPoint)host.LocalEndpoint).Port, cts.Token);
        using var accepted = await accept;
        await stream.WriteAsync("hi"u8.ToArray(), cts.Token);
        var buffer = new byte[2];
        Assert.Equal(2, await accepted.ReceiveAsync(buffer, cts.Token));
    }

    [Fact]
    public async Task DnsOverTcp_SeveralQueriesOnOneConnection_ThenClosedWhenIdle()
    {
        await using var lab = await StartAsync(idle: TimeSpan.FromSeconds(1));
        using var cts = new CancellationTokenSource(Limit);
        await using var tcp = await lab.Client.ConnectAsync(new IPEndPoint(GatewayAddress, 53), cts.Token);

        // two queries written back to back (RFC 7766 §6.2.1.1 pipelining), then a third after the answers
        byte[] queries = [.. Frame(DnsResponderEdnsTests.Edns(DnsResponderTests.Query(0x0101, "many.test", 28), 1232)), .. Frame(DnsResponderTests.Query(0x0102, "one.test", 1))];
        await tcp.WriteAsync(queries, cts.Token);
        var first = await ReadFramedAsync(tcp, cts.Token);
        Assert.Equal((0x0101, 60, 0), (BinaryPrimitives.ReadUInt16BigEndian(first), BinaryPrimitives.ReadUInt16BigEndian(first.AsSpan(6)), first[2] & 0x02));
        var second = await ReadFramedAsync(tcp, cts.Token);
        Assert.Equal((0x0102, 1), (BinaryPrimitives.ReadUInt16BigEndian(second), BinaryPrimitives.ReadUInt16BigEndian(second.AsSpan(6))));
        // The gateway's idle time starts no earlier than its read of this query, so no earlier than this write: timed
        // from here, the bound below holds however long the answer takes to reach us (CI measured an answer that
        // arrived about 0.8 s late on a loaded machine, and then the close 0.2 s after it).
        var started = DateTime.UtcNow;
        await tcp.WriteAsync(Frame(DnsResponderTests.Query(0x0103, "missing.test", 1)), cts.Token);
        var third = await ReadFramedAsync(tcp, cts.Token);
        Assert.Equal((0x0103, 3), (BinaryPrimitives.ReadUInt16BigEndian(third), third[3] & 0xF));
        Assert.Equal(3, lab.Gateway.Counters.Total.DnsQueries);

        // then silence: the gateway closes the connection after its idle timeout (FIN: end of stream)
        var read = await tcp.ReadAsync(new byte[16], cts.Token);
        Assert.Equal(0, read);
        Assert.True(DateTime.UtcNow - started >= TimeSpan.FromMilliseconds(800), $"closed after {DateTime.UtcNow - started}");
    }

    [Fact]
    public async Task DnsOverTcp_CutQuery_ConnectionEnds_GatewayStillAnswers()
    {
        await using var lab = await StartAsync(idle: TimeSpan.FromSeconds(1));
        using var cts = new CancellationTokenSource(Limit);
        await using (var tcp = await lab.Client.ConnectAsync(new IPEndPoint(GatewayAddress, 53), cts.Token))
        {
            // a length prefix promising more than ever comes: the idle timeout ends it
            await tcp.WriteAsync(new byte[] { 0x01, 0x00, 1, 2, 3 }, cts.Token);
            try
            {
                Assert.Equal(0, await tcp.ReadAsync(new byte[16], cts.Token));
            }
            catch (IOException)
            {
                // or a reset
            }
        }

        await using var again = await lab.Client.ConnectAsync(new IPEndPoint(GatewayAddress, 53), cts.Token);
        await again.WriteAsync(Frame(DnsResponderTests.Query(0x0201, "one.test", 1)), cts.Token);
        Assert.Equal(0x0201, BinaryPrimitives.ReadUInt16BigEndian(await ReadFramedAsync(again, cts.Token)));
    }

    private static byte[] Frame(byte[] message)
    {
        var framed = new byte[2 + message.Length];
        BinaryPrimitives.WriteUInt16BigEndian(framed, (ushort)message.Length);
        message.CopyTo(framed, 2);
        return framed;
    }

    private static async Task<byte[]> ReadFramedAsync(Stream stream, CancellationToken cancellationToken)
    {
        var length = new byte[2];
        await stream.ReadExactlyAsync(length, cancellationToken);
        var message = new byte[BinaryPrimitives.ReadUInt16BigEndian(length)];
        await stream.ReadExactlyAsync(message, cancellationToken);
        return message;
    }

    private static Task<GatewayLab> StartAsync(TimeSpan? idle = null) =>
        GatewayLab.StartAsync(
            "Allow = 11.0.0.0/24",
            o =>
            {
                o.DnsResolve = DnsResponderEdnsTests.ResolveAsync;
                o.DnsTcpIdleTimeout = idle ?? TimeSpan.FromSeconds(10);
            },
            dualStack: true,
            useGatewayDns: true);
}
