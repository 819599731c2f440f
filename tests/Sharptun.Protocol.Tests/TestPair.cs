using System.Buffers.Binary;
using Sharptun.Crypto;
using Sharptun.Testing;

namespace Sharptun.Protocol.Tests;

/// <summary>Monotonic virtual time plus a wall clock that advances with it.</summary>
internal sealed class VirtualClock : IWallClock
{
    // A whole second, so TAI64N whitening boundaries fall on known offsets.
    private static readonly DateTime WallBase = new(2026, 1, 1, 0, 0, 0, DateTimeKind.Utc);

    public TimeSpan Now { get; set; } = TimeSpan.FromSeconds(1);

    public DateTime UtcNow => WallBase + Now;
}

/// <summary>One side of a pair: a device with exactly one peer (the other side).</summary>
internal sealed class Node(string name, ProtocolDevice device, Key privateKey)
{
    public string Name { get; } = name;
    public ProtocolDevice Device { get; } = device;
    public Key PrivateKey { get; } = privateKey;
    public Peer Peer { get; set; } = null!;
    public Queue<byte[]> Inbox { get; } = new();
    public List<byte[]> Delivered { get; } = [];
    public List<ProtocolResult> Results { get; } = [];
    public List<byte[]> Sent { get; } = [];
    public byte[] Source { get; init; } = [10, 0, 0, 1, 0x1F, 0x90];
    public bool UnderLoad { get; set; }
}

/// <summary>
/// Two protocol cores wired back to back on a virtual clock (quinn-proto's Pair). Datagrams sit in inboxes until
/// <see cref="Pump"/> delivers them; tests can drop, replay or reorder them in between.
/// </summary>
internal sealed class TestPair
{
    public const int BufferSize = 2048;

    public TestPair(int seed = 1, Key pskA = default, Key pskB = default, TimeSpan persistentKeepaliveB = default)
    {
        Clock = new VirtualClock();
        var random = new Random(seed);
        A = NewNode("A", random, [10, 0, 0, 1, 0x1F, 0x90]);
        B = NewNode("B", random, [10, 0, 0, 2, 0x1F, 0x91]);
        A.Peer = A.Device.AddPeer(B.Device.PublicKey, pskA);
        B.Peer = B.Device.AddPeer(A.Device.PublicKey, pskB, persistentKeepaliveB);
    }

    public VirtualClock Clock { get; }
    public Node A { get; }
    public Node B { get; }

    public TimeSpan Now => Clock.Now;

    public Node Other(Node n) => ReferenceEquals(n, A) ? B : A;

    public static Key NewPrivateKey(Random random)
    {
        Span<byte> k = stackalloc byte[32];
        random.NextBytes(k);
        // X25519 clamps the scalar itself; any 32 bytes are a usable private key.
        return new Key(k);
    }

    private Node NewNode(string name, Random random, byte[] source)
    {
        var key = NewPrivateKey(random);
        return new Node(name, new ProtocolDevice(key, Clock, new Random(random.Next())), key) { Source = source };
    }

    /// <summary>Runs a node's timers until Done; everything it must send goes to the other node's inbox.</summary>
    public void RunTimers(Node node)
    {
        var buffer = new byte[BufferSize];
        for (var i = 0; i < 16; i++)
        {
            var r = node.Peer.UpdateTimers(Now, buffer);
            node.Results.Add(r);
            if (r.Action == ProtocolAction.Done)
            {
                return;
            }

            if (r.Action == ProtocolAction.WriteToNetwork)
            {
                Send(node, buffer.AsSpan(r.Offset, r.Length).ToArray());
            }
        }

        throw new InvalidOperationException("UpdateTimers did not settle");
    }

    /// <summary>Fraction of datagrams dropped in flight (decided by <see cref="LossRandom"/>, so runs replay).</summary>
    public double LossRate { get; set; }

    public Random LossRandom { get; set; } = new(0);

    public void Send(Node from, byte[] datagram)
    {
        from.Sent.Add(datagram);
        if (LossRate > 0 && LossRandom.NextDouble() < LossRate)
        {
            return;
        }

        Other(from).Inbox.Enqueue(datagram);
    }

