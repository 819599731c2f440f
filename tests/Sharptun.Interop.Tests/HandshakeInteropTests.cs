using System.Buffers.Binary;
using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using System.Runtime.Versioning;
using Sharptun.Crypto;
using Sharptun.Protocol;

namespace Sharptun.Interop.Tests;

/// <summary>
/// Byte-level interop of the sans-I/O protocol core with Debian's wireguard-go: a small driver owns a UDP socket in one
/// namespace and runs <see cref="ProtocolDevice"/>; wireguard-go runs in a second namespace, linked by a veth pair, and
/// is configured only with <c>wg set</c> and <c>ip</c>. ICMP echo packets are built by hand and travel inside the tunnel;
/// the Linux kernel behind wireguard-go's TUN answers them.
/// </summary>
[SupportedOSPlatform("linux")]
public sealed class HandshakeInteropTests
{
    private static readonly TimeSpan Timeout = TimeSpan.FromSeconds(15);

    [InteropFact("wireguard-go", "wg", "ping")]
    public void Handshake_SharptunInitiates_KernelAnswersPingThroughWireguardGo()
    {
        using var lab = new NetnsLab();
        using var env = WireguardGoEnvironment.Create(lab);
        var driver = env.Driver;

        driver.Peer.RequestHandshake();
        driver.RunTimers();
        env.WaitFor(
            () =>
            {
                driver.ReceiveOnce();
                return driver.Peer.HasSession(driver.Now);
            },
            Timeout,
            "handshake response from wireguard-go");
        Assert.True(driver.Peer.CurrentKeypair!.IsInitiator);

        var request = Icmp.EchoRequest(env.OurTunnelIp, env.TheirTunnelIp, identifier: 0x5354, sequence: 1, payloadLength: 56);
        driver.SendToTunnel(request);

        byte[]? reply = null;
        env.WaitFor(
            () =>
            {
                driver.ReceiveOnce();
                reply = driver.TakeTunnelPacket();
                return reply is not null;
            },
            Timeout,
            "ICMP echo reply through the tunnel");
        Icmp.AssertEchoReply(reply!, env.TheirTunnelIp, env.OurTunnelIp, 0x5354, 1);

        var handshakes = lab.Check(env.Namespace, "wg", "show", env.Interface, "latest-handshakes").Stdout;
        Assert.DoesNotContain("\t0", handshakes);
    }

    [InteropFact("wireguard-go", "wg", "ping")]
    public void Handshake_WireguardGoInitiates_SharptunAnswersPing()
    {
        using var lab = new NetnsLab();
        using var env = WireguardGoEnvironment.Create(lab);
        var driver = env.Driver;

        // ping inside wireguard-go's namespace: it has no session yet, so it sends us a handshake initiation first.
        var ping = lab.Start(env.Namespace, "ping", "-c", "3", "-i", "0.3", "-W", "10", env.OurTunnelIp.ToString());

        var answered = 0;
        env.WaitFor(
            () =>
            {
                driver.ReceiveOnce();
                while (driver.TakeTunnelPacket() is { } packet)
                {
                    if (Icmp.TryMakeEchoReply(packet, out var reply))
                    {
                        driver.SendToTunnel(reply);
                        answered++;
                    }
                }

                return ping.HasExited;
            },
            Timeout,
            "ping to exit");

        Assert.True(ping.ExitCode == 0, lab.DescribeProcesses());
        Assert.Equal(3, answered);
        Assert.False(driver.Peer.CurrentKeypair!.IsInitiator);
        Assert.Contains(driver.Log, l => l.StartsWith("rx HandshakeInitiation", StringComparison.Ordinal));
    }

    [InteropFact("wireguard-go", "wg", "ping")]
    public void Handshake_UnderLoad_WireguardGoUsesOurCookieForMac2()
    {
        using var lab = new NetnsLab();
        using var env = WireguardGoEnvironment.Create(lab);
        var driver = env.Driver;
        driver.UnderLoad = true;

        // One ping: wireguard-go initiates, gets our cookie reply, and retries after RekeyTimeout with mac2 set.
        var ping = lab.Start(env.Namespace, "ping", "-c", "1", "-W", "20", env.OurTunnelIp.ToString());
        env.WaitFor(
            () =>
            {
                driver.ReceiveOnce();
                while (driver.TakeTunnelPacket() is { } packet)
                {
                    if (Icmp.TryMakeEchoReply(packet, out var reply))
                    {
                        driver.SendToTunnel(reply);
                    }
                }

                return ping.HasExited;
            },
            TimeSpan.FromSeconds(25),
            "ping to exit");

        Assert.True(ping.ExitCode == 0, lab.DescribeProcesses() + string.Join("\n", driver.Log));
        var log = string.Join("\n", driver.Log);
        Assert.Contains("rx HandshakeInitiation 148 B -> WriteToNetwork CookieRequired 64", log);
        Assert.Contains("rx HandshakeInitiation 148 B -> WriteToNetwork None 92", log);
    }

