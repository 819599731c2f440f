using System.Net;

namespace Sharptun.NetStack;

/// <summary>
/// Configuration of a <see cref="NetworkStack"/>. Read once by the constructor; later changes have no effect
/// (addresses can be changed on the stack itself).
/// </summary>
public sealed class NetworkStackOptions
{
    /// <summary>IP MTU of the attached device in bytes (at least 1280, the IPv6 minimum). Default 1420 (WireGuard).</summary>
    public int Mtu { get; set; } = 1420;

    /// <summary>The stack's own IPv4/IPv6 addresses.</summary>
    public IList<IPAddress> Addresses { get; } = [];

    /// <summary>
    /// Accept packets to any destination address (tun2socks / gateway use): UDP and TCP to any address are delivered to
    /// wildcard sockets and listeners. Default false.
    /// </summary>
    public bool Promiscuous { get; set; }

    /// <summary>In promiscuous mode, also answer ICMP echo requests to addresses that are not configured. Default false.</summary>
    public bool AnswerEchoForAnyAddress { get; set; }

    /// <summary>
    /// In promiscuous mode, answer an ICMP echo request to an address that is not configured when this returns true for
    /// that address (a gateway answers for the destinations its policy lets peers reach). Called under the stack's lock:
    /// it must be fast and must not call into the stack. Null (the default): only <see cref="AnswerEchoForAnyAddress"/>
    /// decides.
    /// </summary>
    public Func<IPAddress, bool>? AnswerEchoFor { get; set; }

    /// <summary>
    /// Outbound queue capacity in packets (each slot holds up to <see cref="Mtu"/> bytes, allocated on first use). When it
    /// is full, TCP keeps its data and resumes as the device drains the queue (backpressure). Default 64 (about 90 KB at
    /// MTU 1420): 100 bulk connections moved as much as with 512 slots, which cost 0.7 MB per stack.
    /// </summary>
    public int OutboundQueueCapacity { get; set; } = 64;

    /// <summary>Most packets one <see cref="NetworkStack.Read"/> call returns. Default 64.</summary>
    public int BatchSize { get; set; } = 64;

    /// <summary>Byte budget shared by fragment reassembly and UDP receive queues. Default 4 MiB.</summary>
    public long BufferBudgetBytes { get; set; } = 4 * 1024 * 1024;

    /// <summary>Most concurrent reassemblies per IP version. Default 64.</summary>
    public int MaxReassemblies { get; set; } = 64;

    /// <summary>Most stored fragment bytes per IP version (also charged to the budget). Default 1 MiB.</summary>
    public long MaxReassemblyBytes { get; set; } = 1024 * 1024;

    /// <summary>IPv4 reassembly timeout (RFC 791 suggests 15 s as a lower bound; Linux uses 30 s). Default 30 s.</summary>
    public TimeSpan Ipv4ReassemblyTimeout { get; set; } = TimeSpan.FromSeconds(30);

    /// <summary>IPv6 reassembly timeout (RFC 8200 §4.5: 60 s). Default 60 s.</summary>
    public TimeSpan Ipv6ReassemblyTimeout { get; set; } = TimeSpan.FromSeconds(60);

    /// <summary>Sustained ICMP error messages per second (RFC 1812 §4.3.2.8, RFC 4443 §2.4(f)). Default 100.</summary>
    public double IcmpErrorRatePerSecond { get; set; } = 100;

    /// <summary>ICMP error burst allowance. Default 50.</summary>
    public int IcmpErrorBurst { get; set; } = 50;

    /// <summary>Default UDP receive queue length in datagrams per socket. Default 128.</summary>
    public int UdpReceiveQueueLength { get; set; } = 128;

    /// <summary>TTL / hop limit of packets the stack sends. Default 64.</summary>
    public byte TimeToLive { get; set; } = 64;

    /// <summary>TCP options, used once TCP is attached (null = defaults).</summary>
    public Tcp.TcpOptions? Tcp { get; set; }
}
