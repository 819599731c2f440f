using System.Text;
using Microsoft.Extensions.Logging;
using Sharptun.Device.Config;
using Sharptun.Device.Uapi;
using Sharptun.Testing.Logging;

namespace Sharptun.Device.Tests.Uapi;

/// <summary>
/// Issue 7 item 11: errors from bad UAPI requests and config files never carry a key: not the value of a key field,
/// not a line without '=' (a bare key), not the part before '=' of a bare base64 key, not a key pasted into another
/// field. Checked on the error text and on everything the UAPI server hands its ILogger (messages, structured
/// values, exceptions), at every level.
/// </summary>
[System.Runtime.Versioning.UnsupportedOSPlatform("windows")]
public sealed class SecretLoggingTests : IDisposable
{
    private const string PeerHex = "58402e695ba1772b1cc9309755f043251ea77fdcf10fbe63989ceb7e19321376";

    // A private key in the encodings a user may paste: hex (UAPI), base64 (wg), base64 without its '=' padding.
    private const string SecretHex = "e84b5a6d2717c1003a13b431570353dbaca9146cf150c5f8575680feba52027a";
    private static readonly string SecretBase64 = Convert.ToBase64String(Convert.FromHexString(SecretHex));

    private readonly string _dir = Path.Combine("/tmp", "sts-" + Guid.NewGuid().ToString("N")[..10]);

    public static TheoryData<string> BadSetRequests() => new(BadSetBodies());

    private static string[] BadSetBodies()
    {
        var b64 = SecretBase64;
        return
        [
            $"private_key={SecretHex[..^1]}\n",               // one digit short
            $"private_key={SecretHex}0\n",                    // one digit long
            $"private_key={b64}\n",                           // base64 where hex belongs
            $"private_key={SecretHex[..40]}zz{SecretHex[42..]}\n",
            $"{SecretHex}\n",                                 // a bare key: no '='
            $"{b64}\n",                                       // a bare base64 key: its padding '=' ends "KEY="
            $"{b64.TrimEnd('=')}\n",
            $"listen_port=1\nfwmark={SecretHex}\n",
            $"public_key={PeerHex}\npreshared_key={SecretHex[..^2]}\n",
            $"public_key={PeerHex}\npreshared_key={b64}\n",
            $"public_key={PeerHex}\nendpoint={SecretHex}\n",
            $"public_key={PeerHex}\nallowed_ip={b64}\n",
            $"public_key={PeerHex}\npersistent_keepalive_interval={SecretHex}\n",
            $"public_key={PeerHex}\nprotocol_version={SecretHex}\n",
            $"public_key={PeerHex}\nremove={SecretHex}\n",
            $"public_key={SecretHex[..^1]}\n",                // a private key pasted as a peer
            $"{SecretHex}=1\n",
            $"public_key={PeerHex}\n{b64}\n",
        ];
    }

    public void Dispose()
    {
        if (Directory.Exists(_dir))
        {
            Directory.Delete(_dir, recursive: true);
        }
    }

    [Theory]
    [MemberData(nameof(BadSetRequests))]
    public void TryParseSet_BadLineWithKeyMaterial_ErrorHoldsNoKey(string body)
    {
        Assert.False(UapiParser.TryParseSet(body, out _, out var error));

        AssertNoSecret(error!.ToString());
        AssertNoSecret(error.Message);
    }

    [Fact]
    public async Task UapiServer_BadSetRequestsWithKeys_ErrorLogHoldsNoKey()
    {
        var log = new CapturingLogger();
        using var server = UapiServer.Start("wg0", new UapiConfigStore(), log, socketDirectory: _dir);
        var requests = BadSetBodies();

        foreach (var body in requests)
        {
            Assert.NotEqual(UapiErrno.None, await UapiClient.SetAsync(server.SocketPath, body));
        }

        var text = log.AllText;
        Assert.True(log.Entries.Count(e => e.Level == LogLevel.Error) >= requests.Length, text); // every bad request was logged ...
        AssertNoSecret(text); // ... without the key, in the message or a structured value
    }

