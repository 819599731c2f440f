using Sharptun.Protocol;

namespace Sharptun.Testing;

/// <summary>
/// The protocol core's two transport-data paths as WireGuardDevice runs them, in one call each and without the I/O or
/// the threads it spreads them over: for tests and the fuzz harness that drive a <see cref="ProtocolDevice"/> directly.
/// </summary>
public static class ProtocolPaths
{
    /// <summary>
    /// Receives one datagram the way WireGuardDevice does: handshake messages through
    /// <see cref="ProtocolDevice.Decapsulate"/>; transport data through the receiver index
    /// (<see cref="ProtocolDevice.TryGetKeypair"/>), <see cref="Keypair.TryDecrypt"/>, <see cref="Peer.ReceiveTransport"/>
    /// and <see cref="InnerPacket.TryGetLength"/>, reported as one result (the decrypted IP packet at offset 16).
    /// </summary>
    public static ProtocolResult Receive(ProtocolDevice device, TimeSpan now, ReadOnlySpan<byte> datagram, Span<byte> destination, ReadOnlySpan<byte> source = default, bool underLoad = false)
    {
        if (!TransportDataView.TryCreate(datagram, out var view))
        {
            return device.Decapsulate(now, datagram, destination, source, underLoad);
        }

        if (!device.TryGetKeypair(view.ReceiverIndex, out var keypair))
        {
            return ProtocolResult.Fail(ProtocolError.UnknownReceiverIndex);
        }

        if (keypair.IsExpired(now))
        {
            return ProtocolResult.Fail(ProtocolError.KeypairExpired, keypair.Peer);
        }

        var error = keypair.TryDecrypt(datagram, destination, out var counter, out var length);
        if (error != ProtocolError.None)
        {
            return ProtocolResult.Fail(error);
        }

        var peer = keypair.Peer;
        error = peer.ReceiveTransport(now, keypair, counter, length);
        if (error != ProtocolError.None)
        {
            return ProtocolResult.Fail(error, peer);
        }

        if (length == 0)
        {
            return ProtocolResult.Done(peer); // keepalive (whitepaper §6.5)
        }

        return InnerPacket.TryGetLength(destination.Slice(TransportDataView.HeaderSize, length), out var ipLength)
            ? ProtocolResult.Tunnel(TransportDataView.HeaderSize, ipLength, peer)
            : ProtocolResult.Fail(ProtocolError.InvalidInnerPacket, peer);
    }

    /// <summary>
    /// Encrypts the IP packet at <c>buffer[16 .. 16 + packetLength]</c> (a keepalive when 0) the way WireGuardDevice
    /// does: <see cref="Peer.TryReserveSend"/>, then <see cref="Keypair.TryEncrypt"/>; the datagram at offset 0.
    /// </summary>
    public static ProtocolResult Encrypt(Peer peer, TimeSpan now, Span<byte> buffer, int packetLength)
    {
        var error = peer.TryReserveSend(now, packetLength == 0, out var keypair, out var counter);
        if (error == ProtocolError.None)
        {
            error = keypair!.TryEncrypt(counter, buffer, packetLength, out var length, peer.Mtu);
            if (error == ProtocolError.None)
            {
                return ProtocolResult.Network(length, peer);
            }
        }

        return ProtocolResult.Fail(error, peer);
    }
}
