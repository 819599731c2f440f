using Sharptun.NetStack.Tcp;
using Sharptun.Transport;

namespace Sharptun.NetStack.Tests.Tcp;

/// <summary>A copy-into-preallocated-slots link, so the only allocations measured are the TCP layer's own.</summary>
internal sealed class DirectLinkHost : IStackContext
{
    private const int Slots = 8192;
    private readonly byte[][] _slot = new byte[Slots][];
    private readonly int[] _len = new int[Slots];
    private int _head;
    private int _count;

    public DirectLinkHost(Lock gate, string address, TcpOptions options)
    {
        Gate = gate;
        Address = IpAddr.Parse(address);
        for (int i = 0; i < Slots; i++)
        {
            _slot[i] = new byte[1600];
        }

        Tcp = new TcpLayer(this, options);
    }

    public DirectLinkHost? Peer { get; set; }
    public IpAddr Address { get; }
    public TcpLayer Tcp { get; }
    public Lock Gate { get; }
    public TimeSpan Now { get; set; } = TimeSpan.FromSeconds(1);
    public int Mtu => 1500;

    public void Wake()
    {
    }

    public bool TrySendIp(in IpAddr source, in IpAddr destination, byte protocol, ReadOnlySpan<byte> transportSegment)
    {
        var peer = Peer!;
        if (peer._count == Slots)
        {
            return false;
        }

        int i = (peer._head + peer._count) % Slots;
        transportSegment.CopyTo(peer._slot[i]);
        peer._len[i] = transportSegment.Length;
        peer._count++;
        return true;
    }

    public bool IsLocalAddress(in IpAddr address) => address == Address;

    public void DeliverAll()
    {
        var src = Peer!.Address;
        while (_count > 0)
        {
            int i = _head;
            _head = (_head + 1) % Slots;
            _count--;
            Tcp.OnSegment(src, Address, _slot[i].AsSpan(0, _len[i]));
        }
    }
}

public sealed class TcpAllocationTests
{
    [Fact]
    public void Transfer_SteadyState_AllocatesNothingPerSegment()
    {
        var gate = new Lock();
        var o = new TcpOptions { ReceiveBufferSize = 64 * 1024, SendBufferSize = 64 * 1024 };
        var a = new DirectLinkHost(gate, "10.0.0.1", o);
        var b = new DirectLinkHost(gate, "10.0.0.2", o);
        a.Peer = b;
        b.Peer = a;
        var listener = b.Tcp.Listen(new System.Net.IPEndPoint(b.Address.ToIPAddress(), 80), 4);
        var c = a.Tcp.Connect(new System.Net.IPEndPoint(b.Address.ToIPAddress(), 80), new System.Net.IPEndPoint(a.Address.ToIPAddress(), 1234));
        TcpConnection? s = null;
        var chunk = new byte[16 * 1024];
        var sink = new byte[16 * 1024];
        long received = 0;

        void Round()
        {
            var now = a.Now + TimeSpan.FromMilliseconds(1);
            a.Now = b.Now = now;
            b.DeliverAll();
            a.DeliverAll();
            a.Tcp.Poll(now);
            b.Tcp.Poll(now);
            if (s is null && listener.TryAccept(out var accepted))
            {
                s = accepted;
            }

            if (c.State == TcpState.Established)
            {
                c.Send(chunk, now);
            }

            if (s is not null)
            {
                int n;
                while ((n = s.Receive(sink, now)) > 0)
                {
                    received += n;
                }
            }
        }

        for (int i = 0; i < 2000; i++)
        {
            Round(); // handshake, slow start, buffers and queues reach their steady size
        }

        Assert.True(received > 1_000_000, $"warm-up moved only {received} bytes");
        long before = GC.GetAllocatedBytesForCurrentThread();
        long startBytes = received;
        for (int i = 0; i < 2000; i++)
        {
            Round();
        }

        long allocated = GC.GetAllocatedBytesForCurrentThread() - before;
        Assert.True(received - startBytes > 1_000_000, "steady state must move data");
        Assert.Equal(0, allocated);
    }
}
