#!/usr/bin/env bash
# Issue 10's benchmark of `sharptun proxy`, side by side in one run (needs root, iproute2, wireguard-go, wg, nginx,
# curl, dotnet):
#   S: Debian's wireguard-go (kernel TUN) with nginx behind it, serving a MB-sized random file and accepting PUT;
#   C: the client, joined to S by a veth (MTU 1500, tunnel MTU 1420). In turn:
#     (a) sharptun proxy, run as uid 65534 (no TUN, no root) with a [Socks5] section: curl --socks5-hostname downloads
#         the file and uploads it (PUT), each timed by curl;
#     (b) the same client key in wireguard-go with a kernel TUN in C (root), curl straight to nginx: the ceiling a
#         rootless proxy is judged against;
#   then N (default 100) concurrent curl downloads of EACH MB through each, sampling the client process's private dirty
#   memory (Private_Dirty of /proc/PID/smaps_rollup) every 100 ms: idle before, peak during, after.
# Mbit/s = 10^6 bits a second, from curl's own speed_download / speed_upload. "client CPU seconds per GB": the user and
# system time (/proc/PID/stat) the client process (sharptun proxy / wireguard-go) used during the transfer, per 10^9 bytes.
# Usage: sudo [PROXY_ARGS="--memory-budget 4M"] [PUBLISH_AOT=false] [SMAPS_OUT=/tmp/peak] bench/proxy-curl.sh [MB] [CONNECTIONS] [EACH-MB]
#   (defaults 1000 100 10; SMAPS_OUT keeps /proc/PID/smaps at each process's peak as SMAPS_OUT.PID)
#   WG_SOCKET_BUFFER=current (or a byte count) gives wireguard-go the UDP socket buffers it sets itself since
#   0.0.20230223; Debian's older build has the kernel's 208 KiB (bench/wg-buffers.sh).
set -euo pipefail
cd "$(dirname "$0")/.."
export SHARPTUN_ARTIFACTS="${SHARPTUN_ARTIFACTS:-/tmp/art-bench-proxy}"
export DOTNET_CLI_TELEMETRY_OPTOUT=1 DOTNET_NOLOGO=1
mb="${1:-1000}"; conns="${2:-100}"; each="${3:-10}"
out="$(mktemp -d /tmp/sharptun-proxy-bench.XXXXXX)"
chmod 755 "$out"
pids=()
cleanup() {
    for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
    sleep 0.5
    for pid in "${pids[@]}"; do kill -9 "$pid" 2>/dev/null || true; done
    proxy_lab_down
    rm -rf "$out"
    wg_buffers_restore
}
trap cleanup EXIT
. bench/wg-buffers.sh
. bench/proxy-lab.sh
wg_buffers_apply

# NativeAOT when clang is installed (the CLI's default publish), else the JIT build; PUBLISH_AOT=false forces JIT.
dotnet publish src/Sharptun.Cli -c Release ${PUBLISH_AOT:+-p:PublishAot=$PUBLISH_AOT} -o "$out/cli" >"$out/build.log" 2>&1 || { tail -n 30 "$out/build.log"; exit 1; }
chmod -R a+rX "$out/cli"
if [ -x "$out/cli/sharptun" ] && [ ! -f "$out/cli/sharptun.dll" ]; then sharptun=("$out/cli/sharptun"); build=NativeAOT; else sharptun=(dotnet "$out/cli/sharptun.dll"); build=JIT; fi

proxy_lab_up

private_dirty_kib() { awk '/^Private_Dirty:/ { print $2 }' "/proc/$1/smaps_rollup" 2>/dev/null || echo 0; }
mib() { awk -v k="$1" 'BEGIN { printf "%.1f", k / 1024 }'; }

# Runs N concurrent downloads through "$@" (curl options) and prints "before peak after completed" for PID.
memory_run() {
    local pid=$1; shift
    local before peak=0 v ok=0
    before=$(private_dirty_kib "$pid")
    local cpids=()
    for i in $(seq 1 "$conns"); do
        ip netns exec stpb-c curl -sS -o /dev/null -w '%{http_code}\n' "$@" http://10.238.0.1/each.bin >"$out/conc.$i" 2>&1 & cpids+=($!)
    done
    while :; do
        v=$(private_dirty_kib "$pid")
        if [ "$v" -gt "$peak" ]; then peak=$v; [ -n "${SMAPS_OUT:-}" ] && cp "/proc/$pid/smaps" "$SMAPS_OUT.$pid" 2>/dev/null; fi
        local running=0
        for c in "${cpids[@]}"; do kill -0 "$c" 2>/dev/null && running=1 && break; done
        [ $running = 0 ] && break
        sleep 0.1
    done
    for i in $(seq 1 "$conns"); do grep -q '^200$' "$out/conc.$i" && ok=$((ok + 1)); done
    sleep 1
    echo "$(mib "$before") $(mib "$peak") $(mib "$(private_dirty_kib "$pid")") $ok"
}

