using System.Runtime.InteropServices;

namespace Sharptun.Transport.Linux;

/// <summary>
/// libc calls and structures for the Linux transports (source-generated <see cref="LibraryImportAttribute"/>,
/// AOT-safe). Constants are the x86_64/aarch64 values (asm-generic); structures use the LP64 and ILP32 layouts
/// that sequential layout with native-sized fields reproduces.
/// </summary>
internal static unsafe partial class LinuxNative
{
    private const string Libc = "libc";

    public const int AF_INET = 2;
    public const int AF_INET6 = 10;
    public const int SOCK_DGRAM = 2;
    public const int SOCK_NONBLOCK = 0x800;
    public const int SOCK_CLOEXEC = 0x80000;
    public const int SOL_SOCKET = 1;
    public const int SO_SNDBUF = 7;
    public const int SO_RCVBUF = 8;
    public const int SO_SNDBUFFORCE = 32;
    public const int SO_RCVBUFFORCE = 33;
    public const int SO_MARK = 36;
    public const int IPPROTO_IPV6 = 41;
    public const int IPV6_V6ONLY = 26;
    public const int SOL_UDP = 17;
    public const int UDP_SEGMENT = 103;
    public const int UdpMaxSegments = 64;           // UDP_MAX_SEGMENTS (raised to 128 in Linux 6.x; 64 is safe everywhere)
    public const int MaxGsoBytes = 65535 - 20 - 8;  // one GSO buffer must fit one IPv4 datagram's payload
    public const int MSG_TRUNC = 0x20;
    public const int MSG_DONTWAIT = 0x40;

    public const short POLLIN = 0x1;
    public const short POLLOUT = 0x4;
    public const short POLLERR = 0x8;
    public const short POLLHUP = 0x10;
    public const short POLLNVAL = 0x20;

    public const int O_RDWR = 2;
    public const int O_NONBLOCK = 0x800;
    public const int O_CLOEXEC = 0x80000;
    public const int F_GETFL = 3;
    public const int F_SETFL = 4;
    public const int EFD_NONBLOCK = 0x800;
    public const int EFD_CLOEXEC = 0x80000;

    public const int EPERM = 1;
    public const int EINTR = 4;
    public const int EIO = 5;
    public const int ENXIO = 6;
    public const int EBADF = 9;
    public const int EAGAIN = 11;
    public const int ENOMEM = 12;
    public const int EACCES = 13;
    public const int EFAULT = 14;
    public const int ENODEV = 19;
    public const int EINVAL = 22;
    public const int EPIPE = 32;
    public const int ENOSYS = 38;
    public const int EBADFD = 77;
    public const int EMSGSIZE = 90;
    public const int ENOPROTOOPT = 92;
    public const int EOPNOTSUPP = 95;
    public const int EAFNOSUPPORT = 97;
    public const int ENOBUFS = 105;
    public const int ENETUNREACH = 101;
    public const int ECONNREFUSED = 111;
    public const int EHOSTDOWN = 112;
    public const int EHOSTUNREACH = 113;

    // <linux/if_tun.h>, <linux/sockios.h>, <net/if.h>
    public const nuint TUNSETIFF = 0x400454ca; // _IOW('T', 202, int)
    public const short IFF_TUN = 0x0001;
    public const short IFF_NO_PI = 0x1000;
    public const short IFF_TAP = 0x0002;
    public const nuint TUNGETIFF = 0x800454d2; // _IOR('T', 210, unsigned int)
    public const int ENOTTY = 25;
    public const short IFF_VNET_HDR = 0x4000;
    public const nuint TUNSETOFFLOAD = 0x400454d0;   // _IOW('T', 208, unsigned int); the flags are the argument itself
    public const nuint TUNGETVNETHDRSZ = 0x800454d7; // _IOR('T', 215, int)
    public const uint TUN_F_CSUM = 0x01;             // the peer (we) handles partial checksums
    public const uint TUN_F_TSO4 = 0x02;
    public const uint TUN_F_TSO6 = 0x04;
    public const uint TUN_F_USO4 = 0x20;             // Linux 6.2+
    public const uint TUN_F_USO6 = 0x40;
    public const nuint SIOCGIFFLAGS = 0x8913;
    public const nuint SIOCSIFFLAGS = 0x8914;
    public const nuint SIOCGIFMTU = 0x8921;
    public const nuint SIOCSIFMTU = 0x8922;
    public const nuint SIOCGIFINDEX = 0x8933;
    public const short IFF_UP = 0x1;
    public const int IFNAMSIZ = 16;

