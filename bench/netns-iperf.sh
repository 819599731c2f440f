#!/usr/bin/env bash
# Tunnel throughput, first-connect time and memory of whole WireGuard daemons, side by side, in one run
# (needs root, iproute2, wireguard-go, wg, iperf3, jq, dotnet):
#   wireguard-go <-> wireguard-go, sharptun <-> sharptun, sharptun (A) <-> wireguard-go (B)
# Each pair gets two fresh network namespaces joined by a veth (MTU 1500, tunnel MTU 1420 as wireguard-go's default),
# configured only with wg and ip. Per pair:
#   first connect: time from `wg set A ... endpoint B` (A's last configuration step) to A's first ping reply
#                  through the tunnel (the handshake plus one round trip);
#   A->B, B->A:    iperf3 TCP, one stream, SECONDS each (default 5), Mbit/s as received / the sender's retransmissions;
#   memory:        each daemon's peak RSS (VmHWM, /proc/PID/status) and private dirty memory (Private_Dirty,
#                  /proc/PID/smaps_rollup) after both transfers.
# sharptun is `dotnet publish -c Release src/Sharptun.Cli` (built first): the native executable when clang is
# installed (NativeAOT, the default publish), else the JIT build run as `dotnet sharptun.dll -f IFNAME`; the table
# header says which. SHARPTUN_PUBLISH_ARGS adds publish arguments (e.g. -p:PublishAot=false to measure the JIT build).
# Usage: sudo bench/netns-iperf.sh [SECONDS]
set -euo pipefail
cd "$(dirname "$0")/.."
export SHARPTUN_ARTIFACTS="${SHARPTUN_ARTIFACTS:-/tmp/art-bench-netns}"
export DOTNET_CLI_TELEMETRY_OPTOUT=1 DOTNET_NOLOGO=1
seconds="${1:-5}"
out="$(mktemp -d)"
pids=()
cleanup() {
    for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
    sleep 0.5
    for pid in "${pids[@]}"; do kill -9 "$pid" 2>/dev/null || true; done
    for ns in stnb-a stnb-b; do ip netns del "$ns" 2>/dev/null || true; done
    rm -f /var/run/wireguard/stnb-wa.sock /var/run/wireguard/stnb-wb.sock
    rm -rf "$out"
}
trap cleanup EXIT

# shellcheck disable=SC2086 # SHARPTUN_PUBLISH_ARGS is a list of arguments
dotnet publish src/Sharptun.Cli -c Release -o "$out/sharptun" ${SHARPTUN_PUBLISH_ARGS:-} >"$out/build.log" 2>&1 || { tail -n 30 "$out/build.log"; exit 1; }
if [ -f "$out/sharptun/sharptun.dll" ]; then
    sharptun_cmd=(dotnet "$out/sharptun/sharptun.dll"); echo "sharptun: JIT build (dotnet sharptun.dll)"
else
    sharptun_cmd=("$out/sharptun/sharptun"); echo "sharptun: native (NativeAOT) build"
fi

# start_daemon IMPL NS IFNAME: starts the daemon in the foreground in the background; prints its pid.
start_daemon() {
    local impl=$1 ns=$2 ifname=$3
    if [ "$impl" = sharptun ]; then
        ip netns exec "$ns" "${sharptun_cmd[@]}" -f "$ifname" >"$out/$ifname.log" 2>&1 &
    else
        ip netns exec "$ns" wireguard-go -f "$ifname" >"$out/$ifname.log" 2>&1 &
    fi
    echo $!
}

wait_socket() {
    for _ in $(seq 1 400); do [ -S "/var/run/wireguard/$1.sock" ] && return 0; sleep 0.1; done
    echo "no UAPI socket for $1" >&2; cat "$out/$1.log" >&2; return 1
}

iperf_mbits() { # NS-client SERVER-IP [-R]
    local ns=$1 ip=$2; shift 2
    ip netns exec stnb-b iperf3 -s -1 -p 5299 >/dev/null 2>&1 &
    for _ in $(seq 1 100); do ip netns exec stnb-b ss -Htln 'sport = :5299' | grep -q 5299 && break; sleep 0.05; done
    ip netns exec "$ns" iperf3 -c "$ip" -p 5299 -t "$seconds" -J "$@" | jq -r '"\(.end.sum_received.bits_per_second / 1e6 | round)/\(.end.sum_sent.retransmits)"'
}

