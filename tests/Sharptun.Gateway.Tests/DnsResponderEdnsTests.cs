using System.Buffers.Binary;
using System.Net;
using System.Net.Sockets;
using Sharptun.Gateway;

namespace Sharptun.Gateway.Tests;

/// <summary>The gateway's DNS responder and EDNS(0) (RFC 6891): OPT in, OPT out, the size limit, TC, bad OPT records.</summary>
public sealed class DnsResponderEdnsTests
{
    internal static readonly IPAddress[] ManyV4 = [.. Enumerable.Range(1, 70).Select(i => IPAddress.Parse($"11.0.0.{i}"))];
    internal static readonly IPAddress[] ManyV6 = [.. Enumerable.Range(1, 60).Select(i => IPAddress.Parse($"2001:db8::{i:x}"))];

    private static readonly DnsResponder Responder = new(TimeSpan.FromSeconds(5)) { Resolve = ResolveAsync };

    internal static Task<IPAddress[]> ResolveAsync(string name, AddressFamily family, CancellationToken cancellationToken) => name switch
    {
        "many.test" => Task.FromResult<IPAddress[]>([.. ManyV4, .. ManyV6]),
        "v4.many.test" => Task.FromResult(ManyV4[..40]),
        "one.test" => Task.FromResult<IPAddress[]>([IPAddress.Parse("11.0.0.1")]),
        _ => Task.FromException<IPAddress[]>(new SocketException((int)SocketError.HostNotFound)),
    };

    [Fact]
    public async Task OptQuery_LargeAnswer_FitsUnder1232_OverUdpWithOurOpt()
    {
        var query = Edns(DnsResponderTests.Query(1, "many.test", 1), payload: 4096);
        var response = (await Responder.AnswerAsync(query, udp: true, CancellationToken.None))!;
        var questionEnd = DnsResponderTests.Query(1, "many.test", 1).Length;
        Assert.Equal(0, response[2] & 0x02); // no TC
        Assert.Equal(DnsResponder.MaxAnswers, Count(response, 6));
        Assert.Equal(1, Count(response, 10));
        Assert.Equal(questionEnd + (DnsResponder.MaxAnswers * 16) + 11, response.Length);
        Assert.InRange(response.Length, 513, DnsResponder.EdnsUdpPayloadSize);
        AssertOpt(response.AsSpan(response.Length - 11), extendedRcode: 0);
    }

    [Fact]
    public async Task AnswerTooBigForTheClientsSize_TcWithNoRecords_ThenWholeOverTcp()
    {
        // AAAA: 60 * 28 octets > 1232 whatever the client offers
        var aaaa = Edns(DnsResponderTests.Query(2, "many.test", 28), payload: 65000);
        var udp = (await Responder.AnswerAsync(aaaa, udp: true, CancellationToken.None))!;
        Assert.Equal(0x02, udp[2] & 0x02);
        Assert.Equal(0, Count(udp, 6));
        Assert.Equal(1, Count(udp, 10));
        Assert.Equal(0, udp[3] & 0xF);
        var tcp = (await Responder.AnswerAsync(aaaa, udp: false, CancellationToken.None))!;
        Assert.Equal(0, tcp[2] & 0x02);
        Assert.Equal(60, Count(tcp, 6));
        Assert.Equal(ManyV6[59], new IPAddress(tcp.AsSpan(tcp.Length - 11 - 16, 16)));

        // A with a 600-octet offer: 64 records do not fit; 40 records without OPT do not fit 512
        var small = (await Responder.AnswerAsync(Edns(DnsResponderTests.Query(3, "many.test", 1), payload: 600), udp: true, CancellationToken.None))!;
        Assert.Equal((0x02, 0), (small[2] & 0x02, Count(small, 6)));
        var plain = (await Responder.AnswerAsync(DnsResponderTests.Query(4, "v4.many.test", 1), udp: true, CancellationToken.None))!;
        Assert.Equal((0x02, 0, 0), (plain[2] & 0x02, Count(plain, 6), Count(plain, 10)));
        var plainTcp = (await Responder.AnswerAsync(DnsResponderTests.Query(4, "v4.many.test", 1), udp: false, CancellationToken.None))!;
        Assert.Equal((0, 40, 0), (plainTcp[2] & 0x02, Count(plainTcp, 6), Count(plainTcp, 10)));
    }

    [Fact]
    public void UdpLimit_FollowsRfc6891()
    {
        Assert.Equal(512, DnsResponder.UdpLimit(-1));   // no OPT: RFC 1035 §4.2.1
        Assert.Equal(512, DnsResponder.UdpLimit(100));  // below 512 counts as 512 (§6.2.5)
        Assert.Equal(800, DnsResponder.UdpLimit(800));
        Assert.Equal(1232, DnsResponder.UdpLimit(4096)); // capped at the flag day value
    }