    public static int LastErrno => Marshal.GetLastPInvokeError();

    [LibraryImport(Libc, SetLastError = true)]
    public static partial int socket(int domain, int type, int protocol);

    [LibraryImport(Libc, SetLastError = true)]
    public static partial int setsockopt(int fd, int level, int name, void* value, uint length);

    [LibraryImport(Libc, SetLastError = true)]
    public static partial int getsockopt(int fd, int level, int name, void* value, uint* length);

    [LibraryImport(Libc, SetLastError = true)]
    public static partial int bind(int fd, void* address, uint length);

    [LibraryImport(Libc, SetLastError = true)]
    public static partial int getsockname(int fd, void* address, uint* length);

    [LibraryImport(Libc, SetLastError = true)]
    public static partial int recvmmsg(int fd, MMsgHdr* messages, uint count, int flags, void* timeout);

    [LibraryImport(Libc, SetLastError = true)]
    public static partial int sendmmsg(int fd, MMsgHdr* messages, uint count, int flags);

    [LibraryImport(Libc, SetLastError = true)]
    public static partial nint recvmsg(int fd, MsgHdr* message, int flags);

    [LibraryImport(Libc, SetLastError = true)]
    public static partial nint sendmsg(int fd, MsgHdr* message, int flags);

    [LibraryImport(Libc, SetLastError = true)]
    public static partial int poll(PollFd* fds, nuint count, int timeoutMs);

    [LibraryImport(Libc, SetLastError = true)]
    public static partial int eventfd(uint initial, int flags);

    [LibraryImport(Libc, SetLastError = true)]
    public static partial nint read(int fd, void* buffer, nuint count);

    [LibraryImport(Libc, SetLastError = true)]
    public static partial nint write(int fd, void* buffer, nuint count);

    [LibraryImport(Libc, SetLastError = true)]
    public static partial nint readv(int fd, IoVec* vectors, int count);

    [LibraryImport(Libc, SetLastError = true)]
    public static partial nint writev(int fd, IoVec* vectors, int count);

    [LibraryImport(Libc, SetLastError = true)]
    public static partial int close(int fd);

