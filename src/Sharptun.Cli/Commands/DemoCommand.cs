using Sharptun.Device.Pipeline;
using Sharptun.Protocol;
using System.Buffers.Binary;
using System.Diagnostics;
using System.Globalization;
using Sharptun.Cli.Show;
using Sharptun.Device;
using Sharptun.Device.Uapi;
using Sharptun.Transport;
using Sharptun.Transport.Linux;

namespace Sharptun.Cli.Commands;

/// <summary>
/// <c>sharptun demo</c>: two WireGuard devices in this process talking over real UDP on 127.0.0.1 (no root, no
/// config): keys are generated, both devices are configured with UAPI text, they handshake, a bulk transfer of
/// hand-built UDP/IPv4 packets goes through the tunnel, and the result is printed with the <c>show</c> view.
/// </summary>
internal sealed class DemoCommand : ICliCommand
{
    private const int PayloadBytes = 1380;
    private const int Window = 1024;
    private static readonly TimeSpan BulkDuration = TimeSpan.FromSeconds(2);

    public string Name => "demo";

    public string Summary => "Runs two in-process WireGuard peers over loopback UDP: handshake, bulk transfer, show";

    public Task<int> RunAsync(IReadOnlyList<string> args, CliContext context)
    {
        if (args.Count != 0)
        {
            context.Error.Write($"Usage: {CliContext.ProgramName} demo\n");
            return Task.FromResult(1);
        }

        if (!OperatingSystem.IsLinux())
        {
            context.Error.Write($"{CliContext.ProgramName}: demo needs Linux (it uses the Linux UDP bind)\n");
            return Task.FromResult(1);
        }

        try
        {
            return Task.FromResult(Run(context));
        }
        catch (Exception e) when (e is IOException or InvalidOperationException or TimeoutException)
        {
            context.Error.Write($"{CliContext.ProgramName}: demo failed: {e.Message}\n");
            return Task.FromResult(1);
        }
    }

    [System.Runtime.Versioning.SupportedOSPlatform("linux")]
    private static int Run(CliContext context)
    {
        var o = context.Out;
        using var alicePrivate = Key.GeneratePrivateKey();
        using var bobPrivate = Key.GeneratePrivateKey();
        var alicePublic = alicePrivate.DerivePublicKey();
        var bobPublic = bobPrivate.DerivePublicKey();

        var (aliceTun, aliceHost) = InMemoryPacketDevice.CreatePair(1420, name: "alice");
        var (bobTun, bobHost) = InMemoryPacketDevice.CreatePair(1420, name: "bob");
        using var alice = new WireGuardDevice(aliceTun, LinuxUdpBind.Factory);
        using var bob = new WireGuardDevice(bobTun, LinuxUdpBind.Factory);
        try
        {
            Configure(alice, $"private_key={alicePrivate.ToHex()}\npublic_key={bobPublic.ToHex()}\nendpoint=127.0.0.1:{bob.ListenPort}\nallowed_ip=10.77.0.2/32\n");
            Configure(bob, $"private_key={bobPrivate.ToHex()}\npublic_key={alicePublic.ToHex()}\nendpoint=127.0.0.1:{alice.ListenPort}\nallowed_ip=10.77.0.1/32\n");
            o.Write($"alice  {alicePublic}  udp 127.0.0.1:{alice.ListenPort}  tunnel 10.77.0.1\n");
            o.Write($"bob    {bobPublic}  udp 127.0.0.1:{bob.ListenPort}  tunnel 10.77.0.2\n");

            // Handshake: the first packet is staged, the initiation goes out, the packet follows the response.
            var sw = Stopwatch.StartNew();
            SendPackets(aliceHost, 0, 1);
            if (ReceivePackets(bobHost, 1, TimeSpan.FromSeconds(5)).Count != 1)
            {
                context.Error.Write($"{CliContext.ProgramName}: demo: no handshake within 5 s\n");
                return 1;
            }

            o.Write($"handshake + first packet: {sw.Elapsed.TotalMilliseconds.ToString("0.0", CultureInfo.InvariantCulture)} ms\n");

            // Bulk: alice → bob for a fixed time, at most Window packets in flight.
            var sent = 0;
            var received = 0;
            var outOfOrder = 0;
            var expected = 1u;
            sw.Restart();
            var sender = new Thread(() =>
            {
                while (sw.Elapsed < BulkDuration)
                {
                    if (sent - Volatile.Read(ref received) > Window)
                    {
                        Thread.Yield();
                        continue;
                    }

                    SendPackets(aliceHost, (uint)(sent + 1), 64);
                    Interlocked.Add(ref sent, 64);
                }
            }) { IsBackground = true };
            sender.Start();
            var buffers = NewBuffers(bobHost.BatchSize);
            var sizes = new int[buffers.Length];
            while (sender.IsAlive || received < Volatile.Read(ref sent))
            {
                if (bobHost.Pending == 0)
                {
                    if (!sender.IsAlive && sw.Elapsed > BulkDuration + TimeSpan.FromMilliseconds(300))
                    {
                        break; // the rest was lost
                    }

                    Thread.Sleep(0);
                    continue;
                }

                var n = bobHost.Read(buffers, sizes, 0);
                for (var i = 0; i < n; i++)
                {
                    var seq = BinaryPrimitives.ReadUInt32BigEndian(buffers[i].AsSpan(28));
                    if (seq < expected)
                    {
                        outOfOrder++;
                    }
                    else
                    {
                        expected = seq + 1;
                    }
                }

                Volatile.Write(ref received, received + n);
            }

            var seconds = sw.Elapsed.TotalSeconds;
            var bytes = (long)received * (PayloadBytes + 28);
            o.Write(string.Create(CultureInfo.InvariantCulture,
                $"bulk alice -> bob: {received} of {sent} packets ({bytes / 1e6:0.0} MB of IP packets) in {seconds:0.00} s = {bytes * 8 / seconds / 1e6:0} Mbit/s, {sent - received} lost (UDP), {outOfOrder} out of order\n"));
            o.Write("\n");

            var now = DateTimeOffset.UtcNow.ToUnixTimeSeconds();
            var aliceState = alice.GetSnapshot();
            var bobState = bob.GetSnapshot();
            o.Write(ShowFormatter.Format("alice", aliceState, now));
            o.Write("\n");
            o.Write(ShowFormatter.Format("bob", bobState, now));
            aliceState.ClearSecrets();
            bobState.ClearSecrets();
            return received > 0 ? 0 : 1;
        }
        finally
        {
            aliceTun.Dispose();
            bobTun.Dispose();
            aliceHost.Dispose();
            bobHost.Dispose();
        }
    }