    /// <summary>Two namespaces joined by a veth: ours (the driver's UDP socket) and wireguard-go's.</summary>
    private sealed class WireguardGoEnvironment : IDisposable
    {
        private readonly NetnsLab _lab;
        private readonly string _keyFile;

        private WireguardGoEnvironment(NetnsLab lab, string keyFile, string ns, string ifname, Driver driver, IPAddress ourTunnelIp, IPAddress theirTunnelIp)
        {
            _lab = lab;
            _keyFile = keyFile;
            Namespace = ns;
            Interface = ifname;
            Driver = driver;
            OurTunnelIp = ourTunnelIp;
            TheirTunnelIp = theirTunnelIp;
        }

        public string Namespace { get; }
        public string Interface { get; }
        public Driver Driver { get; }
        public IPAddress OurTunnelIp { get; }
        public IPAddress TheirTunnelIp { get; }

        public static WireguardGoEnvironment Create(NetnsLab lab)
        {
            var ours = lab.AddNamespace();
            var theirs = lab.AddNamespace();
            var veth = lab.AddVeth(ours, theirs);
            var link = lab.NewSubnet();
            lab.AddAddress(ours, veth.InterfaceA, link.V4Cidr(1));
            lab.AddAddress(theirs, veth.InterfaceB, link.V4Cidr(2));
            var tunnel = lab.NewSubnet();

            Span<byte> ourPrivate = stackalloc byte[32];
            Span<byte> theirPrivate = stackalloc byte[32];
            Span<byte> theirPublic = stackalloc byte[32];
            X25519.GeneratePrivateKey(ourPrivate);
            X25519.GeneratePrivateKey(theirPrivate);
            X25519.PublicKey(theirPrivate, theirPublic);

            // Our UDP socket lives in our namespace (a socket keeps the namespace it was created in).
            var socket = NetnsLab.RunInNamespace(ours, () =>
            {
                var s = new Socket(AddressFamily.InterNetwork, SocketType.Dgram, ProtocolType.Udp);
                s.Bind(new IPEndPoint(IPAddress.Parse(link.V4(1)), 0));
                return s;
            });
            var ourEndpoint = (IPEndPoint)socket.LocalEndPoint!;
            var theirEndpoint = new IPEndPoint(IPAddress.Parse(link.V4(2)), 51820);

            var ifname = lab.NewInterfaceName('w');
            var keyFile = Path.Combine(Path.GetTempPath(), $"sharptun-{ifname}.key");
            File.WriteAllText(keyFile, Convert.ToBase64String(theirPrivate) + "\n");
            File.SetUnixFileMode(keyFile, UnixFileMode.UserRead | UnixFileMode.UserWrite);

            var device = new ProtocolDevice(new Key(ourPrivate));
            var peer = device.AddPeer(new Key(theirPublic));
            var driver = new Driver(device, peer, socket, theirEndpoint);
            var env = new WireguardGoEnvironment(lab, keyFile, theirs, ifname, driver, IPAddress.Parse(tunnel.V4(1)), IPAddress.Parse(tunnel.V4(2)));
            try
            {
                lab.Start(theirs, "wireguard-go", "-f", ifname);
                var uapi = $"/var/run/wireguard/{ifname}.sock";
                lab.WaitFor(() => File.Exists(uapi), TimeSpan.FromSeconds(10), "wireguard-go UAPI socket " + uapi);
                lab.Check(theirs, "wg", "set", ifname,
                    "private-key", keyFile,
                    "listen-port", "51820",
                    "peer", device.PublicKey.ToString(),
                    "allowed-ips", tunnel.V4(1) + "/32",
                    "endpoint", $"{ourEndpoint.Address}:{ourEndpoint.Port}");
                lab.AddAddress(theirs, ifname, tunnel.V4Cidr(2));
                lab.SetUp(theirs, ifname);
                return env;
            }
            catch
            {
                env.Dispose();
                throw;
            }
        }

        /// <summary>Polls until <paramref name="condition"/>; on timeout the message carries the driver log, <c>wg show</c> and process output.</summary>
        public void WaitFor(Func<bool> condition, TimeSpan timeout, string what)
        {
            try
            {
                NetnsLab.WaitUntil(condition, timeout, what);
            }
            catch (TimeoutException e)
            {
                throw new TimeoutException(e.Message + "\n" + Describe(), e);
            }
        }

