namespace Sharptun.Proxy.Tests.Socks5;

/// <summary>
/// RFC 1928 §7: "An implementation that does not support fragmentation MUST drop any datagram whose FRAG field is
/// other than X'00'". Fragments aimed at a live target never reach it, each is counted, and whole datagrams keep flowing.
/// </summary>
public sealed class Socks5UdpFragmentTests
{
    [Fact]
    public async Task Fragments_EveryNonZeroFrag_DroppedAndCounted_NeverReachTheTarget_WholeDatagramsStillRelayed()
    {
        using var echo = new UdpEcho();
        await using var harness = new Socks5Harness();
        using var udp = await Socks5UdpClient.AssociateAsync(harness);

        // A first fragment, a middle one, the end-of-sequence marker alone (high bit) and a last fragment (0x80 | 2),
        // all addressed to the echo service itself, so a relayed one would be echoed and counted there.
        byte[] frags = [0x01, 0x7F, 0x80, 0x82, 0xFF];
        foreach (var frag in frags)
        {
            var datagram = Socks5UdpClient.Wrap(echo.EndPoint, [frag, 0xAA]);
            datagram[2] = frag;
            await udp.Socket.SendToAsync(datagram, System.Net.Sockets.SocketFlags.None, udp.Relay);
        }

        await Socks5Harness.EventuallyAsync(() => harness.Server.DatagramsDropped == frags.Length, "every fragment is dropped");

        // FRAG 0 after them is relayed and echoed; the echo saw only that one.
        await udp.SendAsync(echo.EndPoint, [0x00, 0xBB]);
        var (from, payload) = await udp.ReceiveAsync();
        Assert.Equal(echo.EndPoint, from);
        Assert.Equal([0x00, 0xBB], payload);
        Assert.Equal(1, echo.Received);
        Assert.Equal(frags.Length, harness.Server.DatagramsDropped);
    }
}