# (a) sharptun proxy as uid 65534
ip netns exec stpb-c setpriv --reuid=65534 --regid=65534 --clear-groups --inh-caps=-all -- \
    env HOME="$out" DOTNET_CLI_HOME="$out" ${PROXY_ENV:-} "${sharptun[@]}" proxy -c "$out/proxy.conf" ${PROXY_ARGS:-} >"$out/proxy.log" 2>&1 & proxy_setpriv=$!; pids+=($proxy_setpriv)
for _ in $(seq 1 300); do ip netns exec stpb-c ss -Hltn 'sport = :1080' | grep -q 1080 && break; sleep 0.1; done
proxy_pid=$(pgrep -f "$out/cli/sharptun.* proxy" | head -n1)
socks=(--socks5-hostname 127.0.0.1:1080)
timed "${socks[@]}" -o /dev/null http://10.238.0.1/each.bin   # handshake and warm-up
c0=$(cpu_ticks "$proxy_pid")
sx_down=$(timed "${socks[@]}" -o /dev/null -w '%{speed_download}' http://10.238.0.1/big.bin)
c1=$(cpu_ticks "$proxy_pid")
sx_up=$(timed "${socks[@]}" -T "$out/www/big.bin" -o /dev/null -w '%{speed_upload}' http://10.238.0.1/upload/up.bin)
c2=$(cpu_ticks "$proxy_pid")
sx_cpu_down=$(cpu_per_gb $((c1 - c0))); sx_cpu_up=$(cpu_per_gb $((c2 - c1)))
cmp -s "$out/www/big.bin" "$out/www/upload/up.bin" && sx_upload_ok=yes || sx_upload_ok=NO
read -r sx_before sx_peak sx_after sx_ok <<<"$(memory_run "$proxy_pid" "${socks[@]}")"
kill "$proxy_setpriv" 2>/dev/null || true; kill "$proxy_pid" 2>/dev/null || true; sleep 1
rm -f "$out/www/upload/up.bin"

# (b) wireguard-go with a kernel TUN in C, same key
ip netns exec stpb-c wireguard-go -f stpb-k >"$out/wgc.log" 2>&1 & wgc=$!; pids+=($wgc)
for _ in $(seq 1 100); do [ -S /var/run/wireguard/stpb-k.sock ] && break; sleep 0.1; done
ip netns exec stpb-c wg set stpb-k private-key "$out/c.key" peer "$(wg pubkey <"$out/s.key")" endpoint 10.239.0.1:51930 allowed-ips 10.238.0.1/32
ip -n stpb-c addr add 10.238.0.2/32 dev stpb-k && ip -n stpb-c link set stpb-k mtu 1420 up
ip -n stpb-c route add 10.238.0.1/32 dev stpb-k
timed -o /dev/null http://10.238.0.1/each.bin
c0=$(cpu_ticks "$wgc")
wg_down=$(timed -o /dev/null -w '%{speed_download}' http://10.238.0.1/big.bin)
c1=$(cpu_ticks "$wgc")
wg_up=$(timed -T "$out/www/big.bin" -o /dev/null -w '%{speed_upload}' http://10.238.0.1/upload/up.bin)
c2=$(cpu_ticks "$wgc")
wg_cpu_down=$(cpu_per_gb $((c1 - c0))); wg_cpu_up=$(cpu_per_gb $((c2 - c1)))
cmp -s "$out/www/big.bin" "$out/www/upload/up.bin" && wg_upload_ok=yes || wg_upload_ok=NO
read -r wg_before wg_peak wg_after wg_ok <<<"$(memory_run "$wgc")"

printf '%-40s %22s %22s\n' "" "sharptun proxy SOCKS5" "wireguard-go + TUN"
printf '%-40s %22s %22s\n' "download $mb MB, Mbit/s" "$(mbit "$sx_down")" "$(mbit "$wg_down")"
printf '%-40s %22s %22s\n' "upload $mb MB (PUT), Mbit/s" "$(mbit "$sx_up")" "$(mbit "$wg_up")"
printf '%-40s %22s %22s\n' "upload arrived intact" "$sx_upload_ok" "$wg_upload_ok"
printf '%-40s %22s %22s\n' "client CPU seconds per GB: download" "$sx_cpu_down" "$wg_cpu_down"
printf '%-40s %22s %22s\n' "client CPU seconds per GB: upload" "$sx_cpu_up" "$wg_cpu_up"
printf '%-40s %22s %22s\n' "$conns x $each MB downloads: completed" "$sx_ok" "$wg_ok"
printf '%-40s %22s %22s\n' "private dirty MiB: idle" "$sx_before" "$wg_before"
printf '%-40s %22s %22s\n' "private dirty MiB: peak" "$sx_peak" "$wg_peak"
printf '%-40s %22s %22s\n' "private dirty MiB: after" "$sx_after" "$wg_after"
echo "(CPU and memory: the client process: sharptun proxy ($build) / wireguard-go; $(nproc) cores, load $(cut -d' ' -f1-3 /proc/loadavg))"
wg_buffers_label
