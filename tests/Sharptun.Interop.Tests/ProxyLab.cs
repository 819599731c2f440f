using System.Diagnostics;
using System.Globalization;
using System.Net;
using System.Net.Sockets;
using System.Runtime.Versioning;
using System.Security.Cryptography;
using System.Text;

namespace Sharptun.Interop.Tests;

/// <summary>
/// The world `sharptun proxy` and its front-ends are tested in (issue 10): two namespaces joined by a veth.
/// <list type="bullet">
/// <item>S (the "server"): Debian's wireguard-go with a kernel TUN holding tunnel addresses <see cref="ServerV4"/> and
/// <see cref="ServerV6"/>; behind it, reachable only through the tunnel: nginx on port <see cref="HttpPort"/> of both
/// (static files under <see cref="WebRoot"/>; <c>PUT /upload/NAME</c> stores into <see cref="UploadDirectory"/>;
/// <c>POST /echo</c> answers the request body; <c>GET /ip</c> answers the client's address), a UDP echo on port
/// <see cref="UdpEchoPort"/> of both addresses (<see cref="UdpEcho"/>), and dnsmasq on <see cref="ServerV4"/>:53
/// answering <see cref="WebName"/> with both addresses (everything else NXDOMAIN: nothing leaks to a real resolver).</item>
/// <item>C (the "client"): only the veth. The proxy runs here as uid/gid 65534 (setpriv: no groups, no capabilities,
/// so no TUN and no root) from a private copy of the CLI, with a config it owns (<see cref="WriteConfig"/>);
/// tools like curl run here as root, as a user's applications would.</item>
/// </list>
/// The config the proxy gets starts with <see cref="InterfaceAndPeer"/> (wireproxy's inline form, <c>DNS</c> =
/// dnsmasq); tests append their front-end sections.
/// </summary>
[SupportedOSPlatform("linux")]
internal sealed class ProxyLab : IDisposable
{
    public const int HttpPort = 80;
    public const int UdpEchoPort = 7;
    public const string WebName = "web.test";
    private const int ListenPort = 51820;

    private readonly NetnsLab _lab;
    private readonly string _ifname;
    private readonly string _serverPublic;
    private readonly string _clientPrivate;
    private readonly string _linkServer;

    public ProxyLab(NetnsLab lab)
    {
        _lab = lab;
        ServerNs = lab.AddNamespace();
        ClientNs = lab.AddNamespace();
        var veth = lab.AddVeth(ServerNs, ClientNs);
        var link = lab.NewSubnet();
        var tunnel = lab.NewSubnet();
        lab.AddAddress(ServerNs, veth.InterfaceA, link.V4Cidr(1));
        lab.AddAddress(ClientNs, veth.InterfaceB, link.V4Cidr(2));
        _linkServer = link.V4(1);
        ServerV4 = tunnel.V4(1);
        ServerV6 = tunnel.V6(1);
        ClientV4 = tunnel.V4(2);
        ClientV6 = tunnel.V6(2);

        (var serverPrivate, _serverPublic) = WireguardGo.KeyPair();
        (_clientPrivate, ClientPublicKey) = WireguardGo.KeyPair();
        _ifname = WireguardGo.Start(
            lab,
            ServerNs,
            'w',
            serverPrivate,
            ["listen-port", ListenPort.ToString(CultureInfo.InvariantCulture), "peer", ClientPublicKey, "allowed-ips", $"{ClientV4}/32,{ClientV6}/128"],
            [tunnel.V4Cidr(1), tunnel.V6Cidr(1)]);

        Root = Path.Combine(lab.TempDirectory, "proxylab");
        WebRoot = Path.Combine(Root, "www");
        UploadDirectory = Path.Combine(Root, "uploads");
        ClientHome = Path.Combine(Root, "home");
        Directory.CreateDirectory(WebRoot);
        Directory.CreateDirectory(UploadDirectory);
        Directory.CreateDirectory(ClientHome);
        File.WriteAllText(Path.Combine(WebRoot, "hello.txt"), "hello through the tunnel\n");
        StartNginx();
        StartDnsmasq();
        UdpEcho = new UdpEchoServer(NetnsLab.RunInNamespace(ServerNs, () => UdpEchoServer.Bind(ServerV4, ServerV6, UdpEchoPort)));

        // Searchable by uid 65534 all the way down; the home owned by it, 0700, as a user's home is.
        Unprivileged.OpenWayDown(Root);
        Unprivileged.OwnHome(lab, ClientHome);
    }

    public NetnsLab Lab => _lab;