    [LibraryImport(Libc, SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    public static partial int open(string path, int flags);

    // ioctl and fcntl are variadic in C; passing one pointer/int argument this way is correct on the
    // x86_64 and aarch64 Linux ABIs, where variadic integer arguments travel like fixed ones.
    [LibraryImport(Libc, SetLastError = true)]
    public static partial int ioctl(int fd, nuint request, void* argument);

    [LibraryImport(Libc, SetLastError = true)]
    public static partial int fcntl(int fd, int command, int argument);

    [StructLayout(LayoutKind.Sequential)]
    public struct IoVec
    {
        public void* Base;
        public nuint Length;
    }

    [StructLayout(LayoutKind.Sequential)]
    public struct MsgHdr
    {
        public void* Name;
        public uint NameLength;
        public IoVec* Iov;
        public nuint IovLength;
        public void* Control;
        public nuint ControlLength;
        public int Flags;
    }

    [StructLayout(LayoutKind.Sequential)]
    public struct MMsgHdr
    {
        public MsgHdr Header;
        public uint Length;
    }

    /// <summary>struct cmsghdr: length (size_t), level, type; data follows at CMSG_ALIGN(sizeof(cmsghdr)).</summary>
    [StructLayout(LayoutKind.Sequential)]
    public struct CMsgHdr
    {
        public nuint Length;
        public int Level;
        public int Type;
    }

    [StructLayout(LayoutKind.Sequential)]
    public struct PollFd
    {
        public int Fd;
        public short Events;
        public short ReturnedEvents;
    }

    /// <summary>struct sockaddr_in6 (28 bytes); also large enough to receive a struct sockaddr_in (16 bytes).</summary>
    [StructLayout(LayoutKind.Sequential)]
    public struct SockAddrIn6
    {
        public ushort Family;
        public ushort PortBigEndian;
        public uint FlowInfo;
        public fixed byte Address[16];
        public uint ScopeId;
    }

    /// <summary>struct ifreq (40 bytes on LP64): the name, then a union whose first short/int we use.</summary>
    [StructLayout(LayoutKind.Sequential, Size = 40)]
    public struct IfReq
    {
        public fixed byte Name[IFNAMSIZ];
        public int Value; // ifr_flags (short, little-endian low half), ifr_mtu, ifr_ifindex
    }

    /// <summary>An owned file descriptor with reference counting, so close never races an in-flight syscall.</summary>
    public sealed class SafeFd : SafeHandle
    {
        public SafeFd(int fd, bool ownsHandle = true)
            : base(-1, ownsHandle)
        {
            SetHandle(fd);
        }

        public override bool IsInvalid => handle == -1;

        public int Fd => (int)handle;

        /// <summary>Takes a reference for the duration of a syscall; false once the handle is closed or closing.</summary>
        public bool TryAddRef()
        {
            var ok = false;
            try
            {
                DangerousAddRef(ref ok);
            }
            catch (ObjectDisposedException)
            {
                return false;
            }

            return ok;
        }

        protected override bool ReleaseHandle() => close((int)handle) == 0;
    }

    /// <summary>
    /// The wakeup half of a blocking wait: an eventfd that becomes (and stays) readable when <see cref="Signal"/> is called.
    /// Blocking calls poll the I/O descriptor together with it, so Dispose can release them without closing an fd under them.
    /// </summary>
    public sealed class Wakeup : IDisposable
    {
        private readonly SafeFd _fd;

        public Wakeup()
        {
            var fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
            if (fd < 0)
            {
                throw new IOException($"eventfd failed: errno {LastErrno}");
            }

            _fd = new SafeFd(fd);
        }

        public SafeFd Handle => _fd;

        public void Signal()
        {
            if (_fd.TryAddRef())
            {
                try
                {
                    ulong one = 1;
                    _ = write(_fd.Fd, &one, sizeof(ulong));
                }
                finally
                {
                    _fd.DangerousRelease();
                }
            }
        }

        public void Dispose() => _fd.Dispose();
    }

    /// <summary>Polls <paramref name="fd"/> for <paramref name="events"/> together with the wakeup; returns false when woken (closing), true when the fd is ready (or in error).</summary>
    public static bool WaitReady(int fd, short events, int wakeFd)
    {
        var fds = stackalloc PollFd[2];
        while (true)
        {
            fds[0] = new PollFd { Fd = fd, Events = events };
            fds[1] = new PollFd { Fd = wakeFd, Events = POLLIN };
            var r = poll(fds, 2, -1);
            if (r < 0)
            {
                var errno = LastErrno;
                if (errno == EINTR)
                {
                    continue;
                }

                throw new IOException($"poll failed: errno {errno}");
            }

            if (fds[1].ReturnedEvents != 0)
            {
                return false;
            }

            if (fds[0].ReturnedEvents != 0)
            {
                return true;
            }
        }
    }

    // UDP GRO on receive (include/uapi/linux/udp.h, udp(7), Linux 5.0+): setsockopt(SOL_UDP, UDP_GRO, int 1) lets the
    // socket receive several datagrams of one flow coalesced into one buffer, the segment size in a SOL_UDP/UDP_GRO
    // control message whose payload is an int (include/net/udp.h, udp_cmsg_recv). MSG_CTRUNC: the control buffer was too small.
    public const int UDP_GRO = 104;
    public const int MSG_CTRUNC = 0x8;
}
