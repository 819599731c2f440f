using System.Net.Sockets;
using System.Text;
using Sharptun.Device.Uapi;

namespace Sharptun.Device.Tests.Uapi;

[System.Runtime.Versioning.UnsupportedOSPlatform("windows")]
public sealed class UapiServerTests : IDisposable
{
    private const string PeerA = "58402e695ba1772b1cc9309755f043251ea77fdcf10fbe63989ceb7e19321376";
    private const string PeerB = "662e14fd594556f522604703340351258903b64f35553763f19426ab2a515c58";
    private const string PrivateHex = "e84b5a6d2717c1003a13b431570353dbaca9146cf150c5f8575680feba52027a";

    private readonly string _dir;
    private readonly List<UapiServer> _servers = [];

    public UapiServerTests()
    {
        // Short path: unix socket paths are limited to 108 bytes.
        _dir = Path.Combine("/tmp", "stu-" + Guid.NewGuid().ToString("N")[..10]);
    }

    public void Dispose()
    {
        foreach (var server in _servers)
        {
            server.Dispose();
        }

        if (Directory.Exists(_dir))
        {
            Directory.Delete(_dir, recursive: true);
        }
    }

    [Fact]
    public async Task Get_ConfiguredStore_ReturnsLinesAndErrnoZero()
    {
        var store = new UapiConfigStore();
        var server = Start(store);
        Assert.Equal(0, await UapiClient.SetAsync(server.SocketPath, $"private_key={PrivateHex}\nlisten_port=51820\npublic_key={PeerA}\nallowed_ip=10.0.0.2/32\n"));

        var reply = await UapiClient.GetAsync(server.SocketPath);

        Assert.StartsWith($"private_key={PrivateHex}\nlisten_port=51820\npublic_key={PeerA}\n", reply, StringComparison.Ordinal);
        Assert.Contains("allowed_ip=10.0.0.2/32\n", reply, StringComparison.Ordinal);
        Assert.EndsWith("\nerrno=0\n\n", reply, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Set_ValidRequest_IsAppliedAndAnsweredWithErrnoZero()
    {
        var store = new UapiConfigStore();
        var server = Start(store);

        var errno = await UapiClient.SetAsync(server.SocketPath, $"fwmark=42\npublic_key={PeerA}\npersistent_keepalive_interval=25\n");

        Assert.Equal(0, errno);
        var snapshot = store.GetSnapshot();
        Assert.Equal(42u, snapshot.FwMark);
        Assert.Equal((ushort)25, Assert.Single(snapshot.Peers).PersistentKeepaliveInterval);
    }

    [Theory]
    [InlineData("listen_port=1\nnot a key value line\n", UapiErrno.Protocol)]
    [InlineData("listen_port=1\nbogus_key=1\n", UapiErrno.Invalid)]
    [InlineData("listen_port=1\npublic_key=" + PeerA + "\nallowed_ip=10.0.0.300/32\n", UapiErrno.Invalid)]
    public async Task Set_BadLine_ReturnsErrnoAndAppliesNothing(string body, int expectedErrno)
    {
        var store = new UapiConfigStore();
        var server = Start(store);

        var errno = await UapiClient.SetAsync(server.SocketPath, body);

        Assert.Equal(expectedErrno, errno);
        Assert.Equal(0, store.ApplyCount);
        Assert.Equal((ushort)0, store.GetSnapshot().ListenPort);
    }

    [Fact]
    public async Task Set_DeviceRejects_ErrnoFromDeviceIsReturned()
    {
        var server = Start(new RejectingDevice(new UapiError(UapiErrno.PortInUse, "address in use")));

        var errno = await UapiClient.SetAsync(server.SocketPath, "listen_port=53\n");

        Assert.Equal(UapiErrno.PortInUse, errno);
    }

    [Fact]
    public async Task OneConnection_SeveralRequests_AllAnsweredInOrder()
    {
        var store = new UapiConfigStore();
        var server = Start(store);
        using var socket = await ConnectAsync(server);

        var replies = await ExchangeAsync(socket, $"set=1\nlisten_port=1000\n\nget=1\n\nset=1\npublic_key={PeerB}\n\nget=1\n\n", expectedReplies: 4);

        Assert.Equal("errno=0\n\n", replies[0]);
        Assert.Equal("listen_port=1000\nerrno=0\n\n", replies[1]);
        Assert.Equal("errno=0\n\n", replies[2]);
        Assert.StartsWith($"listen_port=1000\npublic_key={PeerB}\n", replies[3], StringComparison.Ordinal);
    }

    [Fact]
    public async Task Get_TrailingCharacters_ReturnsEinval()
    {
        var server = Start(new UapiConfigStore());
        using var socket = await ConnectAsync(server);

        var replies = await ExchangeAsync(socket, "get=1\nx\n", expectedReplies: 1);

        Assert.Equal($"errno={UapiErrno.Invalid}\n\n", replies[0]);
    }

    [Fact]
    public async Task UnknownOperation_ClosesConnectionWithoutReply()
    {
        var server = Start(new UapiConfigStore());
        using var socket = await ConnectAsync(server);

        await socket.SendAsync(Encoding.ASCII.GetBytes("frobnicate=1\n\n"));

        Assert.Equal(string.Empty, await ReadToEndAsync(socket));
    }

    [Fact]
    public async Task OversizedLine_ReturnsEmsgsizeClosesAndAppliesNothing()
    {
        var store = new UapiConfigStore();
        var server = Start(store, new UapiServerOptions { MaxLineLength = 256 });
        using var socket = await ConnectAsync(server);

        var request = "set=1\nlisten_port=1\nendpoint=" + new string('1', 10_000) + "\n\n";
        try
        {
            await socket.SendAsync(Encoding.ASCII.GetBytes(request));
        }
        catch (SocketException)
        {
            // The server may close before taking everything.
        }

        Assert.Equal($"errno={UapiServer.ErrnoMessageTooLong}\n\n", await ReadToEndAsync(socket));
        Assert.Equal(0, store.ApplyCount);
    }

    [Fact]
    public async Task LineOfExactlyMaxLength_IsAccepted()
    {
        var server = Start(new UapiConfigStore(), new UapiServerOptions { MaxLineLength = 64 });
        var line = "fwmark=" + new string('0', 64 - "fwmark=".Length - 1) + "7";
        Assert.Equal(64, line.Length);

        Assert.Equal(0, await UapiClient.SetAsync(server.SocketPath, line + "\n"));
    }

    [Fact]
    public async Task OversizedRequest_ReturnsEmsgsizeAndAppliesNothing()
    {
        var store = new UapiConfigStore();
        var server = Start(store, new UapiServerOptions { MaxRequestBytes = 4096 });
        var body = new StringBuilder($"public_key={PeerA}\n");
        for (var i = 0; i < 300; i++)
        {
            body.Append("allowed_ip=10.0.").Append(i / 256).Append('.').Append(i % 256).Append("/32\n");
        }

        var errno = await UapiClient.SetAsync(server.SocketPath, body.ToString());

        Assert.Equal(UapiServer.ErrnoMessageTooLong, errno);
        Assert.Equal(0, store.ApplyCount);
    }

    [Fact]
    public async Task BufferedBytesAcrossConnections_AreBounded()
    {
        var store = new UapiConfigStore();
        var server = Start(store, new UapiServerOptions { MaxRequestBytes = 4096, MaxBufferedBytes = 6000 });
        using var holder = await ConnectAsync(server);
        var partial = new StringBuilder("set=1\n");
        for (var i = 0; i < 3500 / 20; i++)
        {
            partial.Append("listen_port=1234567\n"); // 20 bytes each, never terminated: stays buffered
        }

        await holder.SendAsync(Encoding.ASCII.GetBytes(partial.ToString()));
        await Task.Delay(300);

        var body = new StringBuilder();
        for (var i = 0; i < 3500 / 20; i++)
        {
            body.Append("listen_port=1234567\n");
        }

        Assert.Equal(UapiServer.ErrnoMessageTooLong, await UapiClient.SetAsync(server.SocketPath, body.ToString()));
        holder.Dispose();
        await Task.Delay(300);
        Assert.Equal(UapiErrno.Invalid, await UapiClient.SetAsync(server.SocketPath, body.ToString())); // over 65535, but within the limits now
        Assert.Equal(0, store.ApplyCount);
    }

    [Fact]
    public async Task ManyConcurrentClients_AllServedConsistently()
    {
        var store = new UapiConfigStore();
        var server = Start(store);
        const int Clients = 12;
        const int RequestsEach = 10;

        var tasks = Enumerable.Range(0, Clients).Select(c => Task.Run(async () =>
        {
            for (var r = 0; r < RequestsEach; r++)
            {
                Assert.Equal(0, await UapiClient.SetAsync(server.SocketPath, $"public_key={PeerA}\nallowed_ip=10.{c}.{r}.0/24\n"));
                var reply = await UapiClient.GetAsync(server.SocketPath);
                Assert.Contains($"allowed_ip=10.{c}.{r}.0/24\n", reply, StringComparison.Ordinal);
            }
        }));
        await Task.WhenAll(tasks);

        Assert.Equal(Clients * RequestsEach, store.ApplyCount);
        Assert.Equal(Clients * RequestsEach, Assert.Single(store.GetSnapshot().Peers).AllowedIps.Count);
    }

    [Fact]
    public async Task StalledClient_DoesNotBlockOthers_AndIsDisconnectedAfterTimeout()
    {
        var server = Start(new UapiConfigStore(), new UapiServerOptions { RequestTimeout = TimeSpan.FromMilliseconds(500) });
        using var stalled = await ConnectAsync(server);
        await stalled.SendAsync(Encoding.ASCII.GetBytes("set=1\nlisten_port="));

        Assert.Equal(0, await UapiClient.SetAsync(server.SocketPath, "listen_port=7\n"));
        var closed = ReadToEndAsync(stalled);
        Assert.Same(closed, await Task.WhenAny(closed, Task.Delay(TimeSpan.FromSeconds(10))));
        Assert.Equal(string.Empty, await closed);
    }

    [Fact]
    public async Task ConnectionsOverLimit_WaitUntilASlotFrees()
    {
        var server = Start(new UapiConfigStore(), new UapiServerOptions { MaxConnections = 2, RequestTimeout = TimeSpan.FromSeconds(30) });
        using var first = await ConnectAsync(server);
        using var second = await ConnectAsync(server);
        await first.SendAsync(Encoding.ASCII.GetBytes("get=1\n\n"));
        await second.SendAsync(Encoding.ASCII.GetBytes("get=1\n\n"));
        Assert.Equal("errno=0\n\n", (await ReadRepliesAsync(first, 1))[0]);
        Assert.Equal("errno=0\n\n", (await ReadRepliesAsync(second, 1))[0]);

        var third = UapiClient.GetAsync(server.SocketPath);
        await Task.Delay(300);
        Assert.False(third.IsCompleted);

        first.Dispose();
        Assert.Equal("errno=0\n\n", await third.WaitAsync(TimeSpan.FromSeconds(10)));
    }

    [Fact]
    public void Start_CreatesDirectory0700AndSocket0600()
    {
        var server = Start(new UapiConfigStore());

        Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute, File.GetUnixFileMode(_dir));
        Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite, File.GetUnixFileMode(server.SocketPath));
    }

