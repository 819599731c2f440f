using System.Net;
using System.Net.Sockets;
using System.Security.Cryptography;
using Sharptun.Hosting;

namespace Sharptun.Hosting.Tests;

/// <summary>The relay between two real loopback TCP connections (client ⇄ relay ⇄ server).</summary>
public sealed class StreamRelayTests
{
    [Fact]
    public async Task ClientHalfCloses_ServerSeesEof_AndItsLaterReplyStillReachesTheClient()
    {
        await using var pair = await RelayedPair.StartAsync(RelayOptions.Default);
        var client = pair.Client.GetStream();
        var server = pair.Server.GetStream();
        var request = RandomNumberGenerator.GetBytes(300_000);
        await client.WriteAsync(request);
        pair.Client.Client.Shutdown(SocketShutdown.Send);

        var received = await ReadToEndAsync(server);
        Assert.Equal(request, received);

        // Only now, after the client's FIN arrived, the server answers and closes.
        var reply = SHA256.HashData(received);
        await server.WriteAsync(reply);
        pair.Server.Client.Shutdown(SocketShutdown.Send);

        Assert.Equal(reply, await ReadToEndAsync(client));
        var result = await pair.Relay.WaitAsync(TimeSpan.FromSeconds(10));
        Assert.Equal(RelayEnd.Closed, result.End);
        Assert.Equal(request.Length, result.ClientToServerBytes);
        Assert.Equal(reply.Length, result.ServerToClientBytes);
    }

    [Fact]
    public async Task ServerResets_ClientIsReset_AndTheRelayReportsAnError()
    {
        await using var pair = await RelayedPair.StartAsync(RelayOptions.Default);
        var client = pair.Client.GetStream();
        await client.WriteAsync(new byte[] { 1, 2, 3 });
        var buffer = new byte[3];
        await pair.Server.GetStream().ReadExactlyAsync(buffer);
        pair.Server.Client.LingerState = new LingerOption(true, 0);
        pair.Server.Client.Close();

        var result = await pair.Relay.WaitAsync(TimeSpan.FromSeconds(10));
        Assert.Equal(RelayEnd.Error, result.End);
        var e = await Assert.ThrowsAnyAsync<IOException>(async () => await ReadToEndAsync(client));
        Assert.Equal(SocketError.ConnectionReset, (e.InnerException as SocketException)?.SocketErrorCode);
    }

    [Fact]
    public async Task NoTrafficForTheIdleTimeout_AbortsBothSides_WhileTrafficKeepsItOpen()
    {
        await using var pair = await RelayedPair.StartAsync(new RelayOptions { IdleTimeout = TimeSpan.FromMilliseconds(2500) });
        var client = pair.Client.GetStream();
        var server = pair.Server.GetStream();
        var one = new byte[1];
        for (var i = 0; i < 16; i++)
        {
            // 16 × 250 ms = 4 s of life, 1.6 times the idle timeout: activity keeps the relay open (the margin
            // between a round trip and the timeout absorbs a loaded machine's pauses).
            await Task.Delay(250);
            Assert.False(pair.Relay.IsCompleted, $"relay ended after {i} round trips: {(pair.Relay.IsCompleted ? pair.Relay.Result : default)}");
            await client.WriteAsync(one);
            try
            {
                await server.ReadExactlyAsync(one);
            }
            catch (IOException e)
            {
                var r = await pair.Relay;
                Assert.Fail($"round trip {i}: {e.Message}; relay {r}");
            }
        }

        Assert.False(pair.Relay.IsCompleted);
        var result = await pair.Relay.WaitAsync(TimeSpan.FromSeconds(10));
        Assert.Equal(RelayEnd.IdleTimeout, result.End);
        Assert.Equal(16, result.ClientToServerBytes);
        await Assert.ThrowsAnyAsync<IOException>(async () => await ReadToEndAsync(client));
    }

    private static async Task<byte[]> ReadToEndAsync(Stream stream)
    {
        using var memory = new MemoryStream();
        await stream.CopyToAsync(memory).WaitAsync(TimeSpan.FromSeconds(10));
        return memory.ToArray();
    }

    private sealed class RelayedPair : IAsyncDisposable
    {
        private readonly TcpClient _relayIn;
        private readonly TcpClient _relayOut;

        private RelayedPair(TcpClient client, TcpClient server, TcpClient relayIn, TcpClient relayOut, Task<RelayResult> relay)
        {
            Client = client;
            Server = server;
            _relayIn = relayIn;
            _relayOut = relayOut;
            Relay = relay;
        }

        public TcpClient Client { get; }

        public TcpClient Server { get; }

        public Task<RelayResult> Relay { get; }

        public static async Task<RelayedPair> StartAsync(RelayOptions options)
        {
            using var front = new TcpListener(IPAddress.Loopback, 0);
            using var back = new TcpListener(IPAddress.Loopback, 0);
            front.Start();
            back.Start();
            var client = new TcpClient();
            await client.ConnectAsync(IPAddress.Loopback, ((IPEndPoint)front.LocalEndpoint).Port);
            var relayIn = await front.AcceptTcpClientAsync();
            var relayOut = new TcpClient();
            await relayOut.ConnectAsync(IPAddress.Loopback, ((IPEndPoint)back.LocalEndpoint).Port);
            var server = await back.AcceptTcpClientAsync();
            var relay = StreamRelay.RunAsync(relayIn.GetStream(), relayOut.GetStream(), options);
            return new RelayedPair(client, server, relayIn, relayOut, relay);
        }

        public async ValueTask DisposeAsync()
        {
            Client.Dispose();
            Server.Dispose();
            try
            {
                await Relay.WaitAsync(TimeSpan.FromSeconds(10));
            }
            catch (TimeoutException)
            {
            }

            _relayIn.Dispose();
            _relayOut.Dispose();
        }
    }
}
