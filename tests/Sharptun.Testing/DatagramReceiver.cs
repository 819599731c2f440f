using Sharptun.Transport;

namespace Sharptun.Testing;

/// <summary>Receiving side of bind tests: drains a real <see cref="IDatagramBind"/> until a number of datagrams arrived.</summary>
public static class DatagramReceiver
{
    /// <summary><paramref name="count"/> zeroed buffers of <paramref name="size"/> bytes.</summary>
    public static byte[][] Buffers(int count, int size) => Enumerable.Range(0, count).Select(_ => new byte[size]).ToArray();

    /// <summary>
    /// Receives until <paramref name="expected"/> datagrams arrived (10 s limit; on timeout the bind is disposed and a
    /// <see cref="TimeoutException"/> says how many came); returns (payload, source) in arrival order.
    /// </summary>
    public static List<(byte[] Payload, UdpEndpoint Source)> ReceiveAll(IDatagramBind bind, int expected)
    {
        var result = new List<(byte[], UdpEndpoint)>();
        var buffers = Buffers(bind.BatchSize, 2048);
        var sizes = new int[bind.BatchSize];
        var endpoints = new UdpEndpoint[bind.BatchSize];
        var task = Task.Run(() =>
        {
            while (result.Count < expected)
            {
                var n = bind.Receive(buffers, sizes, endpoints);
                if (n == 0)
                {
                    break;
                }

                for (var i = 0; i < n; i++)
                {
                    result.Add((buffers[i].AsSpan(0, sizes[i]).ToArray(), endpoints[i]));
                }
            }
        });
        if (!task.Wait(TimeSpan.FromSeconds(10)))
        {
            bind.Dispose();
            task.Wait();
            throw new TimeoutException($"received {result.Count} of {expected} datagrams");
        }

        return result;
    }
}
