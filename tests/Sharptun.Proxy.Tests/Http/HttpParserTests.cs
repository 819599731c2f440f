using System.Text;
using Sharptun.Proxy.Http;

namespace Sharptun.Proxy.Tests.Http;

/// <summary>The HTTP parsers on their own: exact results on known input, and seeded random input that must never throw.</summary>
public sealed class HttpParserTests
{
    private const int Seed = 10_003;

    [Fact]
    public void TryParseRequest_KnownHead_FieldsInOrder()
    {
        var head = HttpHead.TryParseRequest("PUT http://h:8/p?q HTTP/1.0\r\nA: 1 \r\nb:\t two\r\nA: 3"u8, out var error, out _);

        Assert.Null(error);
        Assert.NotNull(head);
        Assert.Equal(("PUT", "http://h:8/p?q", 0), (head.First, head.Second, head.MinorVersion));
        Assert.Equal([new("A", "1"), new("b", "two"), new("A", "3")], head.Fields);
    }

    [Theory]
    [InlineData("http://a.test/x?y#frag", "a.test", 80, "a.test", "/x?y")]
    [InlineData("HTTP://A.test:8080", "A.test", 8080, "A.test:8080", "/")]
    [InlineData("http://[2001:db8::1]:81?q=1", "2001:db8::1", 81, "[2001:db8::1]:81", "/?q=1")]
    [InlineData("http://10.0.0.1/", "10.0.0.1", 80, "10.0.0.1", "/")]
    public void TryParseAbsolute_SplitsHostPortAuthorityAndOriginForm(string uri, string host, int port, string authority, string path)
    {
        Assert.True(ProxyTarget.TryParseAbsolute(uri, out var target, out var error), error);
        Assert.Equal(new ProxyTarget(host, port, authority, path), target);
    }

    [Fact]
    public void RandomBytes_NeverThrowFromTheHeadParsersOrTheTargetParsers()
    {
        var random = new Random(Seed);
        var alphabet = "GET http://a.b:80/ HTTP/1.1\r\n:;[]@%\t \0\x7f\xff0123456789abcdefXYZ,chunked"u8.ToArray();
        var buffer = new byte[200];
        for (var i = 0; i < 50_000; i++)
        {
            var length = random.Next(buffer.Length);
            for (var j = 0; j < length; j++)
            {
                buffer[j] = random.Next(4) == 0 ? (byte)random.Next(256) : alphabet[random.Next(alphabet.Length)];
            }

            var span = buffer.AsSpan(0, length);
            var request = HttpHead.TryParseRequest(span, out _, out _);
            request?.TryGetFraming(response: false, out _, out _);
            HttpHead.TryParseResponse(span, out _)?.TryGetFraming(response: true, out _, out _);
            var text = Encoding.Latin1.GetString(span);
            ProxyTarget.TryParseAbsolute(text, out _, out _);
            ProxyTarget.TryParseAuthority(text, out _, out _);
            BindAddressParser.TryParse(text, out _);
        }
    }

    [Theory]
    [InlineData("GET http://a/ HTTP/1.1\r\nX: 1\r\n\r\nNEXT")]
    [InlineData("\r\n\r\nGET http://a/ HTTP/1.1\nX: 1\n\nNEXT")]
    [InlineData("GET http://a/ HTTP/1.1\r\nX: 1\n\r\nNEXT")]
    public async Task HttpReader_HeadArrivingOneByteAtATime_IsFoundWithTheRestBuffered(string input)
    {
        await using var stream = new TrickleStream(Encoding.ASCII.GetBytes(input));
        using var reader = new HttpReader(stream);

        var (status, head) = await reader.ReadHeadAsync(default);
        var rest = new byte[16];
        var n = await reader.ReadAsync(rest, default);
        n += await reader.ReadAsync(rest.AsMemory(n), default);
        n += await reader.ReadAsync(rest.AsMemory(n), default);
        n += await reader.ReadAsync(rest.AsMemory(n), default);

        Assert.Equal(HeadStatus.Ok, status);
        var text = Encoding.ASCII.GetString(head.Span);
        Assert.StartsWith("GET http://a/ HTTP/1.1", text, StringComparison.Ordinal);
        Assert.EndsWith("X: 1", text, StringComparison.Ordinal);
        Assert.Equal("NEXT", Encoding.ASCII.GetString(rest, 0, n));
    }

