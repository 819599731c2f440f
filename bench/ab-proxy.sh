#!/usr/bin/env bash
# A/B comparison of `sharptun proxy` builds or settings against Debian's wireguard-go + nginx (the setup of
# bench/proxy-curl.sh), alternating so that a changing machine load hits each variant alike (needs root, iproute2,
# wireguard-go, wg, nginx, curl). Per round and variant: a download and an upload of MB through SOCKS5 (curl's speed),
# the CPU seconds per GB that the proxy process and the wireguard-go server used (utime + stime from /proc/PID/stat,
# steadier than throughput on a loaded machine), and the share of the machine's CPU that was busy.
# A variant is a published CLI directory (NativeAOT: DIR/sharptun; JIT: DIR/sharptun.dll), optionally followed by
# environment settings for the proxy, separated by commas:
#   sudo bench/ab-proxy.sh "DIR_A" "DIR_B,DOTNET_ThreadPool_UnfairSemaphoreSpinLimit=70" [ROUNDS] [MB]   (defaults 2 500)
# Publish a commit's CLI with `dotnet publish src/Sharptun.Cli -c Release -o DIR`. WG_SOCKET_BUFFER as in
# bench/wg-buffers.sh.
set -euo pipefail
cd "$(dirname "$0")/.."
[ $# -ge 2 ] || { echo "usage: ab-proxy.sh VARIANT_A VARIANT_B [ROUNDS] [MB]" >&2; exit 2; }
variants=("$1" "$2"); rounds=${3:-2}; mb=${4:-500}; each=1
out="$(mktemp -d /tmp/sharptun-ab-proxy.XXXXXX)"
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
for i in 0 1; do
    dir=${variants[$i]%%,*}
    [ -x "$dir/sharptun" ] || [ -f "$dir/sharptun.dll" ] || { echo "no sharptun in $dir" >&2; exit 2; }
    cp -r "$dir" "$out/cli$i"; chmod -R a+rX "$out/cli$i"
done

proxy_lab_up
wg_server=${pids[0]}

busy() { head -1 /proc/stat | awk '{ print $2 + $3 + $4 + $7 + $8, $5 + $6 }'; }
pct() { awk -v b0="$1" -v i0="$2" -v b1="$3" -v i1="$4" 'BEGIN { printf "%.0f", 100 * (b1 - b0) / ((b1 - b0) + (i1 - i0)) }'; }
head -c "$((mb * 1000000))" /dev/urandom >"$out/up.bin"

# one transfer: prints "Mbit/s proxy-CPU-s/GB wireguard-go-CPU-s/GB busy%"
measure() {
    local pid=$1 kind=$2 p0 w0 b0 i0 speed p1 w1 b1 i1
    p0=$(cpu_ticks "$pid"); w0=$(cpu_ticks "$wg_server"); read -r b0 i0 <<<"$(busy)"
    if [ "$kind" = down ]; then
        speed=$(timed --socks5-hostname 127.0.0.1:1080 -o /dev/null -w '%{speed_download}' http://10.238.0.1/big.bin)
    else
        speed=$(timed --socks5-hostname 127.0.0.1:1080 -T "$out/up.bin" -o /dev/null -w '%{speed_upload}' http://10.238.0.1/upload/up.bin)
    fi
    p1=$(cpu_ticks "$pid"); w1=$(cpu_ticks "$wg_server"); read -r b1 i1 <<<"$(busy)"
    echo "$(mbit "$speed") $(cpu_per_gb $((p1 - p0))) $(cpu_per_gb $((w1 - w0))) $(pct "$b0" "$i0" "$b1" "$i1")"
}

printf '%-6s %-8s %10s %10s %14s %14s %8s\n' round variant direction Mbit/s "proxy CPU s/GB" "wg-go CPU s/GB" "busy %"
for round in $(seq 1 "$rounds"); do
    for i in 0 1; do
        IFS=',' read -r -a parts <<<"${variants[$i]}"
        envs=("${parts[@]:1}")
        if [ -x "$out/cli$i/sharptun" ] && [ ! -f "$out/cli$i/sharptun.dll" ]; then cmd=("$out/cli$i/sharptun"); else cmd=(dotnet "$out/cli$i/sharptun.dll"); fi
        ip netns exec stpb-c setpriv --reuid=65534 --regid=65534 --clear-groups --inh-caps=-all -- \
            env HOME="$out" DOTNET_CLI_HOME="$out" "${envs[@]}" "${cmd[@]}" proxy -c "$out/proxy.conf" >"$out/proxy$i.log" 2>&1 & wrapper=$!
        for _ in $(seq 1 300); do ip netns exec stpb-c ss -Hltn 'sport = :1080' | grep -q 1080 && break; sleep 0.1; done
        pid=$(pgrep -f "$out/cli$i/sharptun.* proxy" | head -n1)
        timed --socks5-hostname 127.0.0.1:1080 -o /dev/null http://10.238.0.1/each.bin   # handshake and warm-up
        for kind in down up; do
            read -r speed pcpu wcpu b <<<"$(measure "$pid" "$kind")"
            printf '%-6s %-8s %10s %10s %14s %14s %8s\n' "$round" "$([ $i = 0 ] && echo A || echo B)" "$kind" "$speed" "$pcpu" "$wcpu" "$b"
        done
        kill "$pid" 2>/dev/null || true; wait "$wrapper" 2>/dev/null || true; sleep 0.5
    done
done
echo "(A = ${variants[0]}; B = ${variants[1]}; $mb MB each way; $(nproc) cores, load $(cut -d' ' -f1-3 /proc/loadavg))"
wg_buffers_label
