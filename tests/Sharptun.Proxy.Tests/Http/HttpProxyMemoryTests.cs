using System.Net.Sockets;
using System.Text;

namespace Sharptun.Proxy.Tests.Http;

[CollectionDefinition(nameof(AllocationSensitive), DisableParallelization = true)]
public sealed class AllocationSensitive;

/// <summary>
/// Bodies stream through the proxy instead of being held in memory: moving 64 MiB each way allocates a small
/// fraction of that (client and origin here are raw sockets with fixed buffers, and the test runs alone, so the
/// process's allocation count is essentially the proxy's).
/// </summary>
[Collection(nameof(AllocationSensitive))]
public sealed class HttpProxyMemoryTests
{
    private const int Size = 64 << 20;

    [Fact]
    public async Task LargeUploadAndDownload_AllocateFarLessThanTheBody()
    {
        var block = new byte[64 * 1024];
        await using var origin = new RawOrigin(async (stream, _) =>
        {
            var head = await RawOrigin.ReadHeadAsync(stream);
            var buffer = new byte[64 * 1024];
            if (head.StartsWith("PUT", StringComparison.Ordinal))
            {
                for (long left = Size; left > 0;)
                {
                    var n = await stream.ReadAsync(buffer.AsMemory(0, (int)Math.Min(buffer.Length, left)));
                    if (n == 0)
                    {
                        return;
                    }

                    left -= n;
                }

                await stream.WriteAsync("HTTP/1.1 204 No Content\r\n\r\n"u8.ToArray());
            }
            else
            {
                await stream.WriteAsync(Encoding.ASCII.GetBytes($"HTTP/1.1 200 OK\r\nContent-Length: {Size}\r\n\r\n"));
                for (var sent = 0; sent < Size; sent += buffer.Length)
                {
                    await stream.WriteAsync(buffer);
                }
            }
        });
        await using var proxy = ProxyHarness.Start();
        using var tcp = await proxy.ConnectRawAsync();
        var client = tcp.GetStream();

        // Warm up the paths once (JIT, pools), then measure a second round.
        await RoundAsync(client, origin.Port, block);
        var before = GC.GetTotalAllocatedBytes(precise: true);
        await RoundAsync(client, origin.Port, block);
        var allocated = GC.GetTotalAllocatedBytes(precise: true) - before;

        Assert.True(allocated < Size / 8, $"{allocated} bytes allocated to move {2L * Size} bytes");
    }

    // One upload and one download of Size bytes on the same keep-alive connection.
    private static async Task RoundAsync(NetworkStream client, int port, byte[] block)
    {
        await RawHttp.SendAsync(client, $"PUT http://a.test:{port}/up HTTP/1.1\r\nContent-Length: {Size}\r\n\r\n");
        for (var sent = 0; sent < Size; sent += block.Length)
        {
            await client.WriteAsync(block);
        }

        await ReadHeadAsync(client, block);
        await RawHttp.SendAsync(client, $"GET http://a.test:{port}/down HTTP/1.1\r\n\r\n");
        await ReadHeadAsync(client, block);
        for (long left = Size; left > 0;)
        {
            var n = await client.ReadAsync(block.AsMemory(0, (int)Math.Min(block.Length, left)));
            Assert.NotEqual(0, n);
            left -= n;
        }
    }

    // Reads a response head byte by byte into the caller's buffer (no allocation per byte).
    private static async Task ReadHeadAsync(NetworkStream client, byte[] buffer)
    {
        var length = 0;
        while (length < 4 || !(buffer[length - 4] == '\r' && buffer[length - 3] == '\n' && buffer[length - 2] == '\r' && buffer[length - 1] == '\n'))
        {
            Assert.Equal(1, await client.ReadAsync(buffer.AsMemory(length, 1)));
            length++;
        }

        Assert.StartsWith("HTTP/1.1 2", Encoding.ASCII.GetString(buffer, 0, 10), StringComparison.Ordinal);
    }
}
