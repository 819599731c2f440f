using System.Runtime.Versioning;
using Microsoft.Extensions.Logging;
using Sharptun.Transport;
using Sharptun.Transport.Linux;

namespace Sharptun.Cli.Daemon;

/// <summary>
/// Opens the device's binds through <paramref name="inner"/> and logs, once per daemon, the UDP offloads the first Linux
/// bind ended up with ("udp: gso on, gro on"): what the kernel accepted at open, after the switches (SHARPTUN_UDP_GRO).
/// </summary>
[SupportedOSPlatform("linux")]
internal sealed class OffloadLoggingBindFactory(IDatagramBindFactory inner, ILogger log) : IDatagramBindFactory
{
    private int _logged;

    public IDatagramBind Open(ushort port)
    {
        var bind = inner.Open(port);
        if (bind is LinuxUdpBind linux && Interlocked.Exchange(ref _logged, 1) == 0)
        {
            Log.UdpOffloads(log, linux.SegmentationOffload ? "on" : "off", linux.ReceiveOffload ? "on" : "off");
        }

        return bind;
    }
}
