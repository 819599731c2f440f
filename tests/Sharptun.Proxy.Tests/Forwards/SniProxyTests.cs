using System.Net;
using System.Net.Security;
using System.Net.Sockets;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using System.Text;
using Sharptun.Proxy.Config;
using Sharptun.Proxy.Forwards;
using static Sharptun.Proxy.Tests.Forwards.ForwardTestKit;

namespace Sharptun.Proxy.Tests.Forwards;

public sealed class SniProxyTests : IDisposable
{
    private readonly X509Certificate2 _certificate = CreateCertificate("secure.test");

    public void Dispose() => _certificate.Dispose();

    [Fact]
    public async Task RealTlsClient_IsForwardedByItsServerName_AndTheHandshakeCompletesEndToEnd()
    {
        await using var server = new TcpTarget(TlsEchoAsync);
        var network = new LoopbackNetwork();
        network.Names["secure.test"] = IPAddress.Loopback;
        var sni = Create(network, server.Port);
        await using (Run(sni))
        {
            await using var connection = await ConnectAsync(sni.LocalEndPoint!);
            await using var tls = new SslStream(connection);
            await tls.AuthenticateAsClientAsync(ClientOptions("secure.test")).WaitAsync(Patience);
            Assert.Equal("secure.test", ((X509Certificate2)tls.RemoteCertificate!).GetNameInfo(X509NameType.DnsName, false));

            await tls.WriteAsync(Ascii("ping\n"));
            await tls.ShutdownAsync();
            Assert.Equal("pong:ping", Encoding.ASCII.GetString(await ReadToEndAsync(tls)));
            connection.Socket.Shutdown(SocketShutdown.Send);
            await WaitUntilAsync(() => sni.Counters.Open == 0, "the connection to close");
        }

        Assert.Equal(["secure.test"], network.Connects);
        Assert.Equal(1, sni.Counters.Accepted);
        Assert.Equal(0, sni.Counters.Refused);
    }

    [Fact]
    public async Task ClientHelloWithoutServerName_IsRefusedAndCounted()
    {
        var network = new LoopbackNetwork();
        var sni = Create(network, 443);
        await using (Run(sni))
        {
            // .NET sends no server_name for an IP literal (RFC 6066 §3 forbids one).
            await using var connection = await ConnectAsync(sni.LocalEndPoint!);
            await using var tls = new SslStream(connection);
            await Assert.ThrowsAnyAsync<Exception>(() => tls.AuthenticateAsClientAsync(ClientOptions("127.0.0.1")).WaitAsync(Patience));
            await WaitUntilAsync(() => sni.Counters.Refused == 1, "the refusal to be counted");
        }

        Assert.Empty(network.Connects);
        Assert.Equal(0, sni.Counters.Accepted);
    }

    [Theory]
    [InlineData("GET / HTTP/1.1\r\nHost: secure.test\r\n\r\n")]
    [InlineData("\u0016\u0003\u0001\u0000\u0000")]
    [InlineData("\u0016\u0003\u0001\u0000\u0005\u0002\u0000\u0000\u0001\u0000")]
    public async Task MalformedHello_IsClosedAndCounted_WithoutAnyConnect(string garbage)
    {
        var network = new LoopbackNetwork();
        var sni = Create(network, 443);
        await using (Run(sni))
        {
            await using var client = await ConnectAsync(sni.LocalEndPoint!);
            await client.WriteAsync(Encoding.Latin1.GetBytes(garbage));
            Assert.Empty(await TcpClientTunnelTests.ReadToEndOrResetAsync(client));
            await WaitUntilAsync(() => sni.Counters.Refused == 1, "the refusal to be counted");
        }

        Assert.Empty(network.Connects);
    }

    [Fact]
    public async Task HelloThatNeverCompletes_IsDroppedAfterTheHandshakeTimeout()
    {
        var network = new LoopbackNetwork();
        var sni = new SniProxy(
            new SniProxyOptions { BindAddress = new IPEndPoint(IPAddress.Loopback, 0) },
            new ProxyContext(network) { HandshakeTimeout = TimeSpan.FromMilliseconds(300) });
        await using (Run(sni))
        {
            await using var client = await ConnectAsync(sni.LocalEndPoint!);
            await client.WriteAsync(new byte[] { 0x16, 0x03, 0x01 });
            Assert.Empty(await ReadToEndAsync(client));
            Assert.Equal(1, sni.Counters.Refused);
        }
    }

    [Fact]
    public async Task UnresolvableServerName_ClosesClient_AndCountsFailure()
    {
        var sni = Create(new LoopbackNetwork(), 443);
        await using (Run(sni))
        {
            var hello = await CaptureClientHelloAsync("nowhere.test");
            await using var client = await ConnectAsync(sni.LocalEndPoint!);
            await client.WriteAsync(hello);
            Assert.Empty(await ReadToEndAsync(client));
            await WaitUntilAsync(() => sni.Counters.Failed == 1, "the failure to be counted");
        }
    }

