using Sharptun.Testing;
using Sharptun.Transport;

namespace Sharptun.Transport.Tests;

public sealed class InMemoryNetworkTests
{
    private static readonly UdpEndpoint AddressA = UdpEndpoint.Parse("10.0.0.1:0");
    private static readonly UdpEndpoint AddressB = UdpEndpoint.Parse("[fd00::2]:0");

    private static void SendNumbered(IDatagramBind bind, UdpEndpoint to, int from, int count)
    {
        var buffers = new byte[count][];
        var sizes = new int[count];
        for (var i = 0; i < count; i++)
        {
            buffers[i] = new byte[8];
            BitConverter.TryWriteBytes(buffers[i].AsSpan(4), from + i);
            sizes[i] = 4;
        }

        Assert.Equal(count, bind.Send(buffers, sizes, 4, count, to));
    }

    /// <summary>Receives <paramref name="expected"/> datagrams (failing after 10 s); returns their numbers in arrival order.</summary>
    private static List<int> ReceiveAll(IDatagramBind bind, long expected, List<UdpEndpoint>? sources = null)
    {
        var result = new List<int>();
        var buffers = Enumerable.Range(0, 64).Select(_ => new byte[2048]).ToArray();
        var sizes = new int[64];
        var endpoints = new UdpEndpoint[64];
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(10);
        while (result.Count < expected)
        {
            var task = Task.Run(() => bind.Receive(buffers, sizes, endpoints));
            if (!task.Wait(deadline - DateTime.UtcNow))
            {
                bind.Dispose(); // unblocks the pending Receive
                Assert.Fail($"received {result.Count} of {expected}");
            }

            for (var i = 0; i < task.Result; i++)
            {
                Assert.Equal(4, sizes[i]);
                result.Add(BitConverter.ToInt32(buffers[i], 0));
                sources?.Add(endpoints[i]);
            }
        }

        return result;
    }

    [Fact]
    public void Send_Batch_ReceiverGetsDatagramsWithSourceInOrder()
    {
        var network = new InMemoryNetwork();
        using var a = network.CreateBind(AddressA);
        using var b = network.CreateBind(AddressB);
        SendNumbered(a, b.LocalEndpoint, 0, 100);

        var sources = new List<UdpEndpoint>();
        var received = ReceiveAll(b, 100, sources);

        Assert.Equal(Enumerable.Range(0, 100), received);
        Assert.All(sources, s => Assert.Equal(a.LocalEndpoint, s));
        Assert.NotEqual(0, a.LocalPort);
    }

    [Fact]
    public void DropRate_SameSeed_SameDatagramsLost()
    {
        List<int> Run(int seed)
        {
            var network = new InMemoryNetwork(seed) { DropRate = 0.3 };
            using var a = network.CreateBind(AddressA);
            using var b = network.CreateBind(AddressB);
            SendNumbered(a, b.LocalEndpoint, 0, 500);
            return ReceiveAll(b, network.Delivered);
        }

        var first = Run(42);
        var again = Run(42);
        var other = Run(43);

        Assert.Equal(first, again);
        Assert.NotEqual(first, other);
        Assert.InRange(first.Count, 280, 420); // 500 × 0.7 = 350 expected
    }

    [Fact]
    public void DuplicateRate_One_EveryDatagramTwice()
    {
        var network = new InMemoryNetwork(1) { DuplicateRate = 1 };
        using var a = network.CreateBind(AddressA);
        using var b = network.CreateBind(AddressB);
        SendNumbered(a, b.LocalEndpoint, 0, 10);

        var received = ReceiveAll(b, 20);

        Assert.Equal(Enumerable.Range(0, 10).SelectMany(i => new[] { i, i }), received);
        Assert.Equal(10, network.Duplicated);
    }

