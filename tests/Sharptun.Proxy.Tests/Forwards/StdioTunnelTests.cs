using System.Net;
using System.Net.Sockets;
using Sharptun.Proxy.Config;
using Sharptun.Proxy.Forwards;
using static Sharptun.Proxy.Tests.Forwards.ForwardTestKit;

namespace Sharptun.Proxy.Tests.Forwards;

public sealed class StdioTunnelTests
{
    private static StdioTunnel Create(LoopbackNetwork network, string host, int port, Stream input, Stream output) =>
        new(new StdioTunnelOptions { TargetHost = host, TargetPort = port, Input = input, Output = output }, new ProxyContext(network));

    [Fact]
    public async Task EndOfInput_HalfClosesTheConnection_ReplyReachesOutput_ThenRunReturns()
    {
        await using var target = new TcpTarget();
        var network = new LoopbackNetwork();
        network.Names["ssh.test"] = IPAddress.Loopback;
        var output = new MemoryStream();
        var stdio = Create(network, "ssh.test", target.Port, new MemoryStream(Ascii("SSH-2.0-test\r\n")), output);
        stdio.Start();
        await stdio.RunAsync(CancellationToken.None).WaitAsync(Patience);

        Assert.Equal("got:SSH-2.0-test\r\n"u8.ToArray(), output.ToArray());
        Assert.Equal(["ssh.test"], network.Connects);
        Assert.Equal(14, stdio.Counters.BytesToTunnel);
        Assert.Equal(18, stdio.Counters.BytesFromTunnel);
        Assert.Equal(0, stdio.Counters.Open);
    }

    [Fact]
    public async Task FarEndCloses_RunReturns_EvenThoughInputStaysOpen()
    {
        await using var target = new TcpTarget(async (stream, ct) =>
        {
            await stream.WriteAsync("bye\n"u8.ToArray(), ct);
            stream.Socket.Shutdown(SocketShutdown.Both);
        });
        var output = new MemoryStream();
        using var input = new NeverEndingInput();
        var stdio = Create(new LoopbackNetwork(), "127.0.0.1", target.Port, input, output);
        stdio.Start();
        await stdio.RunAsync(CancellationToken.None).WaitAsync(Patience);
        Assert.Equal("bye\n"u8.ToArray(), output.ToArray());
    }

    [Fact]
    public async Task BytesFlowBothWays_Interactively()
    {
        await using var target = new TcpTarget(async (stream, ct) =>
        {
            // A line protocol: answer each line at once, close on "quit".
            var reader = new StreamReader(stream);
            while (await reader.ReadLineAsync(ct) is { } line && line != "quit")
            {
                await stream.WriteAsync(Ascii(line.ToUpperInvariant() + "\n"), ct);
            }

            stream.Socket.Shutdown(SocketShutdown.Send);
        });
        var (inputWriter, input) = await SocketPairAsync();
        var (outputStream, outputReader) = await SocketPairAsync();
        var stdio = Create(new LoopbackNetwork(), "127.0.0.1", target.Port, input, outputStream);
        stdio.Start();
        var run = stdio.RunAsync(CancellationToken.None);

        await inputWriter.WriteAsync(Ascii("one\n"));
        Assert.Equal("ONE\n"u8.ToArray(), await ReadExactlyAsync(outputReader, 4));
        await inputWriter.WriteAsync(Ascii("two\n"));
        Assert.Equal("TWO\n"u8.ToArray(), await ReadExactlyAsync(outputReader, 4));
        await inputWriter.WriteAsync(Ascii("quit\n"));
        await run.WaitAsync(Patience);

        await inputWriter.DisposeAsync();
        await input.DisposeAsync();
        await outputStream.DisposeAsync();
        await outputReader.DisposeAsync();
    }

    [Fact]
    public async Task UnreachableTarget_CountsFailure_AndReturns()
    {
        var output = new MemoryStream();
        var stdio = Create(new LoopbackNetwork(), "127.0.0.1", FreeTcpPort(), new NeverEndingInput(), output);
        stdio.Start();
        await stdio.RunAsync(CancellationToken.None).WaitAsync(Patience);
        Assert.Equal(1, stdio.Counters.Failed);
        Assert.Empty(output.ToArray());
    }

    [Fact]
    public async Task Cancellation_EndsTheRelay()
    {
        await using var target = new TcpTarget(async (stream, ct) => await Task.Delay(Timeout.Infinite, ct));
        var stdio = Create(new LoopbackNetwork(), "127.0.0.1", target.Port, new NeverEndingInput(), new MemoryStream());
        stdio.Start();
        using var cts = new CancellationTokenSource();
        var run = stdio.RunAsync(cts.Token);
        await WaitUntilAsync(() => target.Accepted == 1, "the connection");
        await cts.CancelAsync();
        await run.WaitAsync(Patience);
        Assert.Equal(0, stdio.Counters.Open);
    }

    [Fact]
    public void FromSection_ReadsTarget_RejectsOtherKeys()
    {
        var context = new ProxyContext(new LoopbackNetwork());
        var stdio = StdioTunnel.FromSection(Section("[STDIOTunnel]\nTarget = ssh.myserver.net:22\n", "STDIOTunnel"), context);
        Assert.Equal("stdio", stdio.Kind);
        var e = Assert.Throws<ProxyConfigException>(() =>
            StdioTunnel.FromSection(Section("[STDIOTunnel]\nTarget = ssh.myserver.net:22\nBindAddress = 127.0.0.1:1\n", "STDIOTunnel"), context));
        Assert.Equal(3, e.Line);
    }

    private static async Task<(NetworkStream A, NetworkStream B)> SocketPairAsync()
    {
        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        var a = ConnectAsync((IPEndPoint)listener.LocalEndpoint);
        var b = await listener.AcceptSocketAsync();
        return (await a, new NetworkStream(b, ownsSocket: true));
    }

    /// <summary>Standard input of a terminal that never types anything and never closes.</summary>
    private sealed class NeverEndingInput : Stream
    {
        public override bool CanRead => true;

        public override bool CanSeek => false;

        public override bool CanWrite => false;

        public override long Length => throw new NotSupportedException();

        public override long Position { get => throw new NotSupportedException(); set => throw new NotSupportedException(); }

        public override async ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken cancellationToken = default)
        {
            await Task.Delay(Timeout.Infinite, cancellationToken);
            return 0;
        }

        public override Task<int> ReadAsync(byte[] buffer, int offset, int count, CancellationToken cancellationToken) =>
            ReadAsync(buffer.AsMemory(offset, count), cancellationToken).AsTask();

        public override int Read(byte[] buffer, int offset, int count) => throw new NotSupportedException();

        public override void Flush()
        {
        }

        public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();

        public override void SetLength(long value) => throw new NotSupportedException();

        public override void Write(byte[] buffer, int offset, int count) => throw new NotSupportedException();
    }
}
