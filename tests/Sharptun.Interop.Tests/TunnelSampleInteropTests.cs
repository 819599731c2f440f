using System.Buffers.Binary;
using System.Diagnostics;
using System.Globalization;
using System.Net;
using System.Net.Sockets;
using System.Reflection;
using System.Runtime.Versioning;
using System.Security.Cryptography;
using System.Text;
using Xunit.Abstractions;

namespace Sharptun.Interop.Tests;

/// <summary>
/// Issue 9: the in-process tunnel (<c>WireGuardTunnel</c>, through the sample samples/FetchThroughTunnel) against
/// Debian's wireguard-go with kernel TCP behind it. wireguard-go and a kernel-socket HTTP server run in namespace S;
/// the sample runs in namespace C as uid/gid 65534 (setpriv, no groups, no capabilities: no TUN, no root) with a
/// wg-quick config it owns, and fetches through the tunnel with HttpClient.
/// </summary>
[SupportedOSPlatform("linux")]
public sealed class TunnelSampleInteropTests(ITestOutputHelper output)
{
    private static readonly TimeSpan SmallTimeout = TimeSpan.FromSeconds(90);
    private static readonly TimeSpan LargeTimeout = TimeSpan.FromMinutes(5);

    [InteropFact("wireguard-go", "wg", "setpriv")]
    public void UnprivilegedSample_HttpGet_ExactBody_404AndUnknownServerKeyFail()
    {
        using var lab = new NetnsLab();
        using var setup = new Setup(lab);

        var file = Path.Combine(setup.ClientHome, "small.bin");
        var ok = setup.RunSample(SmallTimeout, setup.Url("/bytes/1048583"), "--output", file, "--sha256");
        var missing = setup.RunSample(SmallTimeout, setup.Url("/missing"));
        var wrongKey = setup.RunSampleWithWrongServerKey(SmallTimeout, setup.Url("/bytes/1"), "--connect-timeout", "3");

        Assert.True(ok.Success, $"{ok}\n{setup.Describe()}");
        Assert.Contains("status: 200 OK", ok.Stdout, StringComparison.Ordinal);
        Assert.Contains("bytes: 1048583\n", ok.Stdout, StringComparison.Ordinal);
        var body = File.ReadAllBytes(file);
        Assert.Equal(1048583, body.Length);
        Assert.True(body.AsSpan().SequenceEqual(PseudoRandom.Bytes(1048583)), "the body differs from what the server sent");
        Assert.Contains("sha256: " + Convert.ToHexStringLower(SHA256.HashData(body)), ok.Stdout, StringComparison.Ordinal);
        Assert.Equal(Unprivileged.Id, FileOwner(file)); // written by the unprivileged process
        Assert.Equal(1, missing.ExitCode);
        Assert.Contains("status: 404", missing.Stdout, StringComparison.Ordinal);

        // wireguard-go ignores handshakes for a key it does not know: the sample gives up after its connect timeout.
        Assert.Equal(1, wrongKey.ExitCode);
        Assert.Contains("error: cancelled", wrongKey.Stderr, StringComparison.Ordinal);
    }

    [InteropFact("wireguard-go", "wg", "setpriv")]
    public void UnprivilegedSample_Downloads1GiBFromKernelTcpBehindWireguardGo_Sha256Matches()
    {
        const long size = 1L << 30;
        using var lab = new NetnsLab();
        using var setup = new Setup(lab);

        var process = setup.StartSample(setup.Url("/bytes/" + size.ToString(CultureInfo.InvariantCulture)), "--sha256");
        var uidSeen = Unprivileged.WaitForDotnetIds(process.Id, SmallTimeout, () => process.HasExited);
        Assert.True(process.WaitForExit(LargeTimeout), $"the sample did not finish in {LargeTimeout}\n{setup.Describe()}");
        process.WaitForExit();
        var text = lab.OutputOf(process);
        output.WriteLine(text);

        Assert.True(process.ExitCode == 0, $"exit {process.ExitCode}\n{setup.Describe()}");
        Assert.Equal($"{Unprivileged.Id} {Unprivileged.Id}", uidSeen);
        Assert.Contains($"bytes: {size}\n", text, StringComparison.Ordinal);
        var sent = setup.Server.HashOf(size);
        Assert.Contains("sha256: " + sent, text, StringComparison.Ordinal);
    }

    private static int FileOwner(string path)
    {
        using var stat = Process.Start(new ProcessStartInfo("stat", ["-c", "%u", path]) { RedirectStandardOutput = true })!;
        var text = stat.StandardOutput.ReadToEnd();
        stat.WaitForExit();
        return int.Parse(text.Trim(), CultureInfo.InvariantCulture);
    }

    /// <summary>The two namespaces, wireguard-go, the HTTP server and the sample's private copy and config.</summary>
    private sealed class Setup : IDisposable
    {
        private const int ListenPort = 51820;
        private const int HttpPort = 8080;
        private readonly NetnsLab _lab;
        private readonly string _serverNs;
        private readonly string _clientNs;
        private readonly string _ifname;
        private readonly string _sampleDll;
        private readonly string _configPath;

