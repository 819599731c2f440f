using System.Security.Cryptography;
using Sharptun.NetStack.Tcp;

namespace Sharptun.NetStack.Tests.Tcp;

/// <summary>Helpers shared by the TCP state-machine tests (sans-I/O: connections driven directly on the virtual clock).</summary>
internal sealed class TcpPair
{
    public const int ServerPort = 80;

    public TcpPair(int seed = 1, TcpOptions? clientOptions = null, TcpOptions? serverOptions = null, Action<SimNetwork>? configure = null, int backlog = 128)
    {
        Net = new SimNetwork(seed);
        configure?.Invoke(Net);
        Client = Net.AddHost("10.0.0.1", clientOptions);
        Server = Net.AddHost("10.0.0.2", serverOptions);
        Listener = Server.Tcp.Listen(Server.EndPoint(ServerPort), backlog);
    }

    public SimNetwork Net { get; }
    public SimHost Client { get; }
    public SimHost Server { get; }
    public TcpStreamListener Listener { get; }
    public TcpConnection? ClientConn { get; private set; }
    public TcpConnection? ServerConn { get; private set; }

    public TcpPair Connect(TimeSpan? limit = null)
    {
        ClientConn = Client.Tcp.Connect(Server.EndPoint(ServerPort), Client.EndPoint(40000));
        TcpConnection? s = null;
        Net.RunUntil(() => s is not null && ClientConn.State == TcpState.Established, limit ?? TimeSpan.FromSeconds(60), () =>
        {
            if (s is null && Listener.TryAccept(out var c))
            {
                s = c;
            }
        });
        ServerConn = s;
        return this;
    }

    public TcpConnection C => ClientConn!;
    public TcpConnection S => ServerConn!;
}

/// <summary>Moves data from one connection to another through the simulated network, hashing what arrives.</summary>
internal sealed class Transfer
{
    private readonly TcpConnection _from;
    private readonly TcpConnection _to;
    private readonly byte[] _data;
    private readonly IncrementalHash _hash = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
    private readonly byte[] _buf = new byte[64 * 1024];
    private int _sent;

    public Transfer(TcpConnection from, TcpConnection to, byte[] data, bool closeWhenDone = true)
    {
        _from = from;
        _to = to;
        _data = data;
        CloseWhenDone = closeWhenDone;
        Expected = SHA256.HashData(data);
    }

    public bool CloseWhenDone { get; }
    public long Received { get; private set; }
    public bool Finished { get; private set; }
    public byte[] Expected { get; }
    public bool ReaderPaused { get; set; }

    public void Pump(TimeSpan now)
    {
        while (_sent < _data.Length)
        {
            int n = _from.Send(_data.AsSpan(_sent), now);
            if (n == 0)
            {
                break;
            }

            _sent += n;
        }

        if (_sent == _data.Length && CloseWhenDone && !_from.SendShutdown)
        {
            _from.ShutdownWrite(now);
        }

        while (!ReaderPaused)
        {
            int n = _to.Receive(_buf, now);
            if (n == 0)
            {
                break;
            }

            _hash.AppendData(_buf, 0, n);
            Received += n;
        }

        if (!Finished && Received == _data.Length && (!CloseWhenDone || _to.ReceiveFinished))
        {
            Finished = true;
        }
    }

    public bool HashMatches() => _hash.GetHashAndReset().AsSpan().SequenceEqual(Expected);

    public static byte[] RandomData(int length, int seed)
    {
        var d = new byte[length];
        new Random(seed).NextBytes(d);
        return d;
    }
}