        public string Describe() =>
            string.Join("\n", Driver.Log) + "\n" + _lab.Exec(Namespace, "wg", "show", Interface) + "\n" + _lab.DescribeProcesses();

        public void Dispose()
        {
            Driver.Dispose();
            File.Delete(_keyFile);

            // wireguard-go is killed with SIGKILL and cannot remove its UAPI socket itself.
            File.Delete($"/var/run/wireguard/{Interface}.sock");
            // The lab kills wireguard-go and deletes both namespaces (and with them the veth and the TUN).
        }
    }

    /// <summary>Runs the protocol core over a real UDP socket, on a monotonic clock.</summary>
    private sealed class Driver(ProtocolDevice device, Peer peer, Socket socket, IPEndPoint remote) : IDisposable
    {
        private readonly Stopwatch _clock = Stopwatch.StartNew();
        private readonly byte[] _rx = new byte[2048];
        private readonly byte[] _tx = new byte[2048];
        private readonly Queue<byte[]> _tunnel = new();

        public Peer Peer { get; } = peer;
        public List<string> Log { get; } = [];
        public bool UnderLoad { get; set; }
        public TimeSpan Now => _clock.Elapsed;

        public void RunTimers()
        {
            for (var i = 0; i < 16; i++)
            {
                var r = Peer.UpdateTimers(Now, _tx);
                if (r.Action == ProtocolAction.Done)
                {
                    return;
                }

                if (r.Action == ProtocolAction.WriteToNetwork)
                {
                    Send(_tx.AsSpan(r.Offset, r.Length));
                }
            }
        }

        /// <summary>Waits up to 200 ms for one datagram and processes it. True when one arrived.</summary>
        public bool ReceiveOnce()
        {
            RunTimers();
            if (!socket.Poll(200_000, SelectMode.SelectRead))
            {
                return false;
            }

            EndPoint from = new IPEndPoint(IPAddress.Any, 0);
            var n = socket.ReceiveFrom(_rx, ref from);
            Span<byte> source = stackalloc byte[18];
            var sourceLength = ProtocolDevice.WriteSourceBytes((IPEndPoint)from, source);
            var type = n > 0 ? (MessageType)_rx[0] : MessageType.None;
            var r = Receive(_rx.AsSpan(0, n), source[..sourceLength]);
            Log.Add($"rx {type} {n} B -> {r.Action} {r.Error} {r.Length}");
            switch (r.Action)
            {
                case ProtocolAction.WriteToNetwork:
                    Send(_rx.AsSpan(r.Offset, r.Length));
                    break;
                case ProtocolAction.WriteToTunnel:
                    _tunnel.Enqueue(_rx.AsSpan(r.Offset, r.Length).ToArray());
                    break;
            }

            RunTimers();
            return true;
        }

        public byte[]? TakeTunnelPacket() => _tunnel.TryDequeue(out var p) ? p : null;

        public void SendToTunnel(byte[] ipPacket)
        {
            ipPacket.CopyTo(_tx, 16);
            var error = Peer.TryReserveSend(Now, isKeepalive: false, out var keypair, out var counter);
            var length = 0;
            if (error == ProtocolError.None)
            {
                error = keypair!.TryEncrypt(counter, _tx, ipPacket.Length, out length, Peer.Mtu);
            }

            Assert.True(error == ProtocolError.None, $"encrypt: {error}\n{string.Join("\n", Log)}");
            Send(_tx.AsSpan(0, length));
        }

        /// <summary>
        /// As WireGuardDevice receives: handshake messages through ProtocolDevice.Decapsulate, transport data through
        /// TryGetKeypair + Keypair.TryDecrypt + Peer.ReceiveTransport (the IP packet lands at offset 16).
        /// </summary>
        private ProtocolResult Receive(Span<byte> datagram, ReadOnlySpan<byte> source)
        {
            if (!TransportDataView.TryCreate(datagram, out var view))
            {
                return device.Decapsulate(Now, datagram, _rx, source, UnderLoad);
            }

            if (!device.TryGetKeypair(view.ReceiverIndex, out var keypair))
            {
                return ProtocolResult.Fail(ProtocolError.UnknownReceiverIndex);
            }

            var error = keypair.TryDecrypt(datagram, _rx, out var counter, out var length);
            if (error == ProtocolError.None)
            {
                error = keypair.Peer.ReceiveTransport(Now, keypair, counter, length);
            }

            if (error != ProtocolError.None)
            {
                return ProtocolResult.Fail(error, keypair.Peer);
            }

            if (length == 0)
            {
                return ProtocolResult.Done(keypair.Peer); // keepalive
            }

            return InnerPacket.TryGetLength(_rx.AsSpan(TransportDataView.HeaderSize, length), out var ipLength)
                ? new ProtocolResult(ProtocolAction.WriteToTunnel, TransportDataView.HeaderSize, ipLength, ProtocolError.None, keypair.Peer)
                : ProtocolResult.Fail(ProtocolError.InvalidInnerPacket, keypair.Peer);
        }