    [Fact]
    public async Task HttpReader_HeadOf64KiB_IsTooLarge_AndEndInsideAHead_IsTruncated()
    {
        await using var huge = new MemoryStream(Encoding.ASCII.GetBytes("GET http://a/ HTTP/1.1\r\nX: " + new string('x', HttpReader.MaxHeadBytes) + "\r\n\r\n"));
        using var hugeReader = new HttpReader(huge);
        await using var cut = new MemoryStream("GET http://a/ HTTP/1.1\r\nX: 1\r\n"u8.ToArray());
        using var cutReader = new HttpReader(cut);
        await using var empty = new MemoryStream();
        using var emptyReader = new HttpReader(empty);

        Assert.Equal(HeadStatus.TooLarge, (await hugeReader.ReadHeadAsync(default)).Status);
        Assert.Equal(HeadStatus.Truncated, (await cutReader.ReadHeadAsync(default)).Status);
        Assert.Equal(HeadStatus.Closed, (await emptyReader.ReadHeadAsync(default)).Status);
    }

    [Theory]
    [InlineData("5\r\nhello\r\n0\r\n\r\n", "5\r\nhello\r\n0\r\n\r\n", "hello")]
    [InlineData("3;ext=1\r\nabc\r\n2 ; x\r\nde\r\n000\r\nTrailer: t\r\n\r\n", "3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n", "abcde")]
    [InlineData("A\nabcdefghij\n0\n\n", "a\r\nabcdefghij\r\n0\r\n\r\n", "abcdefghij")]
    public async Task CopyChunked_RechunksOrDecodes(string input, string rechunked, string decoded)
    {
        Assert.Equal(rechunked, await CopyChunkedAsync(input, rechunk: true));
        Assert.Equal(decoded, await CopyChunkedAsync(input, rechunk: false));
    }

    [Fact]
    public async Task CopyChunked_RandomlyMutatedBodies_EitherCopyOrFailWithHttpBodyException()
    {
        var random = new Random(Seed);
        var valid = "4\r\nwiki\r\n5;a=b\r\npedia\r\nE\r\n in\r\n\r\nchunks.\r\n0\r\nX: y\r\n\r\n"u8.ToArray();
        for (var i = 0; i < 3000; i++)
        {
            var mutated = valid.ToArray();
            for (var k = random.Next(1, 4); k > 0; k--)
            {
                mutated[random.Next(mutated.Length)] = (byte)random.Next(256);
            }

            var cut = mutated.AsSpan(0, random.Next(mutated.Length / 2, mutated.Length + 1)).ToArray();
            try
            {
                await CopyChunkedAsync(Encoding.Latin1.GetString(cut), rechunk: true);
            }
            catch (HttpBodyException)
            {
            }
        }
    }

    private static async Task<string> CopyChunkedAsync(string input, bool rechunk)
    {
        await using var source = new MemoryStream(Encoding.Latin1.GetBytes(input));
        using var reader = new HttpReader(source);
        await using var output = new MemoryStream();
        using var idle = new CancellationTokenSource();
        await HttpBody.CopyChunkedAsync(reader, output, rechunk, new byte[7], new HttpBody.Progress(idle, Timeout.InfiniteTimeSpan, _ => { }), default);
        return Encoding.Latin1.GetString(output.ToArray());
    }

    /// <summary>Returns one byte per read.</summary>
    private sealed class TrickleStream(byte[] data) : MemoryStream(data)
    {
        public override ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken cancellationToken = default) =>
            base.ReadAsync(buffer[..Math.Min(1, buffer.Length)], cancellationToken);
    }
}