    [Fact]
    public async Task Start_StaleSocketFile_IsReplaced()
    {
        var path = UapiServer.GetSocketPath("wg0", _dir);
        Directory.CreateDirectory(_dir);
        using (var dead = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified))
        {
            // .NET deletes a socket file it bound when the socket is disposed; a killed daemon leaves it. Moving
            // the file away from the path .NET remembers leaves a socket file nobody listens on.
            dead.Bind(new UnixDomainSocketEndPoint(path + ".tmp"));
            dead.Listen();
            File.Move(path + ".tmp", path);
        }

        Assert.True(File.Exists(path));
        Assert.False(UapiServer.IsAlive(path));

        var server = Start(new UapiConfigStore());

        Assert.EndsWith("errno=0\n\n", await UapiClient.GetAsync(server.SocketPath), StringComparison.Ordinal);
    }

    [Fact]
    public async Task Start_LiveSocket_RefusesAndLeavesTheRunningServerAlone()
    {
        var first = Start(new UapiConfigStore());

        var error = Assert.Throws<UapiSocketException>(() => Start(new UapiConfigStore()));

        Assert.Contains("in use", error.Message, StringComparison.Ordinal);
        Assert.EndsWith("errno=0\n\n", await UapiClient.GetAsync(first.SocketPath), StringComparison.Ordinal);
    }

    [Fact]
    public async Task Dispose_RemovesSocketFileAndClosesConnections()
    {
        var server = Start(new UapiConfigStore());
        using var open = await ConnectAsync(server);

        server.Dispose();

        Assert.False(File.Exists(server.SocketPath));
        Assert.False(server.SocketFileExists);
        Assert.Equal(string.Empty, await ReadToEndAsync(open));
        await server.Completion.WaitAsync(TimeSpan.FromSeconds(10));
    }

    [Fact]
    public async Task Set_EndOfStreamWithoutBlankLine_IsApplied()
    {
        var store = new UapiConfigStore();
        var server = Start(store);
        using var socket = await ConnectAsync(server);

        await socket.SendAsync(Encoding.ASCII.GetBytes("set=1\nlisten_port=99\n"));
        socket.Shutdown(SocketShutdown.Send);

        Assert.Equal("errno=0\n\n", await ReadToEndAsync(socket));
        Assert.Equal((ushort)99, store.GetSnapshot().ListenPort);
    }

    private UapiServer Start(IUapiDevice device, UapiServerOptions? options = null)
    {
        var server = UapiServer.Start("wg0", device, null, options, _dir);
        _servers.Add(server);
        return server;
    }

    private static async Task<Socket> ConnectAsync(UapiServer server)
    {
        var socket = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
        await socket.ConnectAsync(new UnixDomainSocketEndPoint(server.SocketPath));
        return socket;
    }

    private static async Task<List<string>> ExchangeAsync(Socket socket, string requests, int expectedReplies)
    {
        await socket.SendAsync(Encoding.ASCII.GetBytes(requests));
        return await ReadRepliesAsync(socket, expectedReplies);
    }

    // Splits the byte stream into replies, each ending in "\n\n".
    private static async Task<List<string>> ReadRepliesAsync(Socket socket, int expectedReplies)
    {
        using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(10));
        var text = new StringBuilder();
        var buffer = new byte[4096];
        var replies = new List<string>();
        while (replies.Count < expectedReplies)
        {
            var read = await socket.ReceiveAsync(buffer, SocketFlags.None, cts.Token);
            Assert.NotEqual(0, read);
            text.Append(Encoding.ASCII.GetString(buffer, 0, read));
            int end;
            while ((end = text.ToString().IndexOf("\n\n", StringComparison.Ordinal)) >= 0)
            {
                replies.Add(text.ToString(0, end + 2));
                text.Remove(0, end + 2);
            }
        }

        return replies;
    }

    private static async Task<string> ReadToEndAsync(Socket socket)
    {
        using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(10));
        var text = new StringBuilder();
        var buffer = new byte[4096];
        while (true)
        {
            int read;
            try
            {
                read = await socket.ReceiveAsync(buffer, SocketFlags.None, cts.Token);
            }
            catch (SocketException)
            {
                return text.ToString(); // reset by the server
            }

            if (read == 0)
            {
                return text.ToString();
            }

            text.Append(Encoding.ASCII.GetString(buffer, 0, read));
        }
    }

    private static async Task WaitUntilAsync(Func<Task<bool>> condition)
    {
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(10);
        while (!await condition())
        {
            Assert.True(DateTime.UtcNow < deadline, "condition not met within 10 s");
            await Task.Delay(50);
        }
    }

    private sealed class RejectingDevice(UapiError error) : IUapiDevice
    {
        public DeviceSnapshot GetSnapshot() => new();

        public UapiError? Apply(UapiChangeSet changes) => error;
    }
}