    /// <summary>wireguard-go's interface in S (for <c>wg show</c>).</summary>
    public string ServerInterface => _ifname;

    public string ServerNs { get; }

    public string ClientNs { get; }

    /// <summary>wireguard-go's tunnel addresses (nginx, the UDP echo and dnsmasq listen here).</summary>
    public string ServerV4 { get; }

    public string ServerV6 { get; }

    /// <summary>The proxy's tunnel addresses (the config's <c>Address</c>).</summary>
    public string ClientV4 { get; }

    public string ClientV6 { get; }

    public string ClientPublicKey { get; }

    /// <summary>The lab's folder (searchable by uid 65534).</summary>
    public string Root { get; }

    public string WebRoot { get; }

    public string UploadDirectory { get; }

    /// <summary>The proxy user's home (owned by 65534, 0700): configs go here.</summary>
    public string ClientHome { get; }

    public UdpEchoServer UdpEcho { get; }

    /// <summary>The <c>[Interface]</c> and <c>[Peer]</c> sections of a wireproxy config for this lab.</summary>
    public string InterfaceAndPeer =>
        "[Interface]\n" +
        $"PrivateKey = {_clientPrivate}\n" +
        $"Address = {ClientV4}/32\n" +
        $"Address = {ClientV6}/128\n" +
        $"DNS = {ServerV4}\n\n" +
        "[Peer]\n" +
        $"PublicKey = {_serverPublic}\n" +
        $"Endpoint = {_linkServer}:{ListenPort}\n" +
        $"AllowedIPs = {ServerV4}/32, {ServerV6}/128\n" +
        "PersistentKeepalive = 25\n\n";

    /// <summary>The same two sections as a separate wg-quick file (for <c>WGConfig =</c>).</summary>
    public string WgQuickText => InterfaceAndPeer;

    /// <summary>URL of a path on nginx by IPv4 address.</summary>
    public string Url(string path) => $"http://{ServerV4}:{HttpPort}{path}";

    /// <summary>URL of a path on nginx by IPv6 address.</summary>
    public string Url6(string path) => $"http://[{ServerV6}]:{HttpPort}{path}";

    /// <summary>URL of a path on nginx by the name only the tunnel's DNS knows.</summary>
    public string UrlByName(string path) => $"http://{WebName}:{HttpPort}{path}";

    /// <summary>Writes <paramref name="text"/> as <paramref name="name"/> in the proxy user's home, owned by it, mode 0600; returns the path.</summary>
    public string WriteConfig(string name, string text)
    {
        var path = Path.Combine(ClientHome, name);
        File.WriteAllText(path, text);
        File.SetUnixFileMode(path, UnixFileMode.UserRead | UnixFileMode.UserWrite);
        _lab.Check(null, "chown", $"{Unprivileged.Id}:{Unprivileged.Id}", path);
        return path;
    }

    /// <summary>
    /// A file of <paramref name="size"/> random bytes served by nginx as <c>/NAME</c>; returns its SHA-256 (hex).
    /// Written in 1 MiB blocks (a 1 GiB file takes a few seconds).
    /// </summary>
    public string CreateFile(string name, long size)
    {
        var path = Path.Combine(WebRoot, name);
        using var sha = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
        using (var file = File.Create(path))
        {
            var block = new byte[1 << 20];
            for (long written = 0; written < size; written += block.Length)
            {
                var n = (int)Math.Min(block.Length, size - written);
                RandomNumberGenerator.Fill(block.AsSpan(0, n));
                file.Write(block, 0, n);
                sha.AppendData(block, 0, n);
            }
        }

        File.SetUnixFileMode(path, (UnixFileMode)0b110_100_100);
        return Convert.ToHexStringLower(sha.GetHashAndReset());
    }

    /// <summary>The SHA-256 (hex) of a file, e.g. an upload nginx stored in <see cref="UploadDirectory"/>.</summary>
    public static string HashOf(string path)
    {
        using var file = File.OpenRead(path);
        return Convert.ToHexStringLower(SHA256.HashData(file));
    }

    /// <summary>The command that runs <c>sharptun ARGS</c> as uid 65534 in namespace C (for <see cref="NetnsLab.Start(string?, string, string[])"/> etc.).</summary>
    public string[] SharptunCommand(params string[] args) =>
        Unprivileged.DotnetCommand(ClientHome, Path.Combine(Unprivileged.TestOutputCopy, "sharptun.dll"), args);

