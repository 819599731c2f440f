using System.Buffers.Binary;
using System.Net;
using System.Net.Sockets;
using Sharptun.Gateway;

namespace Sharptun.Gateway.Tests;

public sealed class DnsResponderTests
{
    private static readonly DnsResponder Responder = new(TimeSpan.FromSeconds(5))
    {
        Resolve = (name, family, _) => name switch
        {
            "example.test" => Task.FromResult(new[] { IPAddress.Parse("192.0.2.1"), IPAddress.Parse("2001:db8::1"), IPAddress.Parse("192.0.2.2") }),
            "slow.test" => NeverAsync(_),
            _ => Task.FromException<IPAddress[]>(new SocketException((int)SocketError.HostNotFound)),
        },
    };

    [Fact]
    public async Task A_Query_GetsTheHostAddressesOfThatFamily()
    {
        var response = await Responder.AnswerAsync(Query(0x1234, "example.test", 1), udp: true, CancellationToken.None);
        Assert.NotNull(response);
        Assert.Equal(0x1234, BinaryPrimitives.ReadUInt16BigEndian(response));
        Assert.Equal(0x81, response[2]);            // QR, RD copied
        Assert.Equal(0x80, response[3]);            // RA, NOERROR
        Assert.Equal(1, BinaryPrimitives.ReadUInt16BigEndian(response.AsSpan(4)));
        Assert.Equal(2, BinaryPrimitives.ReadUInt16BigEndian(response.AsSpan(6)));
        var question = Query(0x1234, "example.test", 1).Length;
        Assert.Equal(question + (2 * 16), response.Length);
        Assert.Equal([192, 0, 2, 1], response.AsSpan(question + 12, 4).ToArray());
        Assert.Equal([192, 0, 2, 2], response.AsSpan(question + 16 + 12, 4).ToArray());
    }

    [Fact]
    public async Task Aaaa_Query_GetsIpv6Only()
    {
        var response = await Responder.AnswerAsync(Query(7, "example.test", 28), udp: true, CancellationToken.None);
        Assert.Equal(1, BinaryPrimitives.ReadUInt16BigEndian(response.AsSpan(6)));
        Assert.Equal(IPAddress.Parse("2001:db8::1"), new IPAddress(response.AsSpan(response!.Length - 16)));
    }

    [Theory]
    [InlineData("missing.test", 1, 3)]   // NXDOMAIN
    [InlineData("example.test", 15, 4)]  // MX: NOTIMP
    [InlineData("example.test", 255, 4)] // ANY: NOTIMP
    public async Task Rcodes(string name, ushort type, int rcode)
    {
        var response = await Responder.AnswerAsync(Query(9, name, type), udp: true, CancellationToken.None);
        Assert.Equal(rcode, response![3] & 0xF);
        Assert.Equal(0, BinaryPrimitives.ReadUInt16BigEndian(response.AsSpan(6)));
    }

    [Fact]
    public async Task Malformed_GetsFormErr_AResponseOrRunt_GetsNothing_OtherOpcode_NotImp()
    {
        var query = Query(1, "example.test", 1);
        var truncated = query[..^3];
        Assert.Equal(1, (await Responder.AnswerAsync(truncated, true, CancellationToken.None))![3] & 0xF);
        var pointer = (byte[])query.Clone();
        pointer[12] = 0xC0;
        Assert.Equal(1, (await Responder.AnswerAsync(pointer, true, CancellationToken.None))![3] & 0xF);
        var response = (byte[])query.Clone();
        response[2] |= 0x80;
        Assert.Null(await Responder.AnswerAsync(response, true, CancellationToken.None));
        Assert.Null(await Responder.AnswerAsync(query[..11], true, CancellationToken.None));
        var notify = (byte[])query.Clone();
        notify[2] = 4 << 3;
        Assert.Equal(4, (await Responder.AnswerAsync(notify, true, CancellationToken.None))![3] & 0xF);
    }

    [Fact]
    public async Task SlowResolver_GetsServFail_AfterTheTimeout()
    {
        var responder = new DnsResponder(TimeSpan.FromMilliseconds(200)) { Resolve = Responder.Resolve };
        var response = await responder.AnswerAsync(Query(2, "slow.test", 1), udp: true, CancellationToken.None);
        Assert.Equal(2, response![3] & 0xF);
    }

    private static async Task<IPAddress[]> NeverAsync(CancellationToken cancellationToken)
    {
        await Task.Delay(Timeout.Infinite, cancellationToken);
        return [];
    }

    internal static byte[] Query(ushort id, string name, ushort type)
    {
        var labels = name.Split('.');
        var message = new byte[12 + labels.Sum(l => l.Length + 1) + 1 + 4];
        BinaryPrimitives.WriteUInt16BigEndian(message, id);
        message[2] = 0x01; // RD
        BinaryPrimitives.WriteUInt16BigEndian(message.AsSpan(4), 1);
        var at = 12;
        foreach (var label in labels)
        {
            message[at++] = (byte)label.Length;
            foreach (var c in label)
            {
                message[at++] = (byte)c;
            }
        }

        message[at++] = 0;
        BinaryPrimitives.WriteUInt16BigEndian(message.AsSpan(at), type);
        BinaryPrimitives.WriteUInt16BigEndian(message.AsSpan(at + 2), 1);
        return message;
    }
}
