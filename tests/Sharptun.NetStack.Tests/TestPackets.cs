using System.Net;
using Sharptun.NetStack.Wire;
using Sharptun.Transport;

namespace Sharptun.NetStack.Tests;

/// <summary>Builds and inspects IP packets for stack tests.</summary>
internal static class TestPackets
{
    public static byte[] Ip(IpAddr src, IpAddr dst, byte protocol, ReadOnlySpan<byte> payload, ushort id = 1)
    {
        var hl = src.IsV4 ? 20 : 40;
        var packet = new byte[hl + payload.Length];
        if (src.IsV4)
        {
            new Ipv4Repr(src, dst, protocol, payload.Length, Identification: id).Emit(packet);
        }
        else
        {
            new Ipv6Repr(src, dst, protocol, payload.Length).Emit(packet);
        }

        payload.CopyTo(packet.AsSpan(hl));
        return packet;
    }

    public static byte[] UdpSegment(IpAddr src, IpAddr dst, ushort sport, ushort dport, ReadOnlySpan<byte> payload)
    {
        var udp = new UdpRepr(sport, dport, payload.Length);
        var segment = new byte[udp.Length];
        udp.Emit(segment, payload, src, dst);
        return segment;
    }

    public static byte[] Udp(IpAddr src, IpAddr dst, ushort sport, ushort dport, ReadOnlySpan<byte> payload) =>
        Ip(src, dst, IpProtocol.Udp, UdpSegment(src, dst, sport, dport, payload));

    public static byte[] EchoRequest(IpAddr src, IpAddr dst, ushort id, ushort seq, ReadOnlySpan<byte> data)
    {
        var icmp = IcmpRepr.Echo(src.IsV4 ? Icmpv4Type.EchoRequest : Icmpv6Type.EchoRequest, id, seq, data.Length);
        var message = new byte[icmp.Length];
        if (src.IsV4)
        {
            icmp.EmitV4(message, data);
        }
        else
        {
            icmp.EmitV6(message, data, src, dst);
        }

        return Ip(src, dst, src.IsV4 ? IpProtocol.Icmp : IpProtocol.Icmpv6, message);
    }

    /// <summary>Splits an upper-layer payload into IPv4 fragments of <paramref name="chunk"/> bytes (multiple of 8).</summary>
    public static List<byte[]> Ipv4Fragments(IpAddr src, IpAddr dst, byte protocol, ReadOnlySpan<byte> payload, int chunk, ushort id)
    {
        var list = new List<byte[]>();
        for (var offset = 0; offset < payload.Length; offset += chunk)
        {
            var n = Math.Min(chunk, payload.Length - offset);
            var packet = new byte[20 + n];
            new Ipv4Repr(src, dst, protocol, n, Identification: id, MoreFragments: offset + n < payload.Length, FragmentOffset: offset).Emit(packet);
            payload.Slice(offset, n).CopyTo(packet.AsSpan(20));
            list.Add(packet);
        }

        return list;
    }

    /// <summary>One IPv6 fragment (fixed header + Fragment header + data).</summary>
    public static byte[] Ipv6Fragment(IpAddr src, IpAddr dst, byte nextHeader, ReadOnlySpan<byte> data, int offset, bool more, uint id)
    {
        var packet = new byte[40 + 8 + data.Length];
        new Ipv6Repr(src, dst, IpProtocol.Ipv6Fragment, 8 + data.Length).Emit(packet);
        new Ipv6FragmentRepr(nextHeader, offset, more, id).Emit(packet.AsSpan(40));
        data.CopyTo(packet.AsSpan(48));
        return packet;
    }

    public static List<byte[]> Ipv6Fragments(IpAddr src, IpAddr dst, byte nextHeader, ReadOnlySpan<byte> payload, int chunk, uint id)
    {
        var list = new List<byte[]>();
        for (var offset = 0; offset < payload.Length; offset += chunk)
        {
            var n = Math.Min(chunk, payload.Length - offset);
            list.Add(Ipv6Fragment(src, dst, nextHeader, payload.Slice(offset, n), offset, offset + n < payload.Length, id));
        }

        return list;
    }

