using System.Buffers.Binary;
using System.Net;
using Sharptun.NetStack.Dns;
using Sharptun.Testing.Dns;

namespace Sharptun.NetStack.Tests.Dns;

/// <summary>The DNS wire format on hand-built vectors, hostile ones included, and on random bytes.</summary>
public sealed class DnsMessageTests
{
    private const ushort Id = 0xBEEF;
    private static readonly byte[] Name = DnsTestServer.Encode("www.example.com");

    [Fact]
    public void BuildQuery_MatchesRfc1035Layout()
    {
        var query = DnsMessage.BuildQuery(0x1234, DnsMessage.EncodeName("a.bc")!, DnsRecordType.Aaaa);
        byte[] expected =
        [
            0x12, 0x34, 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0, // ID, RD, QDCOUNT 1
            1, (byte)'a', 2, (byte)'b', (byte)'c', 0,        // QNAME
            0, 28, 0, 1,                                    // QTYPE AAAA, QCLASS IN
        ];
        Assert.Equal(expected, query);
    }

    [Theory]
    [InlineData("")]
    [InlineData("a..b")]
    [InlineData(".a")]
    [InlineData("bad name.com")]
    [InlineData("caf\u00e9.com")]
    public void EncodeName_InvalidNames_ReturnsNull(string name) => Assert.Null(DnsMessage.EncodeName(name));

    [Fact]
    public void EncodeName_LabelAndNameLimits()
    {
        Assert.NotNull(DnsMessage.EncodeName(new string('a', 63) + ".com"));
        Assert.Null(DnsMessage.EncodeName(new string('a', 64) + ".com"));
        var longest = string.Join('.', Enumerable.Repeat(new string('a', 63), 3)) + "." + new string('b', 61); // 253
        Assert.Equal(255, DnsMessage.EncodeName(longest)!.Length);
        Assert.Null(DnsMessage.EncodeName(longest + "b"));
    }

    [Fact]
    public void Parse_AnswerWithCompressedOwner_ReturnsAddressAndTtl()
    {
        var message = Response(answers: [Record(Pointer(12), 1, [192, 0, 2, 1], ttl: 60)]);
        var response = DnsMessage.ParseResponse(message, Id, Name, DnsRecordType.A);
        Assert.Equal(DnsParseStatus.Ok, response.Status);
        Assert.Equal([IPAddress.Parse("192.0.2.1")], response.Addresses);
        Assert.Equal(60u, response.MinTtl);
    }

    [Fact]
    public void Parse_CnameChainOutOfOrder_FollowsToTheEnd()
    {
        var target = DnsTestServer.Encode("cdn.example.net");
        var final = DnsTestServer.Encode("edge.example.org");
        var message = Response(answers:
        [
            Record(final, 1, [198, 51, 100, 7], ttl: 30),
            Record(target, 5, final, ttl: 100),
            Record(Pointer(12), 5, target, ttl: 200),
            Record(DnsTestServer.Encode("other.example"), 1, [6, 6, 6, 6]),
        ]);
        var response = DnsMessage.ParseResponse(message, Id, Name, DnsRecordType.A);
        Assert.Equal(DnsParseStatus.Ok, response.Status);
        Assert.Equal([IPAddress.Parse("198.51.100.7")], response.Addresses);
        Assert.Equal(30u, response.MinTtl);
    }

    [Fact]
    public void Parse_CnameLoop_IsMalformed()
    {
        var a = DnsTestServer.Encode("a.example");
        var b = DnsTestServer.Encode("b.example");
        var message = Response(answers: [Record(Pointer(12), 5, a), Record(a, 5, b), Record(b, 5, a)]);
        Assert.Equal(DnsParseStatus.Malformed, DnsMessage.ParseResponse(message, Id, Name, DnsRecordType.A).Status);
    }

    [Fact]
    public void Parse_QuestionInOtherCase_Matches()
    {
        var message = Response(question: DnsTestServer.Encode("WWW.Example.COM"), answers: [Record(Pointer(12), 1, [1, 2, 3, 4])]);
        Assert.Equal(DnsParseStatus.Ok, DnsMessage.ParseResponse(message, Id, Name, DnsRecordType.A).Status);
    }

    [Fact]
    public void Parse_NotOurs_IsMismatch()
    {
        Assert.Equal(DnsParseStatus.Mismatch, DnsMessage.ParseResponse(Response(id: Id + 1), Id, Name, DnsRecordType.A).Status);
        Assert.Equal(DnsParseStatus.Mismatch, DnsMessage.ParseResponse(Response(flags: 0x0100), Id, Name, DnsRecordType.A).Status);
        Assert.Equal(DnsParseStatus.Mismatch, DnsMessage.ParseResponse(Response(question: DnsTestServer.Encode("evil.example")), Id, Name, DnsRecordType.A).Status);
        Assert.Equal(DnsParseStatus.Mismatch, DnsMessage.ParseResponse(Response(qtype: 28), Id, Name, DnsRecordType.A).Status);
        Assert.Equal(DnsParseStatus.Mismatch, DnsMessage.ParseResponse(Response(flags: 0x8000 | 0x2800), Id, Name, DnsRecordType.A).Status); // opcode 5
    }