    [Fact]
    public void ReorderRate_SomeDatagramsHeldBack_AllArriveOutOfOrder()
    {
        const int seed = 7;
        var network = new InMemoryNetwork(seed) { ReorderRate = 0.2, ReorderDelay = TimeSpan.FromMilliseconds(20) };
        using var a = network.CreateBind(AddressA);
        using var b = network.CreateBind(AddressB);
        SendNumbered(a, b.LocalEndpoint, 0, 200);

        var received = ReceiveAll(b, 200);

        Assert.Equal(Enumerable.Range(0, 200), received.Order());
        Assert.NotEqual(Enumerable.Range(0, 200), received);
        Assert.True(network.Reordered > 0, $"seed {seed}");
    }

    [Fact]
    public void Delay_Set_DatagramArrivesNoSooner()
    {
        var network = new InMemoryNetwork { Delay = TimeSpan.FromMilliseconds(80) };
        using var a = network.CreateBind(AddressA);
        using var b = network.CreateBind(AddressB);
        var sw = System.Diagnostics.Stopwatch.StartNew();
        SendNumbered(a, b.LocalEndpoint, 0, 1);

        var n = b.Receive([new byte[64]], new int[1], new UdpEndpoint[1]);

        Assert.Equal(1, n);
        Assert.True(sw.Elapsed >= TimeSpan.FromMilliseconds(75), sw.Elapsed.ToString());
    }

    [Fact]
    public void ChangeLocalEndpoint_Roaming_NewSourceAndOldEndpointUnroutable()
    {
        var network = new InMemoryNetwork();
        using var a = network.CreateBind(AddressA);
        using var b = network.CreateBind(AddressB);
        var oldA = a.LocalEndpoint;
        var roamed = UdpEndpoint.Parse("192.0.2.77:4000");

        a.ChangeLocalEndpoint(roamed);
        SendNumbered(a, b.LocalEndpoint, 0, 1);
        var endpoints = new UdpEndpoint[1];
        Assert.Equal(1, b.Receive([new byte[64]], new int[1], endpoints));
        SendNumbered(b, oldA, 0, 1);

        Assert.Equal(roamed, endpoints[0]);
        Assert.Equal(roamed, a.LocalEndpoint);
        Assert.Equal(1, network.Unroutable);
    }

    [Fact]
    public void Dispose_WhileReceiveBlocked_ReceiveReturnsZeroAndSendThrows()
    {
        var network = new InMemoryNetwork();
        var a = network.CreateBind(AddressA);
        var receiver = Task.Run(() => a.Receive([new byte[64]], new int[1], new UdpEndpoint[1]));
        Thread.Sleep(50);

        a.Dispose();

        Assert.True(receiver.Wait(TimeSpan.FromSeconds(5)));
        Assert.Equal(0, receiver.Result);
        Assert.Throws<ObjectDisposedException>(() => SendNumbered(a, AddressB, 0, 1));
    }

    [Fact]
    public void CreateBind_EndpointTaken_Throws()
    {
        var network = new InMemoryNetwork();
        using var a = network.CreateBind("10.0.0.1:51820");

        Assert.Throws<InvalidOperationException>(() => network.CreateBind("10.0.0.1:51820"));
    }

    [Fact]
    public void Factory_Open_RebindsOnNewPortAfterDispose()
    {
        var network = new InMemoryNetwork();
        var factory = network.CreateFactory(AddressA);
        var first = factory.Open(51820);
        first.Dispose();

        using var second = factory.Open(51820);
        using var third = factory.Open(0);

        Assert.Equal(51820, second.LocalPort);
        Assert.NotEqual(51820, third.LocalPort);
    }

    [Fact]
    public void Receive_DatagramLargerThanBuffer_DroppedNotTruncated()
    {
        var network = new InMemoryNetwork();
        using var a = network.CreateBind(AddressA);
        using var b = network.CreateBind(AddressB);
        a.Send([new byte[100], new byte[10]], [100, 10], 0, 2, b.LocalEndpoint);
        var sizes = new int[2];

        var n = b.Receive([new byte[50], new byte[50]], sizes, new UdpEndpoint[2]);

        Assert.Equal(1, n);
        Assert.Equal(10, sizes[0]);
        Assert.Equal(1, b.Dropped);
    }
}