    /// <summary>Delivers one datagram to <paramref name="to"/> and routes whatever it produces.</summary>
    public ProtocolResult Deliver(Node to, byte[] datagram)
    {
        var buffer = new byte[Math.Max(BufferSize, datagram.Length)];
        var r = ProtocolPaths.Receive(to.Device, Now, datagram, buffer, Other(to).Source, to.UnderLoad);
        to.Results.Add(r);
        switch (r.Action)
        {
            case ProtocolAction.WriteToNetwork:
                Send(to, buffer.AsSpan(r.Offset, r.Length).ToArray());
                break;
            case ProtocolAction.WriteToTunnel:
                to.Delivered.Add(buffer.AsSpan(r.Offset, r.Length).ToArray());
                break;
        }

        return r;
    }

    /// <summary>Delivers everything in flight, both ways, until both inboxes are empty.</summary>
    public void Pump()
    {
        for (var i = 0; i < 1000 && (A.Inbox.Count > 0 || B.Inbox.Count > 0); i++)
        {
            if (A.Inbox.TryDequeue(out var d))
            {
                Deliver(A, d);
            }

            if (B.Inbox.TryDequeue(out d))
            {
                Deliver(B, d);
            }
        }
    }

    /// <summary>Moves time forward in steps, running both nodes' timers and delivering at each step when <paramref name="deliver"/>.</summary>
    public void Advance(TimeSpan total, TimeSpan? step = null, bool deliver = true)
    {
        var s = step ?? TimeSpan.FromMilliseconds(100);
        var end = Now + total;
        while (Now < end)
        {
            var next = Now + s;
            Clock.Now = next < end ? next : end;
            RunTimers(A);
            RunTimers(B);
            if (deliver)
            {
                Pump();
            }
            else
            {
                A.Inbox.Clear();
                B.Inbox.Clear();
            }
        }
    }

    /// <summary>A starts a handshake and everything is delivered.</summary>
    public void Handshake(Node initiator)
    {
        initiator.Peer.RequestHandshake();
        RunTimers(initiator);
        Pump();
    }

    /// <summary>Handshake from A, then A sends one packet so B's next keypair is confirmed.</summary>
    public void Establish()
    {
        Handshake(A);
        Pump();
    }

    /// <summary>Encapsulates an IPv4 packet with <paramref name="payloadLength"/> payload bytes and queues it to the other side.</summary>
    public ProtocolResult SendData(Node from, int payloadLength = 64, byte fill = 0xAB)
    {
        var packet = Ip4Packet(payloadLength, fill);
        var buffer = new byte[TransportDataView.HeaderSize + packet.Length + 16 + 16];
        packet.CopyTo(buffer, TransportDataView.HeaderSize);
        var r = ProtocolPaths.Encrypt(from.Peer, Now, buffer, packet.Length);
        from.Results.Add(r);
        if (r.Action == ProtocolAction.WriteToNetwork)
        {
            Send(from, buffer.AsSpan(r.Offset, r.Length).ToArray());
        }

        return r;
    }

    public static byte[] Ip4Packet(int payloadLength, byte fill = 0xAB)
    {
        var p = new byte[20 + payloadLength];
        p[0] = 0x45;
        BinaryPrimitives.WriteUInt16BigEndian(p.AsSpan(2), (ushort)p.Length);
        p[8] = 64;
        p[9] = 17;
        new byte[] { 192, 168, 4, 1 }.CopyTo(p, 12);
        new byte[] { 192, 168, 4, 2 }.CopyTo(p, 16);
        p.AsSpan(20).Fill(fill);
        return p;
    }

    public static MessageType TypeOf(byte[] datagram) => (MessageType)datagram[0];

    /// <summary>Recomputes mac1 of a handshake message for <paramref name="receiver"/> after a test edited it.</summary>
    public static void FixMac1(byte[] message, int mac1Offset, Key receiver)
    {
        Span<byte> key = stackalloc byte[32];
        Noise.LabelKey(ProtocolConstants.LabelMac1, receiver.AsSpan(), key);
        Noise.Mac(key, message.AsSpan(0, mac1Offset), message.AsSpan(mac1Offset, 16));
    }

    public static Key PublicOf(Key privateKey)
    {
        Span<byte> pub = stackalloc byte[32];
        X25519.PublicKey(privateKey.AsSpan(), pub);
        return new Key(pub);
    }
}