    [Fact]
    public void Parse_AnswerForAnotherName_IsIgnored()
    {
        var message = Response(answers: [Record(DnsTestServer.Encode("evil.example"), 1, [6, 6, 6, 6])]);
        var response = DnsMessage.ParseResponse(message, Id, Name, DnsRecordType.A);
        Assert.Equal(DnsParseStatus.Ok, response.Status);
        Assert.Empty(response.Addresses);
    }

    [Fact]
    public void Parse_TcAndRcodes()
    {
        Assert.Equal(DnsParseStatus.Truncated, DnsMessage.ParseResponse(Response(flags: 0x8000 | 0x0200), Id, Name, DnsRecordType.A).Status);
        var nx = DnsMessage.ParseResponse(Response(flags: 0x8000 | 3), Id, Name, DnsRecordType.A);
        Assert.Equal((DnsParseStatus.Ok, DnsMessage.NameError), (nx.Status, nx.ResponseCode));
        Assert.Equal(2, DnsMessage.ParseResponse(Response(flags: 0x8000 | 2), Id, Name, DnsRecordType.A).ResponseCode);
    }

    public static TheoryData<string, byte[]> Hostile() => new()
    {
        // owner name is a pointer to itself
        { "pointer loop", Response(answers: [Record(Pointer(HeaderAndQuestion), 1, [1, 2, 3, 4])]) },
        // two pointers pointing at each other: the second points forward
        { "pointer ping-pong", Response(answers: [Record([0xC0, (byte)(HeaderAndQuestion + 2), 0xC0, (byte)HeaderAndQuestion], 1, [1, 2, 3, 4])]) },
        { "pointer forward out of bounds", Response(answers: [Record([0xC3, 0xFF], 1, [1, 2, 3, 4])]) },
        { "pointer cut short", WithCounts([.. Response(), 0xC0], qd: 1, an: 1) },
        { "label > 63 (reserved type 01)", Response(answers: [Record([64, .. new byte[64], 0], 1, [1, 2, 3, 4])]) },
        { "label type 10", Response(answers: [Record([0x80, 0], 1, [1, 2, 3, 4])]) },
        { "name > 255", Response(answers: [Record([.. Enumerable.Repeat<byte[]>([63, .. new byte[63]], 5).SelectMany(x => x), 0], 1, [1, 2, 3, 4])]) },
        { "name > 255 through pointers", LongNameThroughPointers() },
        { "count overflow", WithCounts(Response(answers: [Record(Pointer(12), 1, [1, 2, 3, 4])]), qd: 1, an: 0xFFFF) },
        { "question count 2", WithCounts(Response(), qd: 2, an: 0) },
        { "truncated RR", Response(answers: [Record(Pointer(12), 1, [1, 2, 3, 4])])[..^7] },
        { "rdlength past end", Response(answers: [Record(Pointer(12), 1, [1, 2, 3, 4])])[..^1] },
        { "A with 5 octets", Response(answers: [Record(Pointer(12), 1, [1, 2, 3, 4, 5])]) },
        { "cut in header", Response()[..11] },
        { "cut in question", Response()[..20] },
        // EDNS(0), RFC 6891 §6.1.1-§6.1.2
        { "two OPT records", WithOpt(WithOpt(Response(answers: [Record(Pointer(12), 1, [1, 2, 3, 4])]), Opt()), Opt()) },
        { "OPT in the answer section", Response(answers: [Record(Pointer(12), 1, [1, 2, 3, 4]), Opt()]) },
        { "OPT not owned by the root", WithOpt(Response(), Opt(owner: Pointer(12))) },
        { "OPT option longer than RDATA", WithOpt(Response(), Opt(options: [0, 10, 0xFF, 0xFF, 1])) },
        { "OPT option header cut", WithOpt(Response(), Opt(options: [0, 10, 0])) },
        { "OPT RDLENGTH past end", WithOpt(Response(), Opt(options: [0, 10, 0, 4, 1, 2, 3, 4]))[..^2] },
        { "additional count overflow", WithAdditional(WithOpt(Response(), Opt()), 0xFFFF) },
        { "additional record with a pointer loop", WithAdditional([.. Response(), .. Record(Pointer(HeaderAndQuestion), 1, [1, 2, 3, 4])], 1) },
    };