    [Fact]
    public async Task FromSection_TargetPortKey_IsWherePeersAreConnected()
    {
        await using var server = new TcpTarget(TlsEchoAsync);
        var network = new LoopbackNetwork();
        network.Names["secure.test"] = IPAddress.Loopback;
        var sni = SniProxy.FromSection(Section($"[SNI]\nBindAddress = 127.0.0.1:0\ntargetport = {server.Port}\n", "SNI"), new ProxyContext(network));
        await using (Run(sni))
        {
            await using var connection = await ConnectAsync(sni.LocalEndPoint!);
            await using var tls = new SslStream(connection);
            await tls.AuthenticateAsClientAsync(ClientOptions("secure.test")).WaitAsync(Patience);
            await tls.WriteAsync(Ascii("ping\n"));
            await tls.ShutdownAsync();
            Assert.Equal("pong:ping", Encoding.ASCII.GetString(await ReadToEndAsync(tls)));
        }

        Assert.Equal(["secure.test"], network.Connects);
    }

    [Theory]
    [InlineData("0")]
    [InlineData("65536")]
    [InlineData("https")]
    public void FromSection_BadTargetPort_IsAnErrorAtItsLine(string value)
    {
        var e = Assert.Throws<ProxyConfigException>(() => SniProxy.FromSection(
            Section($"[SNI]\nBindAddress = 127.0.0.1:8443\nTargetPort = {value}\n", "SNI"), new ProxyContext(new LoopbackNetwork())));
        Assert.Equal(3, e.Line);
    }

    [Fact]
    public void FromSection_ReadsBindAddress_DefaultsToPort443()
    {
        var network = new LoopbackNetwork();
        var sni = SniProxy.FromSection(Section("[SNI]\nBindAddress = 127.0.0.1:8443\n", "SNI"), new ProxyContext(network));
        Assert.Equal("sni", sni.Kind);
        Assert.Equal("127.0.0.1:8443", sni.Endpoint);
        var e = Assert.Throws<ProxyConfigException>(() => SniProxy.FromSection(Section("[SNI]\nBindAddress = 127.0.0.1:8443\nTarget = a:1\n", "SNI"), new ProxyContext(network)));
        Assert.Equal(3, e.Line);
    }

    [Fact]
    public async Task Parser_RealClientHello_FoundInOneRecordOrSplitAcrossRecords_AndEveryPrefixIsIncomplete()
    {
        var hello = await CaptureClientHelloAsync("secure.test");
        Assert.Equal(ClientHelloStatus.Found, TlsClientHello.TryReadServerName(hello, out var name));
        Assert.Equal("secure.test", name);

        for (var length = 0; length < hello.Length; length++)
        {
            Assert.Equal(ClientHelloStatus.Incomplete, TlsClientHello.TryReadServerName(hello.AsSpan(0, length), out _));
        }

        // RFC 8446 §5.1: the same handshake message cut into two records.
        var handshake = hello.AsSpan(5, ((hello[3] << 8) | hello[4])).ToArray();
        var cut = handshake.Length / 3;
        var split = Record(handshake.AsSpan(0, cut)).Concat(Record(handshake.AsSpan(cut))).ToArray();
        Assert.Equal(ClientHelloStatus.Found, TlsClientHello.TryReadServerName(split, out name));
        Assert.Equal("secure.test", name);
    }

    [Theory]
    [InlineData("0.0.0.0-style.test", true)]
    [InlineData("10.0.0.1", false)]
    [InlineData("bad name.test", false)]
    [InlineData("trailing.dot.", false)]
    [InlineData("a..b", false)]
    public void Parser_HostNameRules(string hostName, bool found)
    {
        var expected = found ? ClientHelloStatus.Found : ClientHelloStatus.NoServerName;
        Assert.Equal(expected, TlsClientHello.TryReadServerName(SyntheticHello(Encoding.ASCII.GetBytes(hostName)), out var name));
        Assert.Equal(expected == ClientHelloStatus.Found ? hostName : null, name);
    }

    [Fact]
    public void Parser_DuplicateServerNameExtension_IsMalformed_OversizedLengthsAreMalformed()
    {
        Assert.Equal(ClientHelloStatus.Malformed, TlsClientHello.TryReadServerName(SyntheticHello("a.test"u8.ToArray(), duplicateExtension: true), out _));

        // A handshake length past the limit, a record past 2^14, a record of another content type.
        Assert.Equal(ClientHelloStatus.Malformed, TlsClientHello.TryReadServerName([0x16, 0x03, 0x01, 0x00, 0x04, 0x01, 0x01, 0x00, 0x00], out _));
        Assert.Equal(ClientHelloStatus.Malformed, TlsClientHello.TryReadServerName([0x16, 0x03, 0x01, 0x40, 0x01], out _));
        Assert.Equal(ClientHelloStatus.Malformed, TlsClientHello.TryReadServerName([0x17, 0x03, 0x03, 0x00, 0x10], out _));
    }

