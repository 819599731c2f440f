using Sharptun.Transport;

namespace Sharptun.NetStack.Tcp;

/// <summary>
/// Connection states, RFC 9293 §3.3.2. LISTEN is represented by <see cref="TcpStreamListener"/>, not by a connection.
/// <code>
///                              +---------+ ---------\      active OPEN
///                              |  CLOSED |            \    -----------
///                              +---------+&lt;---------\   \   create TCB
///                                |     ^              \   \  snd SYN
///                   passive OPEN |     |   CLOSE        \   \
///                   ------------ |     | ----------       \   \
///                    create TCB  |     | delete TCB         \   \
///                                V     |                      \   \
///          rcv RST (note 1)  +---------+            CLOSE    |    \
///       --------------------&gt;|  LISTEN |          ---------- |     |
///      /                     +---------+          delete TCB |     |
///     /           rcv SYN      |     |     SEND              |     |
///    /           -----------   |     |    -------            |     V
/// +--------+      snd SYN,ACK  /       \   snd SYN          +--------+
/// |        |&lt;-----------------           ------------------&gt;|        |
/// |  SYN   |                    rcv SYN                     |  SYN   |
/// |  RCVD  |&lt;-----------------------------------------------|  SENT  |
/// |        |                  snd SYN,ACK                   |        |
/// |        |------------------           -------------------|        |
/// +--------+   rcv ACK of SYN  \       /  rcv SYN,ACK       +--------+
///    |         --------------   |     |   -----------
///    |                x         |     |     snd ACK
///    |                          V     V
///    |  CLOSE                 +---------+
///    | -------                |  ESTAB  |
///    | snd FIN                +---------+
///    |                 CLOSE    |     |    rcv FIN
///    V                -------   |     |    -------
/// +---------+         snd FIN  /       \   snd ACK         +---------+
/// |  FIN    |&lt;----------------          ------------------&gt;|  CLOSE  |
/// | WAIT-1  |------------------                            |   WAIT  |
/// +---------+          rcv FIN  \                          +---------+
///   | rcv ACK of FIN   -------   |                          CLOSE  |
///   | --------------   snd ACK   |                         ------- |
///   V        x                   V                         snd FIN V
/// +---------+               +---------+                    +---------+
/// |FINWAIT-2|               | CLOSING |                    | LAST-ACK|
/// +---------+               +---------+                    +---------+
///   |              rcv ACK of FIN |                 rcv ACK of FIN |
///   |  rcv FIN     -------------- |    Timeout=2MSL -------------- |
///   |  -------            x       V    ------------        x       V
///    \ snd ACK              +---------+delete TCB          +---------+
///      ---------------------&gt;|TIME-WAIT|-------------------&gt;| CLOSED  |
///                            +---------+                    +---------+
/// </code>
/// TIME-WAIT connections are moved to the layer's bounded TIME-WAIT table and their buffers released.
/// </summary>
internal enum TcpState
{
    Closed,
    SynSent,
    SynReceived,
    Established,
    FinWait1,
    FinWait2,
    CloseWait,
    Closing,
    LastAck,
    TimeWait,
}

/// <summary>Connection identity: local and remote address/port.</summary>
internal readonly record struct FourTuple(IpAddr LocalAddress, ushort LocalPort, IpAddr RemoteAddress, ushort RemotePort);
