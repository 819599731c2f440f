using System.Buffers.Binary;
using BenchmarkDotNet.Attributes;
using Sharptun.Protocol;

namespace Sharptun.Benchmarks;

/// <summary>
/// Transport data encryption and decryption of a 1420-byte IP packet through the protocol core, in place in a caller
/// buffer (what the device's crypto workers do per packet). The bar is 0 B allocated.
/// </summary>
[MemoryDiagnoser]
public class TransportBenchmarks
{
    private const int PacketLength = 1420;
    private readonly byte[] _packet = new byte[PacketLength];
    private readonly byte[] _buffer = new byte[2048];
    private readonly byte[] _datagram = new byte[2048];
    private readonly byte[] _scratch = new byte[2048];
    private Peer _sender = null!;
    private Keypair _receiveKeypair = null!;
    private ProtocolDevice _receiver = null!;
    private int _datagramLength;
    private TimeSpan _now;

    [GlobalSetup]
    public void Setup()
    {
        var random = new Random(1);
        var keyA = new byte[32];
        var keyB = new byte[32];
        random.NextBytes(keyA);
        random.NextBytes(keyB);
        var a = new ProtocolDevice(new Key(keyA));
        var b = new ProtocolDevice(new Key(keyB));
        _sender = a.AddPeer(b.PublicKey);
        b.AddPeer(a.PublicKey);
        _receiver = b;
        _now = TimeSpan.FromSeconds(1);

        // Handshake A → B → A, then A's keepalive confirms B's keypair.
        var buffer = new byte[2048];
        _sender.RequestHandshake();
        var init = _sender.UpdateTimers(_now, buffer);
        var response = b.Decapsulate(_now, buffer.AsSpan(0, init.Length), _scratch);
        var keepalive = a.Decapsulate(_now, _scratch.AsSpan(0, response.Length), buffer);
        Receive(b, buffer.AsSpan(0, keepalive.Length), _scratch);
        if (!_sender.HasSession(_now))
        {
            throw new InvalidOperationException("handshake failed");
        }

        _packet[0] = 0x45;
        BinaryPrimitives.WriteUInt16BigEndian(_packet.AsSpan(2), PacketLength);
        random.NextBytes(_packet.AsSpan(20));

        _packet.CopyTo(_buffer, 16);
        _datagramLength = Send();
        _buffer.AsSpan(0, _datagramLength).CopyTo(_datagram);
        if (!TransportDataView.TryCreate(_datagram.AsSpan(0, _datagramLength), out var view) || !b.TryGetKeypair(view.ReceiverIndex, out var keypair))
        {
            throw new InvalidOperationException("no keypair");
        }

        _receiveKeypair = keypair;
    }

    /// <summary>Peer.TryReserveSend + Keypair.TryEncrypt: counter reservation, timers and in-place ChaCha20-Poly1305.</summary>
    [Benchmark]
    public int Encrypt() => Send();

    /// <summary>Keypair.TryDecrypt: authenticate and decrypt (no replay update, so the same datagram can be reused).</summary>
    [Benchmark]
    public int Decrypt()
    {
        _receiveKeypair.TryDecrypt(_datagram.AsSpan(0, _datagramLength), _scratch, out _, out var length);
        return length;
    }

    /// <summary>
    /// The device's receive path on a fresh counter each time: index lookup (ProtocolDevice.TryGetKeypair),
    /// Keypair.TryDecrypt, then Peer.ReceiveTransport (replay window, timers).
    /// </summary>
    [Benchmark]
    public int Decapsulate()
    {
        var length = Send();
        return Receive(_receiver, _buffer.AsSpan(0, length), _buffer);
    }

    /// <summary>Encrypts the packet at <c>_buffer[16..]</c> as the device does; returns the datagram length.</summary>
    private int Send()
    {
        if (_sender.TryReserveSend(_now, isKeepalive: false, out var keypair, out var counter) != ProtocolError.None
            || keypair!.TryEncrypt(counter, _buffer, PacketLength, out var length, _sender.Mtu) != ProtocolError.None)
        {
            throw new InvalidOperationException("encrypt failed");
        }

        return length;
    }

    /// <summary>Receives one transport datagram as the device does; returns the plaintext length.</summary>
    private int Receive(ProtocolDevice device, ReadOnlySpan<byte> datagram, Span<byte> destination)
    {
        if (!TransportDataView.TryCreate(datagram, out var view) || !device.TryGetKeypair(view.ReceiverIndex, out var keypair)
            || keypair.TryDecrypt(datagram, destination, out var counter, out var length) != ProtocolError.None
            || keypair.Peer.ReceiveTransport(_now, keypair, counter, length) != ProtocolError.None)
        {
            throw new InvalidOperationException("decrypt failed");
        }

        return length;
    }
}