        private void Send(ReadOnlySpan<byte> datagram)
        {
            Log.Add($"tx {(MessageType)datagram[0]} {datagram.Length} B");
            socket.SendTo(datagram, remote);
        }

        public void Dispose() => socket.Dispose();
    }

    /// <summary>Hand-built IPv4 + ICMP echo packets (RFC 791, RFC 792).</summary>
    private static class Icmp
    {
        public static byte[] EchoRequest(IPAddress source, IPAddress destination, ushort identifier, ushort sequence, int payloadLength)
        {
            var icmp = new byte[8 + payloadLength];
            icmp[0] = 8; // echo request
            BinaryPrimitives.WriteUInt16BigEndian(icmp.AsSpan(4), identifier);
            BinaryPrimitives.WriteUInt16BigEndian(icmp.AsSpan(6), sequence);
            for (var i = 0; i < payloadLength; i++)
            {
                icmp[8 + i] = (byte)i;
            }

            BinaryPrimitives.WriteUInt16BigEndian(icmp.AsSpan(2), Checksum(icmp));
            return Ipv4(source, destination, icmp);
        }

        public static bool TryMakeEchoReply(byte[] request, out byte[] reply)
        {
            reply = [];
            if (request.Length < 28 || request[0] != 0x45 || request[9] != 1 || request[20] != 8)
            {
                return false;
            }

            var icmp = request.AsSpan(20).ToArray();
            icmp[0] = 0; // echo reply
            icmp[2] = icmp[3] = 0;
            BinaryPrimitives.WriteUInt16BigEndian(icmp.AsSpan(2), Checksum(icmp));
            reply = Ipv4(new IPAddress(request.AsSpan(16, 4)), new IPAddress(request.AsSpan(12, 4)), icmp);
            return true;
        }

        public static void AssertEchoReply(byte[] packet, IPAddress source, IPAddress destination, ushort identifier, ushort sequence)
        {
            Assert.True(packet.Length >= 28);
            Assert.Equal(0x45, packet[0]);
            Assert.Equal(packet.Length, BinaryPrimitives.ReadUInt16BigEndian(packet.AsSpan(2)));
            Assert.Equal(0, Checksum(packet.AsSpan(0, 20)));
            Assert.Equal(1, packet[9]);
            Assert.Equal(source, new IPAddress(packet.AsSpan(12, 4)));
            Assert.Equal(destination, new IPAddress(packet.AsSpan(16, 4)));
            Assert.Equal(0, packet[20]); // echo reply
            Assert.Equal(0, Checksum(packet.AsSpan(20)));
            Assert.Equal(identifier, BinaryPrimitives.ReadUInt16BigEndian(packet.AsSpan(24)));
            Assert.Equal(sequence, BinaryPrimitives.ReadUInt16BigEndian(packet.AsSpan(26)));
        }

        private static byte[] Ipv4(IPAddress source, IPAddress destination, byte[] payload)
        {
            var p = new byte[20 + payload.Length];
            p[0] = 0x45;
            BinaryPrimitives.WriteUInt16BigEndian(p.AsSpan(2), (ushort)p.Length);
            BinaryPrimitives.WriteUInt16BigEndian(p.AsSpan(4), 0x1234);
            p[6] = 0x40; // DF
            p[8] = 64;
            p[9] = 1; // ICMP
            source.TryWriteBytes(p.AsSpan(12), out _);
            destination.TryWriteBytes(p.AsSpan(16), out _);
            BinaryPrimitives.WriteUInt16BigEndian(p.AsSpan(10), Checksum(p.AsSpan(0, 20)));
            payload.CopyTo(p, 20);
            return p;
        }

        /// <summary>RFC 1071 Internet checksum (0 when verifying a correct header).</summary>
        private static ushort Checksum(ReadOnlySpan<byte> data)
        {
            uint sum = 0;
            for (var i = 0; i + 1 < data.Length; i += 2)
            {
                sum += BinaryPrimitives.ReadUInt16BigEndian(data[i..]);
            }

            if ((data.Length & 1) != 0)
            {
                sum += (uint)data[^1] << 8;
            }

            while (sum > 0xFFFF)
            {
                sum = (sum & 0xFFFF) + (sum >> 16);
            }

            return (ushort)~sum;
        }
    }
}