    [Theory]
    [MemberData(nameof(Hostile))]
    public void Parse_Hostile_IsMalformedNeverThrows(string what, byte[] message)
    {
        var status = DnsMessage.ParseResponse(message, Id, Name, DnsRecordType.A).Status;
        Assert.True(status == DnsParseStatus.Malformed, $"{what}: {status}");
    }

    [Fact]
    public void BuildQuery_WithEdns_AppendsOptRecordAdvertising1232()
    {
        var query = DnsMessage.BuildQuery(0x1234, DnsMessage.EncodeName("a.bc")!, DnsRecordType.A, edns: true);
        byte[] expected =
        [
            0x12, 0x34, 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 1, // ID, RD, QDCOUNT 1, ARCOUNT 1
            1, (byte)'a', 2, (byte)'b', (byte)'c', 0,        // QNAME
            0, 1, 0, 1,                                     // QTYPE A, QCLASS IN
            0, 0, 41, 0x04, 0xD0, 0, 0, 0, 0, 0, 0,         // OPT: root, TYPE 41, CLASS 1232, TTL 0 (version 0), RDLENGTH 0
        ];
        Assert.Equal(expected, query);
    }

    [Fact]
    public void Parse_WithOptRecord_AnswersAndExtendedRcode()
    {
        var ok = DnsMessage.ParseResponse(WithOpt(Response(answers: [Record(Pointer(12), 1, [192, 0, 2, 1])]), Opt(options: [0, 10, 0, 8, 1, 2, 3, 4, 5, 6, 7, 8])), Id, Name, DnsRecordType.A);
        Assert.Equal((DnsParseStatus.Ok, DnsMessage.NoError), (ok.Status, ok.ResponseCode));
        Assert.Equal([IPAddress.Parse("192.0.2.1")], ok.Addresses);

        // BADVERS: header RCODE 0, OPT's extended RCODE 1 -> 16 (RFC 6891 §6.1.3); no addresses are taken from it
        var badVersion = DnsMessage.ParseResponse(WithOpt(Response(answers: [Record(Pointer(12), 1, [192, 0, 2, 1])]), Opt(ttl: 0x0100_0000)), Id, Name, DnsRecordType.A);
        Assert.Equal((DnsParseStatus.Ok, DnsMessage.BadVersion), (badVersion.Status, badVersion.ResponseCode));
        Assert.Empty(badVersion.Addresses);

        // a TTL with the top bit set is zero for records (RFC 2181 §8) but is the extended RCODE in an OPT record
        var topBit = DnsMessage.ParseResponse(Response(answers: [Record(Pointer(12), 1, [192, 0, 2, 1], ttl: 0x8000_0000)]), Id, Name, DnsRecordType.A);
        Assert.Equal(0u, topBit.MinTtl);
    }

    [Fact]
    public void Parse_FormErrOrNotImpWithoutQuestion_IsAnErrorAnswer_OtherRcodesWithoutQuestionAreNot()
    {
        foreach (var rcode in new[] { DnsMessage.FormatError, DnsMessage.NotImplemented })
        {
            var response = DnsMessage.ParseResponse(WithCounts(Response(flags: (ushort)(0x8080 | rcode))[..12], qd: 0, an: 0), Id, Name, DnsRecordType.A);
            Assert.Equal((DnsParseStatus.Ok, rcode), (response.Status, response.ResponseCode));
        }

        Assert.Equal(DnsParseStatus.Mismatch, DnsMessage.ParseResponse(WithCounts(Response(flags: 0x8083)[..12], qd: 0, an: 0), Id, Name, DnsRecordType.A).Status);
        Assert.Equal(DnsParseStatus.Mismatch, DnsMessage.ParseResponse(WithCounts(Response(id: Id + 1, flags: 0x8081)[..12], qd: 0, an: 0), Id, Name, DnsRecordType.A).Status);
    }

    [Fact]
    public void ReadName_BackwardPointerChain_Decodes()
    {
        // "b" + pointer to "a" + pointer to root label... : "x" at 0, "y" + ptr(0) at 3
        byte[] message = [1, (byte)'x', 0, 1, (byte)'Y', 0xC0, 0];
        var offset = 3;
        var name = new byte[255];
        var length = DnsMessage.ReadName(message, ref offset, name);
        Assert.Equal([1, (byte)'y', 1, (byte)'x', 0], name[..length]);
        Assert.Equal(7, offset);
    }