    /// <summary>Starts <c>sharptun proxy -c CONFIG ARGS</c> as uid 65534 in namespace C (killed when the lab is disposed).</summary>
    public Process StartProxy(string configPath, params string[] args) =>
        _lab.Start(ClientNs, "setpriv", SharptunCommand(["proxy", "-c", configPath, .. args]));

    /// <summary>Runs <c>sharptun ARGS</c> as uid 65534 in namespace C to completion.</summary>
    public CommandResult RunSharptun(TimeSpan timeout, params string[] args) =>
        _lab.Exec(ClientNs, timeout, "setpriv", SharptunCommand(args));

    /// <summary>Runs <c>sharptun ARGS</c> as uid 65534 in namespace C with <paramref name="stdin"/> as its input.</summary>
    public CommandResult RunSharptunWithInput(string stdin, params string[] args) =>
        _lab.ExecWithInput(ClientNs, stdin, "setpriv", SharptunCommand(args));

    /// <summary>Waits until something listens on TCP <paramref name="port"/> in namespace C (or <paramref name="process"/> exits).</summary>
    public void WaitForTcpListener(int port, Process process, TimeSpan? timeout = null) =>
        _lab.WaitFor(
            () => process.HasExited || _lab.Exec(ClientNs, "ss", "-Hltn", $"sport = :{port}").Stdout.Contains(':' + port.ToString(CultureInfo.InvariantCulture), StringComparison.Ordinal),
            timeout ?? TimeSpan.FromSeconds(30),
            $"a TCP listener on port {port} in the client namespace\n{_lab.OutputOf(process)}");

    /// <summary>Waits until wireguard-go has completed a handshake with the proxy.</summary>
    public void WaitForHandshake(Process process, TimeSpan? timeout = null) =>
        _lab.WaitFor(
            () => process.HasExited || LatestHandshake() > 0,
            timeout ?? TimeSpan.FromSeconds(30),
            $"a handshake between wireguard-go and the proxy\n{_lab.OutputOf(process)}");

    /// <summary>Unix time of wireguard-go's latest handshake with the proxy's key (0: none).</summary>
    public long LatestHandshake()
    {
        var line = _lab.Exec(ServerNs, "wg", "show", _ifname, "latest-handshakes").Stdout
            .Split('\n').FirstOrDefault(l => l.StartsWith(ClientPublicKey, StringComparison.Ordinal));
        return line is null ? 0 : long.Parse(line.Split('\t')[1].Trim(), CultureInfo.InvariantCulture);
    }

    /// <summary>Runs curl in namespace C (as root: the proxy's user is the one under test). Adds <c>-sS</c>.</summary>
    public CommandResult Curl(TimeSpan timeout, params string[] args) =>
        _lab.Exec(ClientNs, timeout, "curl", ["-sS", .. args]);

    /// <summary>wg show of wireguard-go, nginx's error log and the lab's processes, for assertion messages.</summary>
    public string Describe()
    {
        var nginxLog = Path.Combine(Root, "nginx-error.log");
        return $"{_lab.Exec(ServerNs, "wg", "show", _ifname).Stdout}\nnginx: {(File.Exists(nginxLog) ? File.ReadAllText(nginxLog) : "")}\n" +
            $"udp echo: {UdpEcho.Echoed} datagrams\n{_lab.DescribeProcesses()}";
    }

    public void Dispose() => UdpEcho.Dispose();

    private void StartNginx()
    {
        var conf = Path.Combine(Root, "nginx.conf");
        var temp = Path.Combine(Root, "nginx-temp");
        Directory.CreateDirectory(temp);
        var echoModule = Directory.Exists("/etc/nginx/modules-enabled") ? "include /etc/nginx/modules-enabled/*.conf;\n" : "";
        File.WriteAllText(conf,
            echoModule +
            "user root;\nworker_processes 1;\ndaemon off;\n" +
            $"pid {Root}/nginx.pid;\nerror_log {Root}/nginx-error.log warn;\n" +
            "events { worker_connections 4096; }\n" +
            "http {\n" +
            "  access_log off;\n  sendfile on;\n  tcp_nopush on;\n  default_type application/octet-stream;\n" +
            $"  client_body_temp_path {temp}/body;\n  proxy_temp_path {temp}/proxy;\n  fastcgi_temp_path {temp}/fastcgi;\n" +
            $"  uwsgi_temp_path {temp}/uwsgi;\n  scgi_temp_path {temp}/scgi;\n" +
            "  keepalive_requests 100000;\n" +
            "  server {\n" +
            $"    listen {ServerV4}:{HttpPort};\n    listen [{ServerV6}]:{HttpPort};\n" +
            $"    root {WebRoot};\n" +
            $"    location /upload/ {{ alias {UploadDirectory}/; dav_methods PUT DELETE; create_full_put_path on; client_max_body_size 0; }}\n" +
            "    location = /echo { client_max_body_size 64m; client_body_buffer_size 64m; echo_read_request_body; echo_request_body; }\n" +
            "    location = /ip { return 200 \"$remote_addr\\n\"; }\n" +
            "  }\n" +
            "}\n");
        var nginx = _lab.Start(ServerNs, "nginx", "-c", conf);
        _lab.WaitFor(
            () => nginx.HasExited || _lab.Exec(ServerNs, "ss", "-Hltn", $"sport = :{HttpPort}").Stdout.Split('\n', StringSplitOptions.RemoveEmptyEntries).Length >= 2,
            TimeSpan.FromSeconds(20),
            $"nginx listening on {ServerV4}:{HttpPort} and [{ServerV6}]:{HttpPort}\n{_lab.OutputOf(nginx)}");
        Assert.False(nginx.HasExited, _lab.OutputOf(nginx));
    }

