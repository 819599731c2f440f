using Sharptun.Device.Pipeline;
using Sharptun.Protocol;
using System.Diagnostics;
using Sharptun.Device.Config;
using Sharptun.Device.Uapi;
using Sharptun.Testing;
using Sharptun.Transport;

namespace Sharptun.Device.Tests.Pipeline;

/// <summary>
/// One whole device for tests: a <see cref="WireGuardDevice"/> on one end of an in-memory TUN pair (the test holds the
/// other end as "the host") and a bind from a <see cref="IDatagramBindFactory"/>. Configured with UAPI text.
/// </summary>
internal sealed class TestNode : IDisposable
{
    /// <param name="wrapTun">Wraps the device's end of the TUN pair (fault injection); the test's end stays <see cref="Host"/>.</param>
    public TestNode(string name, IDatagramBindFactory binds, WireGuardDeviceOptions? options = null, int mtu = 1420, Func<IPacketDevice, IPacketDevice>? wrapTun = null)
    {
        Name = name;
        Binds = binds;
        (Tun, Host) = InMemoryPacketDevice.CreatePair(mtu, name: name);
        PrivateKey = Key.GeneratePrivateKey();
        PublicKey = PrivateKey.DerivePublicKey();
        Device = new WireGuardDevice(wrapTun?.Invoke(Tun) ?? Tun, binds, options ?? new WireGuardDeviceOptions { CryptoWorkers = 2 });
    }

    public string Name { get; }

    public IDatagramBindFactory Binds { get; }

    public InMemoryPacketDevice Tun { get; }

    public InMemoryPacketDevice Host { get; }

    public Key PrivateKey { get; }

    public Key PublicKey { get; }

    public WireGuardDevice Device { get; }

    public ushort Port => Device.ListenPort;

    /// <summary>Applies a UAPI set body; throws with the error when it fails.</summary>
    public void Set(string body)
    {
        var error = TrySet(body);
        if (error is not null)
        {
            throw new InvalidOperationException(error.ToString());
        }
    }

    public UapiError? TrySet(string body)
    {
        if (!UapiParser.TryParseSet(body, out var changes, out var error))
        {
            return error;
        }

        try
        {
            return Device.Apply(changes!);
        }
        finally
        {
            changes!.ClearSecrets();
        }
    }

    public string PrivateHex => PrivateKey.ToHex();

    public string PublicHex => PublicKey.ToHex();

    /// <summary>The host side sends packets into the tunnel.</summary>
    public void Send(params byte[][] packets)
    {
        var buffers = new byte[packets.Length][];
        var sizes = new int[packets.Length];
        for (var i = 0; i < packets.Length; i++)
        {
            buffers[i] = new byte[packets[i].Length + 64];
            packets[i].CopyTo(buffers[i], 0);
            sizes[i] = packets[i].Length;
        }

        var offset = 0;
        while (offset < packets.Length)
        {
            var chunk = Math.Min(Host.BatchSize, packets.Length - offset);
            Host.Write(buffers[offset..(offset + chunk)], sizes.AsSpan(offset, chunk), 0, chunk);
            offset += chunk;
        }
    }

    /// <summary>Reads packets arriving at the host side until <paramref name="count"/> arrived or the timeout passes.</summary>
    public List<byte[]> Receive(int count, TimeSpan timeout)
    {
        var result = new List<byte[]>();
        var deadline = Stopwatch.StartNew();
        var buffers = new byte[Host.BatchSize][];
        for (var i = 0; i < buffers.Length; i++)
        {
            buffers[i] = new byte[2048];
        }

        var sizes = new int[buffers.Length];
        while (result.Count < count && deadline.Elapsed < timeout)
        {
            if (Host.Pending == 0)
            {
                Thread.Sleep(1);
                continue;
            }

            var n = Host.Read(buffers, sizes, 0);
            for (var i = 0; i < n; i++)
            {
                result.Add(buffers[i].AsSpan(0, sizes[i]).ToArray());
            }
        }

        return result;
    }

    /// <summary>Reads whatever has arrived at the host side, without waiting.</summary>
    public List<byte[]> ReceivePending()
    {
        var result = new List<byte[]>();
        var buffers = new byte[Host.BatchSize][];
        for (var i = 0; i < buffers.Length; i++)
        {
            buffers[i] = new byte[2048];
        }

        var sizes = new int[buffers.Length];
        while (Host.Pending > 0)
        {
            var n = Host.Read(buffers, sizes, 0);
            for (var i = 0; i < n; i++)
            {
                result.Add(buffers[i].AsSpan(0, sizes[i]).ToArray());
            }
        }

        return result;
    }

    public PeerSnapshot? PeerState(Key publicKey)
    {
        var snapshot = Device.GetSnapshot();
        foreach (var p in snapshot.Peers)
        {
            if (p.PublicKey == publicKey)
            {
                return p;
            }
        }

        return null;
    }

    public void Dispose()
    {
        Tun.Dispose();
        Device.Dispose();
        Host.Dispose();
    }
}