        public Setup(NetnsLab lab)
        {
            _lab = lab;
            _serverNs = lab.AddNamespace();
            _clientNs = lab.AddNamespace();
            var veth = lab.AddVeth(_serverNs, _clientNs);
            var link = lab.NewSubnet();
            var tunnel = lab.NewSubnet();
            lab.AddAddress(_serverNs, veth.InterfaceA, link.V4Cidr(1));
            lab.AddAddress(_clientNs, veth.InterfaceB, link.V4Cidr(2));
            ServerAddress = tunnel.V4(1);

            // wireguard-go in S, configured with wg; the client's key pair is made here, the way a user's config is.
            var (serverPrivate, serverPublic) = WireguardGo.KeyPair();
            var (clientPrivate, clientPublic) = WireguardGo.KeyPair();
            _ifname = WireguardGo.Start(
                lab,
                _serverNs,
                'w',
                serverPrivate,
                ["listen-port", ListenPort.ToString(CultureInfo.InvariantCulture), "peer", clientPublic, "allowed-ips", tunnel.V4(2) + "/32"],
                [tunnel.V4Cidr(1)]);
            Server = new KernelHttpServer(NetnsLab.RunInNamespace(_serverNs, () =>
            {
                var s = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
                s.Bind(new IPEndPoint(IPAddress.Parse(ServerAddress), HttpPort));
                s.Listen(16);
                return s;
            }));

            // The sample's build output copied where uid 65534 can read it (the artifacts folder may be under /root),
            // its HOME, and its config: owned by 65534, mode 0600, as a user keeps a private key.
            var root = Unprivileged.ReadableDirectory(Path.Combine(lab.TempDirectory, "nobody"));
            SampleDirectory = Path.Combine(root, "app");
            ClientHome = Path.Combine(root, "home");
            Directory.CreateDirectory(ClientHome);
            var built = typeof(TunnelSampleInteropTests).Assembly.GetCustomAttributes<AssemblyMetadataAttribute>()
                .Single(a => a.Key == "FetchThroughTunnelDirectory").Value!;
            Assert.True(File.Exists(Path.Combine(built, "FetchThroughTunnel.dll")), $"the sample is not built in {built}");
            // assemblies, deps/runtimeconfig and native libraries (runtimes/RID/native/libsodium.so)
            Unprivileged.CopyProgram(built, SampleDirectory);
            _sampleDll = Path.Combine(SampleDirectory, "FetchThroughTunnel.dll");
            _configPath = Path.Combine(ClientHome, "wg0.conf");
            File.WriteAllText(_configPath,
                "[Interface]\n" +
                $"PrivateKey = {clientPrivate}\n" +
                $"Address = {tunnel.V4(2)}/32\n\n" +
                "[Peer]\n" +
                $"PublicKey = {serverPublic}\n" +
                $"Endpoint = {link.V4(1)}:{ListenPort}\n" +
                $"AllowedIPs = {tunnel.V4(1)}/32\n");
            File.SetUnixFileMode(_configPath, UnixFileMode.UserRead | UnixFileMode.UserWrite);
            Unprivileged.OpenWayDown(lab.TempDirectory);
            Unprivileged.OwnHome(lab, ClientHome);
        }

        public string ServerAddress { get; }

        public string SampleDirectory { get; }

        public string ClientHome { get; }

        public KernelHttpServer Server { get; }

        public string Url(string path) => $"http://{ServerAddress}:{HttpPort}{path}";

        public CommandResult RunSample(TimeSpan timeout, params string[] args) =>
            _lab.Exec(_clientNs, timeout, "setpriv", [.. SampleCommand(args)]);

        /// <summary>Runs the sample with a copy of its config naming another server public key (no handshake can complete).</summary>
        public CommandResult RunSampleWithWrongServerKey(TimeSpan timeout, params string[] args)
        {
            var wrong = Path.Combine(ClientHome, "wrong.conf");
            var text = File.ReadAllLines(_configPath).Select(l => l.StartsWith("PublicKey = ", StringComparison.Ordinal) ? "PublicKey = " + WireguardGo.KeyPair().Public : l);
            File.WriteAllLines(wrong, text);
            File.SetUnixFileMode(wrong, UnixFileMode.UserRead | UnixFileMode.UserWrite);
            _lab.Check(null, "chown", $"{Unprivileged.Id}:{Unprivileged.Id}", wrong);
            var command = SampleCommand(args).Select(a => a == _configPath ? wrong : a);
            return _lab.Exec(_clientNs, timeout, "setpriv", [.. command]);
        }

        public Process StartSample(params string[] args) => _lab.Start(_clientNs, "setpriv", [.. SampleCommand(args)]);

        public string Describe() =>
            $"{_lab.Exec(_serverNs, "wg", "show", _ifname).Stdout}\nserver: {Server.Describe()}\n{_lab.DescribeProcesses()}";

        public void Dispose() => Server.Dispose();

        private string[] SampleCommand(string[] args) => Unprivileged.DotnetCommand(ClientHome, _sampleDll, [_configPath, .. args]);
    }
}

