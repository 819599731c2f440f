using System.Net;
using Sharptun.NetStack;

namespace Sharptun.Testing;

/// <summary>
/// Two <see cref="NetworkStack"/>s on real time (each driven by its own thread, <see cref="NetworkStack.Start"/>),
/// joined back to back by two pump threads that move every packet one writes to the other — a wire between them.
/// A has 10.0.0.1 and fd00::1, B has 10.0.0.2 and fd00::2. Disposing stops the stacks and the pumps.
/// </summary>
public sealed class LinkedStacks : IDisposable
{
    private readonly Thread[] _pumps;

    public LinkedStacks(Action<NetworkStackOptions>? configure = null)
    {
        A = MakeStack(configure, "10.0.0.1", "fd00::1");
        B = MakeStack(configure, "10.0.0.2", "fd00::2");
        A.Start();
        B.Start();
        _pumps = [StartPump(A, B, "link a->b"), StartPump(B, A, "link b->a")];
    }

    public NetworkStack A { get; }

    public NetworkStack B { get; }

    public void Dispose()
    {
        A.Dispose();
        B.Dispose();
        foreach (var pump in _pumps)
        {
            pump.Join(TimeSpan.FromSeconds(5));
        }
    }

    private static NetworkStack MakeStack(Action<NetworkStackOptions>? configure, params string[] addresses)
    {
        var options = new NetworkStackOptions();
        foreach (var a in addresses)
        {
            options.Addresses.Add(IPAddress.Parse(a));
        }

        configure?.Invoke(options);
        return new NetworkStack(options);
    }

    private static Thread StartPump(NetworkStack from, NetworkStack to, string name)
    {
        var thread = new Thread(() =>
        {
            var buffers = new byte[from.BatchSize][];
            for (var i = 0; i < buffers.Length; i++)
            {
                buffers[i] = new byte[from.Mtu];
            }

            var sizes = new int[buffers.Length];
            try
            {
                while (true)
                {
                    var n = from.Read(buffers, sizes, 0);
                    if (n == 0)
                    {
                        return;
                    }

                    to.Write(buffers, sizes, 0, n);
                }
            }
            catch (ObjectDisposedException)
            {
                // one of the stacks was disposed
            }
        })
        { IsBackground = true, Name = name };
        thread.Start();
        return thread;
    }
}