    private void StartDnsmasq()
    {
        var dnsmasq = _lab.Start(ServerNs, "dnsmasq",
            "--keep-in-foreground", "--no-resolv", "--no-hosts", "--no-poll", "--bind-interfaces", "--user=root",
            $"--listen-address={ServerV4}", "--port=53", $"--pid-file={Root}/dnsmasq.pid", "--log-facility=-",
            $"--address=/{WebName}/{ServerV4}", $"--address=/{WebName}/{ServerV6}");
        _lab.WaitFor(
            () => dnsmasq.HasExited || _lab.Exec(ServerNs, "ss", "-Hlun", "sport = :53").Stdout.Contains(ServerV4, StringComparison.Ordinal),
            TimeSpan.FromSeconds(20),
            $"dnsmasq on {ServerV4}:53\n{_lab.OutputOf(dnsmasq)}");
        Assert.False(dnsmasq.HasExited, _lab.OutputOf(dnsmasq));
    }
}

/// <summary>A kernel-socket UDP echo on the given sockets (ProxyLab: one IPv4 and one IPv6 address; the gateway tests: one dual-mode socket): every datagram goes back to its sender.</summary>
internal sealed class UdpEchoServer : IDisposable
{
    private readonly Socket[] _sockets;
    private readonly CancellationTokenSource _stop = new();
    private readonly Task[] _loops;
    private long _echoed;

    public UdpEchoServer(Socket[] sockets)
    {
        _sockets = sockets;
        _loops = sockets.Select(s => Task.Run(() => Loop(s))).ToArray();
    }

    /// <summary>Datagrams echoed so far.</summary>
    public long Echoed => Interlocked.Read(ref _echoed);

    /// <summary>The sockets (call inside the namespace).</summary>
    public static Socket[] Bind(string v4, string v6, int port)
    {
        var a = new Socket(AddressFamily.InterNetwork, SocketType.Dgram, ProtocolType.Udp);
        a.Bind(new IPEndPoint(IPAddress.Parse(v4), port));
        var b = new Socket(AddressFamily.InterNetworkV6, SocketType.Dgram, ProtocolType.Udp);
        b.Bind(new IPEndPoint(IPAddress.Parse(v6), port));
        return [a, b];
    }

    public void Dispose()
    {
        _stop.Cancel();
        foreach (var s in _sockets)
        {
            s.Dispose();
        }

        Task.WaitAll(_loops, TimeSpan.FromSeconds(5));
        _stop.Dispose();
    }

    private async Task Loop(Socket socket)
    {
        var buffer = new byte[65536];
        EndPoint any = socket.AddressFamily == AddressFamily.InterNetwork ? new IPEndPoint(IPAddress.Any, 0) : new IPEndPoint(IPAddress.IPv6Any, 0);
        while (!_stop.IsCancellationRequested)
        {
            try
            {
                var r = await socket.ReceiveFromAsync(buffer, SocketFlags.None, any, _stop.Token);
                await socket.SendToAsync(buffer.AsMemory(0, r.ReceivedBytes), SocketFlags.None, r.RemoteEndPoint, _stop.Token);
                Interlocked.Increment(ref _echoed);
            }
            catch (Exception e) when (e is OperationCanceledException or ObjectDisposedException)
            {
                return;
            }
            catch (SocketException)
            {
                // ICMP errors from a vanished client: keep serving.
            }
        }
    }
}
