# Sourced by the benches that run Debian's wireguard-go (proxy-curl.sh, tunnel-throughput.sh, gateway-iperf.sh).
#
# WG_SOCKET_BUFFER=BYTES gives wireguard-go's UDP sockets the buffers that wireguard-go sets itself since 0.0.20230223
# (conn/controlfns_linux.go: SO_RCVBUF/SO_SNDBUF and, as root, SO_RCVBUFFORCE/SO_SNDBUFFORCE of 7 MiB, which the kernel
# doubles: 14 MiB). Debian 12's wireguard-go is 0.0.20220316, which sets none, so its socket gets
# net.core.rmem_default (212992 bytes): at most 1.7 ms of data at 1 Gbit/s, and everything past it is dropped while its
# reader waits for a CPU (docs/benchmarks.md, "What limits the upload against wireguard-go").
#
# A Go binary cannot be given socket options from outside, and net.core.rmem_default is not per network namespace, so
# this sets net.core.rmem_default and wmem_default for the run and restores them on exit. Only sockets that do not set
# their own buffers are affected: wireguard-go's (both the server and the client it is compared with). Sharptun sets
# its own (LinuxUdpBind), nginx and iperf3 use TCP. WG_SOCKET_BUFFER=current stands for 14680064 (7 MiB doubled).
#
# Use: wg_buffers_apply after the trap is set; wg_buffers_restore in the cleanup; wg_buffers_label in the footer.

_wg_buffers_saved=""

wg_buffers_apply() {
    local want="${WG_SOCKET_BUFFER:-}"
    [ "$want" = current ] && want=14680064
    [ -z "$want" ] && return 0
    case "$want" in *[!0-9]*) echo "WG_SOCKET_BUFFER must be a byte count or 'current', not '$want'" >&2; exit 2 ;; esac
    _wg_buffers_saved="$(sysctl -n net.core.rmem_default) $(sysctl -n net.core.wmem_default)"
    sysctl -q -w net.core.rmem_default="$want" net.core.wmem_default="$want"
}

wg_buffers_restore() {
    [ -z "$_wg_buffers_saved" ] && return 0
    local r w
    read -r r w <<<"$_wg_buffers_saved"
    sysctl -q -w net.core.rmem_default="$r" net.core.wmem_default="$w" || true
    _wg_buffers_saved=""
}

wg_buffers_label() {
    if [ -n "$_wg_buffers_saved" ]; then
        echo "wireguard-go's UDP socket buffers: $(sysctl -n net.core.rmem_default) bytes (WG_SOCKET_BUFFER, as wireguard-go >= 0.0.20230223 sets them)"
    else
        echo "wireguard-go's UDP socket buffers: the kernel's default, $(sysctl -n net.core.rmem_default) bytes (Debian's wireguard-go sets none)"
    fi
}