mem_mib() { # PID -> "VmHWM Private_Dirty" in MiB
    local hwm pd
    hwm=$(awk '/^VmHWM:/ {print $2}' "/proc/$1/status")
    pd=$(awk '/^Private_Dirty:/ {print $2}' "/proc/$1/smaps_rollup")
    awk -v h="$hwm" -v p="$pd" 'BEGIN { printf "%.1f %.1f", h / 1024, p / 1024 }'
}

run_pair() { # IMPL-A IMPL-B
    local ia=$1 ib=$2
    for ns in stnb-a stnb-b; do ip netns del "$ns" 2>/dev/null || true; ip netns add "$ns"; ip -n "$ns" link set lo up; done
    ip link add stnb-va netns stnb-a type veth peer name stnb-vb netns stnb-b
    ip -n stnb-a addr add 10.234.0.1/24 dev stnb-va && ip -n stnb-a link set stnb-va up
    ip -n stnb-b addr add 10.234.0.2/24 dev stnb-vb && ip -n stnb-b link set stnb-vb up
    local pa pb
    pa=$(start_daemon "$ia" stnb-a stnb-wa); pids+=("$pa")
    pb=$(start_daemon "$ib" stnb-b stnb-wb); pids+=("$pb")
    wait_socket stnb-wa; wait_socket stnb-wb
    (umask 077; wg genkey >"$out/a.key"; wg genkey >"$out/b.key")
    local puba pubb
    puba=$(wg pubkey <"$out/a.key"); pubb=$(wg pubkey <"$out/b.key")
    ip netns exec stnb-b wg set stnb-wb private-key "$out/b.key" listen-port 51902 peer "$puba" allowed-ips 10.235.0.1/32
    ip netns exec stnb-a wg set stnb-wa private-key "$out/a.key" listen-port 51901 peer "$pubb" allowed-ips 10.235.0.2/32
    ip -n stnb-a addr add 10.235.0.1/24 dev stnb-wa && ip -n stnb-a link set stnb-wa up
    ip -n stnb-b addr add 10.235.0.2/24 dev stnb-wb && ip -n stnb-b link set stnb-wb up

    local t0 t1
    t0=$(date +%s%N)
    ip netns exec stnb-a wg set stnb-wa peer "$pubb" endpoint 10.234.0.2:51902
    ip netns exec stnb-a ping -c 1 -i 0.01 -w 20 10.235.0.2 >/dev/null
    t1=$(date +%s%N)
    local connect_ms=$(( (t1 - t0) / 1000000 ))

    local up down
    up=$(iperf_mbits stnb-a 10.235.0.2)
    down=$(iperf_mbits stnb-a 10.235.0.2 -R)
    local ma mb
    ma=$(mem_mib "$pa"); mb=$(mem_mib "$pb")
    printf '%-40s %11s %11s %9s   %-11s  %-11s\n' "$ia (A) <-> $ib (B)" "$up" "$down" "$connect_ms" "$ma" "$mb" >>"$out/table"

    kill "$pa" "$pb" 2>/dev/null || true
    for _ in $(seq 1 100); do kill -0 "$pa" 2>/dev/null || kill -0 "$pb" 2>/dev/null || break; sleep 0.1; done
    for ns in stnb-a stnb-b; do ip netns del "$ns"; done
}

: >"$out/table"
run_pair wireguard-go wireguard-go
run_pair sharptun sharptun
run_pair sharptun wireguard-go

printf '%-40s %11s %11s %9s   %-11s  %-11s\n' "pair" "A->B" "B->A" "connect" "A: HWM PD" "B: HWM PD"
printf '%-40s %11s %11s %9s   %-11s  %-11s\n' "" "Mbit/s/rtx" "Mbit/s/rtx" "ms" "MiB MiB" "MiB MiB"
cat "$out/table"
echo "iperf3 -t $seconds, one TCP stream per direction (rtx = the sender's TCP retransmissions); HWM = VmHWM, PD = Private_Dirty (smaps_rollup) after both transfers."
echo "load average: $(cut -d' ' -f1-3 /proc/loadavg), cores: $(nproc), wireguard-go $(dpkg-query -W -f='${Version}' wireguard-go 2>/dev/null || echo '?')"