    [Fact]
    public async Task Parser_SeededMutations_NeverThrow_AndFoundNamesAreClean()
    {
        var hello = await CaptureClientHelloAsync("secure.test");
        var random = new Random(1066);
        for (var i = 0; i < 20_000; i++)
        {
            var mutated = hello.ToArray();
            for (var flips = random.Next(1, 4); flips > 0; flips--)
            {
                mutated[random.Next(mutated.Length)] = (byte)random.Next(256);
            }

            var cutAt = random.Next(2) == 0 ? mutated.Length : random.Next(mutated.Length);
            var status = TlsClientHello.TryReadServerName(mutated.AsSpan(0, cutAt), out var name);
            if (status == ClientHelloStatus.Found)
            {
                Assert.Matches("^[A-Za-z0-9_.-]+$", name!);
            }
            else
            {
                Assert.Null(name);
            }
        }
    }

    private static SniProxy Create(LoopbackNetwork network, int targetPort) =>
        new(new SniProxyOptions { BindAddress = new IPEndPoint(IPAddress.Loopback, 0), TargetPort = targetPort }, new ProxyContext(network));

    private SslClientAuthenticationOptions ClientOptions(string targetHost) => new()
    {
        TargetHost = targetHost,
        RemoteCertificateValidationCallback = (_, certificate, _, _) =>
            certificate is not null && certificate.GetCertHashString() == _certificate.GetCertHashString(),
    };

    private async Task TlsEchoAsync(NetworkStream stream, CancellationToken cancellationToken)
    {
        await using var tls = new SslStream(stream);
        await tls.AuthenticateAsServerAsync(new SslServerAuthenticationOptions { ServerCertificate = _certificate }, cancellationToken);
        using var all = new MemoryStream();
        await tls.CopyToAsync(all, cancellationToken);
        var line = Encoding.ASCII.GetString(all.ToArray()).TrimEnd('\n');
        await tls.WriteAsync(Ascii("pong:" + line), cancellationToken);
        await tls.ShutdownAsync();
        stream.Socket.Shutdown(SocketShutdown.Send);
    }

    /// <summary>The bytes .NET's TLS client sends first for <paramref name="targetHost"/>.</summary>
    private static async Task<byte[]> CaptureClientHelloAsync(string targetHost)
    {
        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        var connection = await ConnectAsync((IPEndPoint)listener.LocalEndpoint);
        using var accepted = await listener.AcceptSocketAsync();
        var tls = new SslStream(connection);
        var handshake = tls.AuthenticateAsClientAsync(new SslClientAuthenticationOptions { TargetHost = targetHost, RemoteCertificateValidationCallback = (_, _, _, _) => false });
        var buffer = new byte[TlsClientHello.MaxRecordBytes];
        var filled = 0;
        using var timeout = new CancellationTokenSource(Patience);
        while (filled < 5 || filled < 5 + ((buffer[3] << 8) | buffer[4]))
        {
            filled += await accepted.ReceiveAsync(buffer.AsMemory(filled), SocketFlags.None, timeout.Token);
        }

        accepted.Close();
        await Assert.ThrowsAnyAsync<Exception>(() => handshake);
        await tls.DisposeAsync();
        return buffer.AsSpan(0, 5 + ((buffer[3] << 8) | buffer[4])).ToArray();
    }

    private static byte[] Record(ReadOnlySpan<byte> fragment) =>
        [0x16, 0x03, 0x01, (byte)(fragment.Length >> 8), (byte)fragment.Length, .. fragment];

    /// <summary>A minimal TLS 1.2-shaped ClientHello with one server_name host_name (or two extensions of it).</summary>
    private static byte[] SyntheticHello(byte[] hostName, bool duplicateExtension = false)
    {
        byte[] serverNameList = [0x00, (byte)(hostName.Length >> 8), (byte)hostName.Length, .. hostName];
        byte[] extensionData = [(byte)(serverNameList.Length >> 8), (byte)serverNameList.Length, .. serverNameList];
        byte[] extension = [0x00, 0x00, (byte)(extensionData.Length >> 8), (byte)extensionData.Length, .. extensionData];
        byte[] extensions = duplicateExtension ? [.. extension, .. extension] : extension;
        byte[] body =
        [
            0x03, 0x03, .. new byte[32], 0x00, 0x00, 0x02, 0x13, 0x01, 0x01, 0x00,
            (byte)(extensions.Length >> 8), (byte)extensions.Length, .. extensions,
        ];
        byte[] handshake = [0x01, (byte)(body.Length >> 16), (byte)(body.Length >> 8), (byte)body.Length, .. body];
        return Record(handshake);
    }

    private static X509Certificate2 CreateCertificate(string name)
    {
        using var key = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        var request = new CertificateRequest($"CN={name}", key, HashAlgorithmName.SHA256);
        var san = new SubjectAlternativeNameBuilder();
        san.AddDnsName(name);
        request.CertificateExtensions.Add(san.Build());
        using var certificate = request.CreateSelfSigned(DateTimeOffset.UtcNow.AddDays(-1), DateTimeOffset.UtcNow.AddDays(1));
        return X509CertificateLoader.LoadPkcs12(certificate.Export(X509ContentType.Pfx), null);
    }
}