    [Fact]
    public async Task OptQuery_Errors_CarryOpt_BadVersion_IsBadvers()
    {
        var nx = (await Responder.AnswerAsync(Edns(DnsResponderTests.Query(5, "missing.test", 1), payload: 1232), udp: true, CancellationToken.None))!;
        Assert.Equal(3, nx[3] & 0xF);
        Assert.Equal(1, Count(nx, 10));
        var notImp = (await Responder.AnswerAsync(Edns(DnsResponderTests.Query(6, "one.test", 15), payload: 1232), udp: true, CancellationToken.None))!;
        Assert.Equal(4, notImp[3] & 0xF);
        AssertOpt(notImp.AsSpan(notImp.Length - 11), extendedRcode: 0);

        // EDNS version 1: BADVERS = 16, header RCODE 0 and extended RCODE 1 (RFC 6891 §6.1.3)
        var badVers = (await Responder.AnswerAsync(Edns(DnsResponderTests.Query(7, "one.test", 1), payload: 1232, version: 1), udp: true, CancellationToken.None))!;
        Assert.Equal(0, badVers[3] & 0xF);
        Assert.Equal(0, Count(badVers, 6));
        AssertOpt(badVers.AsSpan(badVers.Length - 11), extendedRcode: 1);
    }

    public static TheoryData<string> BadOpt() =>
    [
        "two OPT records", "OPT owner not root", "option longer than RDATA", "RDLENGTH past end", "additional count overflow",
        "OPT in the answer section", "additional record cut short",
    ];

    [Theory]
    [MemberData(nameof(BadOpt))]
    public async Task BadOptRecord_GetsFormErrWithoutOpt(string what)
    {
        var query = DnsResponderTests.Query(8, "one.test", 1);
        byte[] opt = [0, 0, 41, 0x04, 0xD0, 0, 0, 0, 0, 0, 0];
        byte[] bad = what switch
        {
            "two OPT records" => SetCount([.. query, .. opt, .. opt], 10, 2),
            "OPT owner not root" => SetCount([.. query, 0xC0, 12, .. opt[1..]], 10, 1),
            "option longer than RDATA" => SetCount([.. query, .. opt[..^1], 5, 0, 10, 0xFF, 0xFF, 1], 10, 1),
            "RDLENGTH past end" => SetCount([.. query, .. opt[..^1], 8, 0, 10, 0, 4], 10, 1),
            "additional count overflow" => SetCount([.. query, .. opt], 10, 0xFFFF),
            "OPT in the answer section" => SetCount([.. query, .. opt], 6, 1),
            _ => SetCount([.. query, .. opt[..7]], 10, 1),
        };
        var response = (await Responder.AnswerAsync(bad, udp: true, CancellationToken.None))!;
        Assert.Equal(8, BinaryPrimitives.ReadUInt16BigEndian(response));
        Assert.Equal(1, response[3] & 0xF);
        Assert.Equal(0, Count(response, 6));
        Assert.Equal(0, Count(response, 10));
    }

    [Fact]
    public async Task RandomMutations_NeverThrow_AndStayWithinTheLimit()
    {
        var rng = new Random(11);
        var valid = Edns(DnsResponderTests.Query(9, "many.test", 1), payload: 1232);
        for (var i = 0; i < 20_000; i++)
        {
            var message = valid[..rng.Next(0, valid.Length + 1)];
            if (i % 3 == 0)
            {
                message = [.. message, .. Enumerable.Range(0, rng.Next(1, 20)).Select(_ => (byte)rng.Next(256))];
            }

            for (var flips = rng.Next(1, 4); flips > 0 && message.Length > 0; flips--)
            {
                message[rng.Next(message.Length)] ^= (byte)(1 << rng.Next(8));
            }

            var response = await Responder.AnswerAsync(message, udp: true, CancellationToken.None);
            if (response is not null)
            {
                Assert.InRange(response.Length, 12, DnsResponder.EdnsUdpPayloadSize);
            }
        }
    }

    /// <summary>Appends an OPT record (RFC 6891 §6.1.2) offering <paramref name="payload"/> octets.</summary>
    internal static byte[] Edns(byte[] query, int payload, int version = 0)
    {
        byte[] opt = [0, 0, 41, (byte)(payload >> 8), (byte)payload, 0, (byte)version, 0, 0, 0, 0];
        return SetCount([.. query, .. opt], 10, 1);
    }

    private static void AssertOpt(ReadOnlySpan<byte> opt, int extendedRcode)
    {
        Assert.Equal(0, opt[0]);                                                   // root
        Assert.Equal(41, BinaryPrimitives.ReadUInt16BigEndian(opt[1..]));          // OPT
        Assert.Equal(1232, BinaryPrimitives.ReadUInt16BigEndian(opt[3..]));        // our payload size
        Assert.Equal((uint)extendedRcode << 24, BinaryPrimitives.ReadUInt32BigEndian(opt[5..])); // version 0, no flags
        Assert.Equal(0, BinaryPrimitives.ReadUInt16BigEndian(opt[9..]));
    }

    private static int Count(byte[] message, int offset) => BinaryPrimitives.ReadUInt16BigEndian(message.AsSpan(offset));

    private static byte[] SetCount(byte[] message, int offset, ushort count)
    {
        BinaryPrimitives.WriteUInt16BigEndian(message.AsSpan(offset), count);
        return message;
    }
}