/// <summary>
/// Deterministic pseudo-random bytes (xorshift64*, seeded by the 64 KiB block index): the same offset always holds the
/// same byte, and no block repeats another, so a reordered, dropped or duplicated segment changes the hash.
/// </summary>
internal static class PseudoRandom
{
    public const int BlockSize = 64 * 1024;

    /// <summary>Fills <paramref name="block"/> (<see cref="BlockSize"/> bytes) with block number <paramref name="index"/>.</summary>
    public static void Fill(long index, Span<byte> block)
    {
        var x = 0x9E3779B97F4A7C15UL ^ (ulong)(index + 1) * 0xBF58476D1CE4E5B9UL;
        for (var i = 0; i + 8 <= block.Length; i += 8)
        {
            x ^= x >> 12;
            x ^= x << 25;
            x ^= x >> 27;
            BinaryPrimitives.WriteUInt64LittleEndian(block[i..], x * 0x2545F4914F6CDD1DUL);
        }
    }

    /// <summary>The first <paramref name="length"/> bytes of the stream.</summary>
    public static byte[] Bytes(int length)
    {
        var result = new byte[length];
        var block = new byte[BlockSize];
        for (var offset = 0; offset < length; offset += BlockSize)
        {
            Fill(offset / BlockSize, block);
            block.AsSpan(0, Math.Min(BlockSize, length - offset)).CopyTo(result.AsSpan(offset));
        }

        return result;
    }
}

/// <summary>
/// A minimal HTTP/1.1 server on a kernel TCP listener: <c>GET /bytes/N</c> answers N bytes of <see cref="PseudoRandom"/>
/// with Content-Length (hashing what it sends, see <see cref="HashOf"/>); anything else is 404. One request per
/// connection (<c>Connection: close</c>).
/// </summary>
internal sealed class KernelHttpServer : IDisposable
{
    private readonly Socket _listener;
    private readonly CancellationTokenSource _stop = new();
    private readonly Task _accept;
    private readonly Dictionary<long, string> _hashes = [];
    private readonly List<string> _log = [];

    public KernelHttpServer(Socket listener)
    {
        _listener = listener;
        _accept = Task.Run(AcceptLoop);
    }

    /// <summary>The SHA-256 (hex) of the last completed body of <paramref name="size"/> bytes, or "none".</summary>
    public string HashOf(long size)
    {
        lock (_hashes)
        {
            return _hashes.TryGetValue(size, out var h) ? h : "none";
        }
    }

    public string Describe()
    {
        lock (_log)
        {
            return string.Join("; ", _log);
        }
    }

    public void Dispose()
    {
        _stop.Cancel();
        _listener.Dispose();
        _accept.Wait(TimeSpan.FromSeconds(5));
        _stop.Dispose();
    }

    private async Task AcceptLoop()
    {
        while (!_stop.IsCancellationRequested)
        {
            Socket client;
            try
            {
                client = await _listener.AcceptAsync(_stop.Token);
            }
            catch (Exception e) when (e is OperationCanceledException or SocketException or ObjectDisposedException)
            {
                return;
            }

            _ = Task.Run(() => Serve(client));
        }
    }

    private async Task Serve(Socket client)
    {
        using var _ = client;
        try
        {
            await using var stream = new NetworkStream(client, ownsSocket: false);
            var request = new StringBuilder();
            var one = new byte[1];
            while (!request.ToString().EndsWith("\r\n\r\n", StringComparison.Ordinal) && request.Length < 8192)
            {
                if (await stream.ReadAsync(one, _stop.Token) == 0)
                {
                    return;
                }

                request.Append((char)one[0]);
            }

            var target = request.ToString().Split(' ', 3) is [_, var t, _] ? t : "";
            Log($"request {target}");
            if (!target.StartsWith("/bytes/", StringComparison.Ordinal) || !long.TryParse(target["/bytes/".Length..], NumberStyles.None, CultureInfo.InvariantCulture, out var size))
            {
                await stream.WriteAsync("HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"u8.ToArray(), _stop.Token);
                return;
            }

            await stream.WriteAsync(Encoding.ASCII.GetBytes(
                $"HTTP/1.1 200 OK\r\nContent-Type: application/octet-stream\r\nContent-Length: {size}\r\nConnection: close\r\n\r\n"), _stop.Token);
            using var hash = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
            var block = new byte[PseudoRandom.BlockSize];
            for (long offset = 0, index = 0; offset < size; offset += PseudoRandom.BlockSize, index++)
            {
                PseudoRandom.Fill(index, block);
                var n = (int)Math.Min(PseudoRandom.BlockSize, size - offset);
                hash.AppendData(block, 0, n);
                await stream.WriteAsync(block.AsMemory(0, n), _stop.Token);
            }

            client.Shutdown(SocketShutdown.Send);
            lock (_hashes)
            {
                _hashes[size] = Convert.ToHexStringLower(hash.GetHashAndReset());
            }

            Log($"sent {size}");
        }
        catch (Exception e) when (e is IOException or SocketException or OperationCanceledException or ObjectDisposedException)
        {
            Log($"connection failed: {e.Message}");
        }
    }

    private void Log(string line)
    {
        lock (_log)
        {
            _log.Add(line);
        }
    }
}
