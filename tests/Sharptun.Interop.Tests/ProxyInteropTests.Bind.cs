using System.Buffers.Binary;
using System.Net;
using System.Net.Sockets;
using System.Runtime.Versioning;
using System.Security.Cryptography;

namespace Sharptun.Interop.Tests;

/// <summary>
/// SOCKS5 BIND (RFC 1928 §4, §6) through <c>sharptun proxy</c> running as uid 65534: a client on the proxy's host asks
/// for a listener, a kernel-TCP client on wireguard-go's side connects to the address and port of the first reply,
/// and bytes flow both ways through the tunnel; a connection from another host than the one the request named is reset.
/// </summary>
[SupportedOSPlatform("linux")]
public sealed partial class ProxyInteropTests
{
    [InteropFact("wireguard-go", "wg", "nginx", "dnsmasq", "curl", "setpriv", "ss")]
    public void Socks5_Bind_KernelTcpFromTheWireGuardSide_ReachesTheClient_BothWays_IPv4AndIPv6()
    {
        using var lab = new NetnsLab();
        using var proxyLab = new ProxyLab(lab);
        var config = proxyLab.WriteConfig("bind.conf", proxyLab.InterfaceAndPeer + "[Socks5]\nBindAddress = 127.0.0.1:1080\n");
        var proxy = proxyLab.StartProxy(config);
        proxyLab.WaitForTcpListener(1080, proxy);
        proxyLab.WaitForHandshake(proxy); // wireguard-go learns the proxy's endpoint from the handshake

        foreach (var (expected, tunnelAddress) in new[] { (proxyLab.ServerV4, proxyLab.ClientV4), (proxyLab.ServerV6, proxyLab.ClientV6) })
        {
            var expectedAddress = IPAddress.Parse(expected);
            using var control = NetnsLab.RunInNamespace(proxyLab.ClientNs, () => new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp));
            using var peer = NetnsLab.RunInNamespace(proxyLab.ServerNs, () => new Socket(expectedAddress.AddressFamily, SocketType.Stream, ProtocolType.Tcp));
            control.ReceiveTimeout = 30_000;
            peer.ReceiveTimeout = 30_000;
            control.Connect(new IPEndPoint(IPAddress.Loopback, 1080));

            // BIND expecting wireguard-go's address: the first reply names the proxy's tunnel address of that family.
            var bound = SyncBind.Request(control, expectedAddress);
            var describe = proxyLab.Describe() + lab.OutputOf(proxy);
            Assert.True(IPAddress.Parse(tunnelAddress).Equals(bound.Address), $"first reply {bound}\n{describe}");
            Assert.NotEqual(0, bound.Port);

            if (expectedAddress.AddressFamily == AddressFamily.InterNetwork)
            {
                // wireguard-go's IPv6 address is not the host the request named: reset by the proxy, and the wait goes on.
                using var stranger = NetnsLab.RunInNamespace(proxyLab.ServerNs, () => new Socket(AddressFamily.InterNetworkV6, SocketType.Stream, ProtocolType.Tcp));
                stranger.ReceiveTimeout = 30_000;
                Assert.True(Refused(stranger, new IPEndPoint(IPAddress.Parse(proxyLab.ClientV6), bound.Port)), describe);
                lab.WaitFor(
                    () => lab.OutputOf(proxy).Contains($"BIND refused a connection from [{proxyLab.ServerV6}]", StringComparison.Ordinal),
                    TimeSpan.FromSeconds(20),
                    "the proxy logs the refusal of the stranger (it reached the listener, not a closed port)");
            }

            peer.Connect(bound);
            var from = SyncBind.ReadReply(control);
            Assert.Equal(peer.LocalEndPoint, from); // the second reply: wireguard-go's side as the proxy saw it

            // 1 MiB each way, checked by hash; then the peer's half-close reaches the client.
            var up = RandomNumberGenerator.GetBytes(1 << 20);
            var down = RandomNumberGenerator.GetBytes(1 << 20);
            var sending = Task.Run(() => control.Send(up));
            Assert.Equal(SHA256.HashData(up), SHA256.HashData(SyncBind.Receive(peer, up.Length)));
            sending.Wait(TimeSpan.FromSeconds(60));
            sending = Task.Run(() => peer.Send(down));
            Assert.Equal(SHA256.HashData(down), SHA256.HashData(SyncBind.Receive(control, down.Length)));
            sending.Wait(TimeSpan.FromSeconds(60));
            peer.Shutdown(SocketShutdown.Send);
            control.Send("last words"u8);
            Assert.Equal("last words"u8.ToArray(), SyncBind.Receive(peer, 10));
            control.Shutdown(SocketShutdown.Send);
            Assert.Equal(0, control.Receive(new byte[1]));
            Assert.Equal(0, peer.Receive(new byte[1]));

            // Exactly one connection per BIND: the port no longer listens.
            using var late = NetnsLab.RunInNamespace(proxyLab.ServerNs, () => new Socket(expectedAddress.AddressFamily, SocketType.Stream, ProtocolType.Tcp));
            var refused = Assert.Throws<SocketException>(() => late.Connect(bound));
            Assert.Equal(SocketError.ConnectionRefused, refused.SocketErrorCode);
        }

        Assert.False(proxy.HasExited, lab.OutputOf(proxy));
    }

    /// <summary>Whether a connection to <paramref name="to"/> is refused or reset (at once or right after it is set up) rather than served.</summary>
    private static bool Refused(Socket socket, IPEndPoint to)
    {
        try
        {
            socket.Connect(to);
            return socket.Receive(new byte[1]) == 0;
        }
        catch (SocketException e) when (e.SocketErrorCode is SocketError.ConnectionReset or SocketError.ConnectionRefused)
        {
            return true;
        }
    }

    /// <summary>A blocking SOCKS5 BIND client (RFC 1928 §4, §6).</summary>
    private static class SyncBind
    {
        /// <summary>Greets, sends BIND expecting <paramref name="expected"/> (port 0) and returns the first reply's BND.</summary>
        public static IPEndPoint Request(Socket control, IPAddress expected)
        {
            control.Send([0x05, 0x01, 0x00]);
            Assert.Equal([0x05, 0x00], Receive(control, 2));
            var ipv4 = expected.AddressFamily == AddressFamily.InterNetwork;
            var request = new byte[4 + (ipv4 ? 4 : 16) + 2];
            request[0] = 0x05;
            request[1] = 0x02;
            request[3] = ipv4 ? (byte)0x01 : (byte)0x04;
            expected.TryWriteBytes(request.AsSpan(4), out _);
            control.Send(request);
            return ReadReply(control);
        }

        /// <summary>A reply with REP 0x00; returns BND.ADDR and BND.PORT.</summary>
        public static IPEndPoint ReadReply(Socket control)
        {
            var head = Receive(control, 4);
            Assert.Equal(0x05, head[0]);
            Assert.Equal(0x00, head[1]);
            var length = head[3] == 0x01 ? 4 : head[3] == 0x04 ? 16 : throw new Xunit.Sdk.XunitException($"ATYP {head[3]}");
            var tail = Receive(control, length + 2);
            return new IPEndPoint(new IPAddress(tail.AsSpan(0, length)), BinaryPrimitives.ReadUInt16BigEndian(tail.AsSpan(length)));
        }

        public static byte[] Receive(Socket socket, int count)
        {
            var buffer = new byte[count];
            var read = 0;
            while (read < count)
            {
                var n = socket.Receive(buffer, read, count - read, SocketFlags.None);
                Assert.True(n > 0, $"end of stream after {read} of {count} bytes");
                read += n;
            }

            return buffer;
        }
    }
}