    /// <summary>Drains every queued outbound packet of a stack.</summary>
    public static List<byte[]> Drain(NetworkStack stack)
    {
        var list = new List<byte[]>();
        var buffer = new byte[65536];
        while (stack.TryReadPacket(buffer, out var n))
        {
            list.Add(buffer[..n]);
        }

        return list;
    }

    /// <summary>The upper-layer payload and protocol of an unfragmented packet with no extension headers.</summary>
    public static (byte Protocol, IpAddr Source, IpAddr Destination, byte[] Payload) Open(byte[] packet)
    {
        if (Ipv4Packet.TryCreate(packet, out var v4))
        {
            Assert.True(v4.IsChecksumValid);
            return (v4.Protocol, v4.Source, v4.Destination, v4.Payload.ToArray());
        }

        Assert.True(Ipv6Packet.TryCreate(packet, out var v6));
        return (v6.NextHeader, v6.Source, v6.Destination, v6.Payload.ToArray());
    }

    public static NetworkStack Stack(params string[] addresses) => Stack(o => { }, addresses);

    public static NetworkStack Stack(Action<NetworkStackOptions> configure, params string[] addresses)
    {
        var options = new NetworkStackOptions();
        foreach (var a in addresses)
        {
            options.Addresses.Add(IPAddress.Parse(a));
        }

        configure(options);
        return new NetworkStack(options);
    }
}

/// <summary>Two stacks wired back to back on a virtual clock.</summary>
internal sealed class StackPair : IDisposable
{
    private readonly byte[] _buffer = new byte[65536];

    public StackPair(Action<NetworkStackOptions>? configure = null)
    {
        A = TestPackets.Stack(configure ?? (_ => { }), "10.0.0.1", "fd00::1");
        B = TestPackets.Stack(configure ?? (_ => { }), "10.0.0.2", "fd00::2");
    }

    public NetworkStack A { get; }

    public NetworkStack B { get; }

    public TimeSpan Now { get; private set; }

    /// <summary>Moves packets both ways until both queues are empty; returns the number moved.</summary>
    public int Pump()
    {
        var moved = 0;
        bool any;
        do
        {
            any = false;
            while (A.TryReadPacket(_buffer, out var n))
            {
                B.WritePacket(_buffer.AsSpan(0, n));
                moved++;
                any = true;
            }

            while (B.TryReadPacket(_buffer, out var n))
            {
                A.WritePacket(_buffer.AsSpan(0, n));
                moved++;
                any = true;
            }
        }
        while (any);
        return moved;
    }

    public void Advance(TimeSpan by)
    {
        Now += by;
        A.Poll(Now);
        B.Poll(Now);
    }

    /// <summary>Pumps until <paramref name="task"/> completes (continuations run on the thread pool).</summary>
    public T Run<T>(Task<T> task)
    {
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(10);
        while (!task.IsCompleted && DateTime.UtcNow < deadline)
        {
            if (Pump() == 0)
            {
                Thread.Sleep(1);
            }
        }

        Assert.True(task.IsCompleted, "operation did not complete");
        return task.GetAwaiter().GetResult();
    }

    /// <summary>
    /// Writes <paramref name="data"/> from <paramref name="from"/>, shuts its sending side, reads <paramref name="to"/>
    /// to the end, pumping all the while; returns what arrived.
    /// </summary>
    public byte[] SendAndClose(Stream from, Stream to, byte[] data)
    {
        var write = Task.Run(async () =>
        {
            await from.WriteAsync(data);
            ((Sharptun.NetStack.Tcp.TcpStream)from).ShutdownWrite();
            return 0;
        });
        var read = Task.Run(async () =>
        {
            var ms = new MemoryStream();
            await to.CopyToAsync(ms);
            return ms.ToArray();
        });
        Run(write);
        return Run(read);
    }

    public void Dispose()
    {
        A.Dispose();
        B.Dispose();
    }
}
