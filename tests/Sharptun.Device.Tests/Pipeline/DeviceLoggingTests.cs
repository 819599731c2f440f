using Microsoft.Extensions.Logging;
using Sharptun.Device.Pipeline;
using Sharptun.Device.Uapi;
using Sharptun.Testing;
using Sharptun.Testing.Logging;
using Sharptun.Transport;

namespace Sharptun.Device.Tests.Pipeline;

/// <summary>The device logs through the <see cref="ILogger"/> passed to its constructor.</summary>
public sealed class DeviceLoggingTests
{
    [Fact]
    public void ListenPortChangeAndTunClose_ArriveThroughILogger()
    {
        var (tun, host) = InMemoryPacketDevice.CreatePair(1420);
        using var _ = host;
        var log = new CapturingLogger();
        using var device = new WireGuardDevice(tun, new InMemoryNetwork(31).CreateFactory(UdpEndpoint.Parse("192.0.2.1:0")), new WireGuardDeviceOptions { CryptoWorkers = 1 }, log);

        Assert.True(UapiParser.TryParseSet("listen_port=5555\n", out var changes, out var error), error?.ToString());
        Assert.Null(device.Apply(changes!));

        var entry = Assert.Single(log.Entries, e => e.Message.StartsWith("UDP bind updated", StringComparison.Ordinal));
        Assert.Equal("UDP bind updated, listening on port 5555", entry.Message);
        Assert.Equal(LogLevel.Information, entry.Level);

        tun.Dispose(); // the TUN reader sees the packet device close and stops the device
        Assert.True(device.Completion.Wait(TimeSpan.FromSeconds(10)));
        Assert.Contains(log.Entries, e => e.Message == "Packet device closed, the device stops" && e.Level == LogLevel.Information);
    }

    [Fact]
    public void NullLogger_DeviceRunsWithoutOne()
    {
        var (tun, host) = InMemoryPacketDevice.CreatePair(1420);
        using var _ = host;
        using var device = new WireGuardDevice(tun, new InMemoryNetwork(32).CreateFactory(UdpEndpoint.Parse("192.0.2.1:0")), new WireGuardDeviceOptions { CryptoWorkers = 1 }, logger: null);

        Assert.True(UapiParser.TryParseSet("listen_port=5556\n", out var changes, out var error), error?.ToString());
        Assert.Null(device.Apply(changes!));
        Assert.Equal(5556, device.ListenPort);
        tun.Dispose();
    }
}