    private static void Configure(WireGuardDevice device, string uapi)
    {
        if (!UapiParser.TryParseSet(uapi, out var changes, out var error))
        {
            throw new InvalidOperationException(error!.ToString());
        }

        try
        {
            if (device.Apply(changes!) is { } failure)
            {
                throw new InvalidOperationException(failure.ToString());
            }
        }
        finally
        {
            changes!.ClearSecrets();
        }
    }

    [ThreadStatic]
    private static byte[][]? t_sendBuffers;

    /// <summary>Writes <paramref name="count"/> UDP/IPv4 packets 10.77.0.1 → 10.77.0.2 numbered from <paramref name="first"/>.</summary>
    private static void SendPackets(InMemoryPacketDevice host, uint first, int count)
    {
        var buffers = t_sendBuffers ??= NewBuffers(64);
        Span<int> sizes = stackalloc int[count];
        for (var i = 0; i < count; i++)
        {
            var p = buffers[i].AsSpan();
            var length = 20 + 8 + PayloadBytes;
            p[..28].Clear();
            p[0] = 0x45;
            BinaryPrimitives.WriteUInt16BigEndian(p[2..], (ushort)length);
            p[8] = 64;
            p[9] = 17;
            p[12] = 10; p[13] = 77; p[14] = 0; p[15] = 1;
            p[16] = 10; p[17] = 77; p[18] = 0; p[19] = 2;
            BinaryPrimitives.WriteUInt16BigEndian(p[10..], HeaderChecksum(p[..20]));
            BinaryPrimitives.WriteUInt16BigEndian(p[20..], 40000);
            BinaryPrimitives.WriteUInt16BigEndian(p[22..], 9);
            BinaryPrimitives.WriteUInt16BigEndian(p[24..], (ushort)(8 + PayloadBytes));
            BinaryPrimitives.WriteUInt32BigEndian(p[28..], first + (uint)i);
            sizes[i] = length;
        }

        var written = 0;
        while (written < count)
        {
            written += host.Write(buffers[written..count], sizes[written..], 0, count - written);
        }
    }

    private static List<int> ReceivePackets(InMemoryPacketDevice host, int count, TimeSpan timeout)
    {
        var got = new List<int>();
        var buffers = NewBuffers(host.BatchSize);
        var sizes = new int[buffers.Length];
        var sw = Stopwatch.StartNew();
        while (got.Count < count && sw.Elapsed < timeout)
        {
            if (host.Pending == 0)
            {
                Thread.Sleep(1);
                continue;
            }

            var n = host.Read(buffers, sizes, 0);
            for (var i = 0; i < n; i++)
            {
                got.Add(sizes[i]);
            }
        }

        return got;
    }

    private static byte[][] NewBuffers(int count)
    {
        var buffers = new byte[count][];
        for (var i = 0; i < count; i++)
        {
            buffers[i] = new byte[2048];
        }

        return buffers;
    }

    private static ushort HeaderChecksum(ReadOnlySpan<byte> header)
    {
        uint sum = 0;
        for (var i = 0; i < header.Length; i += 2)
        {
            sum += BinaryPrimitives.ReadUInt16BigEndian(header[i..]);
        }

        while (sum > 0xFFFF)
        {
            sum = (sum & 0xFFFF) + (sum >> 16);
        }

        return (ushort)~sum;
    }
}