/// <summary>Remembers the binds it opens (to move one for roaming tests).</summary>
internal sealed class CapturingBindFactory(IDatagramBindFactory inner) : IDatagramBindFactory
{
    public IDatagramBind? Last { get; private set; }

    public IDatagramBind Open(ushort port) => Last = inner.Open(port);
}

/// <summary>Two nodes configured as peers of each other: A = 10.0.0.1 / fd00::1, B = 10.0.0.2 / fd00::2.</summary>
internal sealed class NodePair : IDisposable
{
    public NodePair(IDatagramBindFactory bindsA, IDatagramBindFactory bindsB, string hostA, string hostB, WireGuardDeviceOptions? options = null, string? psk = null, int mtu = 1420, WireGuardDeviceOptions? optionsB = null)
    {
        A = new TestNode("a", bindsA, options, mtu);
        B = new TestNode("b", bindsB, optionsB ?? options, mtu);
        var pskLine = psk is null ? string.Empty : $"preshared_key={psk}\n";
        A.Set($"private_key={A.PrivateHex}\npublic_key={B.PublicHex}\n{pskLine}endpoint={hostB}:{B.Port}\nallowed_ip=10.0.0.2/32\nallowed_ip=fd00::2/128\n");
        B.Set($"private_key={B.PrivateHex}\npublic_key={A.PublicHex}\n{pskLine}endpoint={hostA}:{A.Port}\nallowed_ip=10.0.0.1/32\nallowed_ip=fd00::1/128\n");
    }

    public static NodePair InMemory(InMemoryNetwork network, WireGuardDeviceOptions? options = null, string? psk = null, int mtu = 1420, WireGuardDeviceOptions? optionsB = null) =>
        new(new CapturingBindFactory(network.CreateFactory(UdpEndpoint.Parse("192.0.2.1:0"))), new CapturingBindFactory(network.CreateFactory(UdpEndpoint.Parse("192.0.2.2:0"))), "192.0.2.1", "192.0.2.2", options, psk, mtu, optionsB);

    public TestNode A { get; }

    public TestNode B { get; }

    public static readonly TimeSpan Timeout = TimeSpan.FromSeconds(10);

    /// <summary>Sends <paramref name="count"/> numbered packets from one node to the other in batches and returns the sequence numbers that arrived, in arrival order.</summary>
    /// <remarks>The sender keeps at most <paramref name="window"/> packets in flight, as a transport protocol would, so UDP-level drops (receiver slower than sender) do not make the test flaky.</remarks>
    public static List<uint> Stream(TestNode from, TestNode to, string src, string dst, int count, int batch = 64, int payload = 200, int window = 512)
    {
        var received = 0;
        var sender = new Thread(() =>
        {
            for (var i = 0; i < count; i += batch)
            {
                var sw = Stopwatch.StartNew();
                while (i - Volatile.Read(ref received) > window && sw.Elapsed < TimeSpan.FromSeconds(5))
                {
                    Thread.Sleep(1);
                }

                var n = Math.Min(batch, count - i);
                var packets = new byte[n][];
                for (var j = 0; j < n; j++)
                {
                    packets[j] = TestPackets.Udp(src, dst, (uint)(i + j), payload);
                }

                from.Send(packets);
            }
        });
        sender.Start();
        var got = new List<byte[]>();
        var total = Stopwatch.StartNew();
        var quiet = Stopwatch.StartNew();
        while (got.Count < count && total.Elapsed < TimeSpan.FromSeconds(30) && (sender.IsAlive || quiet.Elapsed < TimeSpan.FromMilliseconds(500)))
        {
            var more = to.Receive(1, TimeSpan.FromMilliseconds(100));
            more.AddRange(to.ReceivePending());
            if (more.Count > 0)
            {
                quiet.Restart();
            }

            got.AddRange(more);
            Volatile.Write(ref received, got.Count);
        }

        sender.Join();
        var seqs = new List<uint>(got.Count);
        foreach (var p in got)
        {
            seqs.Add(TestPackets.Sequence(p));
        }

        return seqs;
    }

    /// <summary>Sends one packet A→B and one B→A and asserts both arrive intact.</summary>
    public void Ping(uint sequence, bool ipv6 = false) => Ping(sequence, ipv6, Timeout);

    public void Ping(uint sequence, bool ipv6, TimeSpan timeout)
    {
        var (a, b) = ipv6 ? ("fd00::1", "fd00::2") : ("10.0.0.1", "10.0.0.2");
        var p = TestPackets.Udp(a, b, sequence);
        A.Send(p);
        var got = B.Receive(1, timeout);
        Assert.Single(got);
        Assert.Equal(p, got[0]);
        var q = TestPackets.Udp(b, a, sequence + 1);
        B.Send(q);
        got = A.Receive(1, timeout);
        Assert.Single(got);
        Assert.Equal(q, got[0]);
    }

    public void Dispose()
    {
        A.Dispose();
        B.Dispose();
    }
}
