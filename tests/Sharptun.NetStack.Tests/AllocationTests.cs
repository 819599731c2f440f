using System.Net;
using Sharptun.Transport;

namespace Sharptun.NetStack.Tests;

/// <summary>Steady-state zero allocation on the per-packet paths (DESIGN.md "Memory").</summary>
public sealed class AllocationTests
{
    private static long Measure(Action action)
    {
        // Warm up: JIT tiering (tier-0 → tier-1 happens after a delay), pools, queue slots.
        for (var round = 0; round < 3; round++)
        {
            for (var i = 0; i < 500; i++)
            {
                action();
            }

            Thread.Sleep(150);
        }

        var before = GC.GetAllocatedBytesForCurrentThread();
        for (var i = 0; i < 1000; i++)
        {
            action();
        }

        return GC.GetAllocatedBytesForCurrentThread() - before;
    }

    [Fact]
    public void EchoRequestToReply_SteadyState_AllocatesNothing()
    {
        using var stack = TestPackets.Stack("10.9.0.2");
        var request = KernelCaptures.Icmpv4EchoRequest;
        var buffers = new[] { new byte[2000] };
        var sizes = new int[1];
        var writeBuffers = new[] { request };
        var writeSizes = new[] { request.Length };
        var allocated = Measure(() =>
        {
            stack.Write(writeBuffers, writeSizes, 0, 1);
            stack.Read(buffers, sizes, 0);
        });
        Assert.Equal(0, allocated);
    }

    [Fact]
    public void UdpReceiveAndSend_SteadyState_AllocatesNothing()
    {
        using var stack = TestPackets.Stack("10.9.0.2");
        using var socket = stack.BindUdp(new IPEndPoint(IPAddress.Any, 5353));
        var datagram = KernelCaptures.Udpv4;
        var writeBuffers = new[] { datagram };
        var writeSizes = new[] { datagram.Length };
        var readBuffers = new[] { new byte[2000] };
        var readSizes = new int[1];
        var payload = new byte[100];
        var peer = IpAddr.Parse("10.9.0.1");
        var allocated = Measure(() =>
        {
            stack.Write(writeBuffers, writeSizes, 0, 1);
            Assert.True(socket.TryReceiveFrom(payload, out var r));
            var send = socket.SendToAsync(payload.AsMemory(0, r.Length), peer, r.RemotePort);
            Assert.True(send.IsCompletedSuccessfully);
            stack.Read(readBuffers, readSizes, 0);
        });
        Assert.Equal(0, allocated);
    }
}
