using System.Diagnostics;
using System.Globalization;
using System.Net;
using System.Text;
using Sharptun.Cli.Show;
using Sharptun.Protocol;

namespace Sharptun.Cli.Commands;

/// <summary>
/// <c>sharptun demo</c>: two in-process WireGuard tunnels (<see cref="WireGuardTunnel"/>) talking over real UDP on
/// 127.0.0.1, no root and no config: keys are generated; bob serves a small HTTP endpoint inside his netstack
/// (<see cref="WireGuardTunnel.ListenTcp"/>); alice fetches it with <see cref="HttpClient"/> through the tunnel, then
/// moves a bulk transfer through <see cref="WireGuardTunnel.ConnectAsync(string, int, CancellationToken)"/> each way
/// (an untimed warm-up first, then the timed one); handshake time, throughput and both peers' <c>show</c> view are
/// printed.
/// </summary>
internal sealed class DemoCommand : ICliCommand
{
    private const long BulkBytes = 128L << 20;
    private const long WarmUpBytes = 64L << 20;
    private const int HttpPort = 80;
    private const int BulkPort = 5001;
    private static readonly TimeSpan Limit = TimeSpan.FromSeconds(60);

    public string Name => "demo";

    public string Summary => "Runs two in-process WireGuard tunnels over loopback UDP: handshake, HTTP, bulk TCP each way, show";

    public async Task<int> RunAsync(IReadOnlyList<string> args, CliContext context)
    {
        if (args.Count != 0)
        {
            context.Error.Write($"Usage: {CliContext.ProgramName} demo\n");
            return 1;
        }

        if (!OperatingSystem.IsLinux())
        {
            context.Error.Write($"{CliContext.ProgramName}: demo needs Linux (it uses the Linux UDP bind)\n");
            return 1;
        }

        try
        {
            using var cts = new CancellationTokenSource(Limit);
            return await RunAsync(context, cts.Token);
        }
        catch (Exception e) when (e is IOException or InvalidOperationException or TimeoutException or OperationCanceledException
                                      or HttpRequestException or System.Net.Sockets.SocketException or FormatException)
        {
            context.Error.Write($"{CliContext.ProgramName}: demo failed: {e.Message}\n");
            return 1;
        }
    }

    private static async Task<int> RunAsync(CliContext context, CancellationToken ct)
    {
        var o = context.Out;
        using var alicePrivate = Key.GeneratePrivateKey();
        using var bobPrivate = Key.GeneratePrivateKey();

        // bob learns alice's endpoint from her first handshake; alice knows bob's port once his tunnel is up.
        await using var bob = await WireGuardTunnel.StartAsync($"""
            [Interface]
            PrivateKey = {bobPrivate}
            Address = 10.77.0.2/32

            [Peer]
            PublicKey = {alicePrivate.DerivePublicKey()}
            AllowedIPs = 10.77.0.1/32
            """, ct);
        await using var alice = await WireGuardTunnel.StartAsync($"""
            [Interface]
            PrivateKey = {alicePrivate}
            Address = 10.77.0.1/32

            [Peer]
            PublicKey = {bobPrivate.DerivePublicKey()}
            Endpoint = 127.0.0.1:{bob.ListenPort}
            AllowedIPs = 10.77.0.2/32
            """, ct);
        o.Write($"alice  {alice.PublicKey}  udp 127.0.0.1:{alice.ListenPort}  tunnel 10.77.0.1\n");
        o.Write($"bob    {bob.PublicKey}  udp 127.0.0.1:{bob.ListenPort}  tunnel 10.77.0.2\n");

        await using var http = bob.ListenTcp(HttpPort);
        await using var bulk = bob.ListenTcp(BulkPort);
        var httpServer = ServeHttpAsync(http, ct);

        // Handshake: the first SYN waits in alice's device for the handshake, then goes through.
        var sw = Stopwatch.StartNew();
        var accept = bulk.AcceptAsync(ct).AsTask();
        await using (await alice.ConnectAsync("10.77.0.2", BulkPort, ct))
        await using (await accept)
        {
            o.Write(Invariant($"handshake + TCP connect through the tunnel: {sw.Elapsed.TotalMilliseconds:0.0} ms\n"));
        }

        using (var client = new HttpClient(alice.CreateHttpHandler()))
        {
            sw.Restart();
            var body = await client.GetStringAsync($"http://10.77.0.2:{HttpPort}/", ct);
            o.Write(Invariant($"HTTP GET http://10.77.0.2/ through the tunnel ({sw.Elapsed.TotalMilliseconds:0.0} ms): {body.TrimEnd()}\n"));
        }

        // Untimed first: on the JIT (`dotnet run`) the first megabytes run the packet paths as tier-0 code until tiered
        // compilation replaces it, and timed cold the first direction measured half the second. (NativeAOT is compiled
        // ahead; its warm-up costs a tenth of a second.)
        await BulkAsync("warm-up alice -> bob", alice, bulk, upload: true, WarmUpBytes, null, ct);
        await BulkAsync("warm-up bob -> alice", alice, bulk, upload: false, WarmUpBytes, null, ct);
        o.Write(Invariant($"warm-up: {WarmUpBytes / 1e6:0.0} MB each way, untimed (a JIT build compiles the hot paths on first use)\n"));
        await BulkAsync("alice -> bob", alice, bulk, upload: true, BulkBytes, o, ct);
        await BulkAsync("bob -> alice", alice, bulk, upload: false, BulkBytes, o, ct);
        o.Write("\n");

        var now = DateTimeOffset.UtcNow.ToUnixTimeSeconds();
        foreach (var (name, tunnel) in new[] { ("alice", alice), ("bob", bob) })
        {
            var state = tunnel.Device.GetSnapshot();
            o.Write(ShowFormatter.Format(name, state, now));
            o.Write("\n");
            state.ClearSecrets();
        }

        await http.DisposeAsync();
        await httpServer;
        return 0;
    }