    [Theory]
    [InlineData("private_key={hex}\n\n")]        // a set body without its set=1 line: logged as an invalid operation
    [InlineData("{b64}\n\n")]
    [InlineData("get=1\nprivate_key={hex}\n\n")] // trailing characters after get=1
    public async Task UapiServer_BadOperationLineWithKey_ErrorLogHoldsNoKey(string request)
    {
        var log = new CapturingLogger();
        using var server = UapiServer.Start("wg0", new UapiConfigStore(), log, socketDirectory: _dir);
        using var socket = new System.Net.Sockets.Socket(System.Net.Sockets.AddressFamily.Unix, System.Net.Sockets.SocketType.Stream, System.Net.Sockets.ProtocolType.Unspecified);
        await socket.ConnectAsync(new System.Net.Sockets.UnixDomainSocketEndPoint(server.SocketPath));

        await socket.SendAsync(Encoding.ASCII.GetBytes(request.Replace("{b64}", SecretBase64, StringComparison.Ordinal).Replace("{hex}", SecretHex, StringComparison.Ordinal)));
        var buffer = new byte[256];
        using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(10));
        try
        {
            while (await socket.ReceiveAsync(buffer, System.Net.Sockets.SocketFlags.None, cts.Token) > 0)
            {
            }
        }
        catch (System.Net.Sockets.SocketException)
        {
            // closed by the server
        }

        Assert.True(await log.WaitForAsync(e => e.Level == LogLevel.Error, TimeSpan.FromSeconds(10)), log.AllText);
        AssertNoSecret(log.AllText);
    }

    [Theory]
    [InlineData("PrivateKey = {b64}x")]
    [InlineData("PrivateKey = {hex}")]
    [InlineData("{b64}")]
    [InlineData("{hex}")]
    [InlineData("ListenPort = {b64}")]
    [InlineData("FwMark = {hex}")]
    [InlineData("Address = {b64}")]
    [InlineData("MTU = {hex}")]
    [InlineData("[{b64}]")]
    [InlineData("[Peer]\nPublicKey = " + "{b64}\nPresharedKey = {b64}x")]
    [InlineData("[Peer]\nPublicKey = " + "{b64}\nEndpoint = {b64}")]
    [InlineData("[Peer]\nPublicKey = " + "{b64}\nAllowedIPs = {hex}")]
    [InlineData("[Peer]\nPublicKey = " + "{b64}\nPersistentKeepalive = {b64}")]
    public void WgConfigParser_BadLineWithKeyMaterial_ErrorHoldsNoKey(string line)
    {
        // The public key in the [Peer] rows is the secret too: any key in a bad row must stay out of the errors.
        var body = line.Replace("{b64}", SecretBase64, StringComparison.Ordinal).Replace("{hex}", SecretHex, StringComparison.Ordinal);
        var text = "[Interface]\n" + body + "\n";

        Assert.False(WgConfigParser.TryParse(text, "wg0.conf", out _, out var errors));

        Assert.NotEmpty(errors);
        foreach (var error in errors)
        {
            AssertNoSecret(error.ToString());
        }
    }

    [Fact]
    public void Redaction_KeepsOrdinaryValuesReadable()
    {
        Assert.Equal("[fd00::1]:51820", Redaction.Text("[fd00::1]:51820"));
        Assert.Equal("10.0.0.0/33", Redaction.Text("10.0.0.0/33"));
        Assert.Equal("vpn.example.com:51820", Redaction.Text("vpn.example.com:51820"));
        Assert.Equal("bogus_key", Redaction.Text("bogus_key"));
        Assert.DoesNotContain(SecretHex[..16], Redaction.Text(SecretHex[..16]), StringComparison.Ordinal);
    }

    /// <summary>No 12-character piece of the key (in any encoding) appears in <paramref name="text"/>.</summary>
    private static void AssertNoSecret(string text)
    {
        foreach (var secret in new[] { SecretHex, SecretBase64 })
        {
            for (var i = 0; i + 12 <= secret.Length; i++)
            {
                Assert.False(text.Contains(secret.Substring(i, 12), StringComparison.OrdinalIgnoreCase), $"key material in: {text}");
            }
        }
    }
}