    [Fact]
    public void Parse_RandomBytes_NeverThrows()
    {
        var rng = new Random(9);
        var valid = Response(answers: [Record(Pointer(12), 5, DnsTestServer.Encode("c.example")), Record(DnsTestServer.Encode("c.example"), 1, [1, 2, 3, 4])]);
        var ok = 0;
        for (var i = 0; i < 200_000; i++)
        {
            byte[] message;
            if (i % 2 == 0)
            {
                message = new byte[rng.Next(0, 300)];
                rng.NextBytes(message);
                if (message.Length >= 4)
                {
                    BinaryPrimitives.WriteUInt16BigEndian(message, Id); // get past the ID check often
                    message[2] |= 0x80;
                    message[2] &= 0x87;
                }
            }
            else
            {
                message = valid[..rng.Next(0, valid.Length + 1)];
                for (var flips = rng.Next(1, 4); flips > 0 && message.Length > 0; flips--)
                {
                    message[rng.Next(message.Length)] ^= (byte)(1 << rng.Next(8));
                }
            }

            var response = DnsMessage.ParseResponse(message, Id, Name, DnsRecordType.A);
            Assert.True(response.Addresses.Length <= DnsMessage.MaxAddresses);
            ok += response.Status == DnsParseStatus.Ok ? 1 : 0;
        }

        Assert.True(ok > 0, "the mutations never produced a parseable message");
    }

    private const int HeaderAndQuestion = 12 + 17 + 4; // www.example.com is 17 octets

    private static byte[] Pointer(int offset) => [(byte)(0xC0 | offset >> 8), (byte)offset];

    private static byte[] Record(byte[] owner, ushort type, byte[] data, uint ttl = 300)
    {
        var record = new byte[owner.Length + 10 + data.Length];
        owner.CopyTo(record, 0);
        var fixedPart = record.AsSpan(owner.Length);
        BinaryPrimitives.WriteUInt16BigEndian(fixedPart, type);
        BinaryPrimitives.WriteUInt16BigEndian(fixedPart[2..], 1);
        BinaryPrimitives.WriteUInt32BigEndian(fixedPart[4..], ttl);
        BinaryPrimitives.WriteUInt16BigEndian(fixedPart[8..], (ushort)data.Length);
        data.CopyTo(record, owner.Length + 10);
        return record;
    }

    private static byte[] Response(int id = Id, ushort flags = 0x8180, byte[]? question = null, ushort qtype = 1, byte[][]? answers = null)
    {
        question ??= Name;
        answers ??= [];
        var header = new byte[12];
        BinaryPrimitives.WriteUInt16BigEndian(header, (ushort)id);
        BinaryPrimitives.WriteUInt16BigEndian(header.AsSpan(2), flags);
        BinaryPrimitives.WriteUInt16BigEndian(header.AsSpan(4), 1);
        BinaryPrimitives.WriteUInt16BigEndian(header.AsSpan(6), (ushort)answers.Length);
        byte[] tail = [(byte)(qtype >> 8), (byte)qtype, 0, 1];
        return [.. header, .. question, .. tail, .. answers.SelectMany(a => a)];
    }

    /// <summary>An OPT pseudo-record (RFC 6891 §6.1.2): root owner unless given, CLASS = payload size, TTL = extended RCODE/version/flags.</summary>
    private static byte[] Opt(byte[]? owner = null, uint ttl = 0, byte[]? options = null)
    {
        var record = Record(owner ?? [0], 41, options ?? [], ttl);
        BinaryPrimitives.WriteUInt16BigEndian(record.AsSpan(record.Length - (options?.Length ?? 0) - 8), 1232); // CLASS
        return record;
    }

    /// <summary>Appends <paramref name="record"/> to the additional section.</summary>
    private static byte[] WithOpt(byte[] message, byte[] record)
    {
        byte[] result = [.. message, .. record];
        return WithAdditional(result, (ushort)(BinaryPrimitives.ReadUInt16BigEndian(result.AsSpan(10)) + 1));
    }

    private static byte[] WithAdditional(byte[] message, ushort count)
    {
        BinaryPrimitives.WriteUInt16BigEndian(message.AsSpan(10), count);
        return message;
    }

    private static byte[] WithCounts(byte[] message, ushort qd, ushort an)
    {
        BinaryPrimitives.WriteUInt16BigEndian(message.AsSpan(4), qd);
        BinaryPrimitives.WriteUInt16BigEndian(message.AsSpan(6), an);
        return message;
    }

    /// <summary>Records whose owners are a 63-octet label and a pointer to the previous owner: the fourth is 257 octets.</summary>
    private static byte[] LongNameThroughPointers()
    {
        var records = new List<byte[]>();
        var at = HeaderAndQuestion;
        var previous = -1;
        for (var i = 0; i < 4; i++)
        {
            byte[] owner = [63, .. new byte[63], .. previous < 0 ? [0] : Pointer(previous)];
            records.Add(Record(owner, 16, []));
            previous = at;
            at += owner.Length + 10;
        }

        return Response(answers: [.. records]);
    }
}
