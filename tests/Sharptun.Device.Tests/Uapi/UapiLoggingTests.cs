using Microsoft.Extensions.Logging;
using Sharptun.Device.Uapi;
using Sharptun.Testing.Logging;

namespace Sharptun.Device.Tests.Uapi;

/// <summary>The UAPI server logs through the <see cref="ILogger"/> it is given: wireguard-go's text, at the expected levels.</summary>
[System.Runtime.Versioning.UnsupportedOSPlatform("windows")]
public sealed class UapiLoggingTests : IDisposable
{
    private const string PeerA = "58402e695ba1772b1cc9309755f043251ea77fdcf10fbe63989ceb7e19321376";
    private const string PrivateHex = "e84b5a6d2717c1003a13b431570353dbaca9146cf150c5f8575680feba52027a";

    private readonly string _dir = Path.Combine("/tmp", "ult-" + Guid.NewGuid().ToString("N")[..10]);

    public void Dispose()
    {
        if (Directory.Exists(_dir))
        {
            Directory.Delete(_dir, recursive: true);
        }
    }

    [Fact]
    public async Task Set_AppliedAndRejected_ArriveThroughILogger()
    {
        var log = new CapturingLogger();
        using var server = UapiServer.Start("wg0", new UapiConfigStore(), log, socketDirectory: _dir);

        Assert.Equal(0, await UapiClient.SetAsync(server.SocketPath, $"private_key={PrivateHex}\npublic_key={PeerA}\nallowed_ip=10.0.0.2/32\n"));
        Assert.NotEqual(0, await UapiClient.SetAsync(server.SocketPath, "listen_port=nope\n"));

        Assert.True(await log.WaitForAsync(e => e.Level == LogLevel.Error, TimeSpan.FromSeconds(10)), log.AllText);
        var applied = Assert.Single(log.Entries, e => e.Level == LogLevel.Information);
        Assert.Equal("UAPI: applied a set request (1 peer section(s))", applied.Message);
        Assert.Contains(applied.State, p => p.Key == "PeerSections" && Equals(p.Value, 1));
        var rejected = Assert.Single(log.Entries, e => e.Level == LogLevel.Error);
        Assert.StartsWith($"IPC error {UapiErrno.Invalid}: ", rejected.Message, StringComparison.Ordinal);
        Assert.DoesNotContain(PrivateHex, log.AllText, StringComparison.Ordinal);
    }

    [Fact]
    public async Task InvalidOperation_LoggedAsError()
    {
        var log = new CapturingLogger();
        using var server = UapiServer.Start("wg0", new UapiConfigStore(), log, socketDirectory: _dir);
        using var socket = new System.Net.Sockets.Socket(System.Net.Sockets.AddressFamily.Unix, System.Net.Sockets.SocketType.Stream, System.Net.Sockets.ProtocolType.Unspecified);
        await socket.ConnectAsync(new System.Net.Sockets.UnixDomainSocketEndPoint(server.SocketPath));

        await socket.SendAsync("frobnicate=1\n\n"u8.ToArray());

        Assert.True(await log.WaitForAsync(e => e.Message.StartsWith("invalid UAPI operation: ", StringComparison.Ordinal) && e.Level == LogLevel.Error, TimeSpan.FromSeconds(10)), log.AllText);
    }
}