    /// <summary>
    /// Moves <paramref name="bytes"/> over one connection alice opens; <paramref name="upload"/> picks the direction.
    /// Prints the throughput to <paramref name="o"/> unless it is null.
    /// </summary>
    private static async Task BulkAsync(string label, WireGuardTunnel alice, TunnelTcpListener bulk, bool upload, long bytes, TextWriter? o, CancellationToken ct)
    {
        var accept = bulk.AcceptAsync(ct).AsTask();
        await using var aliceEnd = await alice.ConnectAsync("10.77.0.2", BulkPort, ct);
        await using var bobEnd = await accept;
        var (sender, receiver) = upload ? (aliceEnd, bobEnd) : (bobEnd, aliceEnd);
        var sw = Stopwatch.StartNew();
        var receiving = Task.Run(async () =>
        {
            var buffer = new byte[256 * 1024];
            long total = 0;
            int n;
            while ((n = await receiver.ReadAsync(buffer, ct)) > 0)
            {
                total += n;
            }

            return total;
        }, ct);
        var chunk = new byte[256 * 1024];
        Random.Shared.NextBytes(chunk);
        for (long sent = 0; sent < bytes; sent += chunk.Length)
        {
            await sender.WriteAsync(chunk, ct);
        }

        await sender.DisposeAsync(); // FIN: the receiver reads to the end
        var received = await receiving;
        var seconds = sw.Elapsed.TotalSeconds;
        if (received != bytes)
        {
            throw new IOException($"{label}: received {received} of {bytes} bytes");
        }

        o?.Write(Invariant($"bulk {label}: {received / 1e6:0.0} MB over TCP in {seconds:0.00} s = {received * 8 / seconds / 1e6:0} Mbit/s\n"));
    }

    /// <summary>A tiny HTTP/1.1 server inside bob's netstack: every request gets one line of text, then the connection closes.</summary>
    private static async Task ServeHttpAsync(TunnelTcpListener listener, CancellationToken ct)
    {
        try
        {
            while (true)
            {
                await using var stream = await listener.AcceptAsync(ct);
                var request = new byte[8192];
                var filled = 0;
                while (filled < request.Length && request.AsSpan(0, filled).IndexOf("\r\n\r\n"u8) < 0)
                {
                    var n = await stream.ReadAsync(request.AsMemory(filled), ct);
                    if (n == 0)
                    {
                        break;
                    }

                    filled += n;
                }

                var body = "hello from bob, served inside his userspace TCP/IP stack\n";
                var response = $"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: {Encoding.UTF8.GetByteCount(body)}\r\nConnection: close\r\n\r\n{body}";
                await stream.WriteAsync(Encoding.UTF8.GetBytes(response), ct);
            }
        }
        catch (Exception e) when (e is IOException or ObjectDisposedException or OperationCanceledException)
        {
            // the listener closed
        }
    }

    private static string Invariant(FormattableString text) => text.ToString(CultureInfo.InvariantCulture);
}
